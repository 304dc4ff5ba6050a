"""Pulumi's stack locks on a DIY (`file://`) backend, read before a deploy (issue 29,
scenarios 2 and 3).

Pulumi's DIY backend locks a stack for an update, refresh, destroy or import by writing
`<backend>/.pulumi/locks/<org>/<project>/<stack>/<uuid>.json` holding `{"pid", "username",
"hostname", "timestamp"}` (pulumi pkg/v3 backend/diy/lock.go `lockContent`, `stackLockDir`); a
second update fails on it ("the stack is currently locked by 1 lock(s)"), but a preview takes
no lock (backend/diy/backend.go: `Preview` does not call `Lock`), so a second `stackctl deploy`
would run its whole preview before Pulumi refuses it. stackctl reads the locks first:
- a lock whose holder runs (same host, pid alive; or another host, which cannot be checked):
  the deploy is refused at once, naming the holder; `--force-unlock` removes it after a
  confirmation, and the update message records it;
- a lock whose holder no longer exists (same host, pid gone: a killed `pulumi up` or
  stackctl): stale, removed with a line saying so (what `pulumi cancel` does for every lock of a
  DIY stack, backend/diy/backend.go `CancelCurrentUpdate`).
Object-store backends (`s3://`, ...) hold the same files under the bucket; reading them needs
that store's client and is not done here.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stackctl.ops.stacks import stack_short_name

LOCKS_DIR = Path(".pulumi") / "locks"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: it holds nothing
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass(frozen=True)
class StackLock:
    path: Path
    pid: int
    username: str
    hostname: str
    timestamp: str

    @property
    def holder(self) -> str:
        return f"{self.username}@{self.hostname} (pid {self.pid}) since {self.timestamp}"

    def stale(
        self,
        hostname: str | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> bool:
        """The holder is known to be gone: it ran on this host and its process has ended."""
        here = socket.gethostname() if hostname is None else hostname
        return self.hostname == here and not alive(self.pid)


def file_backend_dir(backend_url: str) -> Path | None:
    return Path(backend_url.removeprefix("file://")) if backend_url.startswith("file://") else None


def read_locks(backend_url: str, project: str, stack: str) -> list[StackLock]:
    """The locks of `stack` on a file:// backend (project-scoped layout, any organisation)."""
    root = file_backend_dir(backend_url)
    if root is None:
        return []
    name = stack_short_name(stack)
    found = []
    for path in sorted((root / LOCKS_DIR).glob(f"*/{project}/{name}/*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(
            StackLock(
                path=path,
                pid=int(doc.get("pid") or 0),
                username=str(doc.get("username") or "?"),
                hostname=str(doc.get("hostname") or "?"),
                timestamp=str(doc.get("timestamp") or "?"),
            )
        )
    return found


def remove(lock: StackLock) -> None:
    lock.path.unlink(missing_ok=True)


def project_name(project_dir: Path) -> str:
    import yaml

    try:
        doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "*"
    return str(doc.get("name") or "*")


def clear_locks(
    backend_url: str | None,
    project_dir: Path,
    stack: str,
    *,
    force_unlock: bool,
    say: Callable[[str], None],
    confirm_unlock: Callable[[str], bool],
) -> str:
    """Before a deploy: remove stale locks (saying so), refuse a live one unless
    `force_unlock` (confirmed); returns the note for the update message ("" if none)."""
    from stackctl.errors import OperationFailed

    if not backend_url:
        return ""
    note = ""
    for lock in read_locks(backend_url, project_name(project_dir), stack):
        if lock.stale():
            say(
                f"found a stale lock of {stack}: held by {lock.holder}, which no longer runs "
                f"(an interrupted update); removing {lock.path}"
            )
            remove(lock)
            continue
        if not force_unlock:
            raise OperationFailed(
                f"{stack} is locked by a running update: {lock.holder} ({lock.path}); wait for "
                "it to finish, or, if that process is gone on another machine, rerun with "
                "--force-unlock"
            )
        if not confirm_unlock(f"Break the lock of {lock.holder} on {stack}?"):
            raise OperationFailed(f"lock of {stack} kept ({lock.holder}); nothing changed")
        say(f"force-unlock: removing the lock of {lock.holder} ({lock.path})")
        remove(lock)
        note += f" force-unlocked: {lock.username}@{lock.hostname} pid {lock.pid}"
    return note

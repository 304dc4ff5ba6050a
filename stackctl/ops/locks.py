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
An `s3://` backend holds the same objects under its bucket (and key prefix): read, and removed,
with the S3 API (stackctl/ops/s3.py), the credentials and endpoint Pulumi uses. Other
object stores (`gs://`, `azblob://`) and Pulumi Cloud are not read here: Pulumi refuses a
second update there itself, after the preview.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Protocol

from stackctl.errors import OperationFailed
from stackctl.ops.s3 import S3Client, S3Error, parse_backend_url
from stackctl.ops.stacks import stack_short_name

LOCKS_PREFIX = ".pulumi/locks/"


class BackendFiles(Protocol):
    """The objects of a DIY backend, by key relative to the backend's root."""

    def keys(self, prefix: str) -> list[str]: ...

    def read(self, key: str) -> bytes: ...

    def remove(self, key: str) -> None: ...

    def where(self, key: str) -> str:
        """The object's location, for messages."""
        ...


@dataclass(frozen=True)
class DirectoryFiles:
    """A `file://` backend: the objects are files under `root`."""

    root: Path

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix() for path in base.rglob("*") if path.is_file()
        )

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def remove(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def where(self, key: str) -> str:
        return str(self.root / key)


@dataclass(frozen=True)
class BucketFiles:
    """An `s3://` backend: the objects of its bucket under its key prefix."""

    url: str

    @cached_property
    def client(self) -> S3Client:
        return S3Client.for_backend(self.url)

    def keys(self, prefix: str) -> list[str]:
        return self.client.list(prefix)

    def read(self, key: str) -> bytes:
        return self.client.get(key)

    def remove(self, key: str) -> None:
        self.client.delete(key)

    def where(self, key: str) -> str:
        loc = parse_backend_url(self.url)
        return f"s3://{loc.bucket}/{loc.prefix}{key}"


def backend_files(backend_url: str) -> BackendFiles | None:
    """The files of a DIY backend stackctl can read (`file://`, `s3://`), else None."""
    if backend_url.startswith("file://"):
        return DirectoryFiles(Path(backend_url.removeprefix("file://").split("?", 1)[0]))
    if backend_url.startswith("s3://"):
        return BucketFiles(backend_url)
    return None


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
    key: str  # relative to the backend's root
    where: str  # the lock's location, for messages
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


def _is_lock_of(key: str, project: str, stack: str) -> bool:
    """`.pulumi/locks/<org>/<project>/<stack>/<uuid>.json` (project-scoped layout)."""
    parts = key.removeprefix(LOCKS_PREFIX).split("/")
    return (
        len(parts) == 4
        and fnmatchcase(parts[1], project)
        and parts[2] == stack
        and parts[3].endswith(".json")
    )


def read_locks(
    backend_url: str, project: str, stack: str, files: BackendFiles | None = None
) -> list[StackLock]:
    """The locks of `stack` on a `file://` or `s3://` backend (any organisation); `project`
    may be `*`. An unreadable backend fails with the backend's own error, never a credential."""
    store = backend_files(backend_url) if files is None else files
    if store is None:
        return []
    name = stack_short_name(stack)
    found = []
    try:
        keys = [k for k in store.keys(LOCKS_PREFIX) if _is_lock_of(k, project, name)]
    except S3Error as exc:
        raise OperationFailed(f"reading the locks of {stack}: {exc}") from None
    for key in keys:
        try:
            doc = json.loads(store.read(key).decode("utf-8"))
        except (OSError, ValueError, S3Error):
            continue  # removed meanwhile (its update ended) or not a lock
        found.append(
            StackLock(
                key=key,
                where=store.where(key),
                pid=int(doc.get("pid") or 0),
                username=str(doc.get("username") or "?"),
                hostname=str(doc.get("hostname") or "?"),
                timestamp=str(doc.get("timestamp") or "?"),
            )
        )
    return found


def project_name(project_dir: Path) -> str:
    import yaml

    try:
        doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "*"
    return str(doc.get("name") or "*")


def force_unlock_line(lock: StackLock) -> str:
    """The line the update message gets for a lock broken on request."""
    return f"force-unlocked: the lock of {lock.holder} ({lock.where})"


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
    `force_unlock` (confirmed); returns the lines for the update message ("" if none), each
    starting with a newline."""
    if not backend_url:
        return ""
    store = backend_files(backend_url)
    if store is None:
        return ""
    note = ""
    for lock in read_locks(backend_url, project_name(project_dir), stack, store):
        if lock.stale():
            say(
                f"found a stale lock of {stack}: held by {lock.holder}, which no longer runs "
                f"(an interrupted update); removing {lock.where}"
            )
            _remove(store, lock, stack)
            continue
        if not force_unlock:
            raise OperationFailed(
                f"{stack} is locked by a running update: {lock.holder} ({lock.where}); wait for "
                "it to finish, or, if that process is gone on another machine, rerun with "
                "--force-unlock"
            )
        if not confirm_unlock(f"Break the lock of {lock.holder} on {stack}?"):
            raise OperationFailed(f"lock of {stack} kept ({lock.holder}); nothing changed")
        say(f"force-unlock: removing the lock of {lock.holder} ({lock.where})")
        _remove(store, lock, stack)
        note += "\n" + force_unlock_line(lock)
    return note


def _remove(store: BackendFiles, lock: StackLock, stack: str) -> None:
    try:
        store.remove(lock.key)
    except S3Error as exc:
        raise OperationFailed(f"removing the lock of {stack}: {exc}") from None

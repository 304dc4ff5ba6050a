"""Decide how CI rolls a stack back after a failed deploy; called by scripts/ci/rollback.sh.

`--latest`: print the newest version in the history on stdin (0 when empty or unreadable); the
deploy script records it before it deploys.

Otherwise: `python -m stackctl history <stack> --json` on stdin (rows: version, kind, result,
commit, ...), `--since V` (the newest history version before the deploy started) and `--head SHA`
(the commit the pipeline deployed). Output: one line `ACTION VERSION COMMIT IMAGES` on stdout
(IMAGES: the target update's `service=image,...` from its history row, `-` when none), the
reason on stderr:

  none     -  -      no update ran after v<since> (the deploy failed in refresh, preview, policy
                     or on credentials: nothing changed, nothing to undo), or it succeeded
  config   V  C      the last good update v<V> ran this same commit: `stackctl rollback --to V`
                     (config-only rollback is sound only at the same program commit)
  redeploy V  C      the last good update v<V> ran another commit: deploy commit C again
                     (`stackctl rollback` refuses across commits; redeploying the last good
                     commit is the code rollback, the git revert follows in review)
  fail     -  -      there is no earlier successful update to return to (first deploy) or it
                     recorded no commit: a human decides

`--unhealthy`: the update after v<since> succeeded but the deployed stack failed its checks
(`stackctl verify`): roll back as if it had failed (`none` only when no update ran at all).

Why not `stackctl rollback --steps 1`: after a failed update the newest successful update IS the
state to return to, and `--steps 1` skips it (it counts back from the newest successful update).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    action: str  # none | config | redeploy | fail
    reason: str
    version: int | None = None
    commit: str = "-"
    images: str = "-"

    def line(self) -> str:
        version = self.version if self.version is not None else "-"
        return f"{self.action} {version} {self.commit} {self.images or '-'}"


def _version(row: dict[str, Any]) -> int:
    try:
        return int(row.get("version") or 0)
    except (TypeError, ValueError):
        return 0


def plan(rows: list[dict[str, Any]], *, since: int, head: str, unhealthy: bool = False) -> Plan:
    updates = [r for r in rows if r.get("kind") == "update"]
    attempted = [r for r in updates if _version(r) > since]
    if not attempted:
        return Plan("none", f"no update ran after v{since}: nothing changed, nothing to roll back")
    if not unhealthy and all(r.get("result") == "succeeded" for r in attempted):
        return Plan("none", "the update itself succeeded; nothing to roll back")
    good = [r for r in updates if _version(r) <= since and r.get("result") == "succeeded"]
    if not good:
        return Plan("fail", f"no successful update at or before v{since} to return to")
    target = max(good, key=_version)
    version = _version(target)
    commit = str(target.get("commit") or "").strip()
    images = str(target.get("images") or "-").strip() or "-"
    if commit in ("", "-"):
        return Plan("fail", f"v{version} recorded no git commit; roll back by hand", version)
    head = head.strip()
    if head and (head.startswith(commit) or commit.startswith(head)):
        return Plan(
            "config", f"v{version} ran this commit: restore its config", version, commit, images
        )
    return Plan(
        "redeploy", f"v{version} ran commit {commit}: deploy it again", version, commit, images
    )


def latest(rows: list[dict[str, Any]]) -> int:
    return max((_version(r) for r in rows), default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latest", action="store_true", help="print the newest version")
    parser.add_argument("--since", type=int, help="newest version before the deploy")
    parser.add_argument("--head", default="", help="the commit the pipeline deployed")
    parser.add_argument(
        "--unhealthy", action="store_true", help="the update succeeded but failed verification"
    )
    args = parser.parse_args(argv)
    if not args.latest and args.since is None:
        parser.error("pass --latest, or --since VERSION --head SHA")
    try:
        rows = json.load(sys.stdin)
    except ValueError:
        rows = None
    if args.latest:
        print(latest([r for r in rows if isinstance(r, dict)]) if isinstance(rows, list) else 0)
        return 0
    if not isinstance(rows, list):
        result = Plan("fail", "could not read the stack history")
    else:
        result = plan(
            [r for r in rows if isinstance(r, dict)],
            since=args.since,
            head=args.head,
            unhealthy=args.unhealthy,
        )
    print(result.reason, file=sys.stderr)
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())

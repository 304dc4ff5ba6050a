"""Before `stackctl deploy` changes a stack: does the change fit what the stack runs now?

Some risks of a change depend on what the stack runs, not only on the config being applied:
the namespace ResourceQuota is sized from the new config while the old pods keep their old
requests (risk `quota`, stackctl/diff/quota.py). Deploy exports the stack's state before every
update (the backup), and asks `stackctl diff <stack> --state <export> --json` (a child
process: ops never imports the render or the diff) what applying the working tree does to that
state. A change carrying one of `REFUSED` is refused before the preview, with the diff's
message, which names the updates that fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.stacks import stack_short_name

#: Risk codes of `stackctl diff` that refuse a deploy.
REFUSED = ("quota",)
EXIT_RISK = 3
CHECK_TIMEOUT_SECONDS = 900

Check = Callable[[Path, str, Mapping[str, Any]], list[str]]


def refusals(project_dir: Path, stack: str, state: Mapping[str, Any]) -> list[str]:
    """The risks of `REFUSED` that applying the working tree's `stack` raises against its
    `state` (a `pulumi stack export` document); none for a stack that holds nothing yet."""
    if not (state.get("deployment") or {}).get("resources"):
        return []
    with tempfile.TemporaryDirectory(prefix="appstack-state-") as tmp:
        path = Path(tmp) / "state.json"
        path.write_text(json.dumps(state))
        try:
            result = subprocess.run(
                [sys.executable, "-m", "stackctl", "diff", stack_short_name(stack),
                 "--state", str(path), "--json"],
                cwd=project_dir, capture_output=True, text=True, check=False,
                timeout=CHECK_TIMEOUT_SECONDS,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"checking {stack} against its state timed out") from None
    if result.returncode not in (0, EXIT_RISK):
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise OperationFailed(
            f"checking {stack} against its state failed (stackctl diff --state, exit "
            f"{result.returncode}): {lines[-1] if lines else 'no output'}"
        )
    changes = json.loads(result.stdout or "[]")
    return [
        risk
        for change in changes
        for risk in change.get("risks") or []
        if risk.split(":", 1)[0] in REFUSED
    ]


def refuse(stack: str, found: list[str]) -> None:
    """Raise the refusal (exit 3, as `stackctl diff` for a risk) when `found` holds any."""
    if found:
        raise UserError(
            f"deploy of {stack} refused before any change: "
            + "; ".join(found)
            + " (the same check as `stackctl diff`, against the stack's deployed state)",
            exit_code=EXIT_RISK,
        )

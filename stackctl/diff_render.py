"""A render as `stackctl diff` compares it: manifests, resource options and Secret fingerprints.

This module is also the worker that renders the *base* revision: `stackctl diff` runs its
source with `python -c` in a temporary worktree of that revision, so the revision's own
`components/` and `stackctl/render.py` render it. It therefore imports nothing of the diff
machinery, only the render API every revision has (`stackctl.render.load_raw_config`,
`render_config`, `RenderResult.objects/options/resources`), and degrades where an older
revision lacks a part (no options: none compared).

Secret values never leave this module. A Secret's keys are compared through HMAC-SHA256
fingerprints keyed by a random per-run key (env `APPSTACK_DIFF_KEY`, shared by the two renders
of one diff), so a fingerprint reveals nothing and means nothing outside that run. Under
`stackctl render` every encrypted config value becomes the same placeholder; here the
placeholder carries the fingerprint of the ciphertext (already public in the stack file), so a
re-encrypted (changed) value shows up as a changed Secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY_ENV = "APPSTACK_DIFF_KEY"
#: Options `stackctl diff` reads (depends_on: how many); aliases and parent are not compared.
OPTION_KEYS = (
    "protect",
    "retain_on_delete",
    "ignore_changes",
    "delete_before_replace",
    "depends_on",
)
#: Exit statuses of the worker: the diff maps them to its own.
EXIT_USER_ERROR = 2
EXIT_FAILURE = 1


def run_key() -> bytes:
    """The per-run fingerprint key: from the environment, else created once per process."""
    value = os.environ.get(KEY_ENV)
    if not value:
        value = secrets.token_hex(32)
        os.environ[KEY_ENV] = value
    return value.encode()


def fingerprint(value: Any) -> str:
    """HMAC of a secret value under the run key: comparable within one run, opaque outside."""
    data = json.dumps(value, sort_keys=True, default=str).encode()
    return hmac.new(run_key(), data, hashlib.sha256).hexdigest()[:16]


def _unwrap(value: Any) -> Any:
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {str(k): _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _secret_fingerprints(resources: list[Any]) -> dict[str, dict[str, str]]:
    """`Secret/<ns>/<name>` -> {`stringData.KEY`: fingerprint} from the unredacted inputs."""
    found: dict[str, dict[str, str]] = {}
    for res in resources:
        if getattr(res, "type", "") != "kubernetes:core/v1:Secret":
            continue
        inputs = _unwrap(res.inputs)
        meta = inputs.get("metadata") or {}
        ref = f"Secret/{meta.get('namespace', '-')}/{meta.get('name', '?')}"
        prints: dict[str, str] = {}
        for field in ("data", "stringData"):
            values = inputs.get(field)
            if isinstance(values, Mapping):
                for key, value in values.items():
                    prints[f"{field}.{key}"] = fingerprint(value)
        found[ref] = prints
    return found


def _mark_ciphertexts(raw: dict[str, Any], project_dir: Path, stack: str) -> None:
    """Give each `secure:` value under appstack:secrets a placeholder with its fingerprint."""
    import yaml

    path = project_dir / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    stored = (data.get("config") or {}).get("appstack:secrets")
    secrets_raw = raw.get("secrets")
    if not isinstance(stored, Mapping) or not isinstance(secrets_raw, dict):
        return
    for app, values in stored.items():
        if not isinstance(values, Mapping) or not isinstance(secrets_raw.get(app), dict):
            continue
        for key, value in values.items():
            if isinstance(value, Mapping) and set(value) == {"secure"}:
                secrets_raw[app][key] = f"<encrypted-in-stack-config:{fingerprint(value)}>"


def _options(result: Any) -> dict[str, dict[str, Any]]:
    options = getattr(result, "options", None) or {}
    return {
        ref: {k: opts[k] for k in OPTION_KEYS if opts.get(k) not in (None, False, [], 0)}
        for ref, opts in options.items()
    }


def snapshot_of(result: Any) -> dict[str, Any]:
    """A RenderResult as the JSON-safe snapshot `stackctl.diff.compare` takes."""
    return {
        "stack": getattr(result, "stack", ""),
        "objects": result.objects,
        "options": _options(result),
        "secrets": _secret_fingerprints(list(getattr(result, "resources", []) or [])),
    }


def snapshot(project_dir: Path, stack: str) -> dict[str, Any]:
    """Load, validate and render `stack` from `project_dir` (raises UserError on bad input)."""
    from components import config as config_model
    from stackctl import render
    from stackctl.errors import UserError

    raw = render.load_raw_config(project_dir, stack)
    _mark_ciphertexts(raw, project_dir, stack)
    try:
        cfg = config_model.load(raw)
    except config_model.ConfigError as exc:
        raise UserError(str(exc)) from None
    return snapshot_of(render.render_config(cfg, stack))


def worker(stack: str, out_file: str) -> int:
    """Render `stack` from the current directory into `out_file` (JSON); never a traceback."""
    sys.path.insert(0, os.getcwd())
    result: dict[str, Any]
    code = 0
    try:
        from stackctl.errors import UserError
    except Exception as exc:
        result, code = {"error": f"this revision has no stackctl: {exc}"}, EXIT_USER_ERROR
    else:
        try:
            result = snapshot(Path.cwd(), stack)
        except UserError as exc:
            result, code = {"error": str(exc)}, EXIT_USER_ERROR
        except Exception as exc:
            result, code = {"error": f"{type(exc).__name__}: {exc}"}, EXIT_FAILURE
    Path(out_file).write_text(json.dumps(result, sort_keys=True, default=str))
    return code


if __name__ == "__main__":
    raise SystemExit(worker(sys.argv[1], sys.argv[2]))

"""A render as `stackctl diff` compares it: manifests, resource options and Secret fingerprints.

This module is also the worker that renders the *base* revision (`worker`): `stackctl diff` runs
it in a child process, in a temporary worktree of that revision, with the working tree's modules
forgotten, so the revision's own `components/` and `stackctl.render` render it. It therefore
imports nothing of the diff machinery, only the render API every revision has
(`stackctl.render.load_raw_config`, `render_config`, `RenderResult.objects/options/resources`),
and degrades where an older revision lacks a part (no options: none compared). What it uses of
the working tree's own code (the mock runtime's secret and URN helpers) is bound at import,
before the fork.

Secret values never leave this module. A Secret's keys are compared through HMAC-SHA256
fingerprints keyed by a random per-run key (env `APPSTACK_DIFF_KEY`, shared by the two renders
of one diff), so a fingerprint reveals nothing and means nothing outside that run. Under
`stackctl render` every encrypted config value becomes the same placeholder; here the
placeholder carries the fingerprint of the ciphertext (already public in the stack file), so a
re-encrypted (changed) value shows up as a changed Secret key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Bound here, before `stackctl diff` forks its base revision's worker: the worker forgets the
# working tree's modules, and an older revision has no `stackctl.mockruntime`.
from stackctl.mockruntime import (
    STACK_TYPE,
    is_secret,
    qualified_type,
    relative_urn,
    split_urn,
    unwrap_secret,
)

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
    if is_secret(value):
        return _unwrap(unwrap_secret(value))
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


def snapshot_of(result: Any, urns: UrnRecorder | None = None) -> dict[str, Any]:
    """A RenderResult as the JSON-safe snapshot `stackctl.diff.compare` takes."""
    resources = list(getattr(result, "resources", []) or [])
    data = {
        "stack": getattr(result, "stack", ""),
        "objects": result.objects,
        "options": _options(result),
        "secrets": _secret_fingerprints(resources),
    }
    if urns is not None:
        data["urns"], data["aliases"] = urns.by_object(resources)
    return data


class UrnRecorder:
    """Records every resource's logical name, type, parent and aliases while a program runs (a
    stack transformation), to compute the part of its URN that the stack and project do not
    fix: the parent chain of types, `$`-joined, then `::name` (`stackctl.mockruntime.urns`; the
    root Stack is not part of the chain). A resource whose URN changes without an alias
    covering the old one is, to the engine, a new resource plus a deleted one."""

    def __init__(self) -> None:
        self.records: dict[int, tuple[Any, str, str, Any, list[Any]]] = {}
        self.root: Any = None

    def transformation(self, args: Any) -> None:
        import pulumi.runtime

        self.root = pulumi.runtime.get_root_resource()
        opts = args.opts
        aliases = list(getattr(opts, "aliases", None) or [])
        self.records[id(args.resource)] = (
            args.resource,
            args.type_,
            args.name,
            opts.parent,
            aliases,
        )

    def _qualified(self, parent: Any, type_: str) -> str | None:
        if parent is None or parent is self.root:
            return qualified_type(None, type_)
        record = self.records.get(id(parent))
        if record is None:
            return None
        parent_type = self._qualified(record[3], record[1])
        return None if parent_type is None else qualified_type(parent_type, type_)

    def urn(self, key: int) -> str | None:
        _, type_, name, parent, _ = self.records[key]
        qualified = self._qualified(parent, type_)
        return None if qualified is None else relative_urn(qualified, name)

    def alias_urns(self, key: int) -> list[str]:
        _, type_, name, parent, aliases = self.records[key]
        out = []
        for alias in aliases:
            if isinstance(alias, str):  # a full URN: urn:pulumi:stack::project::type::name
                with contextlib.suppress(ValueError):
                    out.append(relative_urn(*split_urn(alias)))
                continue
            if getattr(alias, "stack", ...) is not ... or getattr(alias, "project", ...) is not ...:
                continue  # another stack's or project's resource
            a_name = name if alias.name is ... else alias.name
            a_type = type_ if alias.type_ is ... else alias.type_
            a_parent = parent if alias.parent is ... else alias.parent
            qualified = (
                _qualified_under_urn(a_parent, a_type)
                if isinstance(a_parent, str)
                else self._qualified(a_parent, a_type)
            )
            if qualified is not None and a_name is not None:
                out.append(relative_urn(qualified, a_name))
        return out

    def by_object(self, resources: list[Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
        """URN and alias URNs of each rendered Kubernetes object, by `Kind/namespace/name`."""
        keys: dict[tuple[str, str], list[int]] = {}
        for key, (_, type_, name, _, _) in self.records.items():
            keys.setdefault((type_, name), []).append(key)
        urns: dict[str, str] = {}
        aliases: dict[str, list[str]] = {}
        for res in resources:
            if not str(getattr(res, "type", "")).startswith("kubernetes:"):
                continue
            found = keys.get((res.type, res.name), [])
            if len(found) != 1:
                continue  # not recorded, or ambiguous: no URN compared
            inputs = _unwrap(res.inputs)
            meta = inputs.get("metadata") or {}
            ref = f"{inputs.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"
            urn = self.urn(found[0])
            if urn is not None:
                urns[ref] = urn
                aliases[ref] = self.alias_urns(found[0])
        return urns, aliases


def _qualified_under_urn(parent_urn: str, type_: str) -> str | None:
    """`type_` qualified under the parent a full URN names (the root Stack qualifies nothing)."""
    try:
        parent_type, _ = split_urn(parent_urn)
    except ValueError:
        return None
    return qualified_type(None if parent_type == STACK_TYPE else parent_type, type_)


@contextlib.contextmanager
def recording_urns() -> Iterator[UrnRecorder]:
    """Record URNs while `components.stack.deploy` runs (it registers the transformation
    first); without that entry point (an old revision) nothing is recorded."""
    import pulumi

    recorder = UrnRecorder()
    try:
        import components.stack as stack_module
    except ImportError:
        yield recorder
        return
    original = getattr(stack_module, "deploy", None)
    if original is None:
        yield recorder
        return

    def deploy(*args: Any, **kwargs: Any) -> Any:
        pulumi.runtime.register_stack_transformation(recorder.transformation)
        return original(*args, **kwargs)

    stack_module.deploy = deploy
    try:
        yield recorder
    finally:
        stack_module.deploy = original


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
    return snapshot_config(cfg, stack)


def snapshot_config(cfg: Any, stack: str) -> dict[str, Any]:
    """Render a validated StackConfig under mocks, URNs recorded, as a snapshot."""
    from stackctl import render

    with recording_urns() as urns:
        result = render.render_config(cfg, stack)
    return snapshot_of(result, urns)


def preload() -> None:
    """Import what a render imports: the program, and through it the SDKs (`stackctl diff`
    forks its base revision's worker after this; the worker drops the program's modules)."""
    import components.stack  # noqa: F401
    from stackctl import render  # noqa: F401


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

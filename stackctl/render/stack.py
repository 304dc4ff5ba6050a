"""`python -m stackctl render <stack> [--out DIR]`: the program under Pulumi's mock runtime,
written as plain Kubernetes YAML, one object per file.

- Config comes from `Pulumi.yaml` + `Pulumi.<stack>.yaml`, validated by the same model as the
  real engine uses. Encrypted values (`secure:`) are never decrypted here: they render as
  redacted placeholders.
- Output is deterministic: files `<namespace or _cluster>/<kind>-<name>.yaml`, keys in a stable
  order (apiVersion, kind, metadata, then alphabetical), so a diff of two renders is a review.
- Secret `data`/`stringData` values are always redacted. A secret value anywhere else is an
  error: it would otherwise be written in clear.
- The output directory is built in a temporary sibling and swapped in at the end; on any
  failure the previous output stays as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import config as config_model
from components.config import reading
from stackctl.errors import UserError
from stackctl.mockruntime import Capture, CapturedResource, capture, is_secret, unwrap_secret
from stackctl.render.yaml_out import dump

REPO_ROOT = Path(__file__).resolve().parents[2]
REDACTED = "<redacted>"
SECRET_PLACEHOLDER = "<encrypted-in-stack-config>"
TOP_LEVEL_ORDER = ("apiVersion", "kind", "metadata")


@dataclass
class RenderResult:
    """What a render produced."""

    stack: str
    environment: str
    objects: list[dict[str, Any]]
    """Kubernetes manifests, redacted, in a deterministic order."""
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Resource options by `Kind/namespace/name` (protect, retain_on_delete, ...)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The stack's exported outputs, resolved under mocks."""
    resources: list[CapturedResource] = field(default_factory=list)
    """Every registered resource, Kubernetes or not (components, images, passwords)."""

    def kinds(self) -> Counter[str]:
        return Counter(str(o["kind"]) for o in self.objects)


# ---------------------------------------------------------------------------------------------
# Stack files
# ---------------------------------------------------------------------------------------------


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise UserError(f"{path.name}: cannot read: {exc.strerror}") from None


def _secure_to_placeholder(value: Any, path: str) -> Any:
    """Replace `{secure: ciphertext}` leaves with a placeholder (render never decrypts)."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            if path.split(".", 1)[0] not in config_model.SECRET_KEYS:
                raise UserError(
                    f"appstack:{path}: secret values belong under appstack:secrets "
                    "(or appstack:registry.password) "
                    "(e.g. `pulumi config set --secret --path 'secrets.<app>.<KEY>' ...`)"
                )
            return SECRET_PLACEHOLDER
        return {k: _secure_to_placeholder(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_secure_to_placeholder(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def load_raw_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The `appstack:*` values of a stack: Pulumi.yaml defaults, then the stack file."""
    stacks = available_stacks(project_dir)
    if stack not in stacks:
        raise UserError(
            f"unknown stack {stack!r}; available: {', '.join(stacks) or 'none'} "
            f"(Pulumi.<stack>.yaml files in {project_dir})"
        )
    # Read as the engine reads them (components/config/reading.py): a top-level scalar is its
    # text, a mapping or list its JSON; the program decodes both paths with `engine_value`.
    try:
        defaults = reading.project_defaults(_read_text(project_dir / "Pulumi.yaml"), "Pulumi.yaml")
        values = reading.stack_file_config(
            _read_text(project_dir / f"Pulumi.{stack}.yaml"), f"Pulumi.{stack}.yaml"
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    prefix = f"{config_model.PROJECT}:"
    raw: dict[str, Any] = {}
    for key, value in defaults.items():
        raw[key.removeprefix(prefix)] = value
    for key, value in values.items():
        if ":" in key and not key.startswith(prefix):
            continue  # another package's config (kubernetes:context, ...)
        short = key.removeprefix(prefix)
        raw[short] = _secure_to_placeholder(value, short)
    return raw


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------


def _plain(value: Any, where: str, allow_secret: bool) -> Any:
    """Unwrap a mock input value into plain YAML data; integral floats become ints.

    Secrets are redacted where allowed (Secret data) and rejected anywhere else.
    """
    if is_secret(value):
        if not allow_secret:
            raise UserError(
                f"{where}: a secret value would be rendered in clear outside a Secret; "
                "deliver secrets through appstack:secrets (mounted as files)"
            )
        inner = unwrap_secret(value)
        if isinstance(inner, Mapping):
            return {str(k): REDACTED for k in inner}
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}", allow_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]", allow_secret) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_manifest(resource: CapturedResource) -> dict[str, Any]:
    """A captured Kubernetes resource as the manifest `kubectl apply` would take."""
    inputs = resource.inputs
    kind = str(inputs.get("kind", ""))
    where = f"{kind}/{resource.name}"
    manifest: dict[str, Any] = {}
    for key, value in inputs.items():
        manifest[key] = (
            _plain(value, f"{where}.{key}", allow_secret=False)
            if not (kind == "Secret" and key in ("data", "stringData"))
            else _plain(value, f"{where}.{key}", allow_secret=True)
        )
    if kind == "Secret":
        for key in ("data", "stringData"):
            if isinstance(manifest.get(key), dict):
                manifest[key] = {k: REDACTED for k in manifest[key]}
    return manifest


def object_ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj['kind']}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"


def ordered(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Stable key order: apiVersion, kind, metadata first, the rest alphabetical, recursively."""

    def sort_nested(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: sort_nested(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [sort_nested(v) for v in value]
        return value

    head = [k for k in TOP_LEVEL_ORDER if k in obj]
    tail = sorted(k for k in obj if k not in TOP_LEVEL_ORDER)
    return {k: sort_nested(obj[k]) for k in head + tail}


def file_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    folder = meta.get("namespace") or "_cluster"
    return f"{folder}/{str(obj['kind']).lower()}-{meta.get('name', 'unnamed')}.yaml"


def manifests(cap: Capture) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    objects: list[dict[str, Any]] = []
    options: dict[str, dict[str, Any]] = {}
    for res in cap.resources:
        if not res.type.startswith("kubernetes:") or not res.custom:
            continue
        obj = ordered(to_manifest(res))
        objects.append(obj)
        options[object_ref(obj)] = dict(res.options)
    objects.sort(key=file_name)
    duplicates = sorted(n for n, count in Counter(map(file_name, objects)).items() if count > 1)
    if duplicates:
        raise UserError(f"two objects render to the same file: {', '.join(duplicates)}")
    return objects, options


def render_config(
    cfg: config_model.StackConfig,
    stack: str,
    *,
    shortcuts: bool = True,
) -> RenderResult:
    """Run deploy(cfg) under mocks and return the manifests: a function of config and code
    alone (the program reads no earlier state), so it is what the engine applies.
    `shortcuts=False`: under the SDK's mock runtime untouched (the fidelity test's reference)."""
    from components.stack import deploy

    def program() -> Any:
        return deploy(cfg).as_dict()

    cap = capture(program, project=config_model.PROJECT, stack=stack, shortcuts=shortcuts)
    objects, options = manifests(cap)
    return RenderResult(
        stack=stack,
        environment=cfg.environment,
        objects=objects,
        options=options,
        outputs=cap.outputs,
        resources=cap.resources,
    )


def render_stack(stack: str, project_dir: Path = REPO_ROOT) -> RenderResult:
    """Load, validate and render a stack. Raises UserError on unknown stack or bad config."""
    raw = load_raw_config(project_dir, stack)
    try:
        cfg = config_model.load(raw)
    except config_model.ConfigError as exc:
        raise UserError(str(exc)) from None
    return render_config(cfg, stack)


def write(result: RenderResult, out_dir: Path) -> None:
    """Write one file per object into out_dir, atomically replacing what was there."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        folders: set[Path] = set()
        for obj in result.objects:
            path = staging / file_name(obj)
            if path.parent not in folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                folders.add(path.parent)
            path.write_text(dump(obj))
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, retired / "previous")
            os.replace(staging, out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def summary(result: RenderResult, out_dir: Path) -> str:
    kinds = result.kinds()
    lines = [
        f"rendered stack {result.stack} ({result.environment}): "
        f"{len(result.objects)} objects -> {out_dir}"
    ]
    lines += [f"  {count:3d} {kind}" for kind, count in sorted(kinds.items())]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    out_dir = Path(args.out) if args.out else project_dir / "out" / args.stack
    result = render_stack(args.stack, project_dir)
    write(result, out_dir)
    print(summary(result, out_dir))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a stack to plain Kubernetes YAML under Pulumi's mock runtime",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("stack", help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--out", help="output directory (default out/<stack>)")
    parser.add_argument("--project-dir", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m stackctl render <stack>")

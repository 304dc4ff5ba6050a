"""Digests of what `stackctl render` writes, for every stack the tests and the benchmark render:
the shipped stacks (dev, staging, prod), the benchmark's synthetic stacks of 1, 10 and 50
services, and the variant configs the validator tests render (every optional feature, Jenkins,
releases).

`tests/golden/render-digests.json` holds, per case, the sha256 of every written file, of the
whole tree, and of what the render records besides the files (resource options, stack outputs,
the registered resources with their types, names, parents and options). A change that should not
change the output (a refactor, a speed-up) proves it by leaving the file as it is.

When a change is *meant* to change the rendered output, regenerate the file and commit it with
the change (the diff of the JSON names the files that changed):

    .venv/bin/python -m tests.render_digests --update      (or: make render-digests)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components import config as config_model
from stackctl import bench
from stackctl.render import stack as render_mod
from tests.tooling import SHIPPED_STACKS

GOLDEN = Path(__file__).resolve().parent / "golden" / "render-digests.json"
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
UPDATE_COMMAND = ".venv/bin/python -m tests.render_digests --update"


def _variant_configs() -> dict[str, dict[str, Any]]:
    """The configs the validator tests render, by a stable case name."""
    from tests.jenkins.test_jenkins_validators import CONFIGS as JENKINS
    from tests.release.test_release_validators import CONFIGS as RELEASE
    from tests.test_validators import everything_raw

    configs: dict[str, dict[str, Any]] = {"everything": everything_raw()}
    configs.update({f"jenkins-{label}": raw for label, raw in JENKINS.items()})
    configs.update({f"release-{label}": raw for label, raw in RELEASE.items()})
    return configs


def cases() -> dict[str, Callable[[], render_mod.RenderResult]]:
    """Every digested case: name -> a function that renders it."""

    def stack(name: str) -> Callable[[], render_mod.RenderResult]:
        return lambda: render_mod.render_stack(name)

    def config(raw: Mapping[str, Any], stack_name: str) -> Callable[[], render_mod.RenderResult]:
        return lambda: render_mod.render_config(config_model.load(raw), stack_name)

    found: dict[str, Callable[[], render_mod.RenderResult]] = {
        name: stack(name) for name in SHIPPED_STACKS
    }
    for size in bench.SYNTHETIC_SIZES:
        found[f"synthetic-{size}"] = config(bench.synthetic(size), "bench")
    for name, raw in _variant_configs().items():
        # the stack name the validator tests use: the config's label
        found[name] = config(raw, name.split("-", 1)[1] if "-" in name else name)
    return found


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    # an object without a stable repr (e.g. a recorded pulumi.Alias) is digested by its class
    return _sha256(_ADDRESS.sub("", text).encode())


def digest(result: render_mod.RenderResult) -> dict[str, Any]:
    """The digest of one render: the files `render.write` produces, and the recorded extras."""
    with tempfile.TemporaryDirectory(prefix="render-digest-") as tmp:
        out = Path(tmp) / "out"
        render_mod.write(result, out)
        files = {
            str(path.relative_to(out)): _sha256(path.read_bytes())
            for path in sorted(out.rglob("*"))
            if path.is_file()
        }
    tree = _sha256("".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items())).encode())
    resources = [
        {
            "type": r.type,
            "name": r.name,
            "custom": r.custom,
            "parent_type": r.parent_type,
            "options": r.options,
            "inputs": None if r.type.startswith("kubernetes:") else r.inputs,
        }
        # registration order follows the SDK's async scheduling, which varies between runs
        for r in sorted(result.resources, key=lambda r: (r.type, r.name))
    ]
    return {
        "tree": tree,
        "options": _json_sha256(result.options),
        "outputs": _json_sha256(result.outputs),
        "resources": _json_sha256(resources),
        "files": files,
    }


def compute(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    found = cases()
    return {name: digest(found[name]()) for name in (names or list(found))}


def load() -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = json.loads(GOLDEN.read_text())
    return stored


def save(digests: Mapping[str, Any]) -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.render_digests", description=__doc__)
    parser.add_argument("--update", action="store_true", help=f"rewrite {GOLDEN.name}")
    args = parser.parse_args(argv)
    current = compute()
    if args.update:
        save(current)
        print(f"wrote {len(current)} cases to {GOLDEN}")
        return 0
    stored = load()
    changed = sorted(n for n in current.keys() | stored.keys() if current.get(n) != stored.get(n))
    for name in changed:
        print(f"changed: {name}")
    print(f"{len(current) - len(changed)}/{len(current)} cases identical to {GOLDEN.name}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())

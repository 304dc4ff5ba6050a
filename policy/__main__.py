"""CrossGuard entry point: `pulumi preview --policy-pack policy
--policy-pack-config policy/config/<env>.json`.

The Pulumi CLI runs this file with `runpy.run_path(<policy dir>)` (pulumi/policy/__main__.py),
so it is not imported as part of a package and the repo root need not be on sys.path. The
directory is then registered as the package `policy` (from its own `__init__.py`), so
`policy.pack` and its sibling `policy.rules` import the same way here as from the repo
(`from policy.rules import ...`), whatever the directory is called. Under `python -m policy`
from the repo root the package is already imported. See `policy/pack.py` for how resources become
manifests and how the environment is chosen.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _register_package() -> None:
    if "policy" in sys.modules:
        return
    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location(
        "policy", here / "__init__.py", submodule_search_locations=[str(here)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the policy package from {here}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["policy"] = module
    spec.loader.exec_module(module)


if not __package__:
    _register_package()

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import build_policies  # noqa: E402

PolicyPack(
    "appstack",
    policies=build_policies(),
    enforcement_level=EnforcementLevel.ADVISORY,
    description="appstack guardrails for Kubernetes objects (see policy/rules/).",
)

"""The `before` side of a diff from a stack's state: `stackctl diff <stack> --state FILE`.

FILE is a `pulumi stack export` document (`stackctl deploy` writes one before every update).
Each live Kubernetes resource of the state (type `kubernetes:<group/version>:<Kind>`, not a
provider, not pending deletion) contributes its `inputs`: the object as the program last
registered it (the engine's `ignore_changes` applied). Secret values are encrypted there, and
the render redacts them, so both sides carry the render's placeholder: a Secret value is not
compared against a state. Resource options come from the state's `protect` and
`retainOnDelete`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from stackctl.diff.model import Snapshot, ref_of, ref_text
from stackctl.render.stack import REDACTED

#: The signature key Pulumi marks a secret value with in a state document
#: (sdk/go/common/resource/sig: `Secret`).
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return REDACTED
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def snapshot_of_state(document: Mapping[str, Any]) -> Snapshot:
    """The Kubernetes objects (and their options) a state document holds, as the diff sees
    a render."""
    deployment = document.get("deployment") or {}
    objects: list[dict[str, Any]] = []
    options: dict[str, dict[str, Any]] = {}
    for resource in deployment.get("resources") or []:
        rtype = str(resource.get("type", ""))
        if not rtype.startswith("kubernetes:") or rtype.startswith("pulumi:providers:"):
            continue
        if resource.get("delete") or not resource.get("custom", True):
            continue
        inputs = _unwrap(copy.deepcopy(resource.get("inputs") or {}))
        if not isinstance(inputs, dict) or not isinstance(inputs.get("metadata"), Mapping):
            continue
        # The type token names what the SDK sends as apiVersion and kind:
        # kubernetes:<group>/<version>:<Kind>, the core group spelled `core`.
        _, group_version, kind = [*rtype.split(":", 2), "", ""][:3]
        group, _, version = group_version.partition("/")
        inputs.setdefault("kind", kind)
        inputs.setdefault("apiVersion", version if group == "core" else group_version)
        inputs.pop("__inputs", None)
        if inputs.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if isinstance(inputs.get(key), Mapping):
                    inputs[key] = {k: REDACTED for k in inputs[key]}
        objects.append(inputs)
        opts = {k: True for k in ("protect", "retainOnDelete") if resource.get(k)}
        if opts:
            options[ref_text(ref_of(inputs))] = {
                "protect" if k == "protect" else "retain_on_delete": v for k, v in opts.items()
            }
    return Snapshot(objects=objects, options=options)

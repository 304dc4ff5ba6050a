"""`stackctl diff --state`: the before side read from a `pulumi stack export` document (the
inputs of its Kubernetes resources), for `stackctl deploy`'s check before an update."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from components import config as config_model
from stackctl.diff.cmd import diff_against_state
from stackctl.diff.compare import Snapshot, compare
from stackctl.diff.state import SECRET_SIG, snapshot_of_state
from stackctl.render.stack import REPO_ROOT, load_raw_config

PROD = load_raw_config(REPO_ROOT, "prod")


def state_of(snapshot: Snapshot, protect: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stack export whose Kubernetes resources hold `snapshot`'s objects as their inputs, with
    Secret values encrypted as Pulumi stores them, a provider and a resource pending deletion."""
    resources: list[dict[str, Any]] = [
        {"urn": "urn:pulumi:prod::appstack::pulumi:providers:kubernetes::default",
         "type": "pulumi:providers:kubernetes", "custom": True, "inputs": {"version": "4"}},
    ]  # fmt: skip
    for obj in snapshot.objects:
        inputs = copy.deepcopy(obj)
        if obj["kind"] == "Secret":
            for key in ("stringData", "data"):
                if key in inputs:
                    inputs[key] = {
                        k: {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:x"}
                        for k in inputs[key]
                    }
        group_version = (
            obj["apiVersion"] if "/" in obj["apiVersion"] else f"core/{obj['apiVersion']}"
        )
        resources.append(
            {"urn": f"urn:x::{obj['metadata']['name']}", "custom": True, "inputs": inputs,
             "type": f"kubernetes:{group_version}:{obj['kind']}",
             "protect": obj["metadata"]["name"] in protect}
        )  # fmt: skip
    gone = copy.deepcopy(snapshot.objects[0])
    gone["metadata"] = {**gone["metadata"], "name": "deleted-already"}
    resources.append({"urn": "urn:x::gone", "custom": True, "delete": True, "inputs": gone,
                      "type": f"kubernetes:core/v1:{gone['kind']}"})  # fmt: skip
    return {"version": 3, "deployment": {"resources": resources}}


def prod(**web: Any) -> Snapshot:
    raw = copy.deepcopy(PROD)
    raw["apps"]["web"] = config_model.deep_merge(raw["apps"]["web"], web)
    return Snapshot.of_config(config_model.load(raw), "prod")


def test_a_state_of_the_same_render_changes_nothing() -> None:
    render = prod()
    assert compare(snapshot_of_state(state_of(render)), render) == []


def test_protect_comes_from_the_state() -> None:
    render = prod()
    claim = next(o for o in render.objects if o["kind"] == "PersistentVolumeClaim")
    before = snapshot_of_state(state_of(render, protect=(claim["metadata"]["name"],)))
    ref = f"PersistentVolumeClaim/{claim['metadata']['namespace']}/{claim['metadata']['name']}"
    assert before.options[ref] == {"protect": True}


def test_lowering_requests_against_the_deployed_state_raises_the_quota_risk(
    tmp_path: Path,
) -> None:
    """The working tree (a copy of the project's stack files) lowers web's requests.cpu from
    what the state holds: the rollout's peak is above the new quota."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "Pulumi.yaml", project)
    doc = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["appstack:apps"]["web"]["resources"] = {"requests": {"cpu": "20m"}}
    (project / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    state = tmp_path / "state.json"
    state.write_text(json.dumps(state_of(prod())))
    changes = diff_against_state("prod", state, project)
    risks = [r for c in changes for r in c.risks if r.startswith("quota:")]
    assert len(risks) == 1 and "appstack:apps.web.resources.requests.cpu" in risks[0], risks


def test_kind_and_api_version_come_from_the_type_token_when_the_inputs_lack_them() -> None:
    resources = [
        {"type": f"kubernetes:{token}", "custom": True,
         "inputs": {"metadata": {"name": name, "namespace": "shop"}}}
        for token, name in (("core/v1:ConfigMap", "a"), ("apps/v1:Deployment", "web"))
    ]  # fmt: skip
    objects = snapshot_of_state({"deployment": {"resources": resources}}).objects
    assert [(o["apiVersion"], o["kind"]) for o in objects] == [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
    ]

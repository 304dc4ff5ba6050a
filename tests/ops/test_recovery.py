"""Issue 29, scenario 2: pending operations of an interrupted update, resolved as Pulumi
documents (refresh; a pending create imported when it reached the cluster, cleared when not).

The state is written in the shape `pulumi stack export` prints: `deployment.pending_operations`
is a list of `apitype.OperationV2` (`{"resource": ResourceV3, "type": OperationType}`, types
"creating", "updating", "deleting", "reading"; pulumi sdk/go/common/apitype/core.go). The
refresh flags are pulumi's (cmd/pulumi/operations/refresh.go: `--import-pending-creates` a
StringArray of URN, ID pairs, applied before `--clear-pending-creates`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import OperationFailed
from stackctl.ops.deploy import run_deploy
from stackctl.ops.recovery import (
    adopt_pending_creates,
    pending_operations,
    plan_resolution,
    refresh_arguments,
)
from tests.ops.fake_backend import FakeBackend

PREFIX = "urn:pulumi:dev::appstack::appstack:index:Stack$appstack:app:AppService"


def k8s_op(kind: str, api: str, name: str, namespace: str | None, op: str) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    group = api.split("/")[0] if "/" in api else "core"
    version = api.split("/")[-1]
    rtype = f"kubernetes:{group}/{version}:{kind}"
    return {
        "resource": {
            "urn": f"{PREFIX}${rtype}::{name}",
            "custom": True,
            "type": rtype,
            "inputs": {"apiVersion": api, "kind": kind, "metadata": meta},
            "provider": "urn:pulumi:dev::appstack::pulumi:providers:kubernetes::default::1",
        },
        "type": op,
    }


STATE = {
    "version": 3,
    "deployment": {
        "manifest": {"time": "2026-12-07T06:00:00Z", "version": "v3.274.0"},
        "resources": [{"urn": "urn:pulumi:dev::appstack::pulumi:pulumi:Stack::appstack-dev"}],
        "pending_operations": [
            k8s_op("Deployment", "apps/v1", "web", "appstack-dev", "creating"),
            k8s_op("ConfigMap", "v1", "web-config-5f2c", "appstack-dev", "creating"),
            k8s_op("Namespace", "v1", "appstack-dev", None, "creating"),
            k8s_op("Service", "v1", "web", "appstack-dev", "updating"),
        ],
    },
}
IN_CLUSTER = {("Deployment", "web"), ("Namespace", "appstack-dev")}


def test_pending_operations_are_read_from_the_export() -> None:
    found = pending_operations(STATE)
    assert [(p.operation, p.kind, p.provider_id) for p in found] == [
        ("creating", "Deployment", "appstack-dev/web"),
        ("creating", "ConfigMap", "appstack-dev/web-config-5f2c"),
        ("creating", "Namespace", "appstack-dev"),
        ("updating", "Service", "appstack-dev/web"),
    ]


def test_creates_that_reached_the_cluster_are_imported_the_others_cleared() -> None:
    pending = pending_operations(STATE)
    plan = plan_resolution(pending, lambda op: (op.kind, op.name) in IN_CLUSTER)
    assert plan.imports == [
        (pending[0].urn, "appstack-dev/web"),
        (pending[2].urn, "appstack-dev"),
    ]
    assert plan.cleared == [pending[1].urn]
    assert plan.refreshed == [pending[3].urn]
    # the adopted creates are resources already: the refresh clears nothing more
    args = refresh_arguments("dev", plan)
    assert args == ["refresh", "--yes", "--skip-preview", "--stack", "dev"]


def test_an_adopted_create_is_a_resource_with_its_provider_id_after_the_others() -> None:
    """The shape `pulumi stack import` reads (apitype.ResourceV3: `id`, `inputs`, `outputs`),
    in an order its integrity check accepts (a resource after its provider and parent)."""
    pending = pending_operations(STATE)
    plan = plan_resolution(pending, lambda op: (op.kind, op.name) in IN_CLUSTER)
    adopted = adopt_pending_creates(STATE, plan)["deployment"]
    urns = [r["urn"] for r in adopted["resources"]]
    assert urns == [STATE["deployment"]["resources"][0]["urn"], pending[0].urn, pending[2].urn]
    web = adopted["resources"][1]
    assert web["id"] == "appstack-dev/web" and web["outputs"] == {}
    assert web["inputs"]["metadata"] == {"name": "web", "namespace": "appstack-dev"}
    assert adopted["resources"][2]["id"] == "appstack-dev"
    # no pending create left (adopted or cleared); the interrupted update stays for the refresh
    assert [(op["type"], op["resource"]["urn"]) for op in adopted["pending_operations"]] == [
        ("updating", pending[3].urn)
    ]
    assert STATE["deployment"]["pending_operations"][0]["resource"].get("id") is None


def test_an_adopted_replacement_takes_the_place_of_its_urn() -> None:
    old = {**k8s_op("Deployment", "apps/v1", "web", "appstack-dev", "creating")["resource"],
           "id": "appstack-dev/web", "outputs": {"spec": {"replicas": 1}}}  # fmt: skip
    stack = STATE["deployment"]["resources"][0]
    state = {"deployment": {
        "resources": [stack, old],
        "pending_operations": [k8s_op("Deployment", "apps/v1", "web", "appstack-dev", "creating")],
    }}  # fmt: skip
    plan = plan_resolution(pending_operations(state), lambda op: True)
    resources = adopt_pending_creates(state, plan)["deployment"]["resources"]
    assert [r["urn"] for r in resources] == [stack["urn"], old["urn"]]
    assert resources[1]["outputs"] == {}


def test_without_an_adoption_the_refresh_clears_the_pending_creates() -> None:
    pending = pending_operations(STATE)
    plan = plan_resolution(pending, lambda op: False)
    assert plan.imports == [] and len(plan.cleared) == 3
    assert refresh_arguments("dev", plan)[5:] == ["--clear-pending-creates"]


def test_a_pending_create_of_a_provider_never_reached_a_cluster() -> None:
    state = {"deployment": {"pending_operations": [{"resource": {
        "urn": "urn:pulumi:dev::appstack::pulumi:providers:kubernetes::default",
        "type": "pulumi:providers:kubernetes", "inputs": {}}, "type": "creating"}]}}  # fmt: skip
    plan = plan_resolution(pending_operations(state), lambda op: True)
    assert plan.imports == [] and len(plan.cleared) == 1


class Reader:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str]] = []

    def exists(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.asked.append((api_version, kind, namespace, name))
        return (kind, name) in IN_CLUSTER


class FinishedWatch(contextlib.nullcontext[None]):
    """A watch that never trips, in a cluster where every rollout has finished."""

    def settle(self, **_: Any) -> dict[str, str]:
        return {}


class Rollouts:
    def __init__(self) -> None:
        self.reader = Reader()
        self.namespaces = ["appstack-dev"]

    def watch(self, on_deadline: Any) -> Any:
        return FinishedWatch()

    def problems(self) -> list[Any]:
        return []


def test_the_next_deploy_says_what_it_found_and_resolves_it_before_the_preview(
    project: Path, recorder: Any
) -> None:
    backend = FakeBackend()
    backend.state = STATE
    rec = recorder()
    run_deploy(backend, project_dir=project, console=rec.console, assume_yes=True,
               rollouts=Rollouts())  # type: ignore[arg-type]  # fmt: skip
    assert backend.calls == [
        "history", "export_state", "import_state", "run_refresh", "preview", "up"
    ]  # fmt: skip
    assert "found 4 pending operation(s) of an interrupted update of dev:" in rec.text
    assert "Deployment appstack-dev/web (interrupted while creating;" in rec.text
    assert "import appstack-dev/web: it reached the cluster" in rec.text
    assert backend.imported[0]["deployment"]["resources"][1]["id"] == "appstack-dev/web"
    assert backend.refresh_args[0] == ["refresh", "--yes", "--skip-preview", "--stack", "dev"]
    # the state with its pending operations was backed up first
    assert list((project / ".pulumi-backups").glob("dev-v*-*.json"))


def test_without_a_kubeconfig_pending_operations_stop_the_deploy(
    project: Path, recorder: Any
) -> None:
    backend = FakeBackend()
    backend.state = STATE
    with pytest.raises(OperationFailed, match="no kubeconfig"):
        run_deploy(backend, project_dir=project, console=recorder().console, assume_yes=True)
    assert "up" not in backend.calls

"""Everyday changes, proven: each scenario renders before and after and checks what the change
does to the cluster, as `stackctl diff` reports it. The expectations come from the renders
(which pods a Service selects, which objects exist) and from the provider's and Kubernetes'
rules, never from the constants the components use.

Suite-wide rules run over every scenario: a change that promises zero downtime replaces no
workload and no Service; JENKINS_HOME and namespaces are never replaced or deleted; no scenario
sets a field another controller owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from stackctl.diff import output as diff_output
from stackctl.diff.compare import RISKS, Change, Snapshot, compare, ref_of
from stackctl.diff.rules import WORKLOAD_KINDS
from tests.diff.scenarios import BY_NAME, SCENARIOS, Scenario, snapshot


def by_ref(changes: list[Change]) -> dict[tuple[str, str], Change]:
    return {(c.kind, c.name): c for c in changes}


def objects(snap: Snapshot, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in snap.objects if o["kind"] == kind}


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selected(snap: Snapshot, service: str) -> set[str]:
    """Workloads whose pods the rendered Service `service` selects."""
    selector = objects(snap, "Service")[service]["spec"]["selector"]
    return {
        ref_of(w)[2]
        for w in snap.objects
        if w["kind"] in WORKLOAD_KINDS
        and all(pod_labels(w).get(k) == v for k, v in selector.items())
    }


def scenario(name: str) -> tuple[Scenario, list[Change]]:
    s = BY_NAME[name]
    return s, s.changes()


# ---------------------------------------------------------------------------------------------
# Suite-wide rules
# ---------------------------------------------------------------------------------------------


def _param(s: Scenario) -> Any:
    return pytest.param(s, id=s.name)


ZERO_DOWNTIME = [_param(s) for s in SCENARIOS if s.zero_downtime]
ALL = [_param(s) for s in SCENARIOS]


@pytest.mark.parametrize("s", ZERO_DOWNTIME)
def test_zero_downtime_change_replaces_no_workload_or_service(s: Scenario) -> None:
    replaced = [
        f"{c.kind}/{c.name}"
        for c in s.changes()
        if c.action == "replace" and (c.kind in WORKLOAD_KINDS or c.kind == "Service")
    ]
    assert replaced == []


@pytest.mark.parametrize("s", ALL)
def test_jenkins_home_and_namespaces_are_never_replaced_or_deleted(s: Scenario) -> None:
    hit = [
        f"{c.action} {c.kind}/{c.name}"
        for c in s.changes()
        if c.action in ("replace", "delete")
        and (
            c.kind == "Namespace"
            or (c.kind == "PersistentVolumeClaim" and c.name == "jenkins-home")
        )
    ]
    assert hit == []


@pytest.mark.parametrize("s", ALL)
def test_no_scenario_sets_a_field_another_controller_owns(s: Scenario) -> None:
    # The change itself, and the after-render applied from scratch (every object a create).
    found = [r for c in s.changes() for r in c.risks if r.startswith("controller-owned")]
    found += [
        r
        for c in compare(Snapshot(objects=[]), s.after_snapshot())
        for r in c.risks
        if r.startswith("controller-owned")
    ]
    assert found == []


@pytest.mark.parametrize("s", ALL)
def test_every_object_kept_by_a_scenario_keeps_its_pulumi_urn(s: Scenario) -> None:
    before, after = snapshot(s.before), s.after_snapshot()
    kept = set(before.urns) & set(after.urns)
    assert kept, "no URNs recorded"
    moved = {
        ref: (before.urns[ref], after.urns[ref])
        for ref in kept
        if before.urns[ref] != after.urns[ref] and before.urns[ref] not in after.aliases[ref]
    }
    assert moved == {}


@pytest.mark.parametrize("s", [p for p in ZERO_DOWNTIME if p.values[0].name != "secret rotation"])
def test_everyday_change_raises_no_risk_flag(s: Scenario) -> None:
    assert [f"{c.kind}/{c.name}: {r}" for c in s.changes() for r in c.risks] == []


@pytest.mark.parametrize("s", ALL)
def test_json_output_lists_every_change_with_the_documented_keys(s: Scenario) -> None:
    import json

    changes = s.changes()
    assert changes, f"{s.name}: the scenario changes nothing"
    data = json.loads(diff_output.as_json(changes))
    assert len(data) == len(changes)
    for item in data:
        assert set(item) >= {
            "kind", "namespace", "name", "action", "fields", "reasons", "restarts_pods", "risks"
        }  # fmt: skip
        assert item["action"] in ("create", "update", "replace", "delete")
        assert all(r.split(":", 1)[0] in RISKS for r in item["risks"])
        if item["action"] in ("update", "replace"):
            assert item["fields"], item


# ---------------------------------------------------------------------------------------------
# Each scenario
# ---------------------------------------------------------------------------------------------


def test_image_bump_rolls_the_deployment_through_a_new_config_map() -> None:
    s, changes = scenario("image bump")
    before, after = snapshot(s.before), s.after_snapshot()
    deployment = by_ref(changes)[("Deployment", "web")]
    assert deployment.action == "update"
    assert deployment.restarts_pods
    assert "spec.template.spec.containers[0].image" in deployment.fields
    old_maps, new_maps = set(objects(before, "ConfigMap")), set(objects(after, "ConfigMap"))
    assert {c.name for c in changes if c.kind == "ConfigMap" and c.action == "create"} == (
        new_maps - old_maps
    )
    assert not [c for c in changes if c.action == "replace"]


def test_env_change_creates_a_new_config_map_updates_the_workload_and_removes_the_old() -> None:
    s, changes = scenario("env change")
    before, after = snapshot(s.before), s.after_snapshot()
    created = {c.name for c in changes if c.kind == "ConfigMap" and c.action == "create"}
    deleted = {c.name for c in changes if c.kind == "ConfigMap" and c.action == "delete"}
    assert len(created) == 1 and len(deleted) == 1
    env_from = objects(after, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    assert {ref["configMapRef"]["name"] for ref in env_from["envFrom"]} == created
    old_env = objects(before, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    assert {ref["configMapRef"]["name"] for ref in old_env["envFrom"]} == deleted
    deployment = by_ref(changes)[("Deployment", "web")]
    assert deployment.action == "update" and deployment.restarts_pods


def test_replica_change_scales_without_restarting_pods() -> None:
    _, changes = scenario("replica change")
    deployment = by_ref(changes)[("Deployment", "web")]
    assert deployment.action == "update"
    assert deployment.fields == ["spec.replicas"]
    assert not deployment.restarts_pods


def test_autoscaling_on_creates_the_hpa_and_leaves_replicas_to_it() -> None:
    s, changes = scenario("autoscaling on")
    after = s.after_snapshot()
    assert by_ref(changes)[("HorizontalPodAutoscaler", "web")].action == "create"
    assert "replicas" not in objects(after, "Deployment")["web"]["spec"]
    deployment = by_ref(changes).get(("Deployment", "web"))
    assert deployment is None or not deployment.restarts_pods


def test_autoscaling_off_deletes_the_hpa_and_sets_replicas() -> None:
    _, changes = scenario("autoscaling off")
    assert by_ref(changes)[("HorizontalPodAutoscaler", "web")].action == "delete"
    deployment = by_ref(changes)[("Deployment", "web")]
    assert "spec.replicas" in deployment.fields
    assert not deployment.restarts_pods


@pytest.mark.parametrize("name", ["blue-green flip", "blue-green flip, autoscaled"])
def test_blue_green_flip_moves_traffic_without_restarting_a_pod(name: str) -> None:
    s, changes = scenario(name)
    before, after = snapshot(s.before), s.after_snapshot()
    # Traffic: the Service now selects exactly the pods the preview Service selected before.
    assert selected(after, "web") == selected(before, "web-preview") != selected(before, "web")
    assert by_ref(changes)[("Service", "web")].changes_traffic
    assert not [c for c in changes if c.restarts_pods]
    for c in changes:
        if c.kind in WORKLOAD_KINDS:  # replica fields at most, never template or selector
            assert not [f for f in c.fields if f.startswith(("spec.template", "spec.selector"))]
        elif c.kind in ("Service", "PodDisruptionBudget"):
            assert all("selector" in f for f in c.fields), c
        else:
            assert c.kind == "HorizontalPodAutoscaler" and c.fields == [
                "spec.scaleTargetRef.name"
            ], c


@pytest.mark.parametrize("name", ["canary step", "canary step, ingress"])
def test_canary_step_shifts_traffic_to_the_canary_without_restarts(name: str) -> None:
    s, changes = scenario(name)
    before, after = snapshot(s.before), s.after_snapshot()
    assert not [c for c in changes if c.restarts_pods or c.action in ("replace", "delete")]
    canary_before = objects(before, "Deployment")["web-canary"]["spec"]["replicas"]
    canary_after = objects(after, "Deployment")["web-canary"]["spec"]["replicas"]
    assert canary_after >= canary_before
    ingresses = objects(after, "Ingress")
    if "web-canary" in ingresses:
        assert by_ref(changes)[("Ingress", "web-canary")].changes_traffic
    else:
        assert canary_after > canary_before  # the replica ratio is the traffic share


def test_switching_rolling_to_canary_replaces_the_deployment_and_says_why() -> None:
    s, changes = scenario("strategy rolling -> canary")
    deployment = by_ref(changes)[("Deployment", "web")]
    old_selector = objects(snapshot(s.before), "Deployment")["web"]["spec"]["selector"]
    new_selector = objects(s.after_snapshot(), "Deployment")["web"]["spec"]["selector"]
    assert old_selector != new_selector  # the render's own reason: selectors are immutable
    assert deployment.action == "replace"
    assert deployment.fields[0].startswith("spec.selector")
    assert any("forceNew spec.selector" in r for r in deployment.reasons)
    assert {"selector", "downtime"} <= deployment.risk_codes


def test_switching_canary_to_blue_green_swaps_the_workloads() -> None:
    s, changes = scenario("strategy canary -> blueGreen")
    actions = {(c.kind, c.name): c.action for c in changes}
    assert actions[("Deployment", "web")] == "delete"
    for name in objects(s.after_snapshot(), "Deployment"):
        assert actions[("Deployment", name)] == "create"
    assert by_ref(changes)[("Service", "web")].changes_traffic


def selects_in(snap: Snapshot, selector: Mapping[str, str]) -> set[str]:
    return {
        ref_of(w)[2]
        for w in snap.objects
        if w["kind"] in WORKLOAD_KINDS
        and all(pod_labels(w).get(k) == v for k, v in selector.items())
    }


@pytest.mark.parametrize("name", ["strategy rolling -> blueGreen", "strategy blueGreen -> canary"])
def test_the_safe_switch_never_leaves_the_service_without_running_pods(name: str) -> None:
    s, changes = scenario(name)
    before, after = snapshot(s.before), s.after_snapshot()
    assert not [c for c in changes if c.action == "replace"]
    selector = objects(after, "Service")["web"]["spec"]["selector"]
    # Pulumi deletes removed objects last, so the old workloads' pods still run while the
    # Service switches: either its new selector still matches them, or it waits (depends_on)
    # for the workloads this change creates, which the provider awaits until they are ready.
    still_running = selects_in(before, selector)
    created = {c.name for c in changes if c.kind == "Deployment" and c.action == "create"}
    waits = after.options["Service/shop/web"].get("depends_on", 0) >= 1
    assert still_running or (waits and selects_in(after, selector) & created)


def test_switching_to_argo_rollouts_replaces_deployments_by_a_rollout() -> None:
    _, changes = scenario("strategy blueGreen -> Argo Rollouts")
    actions = {(c.kind, c.name): c.action for c in changes}
    assert actions[("Rollout", "web")] == "create"
    assert actions[("Deployment", "web-blue")] == actions[("Deployment", "web-green")] == "delete"


def test_monitoring_on_only_creates_monitoring_objects() -> None:
    _, changes = scenario("monitoring on")
    assert {c.action for c in changes} == {"create"}
    assert {c.kind for c in changes} <= {"ServiceMonitor", "PrometheusRule", "Service", "ConfigMap"}
    # the ConfigMaps are the Grafana dashboards: one per app that gets a ServiceMonitor, and the
    # stack's (components/monitoring/component.py)
    monitored = {c.name for c in changes if c.kind == "ServiceMonitor"}
    dashboards = {c.name for c in changes if c.kind == "ConfigMap"}
    assert dashboards == {f"{app}-dashboard" for app in monitored} | {"appstack-overview"}


def test_jenkins_on_only_creates_and_leaves_the_apps_alone() -> None:
    s, changes = scenario("jenkins on")
    assert {c.action for c in changes} == {"create"}
    apps_namespace = s.before["namespace"]
    assert apps_namespace not in {c.namespace for c in changes}
    assert ("Namespace", apps_namespace) not in by_ref(changes)
    assert ("PersistentVolumeClaim", "jenkins-home") in by_ref(changes)
    assert s.after_snapshot().options["PersistentVolumeClaim/jenkins/jenkins-home"]["protect"]


def test_jenkins_plugin_bump_restarts_the_controller_and_leaves_jenkins_home_alone() -> None:
    _, changes = scenario("jenkins plugin bump")
    controller = by_ref(changes)[("StatefulSet", "jenkins")]
    assert controller.action == "update" and controller.restarts_pods
    assert ("PersistentVolumeClaim", "jenkins-home") not in by_ref(changes)
    assert {c.action for c in changes if c.kind == "ConfigMap"} == {"create", "delete"}


def test_growing_jenkins_home_expands_the_claim_in_place() -> None:
    _, changes = scenario("jenkins home grows")
    claim = by_ref(changes)[("PersistentVolumeClaim", "jenkins-home")]
    assert claim.action == "update"
    assert claim.fields == ["spec.resources.requests.storage"]
    assert not claim.risks
    assert not [c for c in changes if c.restarts_pods]


def test_secret_rotation_is_flagged_without_its_value() -> None:
    s, changes = scenario("secret rotation")
    secrets = [c for c in changes if c.kind == "Secret"]
    assert secrets, "a new secret value changes no Secret"
    for secret in secrets:
        if secret.action in ("update", "replace"):
            assert "secret-value" in secret.risk_codes
            assert all(f.startswith(("data.", "stringData.")) for f in secret.fields)
            # provider default (enableSecretMutable false): new contents replace the Secret
            assert secret.action == "replace"
    values = [s.before["secrets"]["web"]["API_TOKEN"], s.after["secrets"]["web"]["API_TOKEN"]]
    for text in (
        diff_output.as_json(changes),
        diff_output.as_table(changes, "t"),
        diff_output.as_markdown(changes, "t"),
    ):
        for value in values:
            assert value not in text

"""argoRollouts: a Rollout replaces the Deployments, an AnalysisTemplate gates the release on
the error ratio of the new pods; nothing argoproj.io is rendered unless asked for."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Render, base_raw, find, one
from tests.release.helpers import argo, blue_green, canary

ARGO = "argoproj.io/v1alpha1"


def argo_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["apiVersion"].startswith("argoproj.io")]


@pytest.mark.parametrize(
    "raw",
    [base_raw("prod"), blue_green("prod"), canary("prod")],
    ids=["rolling", "blueGreen", "canary"],
)
def test_argo_rollouts_is_off_by_default(render: Render, raw: dict[str, Any]) -> None:
    assert argo_objects(render(raw).objects) == []


@pytest.mark.parametrize("strategy", ["blueGreen", "canary"])
def test_a_rollout_and_an_analysis_template_replace_the_deployments(
    render: Render, strategy: str
) -> None:
    objects = render(argo(strategy)).objects
    assert find(objects, "Deployment") == []
    assert sorted((o["kind"], o["metadata"]["name"]) for o in argo_objects(objects)) == [
        ("AnalysisTemplate", "web-error-ratio"),
        ("Rollout", "web"),
    ]
    assert {o["apiVersion"] for o in argo_objects(objects)} == {ARGO}


def test_every_analysis_arg_the_template_declares_is_passed_by_every_rollout_step(
    render: Render,
) -> None:
    for strategy in ("canary", "blueGreen"):
        objects = render(argo(strategy)).objects
        declared = {a["name"] for a in one(objects, "AnalysisTemplate")["spec"]["args"]}
        st = one(objects, "Rollout", "web")["spec"]["strategy"]
        runs = [
            step["analysis"] for step in st.get("canary", {}).get("steps", []) if "analysis" in step
        ] + [v for k, v in st.get("blueGreen", {}).items() if k.endswith("PromotionAnalysis")]
        assert runs
        for run in runs:
            assert {a["name"] for a in run["args"]} == declared
            # every arg value is resolved by the controller from the newest ReplicaSet
            assert all(a["valueFrom"] == {"podTemplateHashValue": "Latest"} for a in run["args"])


@pytest.mark.parametrize(("environment", "threshold"), [("prod", "0.02"), ("dev", "0.2")])
def test_the_success_condition_uses_the_configured_error_ratio(
    render: Render, environment: str, threshold: str
) -> None:
    objects = render(argo("canary", environment)).objects
    metric = one(objects, "AnalysisTemplate")["spec"]["metrics"][0]
    assert metric["successCondition"] == f"result[0] <= {threshold}"
    raw = argo("canary")
    raw["monitoring"]["alerts"] = {"errorRatio": 0.07}
    metric = one(render(raw).objects, "AnalysisTemplate")["spec"]["metrics"][0]
    assert metric["successCondition"] == "result[0] <= 0.07"


LATEST_PODS = {
    "templates": [{"templateName": "web-error-ratio"}],
    "args": [{"name": "pod-template-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
}


def test_blue_green_rollout_analyses_the_preview_pods_waits_for_promotion_then_analyses(
    render: Render,
) -> None:
    strategy = one(render(argo("blueGreen")).objects, "Rollout", "web")["spec"]["strategy"]
    assert strategy == {
        "blueGreen": {
            "activeService": "web",
            "previewService": "web-preview",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 3600,
            "prePromotionAnalysis": LATEST_PODS,
            "postPromotionAnalysis": LATEST_PODS,
        }
    }


def test_blue_green_rollout_services_exist(render: Render) -> None:
    objects = render(argo("blueGreen")).objects
    assert {s["metadata"]["name"] for s in find(objects, "Service")} >= {"web", "web-preview"}


def test_canary_rollout_walks_the_configured_steps_with_pause_and_analysis(
    render: Render,
) -> None:
    raw = argo("canary", release={"steps": [20, 100], "stepPauseSeconds": 60})
    canary_ = one(render(raw).objects, "Rollout", "web")["spec"]["strategy"]["canary"]
    analysis = {"analysis": LATEST_PODS}
    assert canary_["steps"] == [
        {"setWeight": 20},
        {"pause": {"duration": "60s"}},
        analysis,
        {"setWeight": 100},
        {"pause": {"duration": "60s"}},
        analysis,
    ]
    assert canary_["maxUnavailable"] == 0
    assert "trafficRouting" not in canary_


def test_canary_rollout_with_ingress_uses_nginx_traffic_routing(render: Render) -> None:
    raw = argo("canary", ingress={"enabled": True, "host": "shop.example.com"})
    objects = render(raw).objects
    canary_ = one(objects, "Rollout", "web")["spec"]["strategy"]["canary"]
    assert canary_["trafficRouting"] == {"nginx": {"stableIngress": "web"}}
    assert (canary_["stableService"], canary_["canaryService"]) == ("web", "web-canary")
    assert one(objects, "Service", "web-canary")["spec"]["type"] == "ClusterIP"
    assert one(objects, "Ingress", "web")["metadata"].get("annotations") is None


def test_the_hpa_and_pdb_target_the_rollout(render: Render) -> None:
    result = render(argo("canary"))
    rollout = one(result.objects, "Rollout", "web")
    hpa = one(result.objects, "HorizontalPodAutoscaler", "web")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": ARGO, "kind": "Rollout", "name": "web"}
    assert "replicas" not in rollout["spec"]
    assert result.options["Rollout/shop/web"]["ignore_changes"] == ["spec.replicas"]
    pdb = one(result.objects, "PodDisruptionBudget", "web")["spec"]["selector"]["matchLabels"]
    assert pdb == rollout["spec"]["selector"]["matchLabels"]


def test_without_an_hpa_the_rollout_owns_its_replicas(render: Render) -> None:
    raw = argo("blueGreen", "dev", replicas=2)
    assert one(render(raw).objects, "Rollout", "web")["spec"]["replicas"] == 2


def test_the_rollout_waits_for_its_analysis_template(render: Render) -> None:
    assert render(argo("canary")).options["Rollout/shop/web"]["depends_on"] == 1


#: Go's time.ParseDuration, which Argo Rollouts' DurationString.Duration() calls, for the
#: positive integer forms the analysis may render (pkg/apis/rollouts/v1alpha1/types.go).
GO_DURATION = r"[1-9][0-9]*(s|m|h)"


@pytest.mark.parametrize(
    ("seconds", "count", "interval"), [(None, None, "1m"), (10, 6, "10s"), (120, 2, "2m")]
)
def test_the_analysis_interval_and_count_come_from_config(
    render: Render, seconds: int | None, count: int | None, interval: str
) -> None:
    import re

    release: dict[str, Any] = {}
    if seconds is not None:
        release = {"analysisIntervalSeconds": seconds, "analysisCount": count}
    metric = one(render(argo("canary", release=release)).objects, "AnalysisTemplate")["spec"][
        "metrics"
    ][0]
    assert re.fullmatch(GO_DURATION, metric["interval"])
    assert metric["interval"] == interval
    assert metric["count"] == (count or 5)


@pytest.mark.parametrize(("key", "value"), [("analysisIntervalSeconds", 0), ("analysisCount", 0)])
def test_an_analysis_without_measurements_is_refused_naming_the_key(key: str, value: int) -> None:
    from components import config as config_model

    with pytest.raises(config_model.ConfigError) as caught:
        config_model.load(argo("canary", release={key: value}))
    assert f"release.{key}" in str(caught.value)


@pytest.mark.parametrize("strategy", ["canary", "blueGreen"])
def test_the_config_map_of_every_argo_revision_outlives_the_update_that_renames_it(
    render: Render, strategy: str
) -> None:
    """The stable (or previous active) ReplicaSet mounts its own revision's content-named
    ConfigMap; the update that renames it must leave it in the cluster (Pulumi: retained, Argo
    CD: never pruned), or an abort scales the stable ReplicaSet up into `configmap not found`."""
    result = render(argo(strategy))
    (config_map,) = [o for o in result.objects if o["kind"] == "ConfigMap"
                     and o["metadata"]["name"].startswith("web-config-")]  # fmt: skip
    rollout = one(result.objects, "Rollout", "web")
    mounted = {
        v["configMap"]["name"]
        for v in rollout["spec"]["template"]["spec"].get("volumes") or []
        if "configMap" in v
    } | {
        e["configMapRef"]["name"]
        for c in rollout["spec"]["template"]["spec"]["containers"]
        for e in c.get("envFrom") or []
        if "configMapRef" in e
    }
    assert config_map["metadata"]["name"] in mounted
    options = result.options[f"ConfigMap/shop/{config_map['metadata']['name']}"]
    assert options["retain_on_delete"] is True
    annotations = config_map["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false"


def test_without_argo_the_config_map_goes_with_the_update_that_replaces_it(
    render: Render,
) -> None:
    """A Deployment's rollout is awaited before the old ConfigMap is deleted: nothing kept."""
    result = render(base_raw("prod"))
    (config_map,) = [o for o in result.objects if o["kind"] == "ConfigMap"
                     and o["metadata"]["name"].startswith("web-config-")]  # fmt: skip
    options = result.options.get(f"ConfigMap/shop/{config_map['metadata']['name']}", {})
    assert not options.get("retain_on_delete")
    assert "argocd.argoproj.io/sync-options" not in (
        config_map["metadata"].get("annotations") or {}
    )


# The switch's await (components/app/workloads.py `_rollout_annotations`). Oracles: the
# provider's annotation (pulumi-kubernetes provider/pkg/metadata/annotations.go
# `AnnotationWaitFor`, a "jsonpath=" expression, overrides.go `ReadyCondition`) and the status
# field Argo Rollouts v1.10.2 writes once it has switched the active Service
# (pkg/apis/rollouts/v1alpha1/types.go BlueGreenStatus `activeSelector`, rollout/bluegreen.go).
WAIT_FOR = "pulumi.com/waitFor"


def test_a_blue_green_rollout_is_awaited_until_the_controller_switched_its_active_service(
    render: Render,
) -> None:
    result = render(argo("blueGreen"))
    rollout = one(result.objects, "Rollout", "web")
    assert rollout["metadata"]["annotations"][WAIT_FOR] == (
        "jsonpath={.status.blueGreen.activeSelector}"
    )
    # bounded like the Deployment it replaces: a first ReplicaSet that never becomes available
    # fails the update instead of hanging it
    deployment_timeouts = render(base_raw("prod")).options["Deployment/shop/web"]
    assert (
        result.options["Rollout/shop/web"]["custom_timeouts"]
        == (deployment_timeouts["custom_timeouts"])
    )


def test_a_canary_rollout_carries_no_wait_for(render: Render) -> None:
    """A canary without an Ingress switches no Service; the provider returns once it exists."""
    annotations = (
        one(render(argo("canary")).objects, "Rollout", "web")["metadata"].get("annotations") or {}
    )
    assert WAIT_FOR not in annotations


# Leaving Argo Rollouts (components/app/workloads.py `_rollout_annotations`). Oracle: the
# provider reads the policy of a delete from this annotation of the inputs in the state, and
# takes "background" as metav1.DeletePropagationBackground (pulumi-kubernetes
# provider/pkg/metadata/annotations.go `AnnotationDeletionPropagation`, overrides.go
# `DeletionPropagation`; anything else is foreground).
@pytest.mark.parametrize("strategy", ["blueGreen", "canary"])
def test_a_rollout_is_deleted_in_the_background(render: Render, strategy: str) -> None:
    rollout = one(render(argo(strategy)).objects, "Rollout", "web")
    assert rollout["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == (
        "background"
    )


def test_the_workloads_that_stay_keep_the_foreground_delete(render: Render) -> None:
    """Only the Rollout needs it: a Deployment's delete waits for its pods, as it should."""
    for deployment in (o for o in render(base_raw("prod")).objects if o["kind"] == "Deployment"):
        annotations = deployment["metadata"].get("annotations") or {}
        assert "pulumi.com/deletionPropagationPolicy" not in annotations, deployment["metadata"]


@pytest.mark.parametrize("strategy", ["blueGreen", "canary"])
def test_the_rollout_renders_no_zero_a_whole_object_write_would_drop(
    render: Render, strategy: str
) -> None:
    """The controller writes the Rollout back whole through its Go types (argo-rollouts v1.10.2
    rollout/controller.go, sync.go `Update`), and `omitempty` drops a zero of a non-pointer
    field: core/v1 Probe.InitialDelaySeconds (int32) and Rollout minReadySeconds (int32) were
    the ones the render held. A rendered zero of such a field would read as a change on every
    preview (`make e2e-rollouts-node`, blue-green on: `initialDelaySeconds` "add")."""
    raw = argo(strategy, rollout={"minReadySeconds": 0})
    rollout = one(render(raw).objects, "Rollout", "web")
    for container in rollout["spec"]["template"]["spec"]["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe].get("initialDelaySeconds", 1) != 0, (probe, container[probe])
    assert rollout["spec"].get("minReadySeconds", 1) != 0

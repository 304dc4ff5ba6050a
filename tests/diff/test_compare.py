"""`stackctl.diff.compare` rule by rule: a rendered prod stack, one field changed the way a
program change would change it, and the classification the pulumi-kubernetes provider
(v4.25.0 provider/pkg/provider/diff.go, provider.go `Diff`) and the Kubernetes API give it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from stackctl.diff.compare import Change, Snapshot, compare, pdb_blocks_evictions
from stackctl.diff.rules import format_path, parse_path
from tests.diff.scenarios import JENKINS_ON, snapshot

BASE = snapshot(JENKINS_ON)


def edited(
    kind: str, name: str, edit: Callable[[dict[str, Any]], None], base: Snapshot = BASE
) -> Snapshot:
    """`base` with `edit` applied to its rendered object kind/name."""
    objects = copy.deepcopy(base.objects)
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} not rendered"
    edit(found[0])
    return Snapshot(objects=objects, options=base.options, secrets=base.secrets)


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, [(c.action, c.kind, c.name) for c in changes]
    return changes[0]


def test_identical_renders_have_no_changes() -> None:
    assert compare(BASE, snapshot(JENKINS_ON)) == []


def test_changing_the_claims_storage_class_replaces_protected_jenkins_home() -> None:
    after = edited(
        "PersistentVolumeClaim",
        "jenkins-home",
        lambda o: o["spec"].__setitem__("storageClassName", "fast"),
    )
    change = only(compare(BASE, after))
    assert change.action == "replace"
    assert change.fields == ["spec.storageClassName"]
    assert {"protected", "stateful"} <= change.risk_codes


def test_shrinking_a_claim_is_rejected_by_kubernetes() -> None:
    after = edited(
        "PersistentVolumeClaim",
        "jenkins-home",
        lambda o: o["spec"]["resources"]["requests"].__setitem__("storage", "10Gi"),
    )
    change = only(compare(BASE, after))
    assert change.action == "replace"
    assert "immutable-field" in change.risk_codes
    assert any("never shrink" in r for r in change.reasons)


@pytest.mark.parametrize(
    ("field", "value", "action"),
    [
        ("serviceName", "other", "replace"),
        ("podManagementPolicy", "Parallel", "replace"),
        ("minReadySeconds", 30, "update"),
    ],
)
def test_statefulset_spec_fields_follow_the_provider_and_the_api(
    field: str, value: Any, action: str
) -> None:
    after = edited("StatefulSet", "jenkins", lambda o: o["spec"].__setitem__(field, value))
    change = only(compare(BASE, after))
    assert change.action == action
    if action == "replace":
        assert {"stateful", "downtime"} <= change.risk_codes
        assert change.restarts_pods
    else:
        assert not change.risks and not change.restarts_pods


def test_workload_selector_change_replaces_and_is_flagged() -> None:
    def edit(o: dict[str, Any]) -> None:
        o["spec"]["selector"]["matchLabels"]["extra"] = "x"
        o["spec"]["template"]["metadata"]["labels"]["extra"] = "x"

    change = only(compare(BASE, edited("Deployment", "web", edit)))
    assert change.action == "replace"
    assert change.fields[0] == "spec.selector.matchLabels.extra"
    assert {"selector", "downtime"} <= change.risk_codes


def test_service_cluster_ip_change_replaces_the_service() -> None:
    after = edited("Service", "web", lambda o: o["spec"].__setitem__("clusterIP", "10.0.0.10"))
    change = only(compare(BASE, after))
    assert change.action == "replace" and "downtime" in change.risk_codes


def test_service_selector_change_moves_traffic_in_place() -> None:
    after = edited(
        "Service", "web", lambda o: o["spec"]["selector"].__setitem__("appstack.io/track", "x")
    )
    change = only(compare(BASE, after))
    assert change.action == "update" and change.changes_traffic and not change.risks


def test_role_binding_role_ref_change_replaces_it() -> None:
    after = edited(
        "RoleBinding", "jenkins-agents", lambda o: o["roleRef"].__setitem__("name", "other")
    )
    assert only(compare(BASE, after)).action == "replace"


def test_immutable_config_map_content_change_under_the_same_name_replaces_it() -> None:
    name = next(
        o["metadata"]["name"]
        for o in BASE.objects
        if o["kind"] == "ConfigMap" and o["metadata"]["namespace"] == "shop"
    )
    after = edited("ConfigMap", name, lambda o: o["data"].__setitem__("LOG_LEVEL", "x"))
    change = only(compare(BASE, after))
    assert change.action == "replace"
    assert change.fields == ["data.LOG_LEVEL"]


def test_a_renamed_object_is_a_delete_plus_a_create() -> None:
    after = edited("ServiceAccount", "web", lambda o: o["metadata"].__setitem__("name", "web2"))
    assert sorted((c.action, c.name) for c in compare(BASE, after)) == [
        ("create", "web2"),
        ("delete", "web"),
    ]


def test_an_ignored_field_is_not_a_change() -> None:
    options = copy.deepcopy(BASE.options)
    options["Deployment/shop/web"] = {"ignore_changes": ["spec.replicas"]}
    before = Snapshot(BASE.objects, options, BASE.secrets)
    after = edited("Deployment", "web", lambda o: o["spec"].__setitem__("replicas", 7), base=before)
    assert compare(before, after) == []


def test_deleting_a_namespace_and_a_retained_claim_is_flagged() -> None:
    kept = [
        o
        for o in BASE.objects
        if not (o["kind"] == "Namespace" and o["metadata"]["name"] == "jenkins")
        and o["kind"] != "PersistentVolumeClaim"
    ]
    changes = compare(BASE, Snapshot(kept, BASE.options, BASE.secrets))
    by_kind = {c.kind: c for c in changes}
    assert "stateful" in by_kind["Namespace"].risk_codes
    claim = by_kind["PersistentVolumeClaim"]
    assert {"protected", "stateful"} <= claim.risk_codes
    assert any("retain_on_delete" in r for r in claim.reasons)


@pytest.mark.parametrize(
    ("budget", "blocks"),
    [
        ({"maxUnavailable": 0}, True),
        ({"maxUnavailable": "0%"}, True),
        ({"minAvailable": "100%"}, True),
        ({"minAvailable": 3}, True),  # the HPA minimum is 3: nothing may go
        ({"minAvailable": 2}, False),
        ({"maxUnavailable": 1}, False),
        ({"maxUnavailable": "10%"}, False),  # rounded up: one pod
    ],
)
def test_a_pdb_that_blocks_every_eviction_is_flagged(budget: dict[str, Any], blocks: bool) -> None:
    def edit(o: dict[str, Any]) -> None:
        o["spec"].pop("maxUnavailable", None)
        o["spec"].pop("minAvailable", None)
        o["spec"].update(budget)

    after = edited("PodDisruptionBudget", "web", edit)
    pdb = next(o for o in after.objects if o["kind"] == "PodDisruptionBudget")
    assert (pdb_blocks_evictions(pdb, after) is not None) is blocks
    change = only(compare(BASE, after)) if budget != {"maxUnavailable": 1} else None
    if change is not None:
        assert ("pdb-blocks-evictions" in change.risk_codes) is blocks


def test_replicas_under_an_hpa_are_ignored_by_the_render_and_flagged_when_not() -> None:
    assert BASE.options["Deployment/shop/web"]["ignore_changes"] == ["spec.replicas"]
    after = edited("Deployment", "web", lambda o: o["spec"].__setitem__("replicas", 5))
    assert compare(BASE, after) == []  # ignored: the provider keeps the HPA's value
    options = copy.deepcopy(after.options)
    options["Deployment/shop/web"].pop("ignore_changes")
    change = only(compare(BASE, Snapshot(after.objects, options, after.secrets)))
    assert "controller-owned" in change.risk_codes


def test_same_secret_value_is_no_change_and_a_new_one_is_flagged() -> None:
    same = Snapshot(BASE.objects, BASE.options, copy.deepcopy(BASE.secrets))
    assert compare(BASE, same) == []
    secrets = copy.deepcopy(BASE.secrets)
    secrets["Secret/jenkins/jenkins-admin"]["stringData.password"] = "0" * 16
    change = only(compare(BASE, Snapshot(BASE.objects, BASE.options, secrets)))
    assert change.fields == ["stringData.password"]
    assert change.risk_codes == {"secret-value"}


@pytest.mark.parametrize(
    "path",
    [
        ("spec", "template", "spec", "containers", 0, "image"),
        ("metadata", "labels", "app.kubernetes.io/version"),
        ("metadata", "annotations", 'a"b'),
    ],
)
def test_paths_round_trip_in_pulumi_property_path_syntax(path: tuple[Any, ...]) -> None:
    assert parse_path(format_path(path)) == path


def test_fewer_replicas_under_an_unchanged_pdb_that_then_blocks_evictions_is_flagged() -> None:
    def min_available_2(o: dict[str, Any]) -> None:
        o["spec"].pop("maxUnavailable", None)
        o["spec"]["minAvailable"] = 2

    before = edited("PodDisruptionBudget", "web", min_available_2)
    after = edited(
        "HorizontalPodAutoscaler",
        "web",
        lambda o: o["spec"].__setitem__("minReplicas", 2),
        base=before,
    )
    assert compare(BASE, before)[0].risks == []  # 2 of the HPA minimum 3 may stay: fine
    change = only(compare(before, after))
    assert change.kind == "HorizontalPodAutoscaler"
    assert "pdb-blocks-evictions" in change.risk_codes


def test_replicas_taken_back_from_a_removed_hpa_need_a_forced_apply() -> None:
    # Autoscaling off: the HPA is gone, the Deployment sets replicas again. The live field
    # still belongs to the HPA's manager: a plain server-side apply conflicts, a forced one
    # (pulumi.com/patchForce, provider await.go `patchForce`) takes it over.
    def autoscaling_off(o: dict[str, Any]) -> None:
        o["spec"]["replicas"] = 3

    objects = [o for o in BASE.objects if o["kind"] != "HorizontalPodAutoscaler"]
    options = copy.deepcopy(BASE.options)
    options["Deployment/shop/web"].pop("ignore_changes")
    without_hpa = Snapshot(objects, options, BASE.secrets)
    after = edited("Deployment", "web", autoscaling_off, base=without_hpa)
    plain = {c.kind: c for c in compare(BASE, after)}["Deployment"]
    assert "controller-owned" in plain.risk_codes

    def forced(o: dict[str, Any]) -> None:
        autoscaling_off(o)
        o["metadata"].setdefault("annotations", {})["pulumi.com/patchForce"] = "true"

    forced_after = edited("Deployment", "web", forced, base=without_hpa)
    assert not {c.kind: c for c in compare(BASE, forced_after)}["Deployment"].risks


class _Outputs:
    def as_dict(self) -> dict[str, Any]:
        return {}


def _program(parent_type: str, alias_parent_type: str | None = None) -> Callable[..., Any]:
    """A deploy() with one ConfigMap under a component of `parent_type` (optionally aliased to
    its former parent, a component of `alias_parent_type`)."""
    import pulumi
    import pulumi_kubernetes as k8s

    def deploy(cfg: Any) -> _Outputs:
        parent = pulumi.ComponentResource(parent_type, "holder")
        aliases = None
        if alias_parent_type is not None:
            former = pulumi.ComponentResource(alias_parent_type, "holder")
            aliases = [pulumi.Alias(parent=former)]
        k8s.core.v1.ConfigMap(
            "settings",
            metadata={"name": "settings", "namespace": "shop"},
            data={"k": "v"},
            opts=pulumi.ResourceOptions(parent=parent, aliases=aliases),
        )
        return _Outputs()

    return deploy


def _render_program(monkeypatch: pytest.MonkeyPatch, deploy: Callable[..., Any]) -> Snapshot:
    import components.stack
    from components import config as config_model

    monkeypatch.setattr(components.stack, "deploy", deploy)
    cfg = config_model.load(JENKINS_ON)
    return Snapshot.of_config(cfg, "prod")


def test_moving_an_object_to_another_parent_without_an_alias_is_flagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _render_program(monkeypatch, _program("appstack:test:Old"))
    assert before.urns["ConfigMap/shop/settings"] == (
        "appstack:test:Old$kubernetes:core/v1:ConfigMap::settings"
    )
    moved = _render_program(monkeypatch, _program("appstack:test:New"))
    change = only(compare(before, moved))
    assert change.action == "replace" and change.risk_codes == {"urn-change"}

    aliased = _render_program(monkeypatch, _program("appstack:test:New", "appstack:test:Old"))
    assert compare(before, aliased) == []


def _snapshot_of(raw: dict[str, Any]) -> Snapshot:
    from components import config as config_model
    from stackctl.diff.render import snapshot_config

    return Snapshot.from_json(snapshot_config(config_model.load(raw), "dev"))


def test_a_strategy_step_that_deletes_a_workload_leaves_the_quota_alone() -> None:
    """What `make e2e` found on the dev stack: aborting its canary (weight 50 -> 0) deletes the
    canary Deployment. The quota is sized from config for every strategy switch at the app's
    sizes (components/namespace.py `transition_pods`), so the diff of the two renders, which
    is what the engine applies, shows no quota change; only a change of sizes moves it."""
    from stackctl.render.stack import load_raw_config
    from tests.tooling import REPO

    def dev(**web: Any) -> dict[str, Any]:
        raw = load_raw_config(REPO, "dev")
        raw["apps"]["web"].update(web)
        return raw

    release = {"strategy": "canary", "canaryImage": "registry.example.com/appstack/web:0.3.0"}
    before = _snapshot_of(dev(replicas=4, release={**release, "weight": 50}))
    aborted = _snapshot_of(dev(replicas=4, release={**release, "weight": 0}))
    changes = {c.ref: c.action for c in compare(before, aborted)}
    assert changes.get(("Deployment", "appstack-dev", "web-canary")) == "delete", changes
    assert "ResourceQuota" not in {ref[0] for ref in changes}
    smaller = _snapshot_of(dev(replicas=2, release={**release, "weight": 0}))
    assert "ResourceQuota" in {c.ref[0] for c in compare(before, smaller)}

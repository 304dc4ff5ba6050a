"""Issue 32 item 7: an optional PersistentVolumeClaim per app (`apps.<name>.volume`). Off by
default (no claim, no extra volume in any pod); on, the claim is rendered with the app's labels,
mounted in the app's container of every workload of every release strategy, writable by the
non-root uid through the pod's fsGroup, and retained and protected like JENKINS_HOME when
`protect` is set (required where prod's rules apply).

The zero-downtime rules that change (README, docs/releases.md): a ReadWriteOnce claim is attached
to one node and a ReadWriteOncePod claim to one pod (Kubernetes docs, "Persistent Volumes",
access modes), so no surge, second-colour or canary pod elsewhere can mount it. Such an app runs
one replica without an HPA, rolled out by Recreate (no zero downtime), only in environments
without prod's rules and only with the rolling strategy."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from components import config as config_model
from policy.rules import check_zero_downtime_rollout, template_of
from policy.rules.base import PRODUCTION_RULES, RuleContext
from stackctl.render import RenderResult
from tests.conftest import base_raw, load_error
from tests.monitoring.strategies import STRATEGIES, rendered
from tests.release.helpers import NEW_IMAGE
from tests.renders import Renders
from tests.tooling import SHIPPED_STACKS
from tests.urns import render_urns

NAME_LABEL = "app.kubernetes.io/name"
MOUNT = "/var/lib/web"
SHARED = {"size": "1Gi", "mountPath": MOUNT, "accessMode": "ReadWriteMany", "protect": True}
SINGLE = {"size": "1Gi", "mountPath": MOUNT}
CLAIM_URN = "appstack:app:AppService$kubernetes:core/v1:PersistentVolumeClaim::web-data"


def _claims(result: RenderResult) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["kind"] == "PersistentVolumeClaim"]


def _app_claims(result: RenderResult) -> list[dict[str, Any]]:
    """Claims of the apps (not the JENKINS_HOME claim, which carries name `jenkins`)."""
    return [c for c in _claims(result) if c["metadata"]["labels"][NAME_LABEL] != "jenkins"]


def _pods(result: RenderResult, app: str) -> list[tuple[str, Mapping[str, Any]]]:
    found = []
    for obj in result.objects:
        template = template_of(obj)
        if template is not None and template.labels.get(NAME_LABEL) == app:
            found.append((f"{obj['kind']}/{obj['metadata']['name']}", template.spec))
    return found


def _data_volumes(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]


def _with_volume(raw: Mapping[str, Any], volume: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    out["apps"]["web"]["volume"] = dict(volume)
    return out


def _single(render: Any, **extra: Any) -> RenderResult:
    result: RenderResult = render(base_raw(replicas=1, volume={**SINGLE, **extra}))
    return result


# --------------------------------------------------------------------------------------------
# Off by default


def test_the_default_is_no_volume() -> None:
    assert config_model.load(base_raw()).apps["web"].volume is None


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_render_no_app_claim(renders: Renders, stack: str) -> None:
    result = renders.stack(stack)
    assert _app_claims(result) == []
    for app in {o["metadata"]["labels"].get(NAME_LABEL) for o in result.objects} - {"jenkins"}:
        for where, pod in _pods(result, str(app)):
            assert _data_volumes(pod) == [], where


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_no_strategy_renders_a_claim_when_off(strategy: str) -> None:
    result = rendered(strategy)
    assert _app_claims(result) == []
    for where, pod in _pods(result, "web"):
        assert _data_volumes(pod) == [], where


# --------------------------------------------------------------------------------------------
# On: the claim


def test_the_claim_is_rendered_with_the_apps_labels(render: Any) -> None:
    result = _single(render, storageClassName="fast-ssd")
    [claim] = _app_claims(result)
    deployment = next(o for o in result.objects if o["kind"] == "Deployment")
    assert claim["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    labels, app_labels = claim["metadata"]["labels"], deployment["metadata"]["labels"]
    for key in ("name", "instance", "part-of", "managed-by"):
        assert labels[f"app.kubernetes.io/{key}"] == app_labels[f"app.kubernetes.io/{key}"]
    assert "app.kubernetes.io/version" not in labels  # the claim outlives every version
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "1Gi"}},
    }


def test_without_a_storage_class_the_cluster_default_is_used(render: Any) -> None:
    [claim] = _app_claims(_single(render))
    # an absent storageClassName lets the DefaultStorageClass admission plugin fill it in
    assert "storageClassName" not in claim["spec"]


def test_the_claim_is_a_child_of_the_app_service() -> None:
    urns, _ = render_urns(base_raw(replicas=1, volume=SINGLE), "dev")
    without, _ = render_urns(base_raw(replicas=1), "dev")
    # the volume adds exactly the claim, under the AppService; nothing else is replaced
    assert urns - without == {CLAIM_URN}
    assert without <= urns


def test_a_protected_claim_is_retained_and_never_pruned(render: Any) -> None:
    result = _single(render, protect=True)
    [claim] = _app_claims(result)
    options = result.options[f"PersistentVolumeClaim/shop/{claim['metadata']['name']}"]
    assert options["protect"] is True and options["retain_on_delete"] is True
    annotations = claim["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false"


def test_an_unprotected_claim_is_deleted_with_the_stack(render: Any) -> None:
    result = _single(render)
    [claim] = _app_claims(result)
    options = result.options.get(f"PersistentVolumeClaim/shop/{claim['metadata']['name']}", {})
    assert not options.get("protect") and not options.get("retain_on_delete")


# --------------------------------------------------------------------------------------------
# On: mounted in every workload of every strategy, writable by the pod's uid


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_workload_of_every_strategy_mounts_the_claim(renders: Renders, strategy: str) -> None:
    result = renders.config(_with_volume(STRATEGIES[strategy], SHARED), strategy)
    [claim] = _app_claims(result)
    name = claim["metadata"]["name"]
    pods = _pods(result, "web")
    # as many workloads as the strategy renders without a volume: none is left out
    assert len(pods) == len(_pods(rendered(strategy), "web")) > 0
    for where, pod in pods:
        [volume] = _data_volumes(pod)
        assert volume["persistentVolumeClaim"] == {"claimName": name}, where
        [container] = [c for c in pod["containers"] if c["name"] == "app"]
        mounts = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mounts == [{"name": volume["name"], "mountPath": MOUNT}], where
        # the kubelet gives the volume the pod's fsGroup (group-writable, setgid): the non-root
        # uid writes it through its supplementary group
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000, where
        assert isinstance(security.get("fsGroup"), int), where
    for where, pod in _pods(result, "web-api"):  # the sibling app has no volume
        assert _data_volumes(pod) == [], where


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_shared_claim_keeps_the_zero_downtime_rollout(renders: Renders, strategy: str) -> None:
    result = renders.config(_with_volume(STRATEGIES[strategy], SHARED), strategy)
    environment = str(STRATEGIES[strategy]["environment"])
    assert check_zero_downtime_rollout(result.objects, RuleContext(environment)) == []


# --------------------------------------------------------------------------------------------
# ReadWriteOnce / ReadWriteOncePod: one pod, Recreate, only without prod's rules


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_a_single_writer_claim_rolls_by_recreate(render: Any, mode: str) -> None:
    result = _single(render, accessMode=mode)
    [deployment] = [o for o in result.objects if o["kind"] == "Deployment"]
    # a surge pod could not mount the claim (RWO: another node; RWOP: any other pod)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["replicas"] == 1
    assert not [o for o in result.objects if o["kind"] == "HorizontalPodAutoscaler"]


def test_the_policy_allows_recreate_for_a_single_writer_claim_outside_prod(render: Any) -> None:
    objects = _single(render).objects
    lax = [env for env, strict in PRODUCTION_RULES.items() if not strict]
    assert lax
    for environment in lax:
        assert check_zero_downtime_rollout(objects, RuleContext(environment)) == []


def test_the_policy_refuses_recreate_where_prods_rules_apply(render: Any) -> None:
    objects = _single(render).objects
    for environment in [env for env, strict in PRODUCTION_RULES.items() if strict]:
        [violation] = check_zero_downtime_rollout(objects, RuleContext(environment))
        assert violation.message == 'spec.strategy.type is "Recreate"; it must be RollingUpdate'


def test_the_policy_refuses_recreate_without_a_single_writer_claim(render: Any) -> None:
    objects = copy.deepcopy(_single(render).objects)
    for claim in _claims_of(objects):
        claim["spec"]["accessModes"] = ["ReadWriteMany"]
    [violation] = check_zero_downtime_rollout(objects, RuleContext("dev"))
    assert "it must be RollingUpdate" in violation.message


def _claims_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "PersistentVolumeClaim"]


# --------------------------------------------------------------------------------------------
# Refusals: one line naming the key path and the allowed values


def _one_line(raw: Mapping[str, Any]) -> str:
    message = load_error(raw)
    lines = [line.strip() for line in message.splitlines()[1:]]
    assert len(lines) == 1, message
    return lines[0]


@pytest.mark.parametrize("environment", [e for e, strict in PRODUCTION_RULES.items() if strict])
@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_prods_rules_allow_only_read_write_many(environment: str, mode: str) -> None:
    raw = base_raw(environment, volume={**SINGLE, "accessMode": mode, "protect": True})
    line = _one_line(raw)
    assert line.startswith("appstack:apps.web.volume.accessMode: "), line
    assert line.endswith("allowed: ReadWriteMany"), line


@pytest.mark.parametrize("environment", [e for e, strict in PRODUCTION_RULES.items() if strict])
def test_prods_rules_require_a_protected_claim(environment: str) -> None:
    line = _one_line(base_raw(environment, volume={**SHARED, "protect": False}))
    assert line.startswith("appstack:apps.web.volume.protect: "), line
    assert "allowed: true" in line, line


@pytest.mark.parametrize(
    "release",
    [
        {"strategy": "blueGreen"},
        {"strategy": "canary", "weight": 25, "canaryImage": NEW_IMAGE},
        {"strategy": "canary", "argoRollouts": True},
        {"strategy": "blueGreen", "argoRollouts": True},
    ],
)
def test_a_single_writer_claim_is_refused_with_other_release_strategies(
    release: dict[str, Any],
) -> None:
    line = _one_line(base_raw(replicas=1, volume=SINGLE, release=release))
    assert line.startswith("appstack:apps.web.volume.accessMode: "), line
    assert "allowed with it: ReadWriteMany" in line, line


def test_a_single_writer_claim_is_refused_with_an_hpa() -> None:
    line = _one_line(base_raw(volume=SINGLE, autoscaling={"enabled": True}))
    assert line.startswith("appstack:apps.web.autoscaling.enabled: "), line
    assert "allowed: false" in line, line


@pytest.mark.parametrize("replicas", [2, 3])
def test_a_single_writer_claim_is_refused_with_more_than_one_replica(replicas: int) -> None:
    line = _one_line(
        base_raw(replicas=replicas, volume={**SINGLE, "accessMode": "ReadWriteOncePod"})
    )
    assert line.startswith("appstack:apps.web.replicas: "), line
    assert "allowed: 1" in line, line


@pytest.mark.parametrize(
    "release", [{"strategy": "blueGreen"}, {"strategy": "canary", "canaryImage": NEW_IMAGE}]
)
def test_a_shared_claim_is_allowed_with_any_release_strategy(release: dict[str, Any]) -> None:
    app = config_model.load(base_raw(volume=SHARED, release=release)).apps["web"]
    assert app.volume is not None and app.volume.access_mode == "ReadWriteMany"


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/", "other than /"),
        ("var/lib", "absolute path"),
        ("/data/./x", "normalised"),
        ("/data/../tmp", "normalised"),
        ("/data/", "normalised"),
        ("/tmp", "overlaps /tmp"),
        ("/tmp/cache", "overlaps /tmp"),
        ("/var/run/secrets/appstack", "overlaps /var/run/secrets/appstack"),
        ("/var/run", "overlaps /var/run/secrets/appstack"),  # would hide the secrets mount
    ],
)
def test_a_bad_mount_path_is_refused(path: str, detail: str) -> None:
    line = _one_line(base_raw(replicas=1, volume={**SINGLE, "mountPath": path}))
    assert line.startswith("appstack:apps.web.volume.mountPath: "), line
    assert detail in line, line


@pytest.mark.parametrize(
    ("volume", "key", "detail"),
    [
        ({"size": "1Gb"}, "size", "is not a Kubernetes quantity"),
        ({"size": "0"}, "size", ""),
        ({"storageClassName": "Fast_SSD"}, "storageClassName", "DNS-1123 subdomain"),
        ({"accessMode": "ReadOnlyMany"}, "accessMode", "'ReadWriteOnce', 'ReadWriteOncePod'"),
    ],
)
def test_bad_volume_values_are_refused(volume: dict[str, Any], key: str, detail: str) -> None:
    line = _one_line(base_raw(replicas=1, volume={**SINGLE, **volume}))
    assert line.startswith(f"appstack:apps.web.volume.{key}: "), line
    assert detail in line, line

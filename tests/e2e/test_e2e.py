"""The program deployed for real: Pulumi CLI + Python language host + Kubernetes provider, built
from Go modules, against kube-apiserver/etcd/controller-manager/scheduler with kwok nodes.

One ordered story per stack (run with `pytest -x`: each step builds on the previous one). Every
assertion reads the API server (e2e/kube.py), not Pulumi's outputs.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from components.config.reading import engine_value
from e2e.cluster import Cluster
from e2e.engine import Engine, changes
from e2e.kube import STRATEGIC_MERGE_PATCH, Kube
from stackctl.diff.quota import amount
from stackctl.render import load_raw_config
from tests.e2e.live import (
    assert_engine_matches_prediction,
    assert_pods_admitted_restricted,
    assert_state_matches_cluster,
    predict,
    wait_workloads_available,
)

DEV_NS = "appstack-dev"
PROD_NS = "appstack"
JENKINS_NS = "jenkins"
IMAGE = "registry.example.com/appstack/web"
# kube-controller-manager's HPA controller writes the scale subresource with an Update; the
# API server names the manager after the client's user agent, "kube-controller-manager"
# (apiserver/pkg/endpoints/handlers/fieldmanager: manager = user agent up to the first "/").
HPA_MANAGER = "kube-controller-manager"


ZONE_KEY = "topology.kubernetes.io/zone"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Rollout")


def assert_spread(kube: Kube, pods: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
    """The scheduler's rule for a DoNotSchedule topology spread constraint, checked on the
    placed pods: per topology key, the pod counts of every domain (every node's value of the
    key, empty domains included) differ by at most maxSkew = 1 (kubernetes
    pkg/scheduler/framework/plugins/podtopologyspread/filtering.go: skew = count + 1 - min)."""
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in kube.list("Node")}
    assert len(pods) >= 3, f"{len(pods)} pods: too few to show a spread over 3 zones"
    for key in keys:
        counts = dict.fromkeys({labels[key] for labels in nodes.values()}, 0)
        for pod in pods:
            counts[nodes[pod["spec"]["nodeName"]][key]] += 1
        skew = max(counts.values()) - min(counts.values())
        assert skew <= 1, f"{len(pods)} pods, skew {skew} over {key}: {counts}"


def replica_owners(obj: dict[str, Any]) -> set[str]:
    """Field managers that own .spec.replicas."""
    return {
        f["manager"]
        for f in obj["metadata"].get("managedFields") or []
        if "f:replicas" in ((f.get("fieldsV1") or {}).get("f:spec") or {})
    }


def web_pods(kube: Kube, namespace: str, name: str = "web") -> list[dict[str, Any]]:
    deployment = kube.get("Deployment", name, namespace)
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    return [
        p
        for p in kube.list("Pod", namespace, selector)
        if not p["metadata"].get("deletionTimestamp")
    ]


def images(kube: Kube, namespace: str, name: str = "web") -> set[str]:
    return {c["image"] for p in web_pods(kube, namespace, name) for c in p["spec"]["containers"]}


def change_and_check(
    engine: Engine, stack: str, what: str, **edit: Any
) -> dict[tuple[str, str, str], str]:
    """Edit the app config, predict, preview, compare, up; commit the change. Returns the ops."""
    engine.edit_app(stack, "web", **edit)
    source, predicted = predict(engine, stack, "HEAD")
    steps = engine.preview_steps(stack)
    actual = assert_engine_matches_prediction(source, predicted, steps)
    assert actual, f"{what}: the engine sees no change"
    engine.up(stack, timing=None)
    settle(engine, stack, actual, what)
    engine.commit(f"e2e: {what}")
    return actual


def settle(engine: Engine, stack: str, applied: dict[tuple[str, str, str], str], what: str) -> None:
    """Any single update converges: the next preview changes nothing, strategy switches
    included (the quota is sized from config alone for every switch the config allows,
    components/namespace.py `transition_pods`; no switch changes it or waits on it)."""
    assert applied
    # One preview: `--expect-no-changes` fails the command on any pending step.
    pending = changes(engine.preview_steps(stack, "--expect-no-changes"))
    assert pending == {}, f"after {what}: {pending}"


def assert_one_reading(engine: Engine, stack: str) -> None:
    """The config values the real CLI holds (`pulumi config --json`: what it hands the program),
    decoded as the program decodes them, equal the render's reading of the stack file
    (components/config/reading.py; issue 27 item 4)."""
    held = json.loads(engine.pulumi("config", "--json", "--stack", stack).stdout)
    from_engine = {
        key.removeprefix("appstack:"): engine_value(entry["value"])
        for key, entry in held.items()
        if key.startswith("appstack:") and not entry.get("secret")
    }
    from_render = load_raw_config(engine.project, stack)
    assert from_engine, held
    assert from_engine == {key: from_render.get(key) for key in from_engine}


# ================================================================ dev


def test_dev_preview_then_up_creates_every_object(engine: Engine, kube: Kube) -> None:
    engine.init_stack("dev")
    engine.commit("e2e: dev stack initialised")
    assert_one_reading(engine, "dev")
    steps = engine.preview_steps("dev")
    ops = {s.op for s in steps}
    assert ops == {"create"}, f"preview of an empty dev stack: {ops}"
    engine.up("dev", timing="pulumi up dev (from empty)")
    live = assert_state_matches_cluster(engine, kube, "dev")
    assert {o["kind"] for o in live} >= {"Namespace", "Deployment", "Service", "ConfigMap"}
    wait_workloads_available(kube, [DEV_NS], timeout=60)
    assert assert_pods_admitted_restricted(kube, DEV_NS) >= 1


def test_dev_second_up_changes_nothing(engine: Engine) -> None:
    engine.up("dev", timing="pulumi up dev (no changes)")
    engine.pulumi("preview", "--expect-no-changes", "--stack", "dev")
    last = json.loads(engine.pulumi("stack", "history", "--json", "--stack", "dev").stdout)[0]
    # Every step of the second update is `same`: no read either, the program reads no earlier
    # state (no StackReference to itself, issue 27).
    steps = last.get("resourceChanges") or {}
    assert set(steps) == {"same"}, f"second up: {steps}"


def test_dev_env_change_rolls_pods_through_a_new_configmap(engine: Engine, kube: Kube) -> None:
    before = kube.get("Deployment", "web", DEV_NS)
    old_cms = {c["metadata"]["name"] for c in kube.list("ConfigMap", DEV_NS)}
    env = dict(engine.read_config("dev")["config"]["appstack:apps"]["web"].get("env") or {})
    env["LOG_LEVEL"] = "info" if env.get("LOG_LEVEL") != "info" else "warning"
    ops = change_and_check(engine, "dev", "env change", env=env)
    assert ops.get(("Deployment", DEV_NS, "web")) == "update", ops
    new_cms = {c["metadata"]["name"] for c in kube.list("ConfigMap", DEV_NS)}
    created, removed = new_cms - old_cms, old_cms - new_cms
    assert len(created) == 1 and len(removed) == 1, (created, removed)
    cm = kube.get("ConfigMap", created.pop(), DEV_NS)
    assert env["LOG_LEVEL"] in json.dumps(cm["data"])
    after = kube.get("Deployment", "web", DEV_NS)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    wait_workloads_available(kube, [DEV_NS], timeout=60)


def test_dev_replica_change_updates_in_place(engine: Engine, kube: Kube) -> None:
    ops = change_and_check(engine, "dev", "replica change", replicas=3)
    assert ops.get(("Deployment", DEV_NS, "web")) == "update", ops
    assert "replace" not in ops.values(), ops
    wait_workloads_available(kube, [DEV_NS], timeout=60)
    assert kube.get("Deployment", "web", DEV_NS)["spec"]["replicas"] == 3


def test_dev_autoscaling_on_hands_replicas_to_the_hpa(engine: Engine, kube: Kube) -> None:
    ops = change_and_check(
        engine,
        "dev",
        "autoscaling on",
        autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 6},
    )
    assert ops.get(("HorizontalPodAutoscaler", DEV_NS, "web")) == "create", ops
    hpa = kube.get("HorizontalPodAutoscaler", "web", DEV_NS)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "web"
    # The HPA scales up (emulated: no metrics server here) through the scale subresource.
    kube.patch(
        "Deployment", "web", {"spec": {"replicas": 5}}, namespace=DEV_NS,
        subresource="scale", field_manager=HPA_MANAGER,
    )  # fmt: skip
    # Until the HPA writes replicas, the program's last applied value keeps them (the provider
    # re-applies the live value of an ignore_changes field nobody else owns); once it has,
    # the HPA's manager owns them alone and the provider drops the field from its applies
    # (pulumi-kubernetes provider/pkg/await/await.go, handleSSAIgnoreFields).
    assert replica_owners(kube.get("Deployment", "web", DEV_NS)) == {HPA_MANAGER}
    wait_workloads_available(kube, [DEV_NS], timeout=60)
    engine.pulumi("preview", "--expect-no-changes", "--stack", "dev")


def test_dev_image_bump_keeps_hpa_replicas(engine: Engine, kube: Kube) -> None:
    image = f"{IMAGE}:0.1.1"
    engine.edit_app("dev", "web", image=image)
    source, predicted = predict(engine, "dev", "HEAD")
    steps = engine.preview_steps("dev")
    ops = assert_engine_matches_prediction(source, predicted, steps)
    assert ops.get(("Deployment", DEV_NS, "web")) == "update", ops
    engine.up("dev", timing="pulumi up dev (image bump)")
    engine.commit("e2e: image bump")
    wait_workloads_available(kube, [DEV_NS], timeout=60)
    assert images(kube, DEV_NS) == {image}
    deployment = kube.get("Deployment", "web", DEV_NS)
    assert deployment["spec"]["replicas"] == 5, "HPA's replicas lost"
    assert replica_owners(deployment) == {HPA_MANAGER}


def test_dev_autoscaling_off_takes_replicas_back(engine: Engine, kube: Kube) -> None:
    ops = change_and_check(
        engine, "dev", "autoscaling off", autoscaling={"enabled": False}, replicas=2
    )
    assert ops.get(("HorizontalPodAutoscaler", DEV_NS, "web")) == "delete", ops
    assert kube.get_or_none("HorizontalPodAutoscaler", "web", DEV_NS) is None
    wait_workloads_available(kube, [DEV_NS], timeout=60)
    assert kube.get("Deployment", "web", DEV_NS)["spec"]["replicas"] == 2


SECRET_PATH = "appstack:secrets.web.API_TOKEN"
SECRET_VALUE = "e2e-token-0001"
CONFIG_ROUND_TRIP = """
from pathlib import Path
from stackctl.ops.automation import PulumiAutomationBackend
backend = PulumiAutomationBackend("dev", Path.cwd())
backend.set_config(backend.get_config())
"""


def assert_secret_per_leaf(engine: Engine) -> None:
    """The stack file holds the secret as one `secure:` leaf (not the object as one blob), and
    the CLI reads the value back."""
    secrets = engine.read_config("dev")["config"]["appstack:secrets"]
    assert set(secrets) == {"web"} and set(secrets["web"]) == {"API_TOKEN"}, secrets
    assert set(secrets["web"]["API_TOKEN"]) == {"secure"}, secrets
    got = engine.pulumi("config", "get", "--path", SECRET_PATH, "--stack", "dev").stdout
    assert got.strip() == SECRET_VALUE


def test_dev_stackctl_deploy_history_rollback(engine: Engine, kube: Kube) -> None:
    # Back to a rolling release, deployed with stackctl (Automation API, policy pack on), with
    # a secret set per leaf the documented way (README: `--secret --path`).
    engine.edit_app("dev", "web", image=f"{IMAGE}:1.0.0")
    engine.pulumi(
        "config", "set", "--secret", "--path", SECRET_PATH, SECRET_VALUE, "--stack", "dev"
    )
    assert_secret_per_leaf(engine)
    engine.commit("e2e: rolling 1.0.0")
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    assert images(kube, DEV_NS) == {f"{IMAGE}:1.0.0"}
    # A config-only release at the same commit, as a pipeline does it.
    engine.edit_app("dev", "web", image=f"{IMAGE}:1.0.1")
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    assert images(kube, DEV_NS) == {f"{IMAGE}:1.0.1"}
    rows = json.loads(engine.stackctl("history", "dev", "--json", policy_cli=True).stdout)
    assert rows[0]["images"] == f"web={IMAGE}:1.0.1" and rows[0]["result"] == "succeeded"
    assert rows[1]["images"] == f"web={IMAGE}:1.0.0"
    current = int(rows[0]["version"])

    started = datetime.now(UTC)
    res = engine.stackctl(
        "rollback", "dev", "--steps", "1", "--yes", timing="rollback --steps 1", policy_cli=True
    )
    backups = sorted((engine.project / ".pulumi-backups").glob(f"dev-v{current}-*.json"))
    assert backups, f"no state backup of v{current}:\n{res.tail()}"
    backup = json.loads(backups[-1].read_text())
    backed_up = json.dumps(backup)
    assert f"{IMAGE}:1.0.1" in backed_up, "the backup is not the pre-rollback state"
    assert backups[-1].stat().st_mode & 0o077 == 0, "backup readable by others"
    # Written before the update: the rollback's own update record starts after it.
    history = json.loads(engine.pulumi("stack", "history", "--json", "--stack", "dev").stdout)
    newest = history[0]
    assert "rollback to v" in newest["message"], newest["message"]
    up_started = datetime.strptime(newest["startTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert datetime.fromtimestamp(backups[-1].stat().st_mtime, UTC) <= up_started
    assert started <= up_started
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    assert images(kube, DEV_NS) == {f"{IMAGE}:1.0.0"}, "previous image not running"
    assert_secret_per_leaf(engine)
    # What a rollback does when the operator declines (stackctl/ops/rollback.py
    # `_restore_previous`): the config read back and written again, the secret object
    # included. The stack file keeps its shape (issue 27 item 3).
    engine.run([str(engine.project / ".venv" / "bin" / "python"), "-c", CONFIG_ROUND_TRIP])
    assert_secret_per_leaf(engine)
    engine.git("checkout", "--", ".")  # the rollback rewrote Pulumi.dev.yaml; HEAD has 1.0.0


def test_dev_policy_pack_with_the_real_analyzer(engine: Engine, tmp_path: Path) -> None:
    ok = engine.pulumi_policy(
        "preview", "--stack", "dev", "--policy-pack", "policy",
        "--policy-pack-config", "policy/config/dev.json",
    )  # fmt: skip
    assert "mandatory" not in ok.stdout.lower()
    # A violating config: dev's web Service as a LoadBalancer open to the world (the dev config
    # allows it), judged by prod's rule for LoadBalancers (the pack's per-policy `environment`
    # property, policy/pack.py ENVIRONMENT_CONFIG_SCHEMA), every policy mandatory: it must fail.
    engine.edit_app("dev", "web", service={"type": "LoadBalancer"})
    strict = tmp_path / "prod-rules.json"
    strict.write_text(
        json.dumps({"all": "mandatory", "loadbalancer-source-ranges": {"environment": "prod"}})
    )
    try:
        bad = engine.pulumi_policy(
            "preview", "--stack", "dev", "--policy-pack", "policy",
            "--policy-pack-config", str(strict), check=False,
        )  # fmt: skip
    finally:
        engine.git("checkout", "--", ".")
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0, f"a mandatory policy violation did not fail the preview:\n{text}"
    assert "loadbalancer-source-ranges" in text and "mandatory" in text.lower(), bad.tail()


# Strategy switches: rolling -> canary -> blue-green -> rolling -> Argo blue-green -> rolling.
# Each switch runs the workloads it deletes beside the new ones until they are ready; the quota,
# sized from config for every switch, holds both, and the preview right after is empty
# (settle()).


def test_dev_canary_step_changes_only_the_canary_track(engine: Engine, kube: Kube) -> None:
    change_and_check(
        engine,
        "dev",
        "strategy canary",
        replicas=4,  # without an Ingress the share is the replica ratio: 25% = 1 of 4 pods
        release={"strategy": "canary", "canaryImage": f"{IMAGE}:0.3.0", "weight": 25},
    )
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    stable_pods = {p["metadata"]["uid"] for p in web_pods(kube, DEV_NS, "web")}
    ops = change_and_check(
        engine,
        "dev",
        "canary step",
        release={"strategy": "canary", "canaryImage": f"{IMAGE}:0.3.0", "weight": 50},
    )
    assert ("Deployment", DEV_NS, "web-canary") in ops, ops
    assert all(op == "update" for op in ops.values()), ops
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    assert images(kube, DEV_NS, "web-canary") == {f"{IMAGE}:0.3.0"}
    assert stable_pods & {p["metadata"]["uid"] for p in web_pods(kube, DEV_NS, "web")}
    # Abort (weight 0): the canary track goes, the stable track stays.
    ops = change_and_check(
        engine,
        "dev",
        "canary abort",
        replicas=2,
        release={"strategy": "canary", "canaryImage": f"{IMAGE}:0.3.0", "weight": 0},
    )
    assert ops.get(("Deployment", DEV_NS, "web-canary")) == "delete", ops
    assert ops.get(("Deployment", DEV_NS, "web"), "same") == "same", ops  # stable keeps 2 pods


def test_dev_blue_green_flip_moves_traffic_without_restarting_pods(
    engine: Engine, kube: Kube
) -> None:
    # Switch to blue-green (a strategy switch: its replacements are what the prediction says),
    # with the new version on the idle colour.
    change_and_check(
        engine,
        "dev",
        "strategy blueGreen",
        release={"strategy": "blueGreen", "active": "blue", "greenImage": f"{IMAGE}:0.2.0"},
    )
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    pods_before = {
        p["metadata"]["uid"] for c in ("blue", "green") for p in web_pods(kube, DEV_NS, f"web-{c}")
    }
    ops = change_and_check(
        engine,
        "dev",
        "blue-green flip",
        release={"strategy": "blueGreen", "active": "green", "greenImage": f"{IMAGE}:0.2.0"},
    )
    assert set(ops.values()) == {"update"}, ops
    assert {k[0] for k in ops} <= {"Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}, ops
    svc = kube.get("Service", "web", DEV_NS)
    green = kube.get("Deployment", "web-green", DEV_NS)
    selector = svc["spec"]["selector"]
    labels = green["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in selector.items()), (selector, labels)
    pods_after = {
        p["metadata"]["uid"] for c in ("blue", "green") for p in web_pods(kube, DEV_NS, f"web-{c}")
    }
    assert pods_after == pods_before, "the flip restarted pods"


def test_dev_leaving_blue_green_runs_both_colours_beside_the_new_deployment(
    engine: Engine, kube: Kube
) -> None:
    """Blue-green -> rolling in one update: with a quota sized for the new strategy alone, the
    new Deployment's pods were refused (`exceeded quota: appstack-quota`) while both colours
    still ran, and the update waited for the provider's timeout."""
    ops = change_and_check(engine, "dev", "strategy rolling", release={"strategy": "rolling"})
    assert ops.get(("Deployment", DEV_NS, "web-blue")) == "delete", ops
    assert ops.get(("Deployment", DEV_NS, "web-green")) == "delete", ops
    assert ops.get(("Deployment", DEV_NS, "web")) == "create", ops
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    assert kube.get("Deployment", "web", DEV_NS)["status"].get("readyReplicas")


# Argo Rollouts on and off, each in one update (issue 27 item 2). No Argo controller runs
# here: it is emulated by the one write it makes to a Service, a strategic merge patch of
# `rollouts-pod-template-hash` into spec.selector (argo-rollouts rollout/service.go
# `switchServiceSelector`), under its field manager, as the HPA's write is emulated above.
ARGO_MANAGER = "rollouts-controller"
ARGO_HASH = "rollouts-pod-template-hash"


def selector_owners(obj: dict[str, Any]) -> set[str]:
    """Field managers that own .spec.selector (an atomic map on a Service: owned whole)."""
    return {
        f["manager"]
        for f in obj["metadata"].get("managedFields") or []
        if "f:selector" in ((f.get("fieldsV1") or {}).get("f:spec") or {})
    }


def emulate_argo_switch(kube: Kube, service: str, value: str) -> None:
    """The one write Argo Rollouts makes to a Service it manages: a strategic merge patch of
    its hash into spec.selector and its managed-by annotation (argo-rollouts
    rollout/service.go `switchServiceSelector`, `switchSelectorAndAddManagedByPatch`), under
    its field manager."""
    kube.patch(
        "Service", service,
        {"metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "web"}},
         "spec": {"selector": {ARGO_HASH: value}}},
        namespace=DEV_NS, content_type=STRATEGIC_MERGE_PATCH, field_manager=ARGO_MANAGER,
    )  # fmt: skip


class ArgoSwitchStandIn:
    """The controller's first blue-green switch, during the `pulumi up` that creates the Rollout
    (no Argo controller runs in this tier; `make e2e-rollouts-node` runs the real one).

    A blue-green Rollout is awaited until `status.blueGreen.activeSelector` is set
    (components/app/workloads.py `_rollout_annotations`), so the update cannot end before the
    controller has switched. This stand-in does what the controller does once the program's apply
    has dropped the Services' selectors and its ReplicaSet is available: its write to each
    Service (`emulate_argo_switch`), then the status it records (rollout/bluegreen.go). It
    records each Service's selector as it found it: None proves the program's apply came
    first."""

    def __init__(self, kube: Kube, services: tuple[str, ...], value: str) -> None:
        self.kube, self.services, self.value = kube, services, value
        self.found: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="argo-stand-in", daemon=True)

    def __enter__(self) -> ArgoSwitchStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=330)
        assert not self.thread.is_alive(), "the stand-in never switched"
        if self.error is not None:
            raise self.error

    def _ready(self) -> bool:
        if self.kube.get_or_none("Rollout", "web", DEV_NS) is None:
            return False
        selectors = [
            self.kube.get("Service", n, DEV_NS)["spec"].get("selector") for n in self.services
        ]
        return all(s is None for s in selectors)

    def _run(self) -> None:
        try:
            self.kube.wait_for("the program's apply of the selectorless Services", self._ready,
                               timeout=300, interval=0.2)  # fmt: skip
            for name in self.services:
                self.found[name] = self.kube.get("Service", name, DEV_NS)["spec"].get("selector")
                assert selector_owners(self.kube.get("Service", name, DEV_NS)) == set(), name
                assert_argo_valid(self.kube, name)
                emulate_argo_switch(self.kube, name, self.value)
            status = {"blueGreen": {"activeSelector": self.value, "previewSelector": self.value}}
            self.kube.patch("Rollout", "web", {"status": status}, namespace=DEV_NS,
                            subresource="status", field_manager=ARGO_MANAGER)  # fmt: skip
        except BaseException as exc:  # handed to the test by __exit__
            self.error = exc


def assert_argo_valid(kube: Kube, service: str) -> None:
    """What the controller checks before it touches a Service (argo-rollouts
    pkg/apis/rollouts/validation/validation_references.go `ValidateService`): every key of the
    live selector but its hash is a label of the Rollout's pod template, with that value."""
    selector = kube.get("Service", service, DEV_NS)["spec"].get("selector") or {}
    labels = kube.get("Rollout", "web", DEV_NS)["spec"]["template"]["metadata"]["labels"]
    unmatched = {k: v for k, v in selector.items() if k != ARGO_HASH and labels.get(k) != v}
    assert unmatched == {}, (service, selector, labels)


def assert_no_selector_risk(engine: Engine) -> None:
    """`stackctl diff` of the pending change raises neither a stale selector nor a field
    another controller owns."""
    diff = engine.stackctl("diff", "dev", "--base", "HEAD", check=False)
    assert diff.returncode in (0, 3), diff.tail()
    assert "stale-selector" not in diff.stdout and "controller-owned" not in diff.stdout, (
        diff.stdout
    )


def test_dev_argo_rollouts_on_then_off_each_in_one_update(engine: Engine, kube: Kube) -> None:
    doc = engine.read_config("dev")
    doc["config"]["appstack:monitoring"] = {"enabled": True}  # argoRollouts needs it
    engine.write_config("dev", doc)
    rolling = kube.get("Service", "web", DEV_NS)["spec"]["selector"]
    # The program sets no selector on a Service Argo manages: the update's apply drops the one
    # its field manager owned (components/app/component.py `_route_selector`); the controller
    # (its stand-in) then points both Services at its ReplicaSet, and only then does the update
    # end, deleting the old Deployment (the Rollout's await).
    with ArgoSwitchStandIn(kube, ("web", "web-preview"), "6f8d9c7b5") as argo:
        ops = change_and_check(
            engine, "dev", "argoRollouts on",
            release={"strategy": "blueGreen", "argoRollouts": True},
        )  # fmt: skip
    assert ops.get(("Rollout", DEV_NS, "web")) == "create", ops
    assert ops.get(("Deployment", DEV_NS, "web")) == "delete", ops
    assert argo.found == {"web": None, "web-preview": None}
    for name in ("web", "web-preview"):
        svc = kube.get("Service", name, DEV_NS)
        assert svc["spec"]["selector"] == {ARGO_HASH: "6f8d9c7b5"}, (name, svc["spec"])
        assert selector_owners(svc) == {ARGO_MANAGER}, name
    # Under Argo an update of the Service (an annotation; an image bump alone no longer touches
    # it: the version label is on workloads only) leaves the selector the controller owns: the
    # apply carries no selector.
    ops = change_and_check(
        engine, "dev", "argo image bump and a Service annotation", image=f"{IMAGE}:1.1.0",
        service={"annotations": {"example.com/team": "shop"}},
    )  # fmt: skip
    assert ops.get(("Rollout", DEV_NS, "web")) == "update", ops
    assert ops.get(("Service", DEV_NS, "web")) == "update", ops
    web = kube.get("Service", "web", DEV_NS)
    assert web["spec"]["selector"] == {ARGO_HASH: "6f8d9c7b5"}
    assert selector_owners(web) == {ARGO_MANAGER}
    # Off: the Service takes its selector back in the same update, forced (no conflict with
    # the controller's ownership), without the hash of the Rollout's pods.
    ops = change_and_check(
        engine, "dev", "argoRollouts off", release={"strategy": "rolling"}, service=None
    )
    assert ops.get(("Rollout", DEV_NS, "web")) == "delete", ops
    assert ops.get(("Deployment", DEV_NS, "web")) == "create", ops
    assert ops.get(("Service", DEV_NS, "web")) == "update", ops
    web = kube.get("Service", "web", DEV_NS)
    assert web["spec"]["selector"] == rolling, web["spec"]["selector"]
    assert ARGO_MANAGER not in selector_owners(web)
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    assert {p["metadata"]["name"] for p in web_pods(kube, DEV_NS)}, "no pod behind the Service"


def test_dev_argo_on_straight_from_blue_green_in_one_update(engine: Engine, kube: Kube) -> None:
    """Issue 27 item 2, the rest. Entering argoRollouts straight from blueGreen, whose Services
    select a colour the Rollout's pods lack, is one update: the Services Argo manages carry no
    selector in the render, so that update's apply drops the colour the program's manager
    owned (no ignore_changes: the engine would keep the old input, pulumi
    pkg/resource/deploy/step_generator.go processIgnoreChanges). The controller's validation
    then passes and its hash alone selects the Rollout's pods; it owns the selector from then
    on, and the program never applies it until argoRollouts is turned off (forced)."""
    change_and_check(
        engine, "dev", "strategy blueGreen (before Argo)",
        release={"strategy": "blueGreen", "active": "blue"},
    )  # fmt: skip
    colour = {n: kube.get("Service", n, DEV_NS)["spec"]["selector"] for n in ("web", "web-preview")}
    assert all(set(s) - {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
               for s in colour.values()), colour  # fmt: skip
    engine.edit_app("dev", "web", release={"strategy": "blueGreen", "argoRollouts": True})
    assert_no_selector_risk(engine)
    with ArgoSwitchStandIn(kube, ("web", "web-preview"), "5d7c8b9f4") as argo:
        ops = change_and_check(
            engine, "dev", "argoRollouts on straight from blueGreen",
            release={"strategy": "blueGreen", "argoRollouts": True},
        )  # fmt: skip
    assert ops.get(("Rollout", DEV_NS, "web")) == "create", ops
    assert ops.get(("Deployment", DEV_NS, "web-blue")) == "delete", ops
    assert ops.get(("Deployment", DEV_NS, "web-green")) == "delete", ops
    assert argo.found == {"web": None, "web-preview": None}  # the colour was gone first
    for name in ("web", "web-preview"):
        svc = kube.get("Service", name, DEV_NS)
        assert svc["spec"]["selector"] == {ARGO_HASH: "5d7c8b9f4"}, (name, svc["spec"])
        assert selector_owners(svc) == {ARGO_MANAGER}, name
    # The next update under Argo leaves the controller's selector alone.
    engine.edit_app("dev", "web", image=f"{IMAGE}:1.2.0")
    assert_no_selector_risk(engine)
    change_and_check(engine, "dev", "argo image bump (from blueGreen)", image=f"{IMAGE}:1.2.0")
    for name in ("web", "web-preview"):
        svc = kube.get("Service", name, DEV_NS)
        assert svc["spec"]["selector"] == {ARGO_HASH: "5d7c8b9f4"}, (name, svc["spec"])
        assert selector_owners(svc) == {ARGO_MANAGER}, name
    # Back to blueGreen without Argo in one update: the colour selectors return, forced.
    change_and_check(
        engine, "dev", "argoRollouts off back to blueGreen",
        release={"strategy": "blueGreen", "active": "blue"},
    )  # fmt: skip
    for name, selector in colour.items():
        svc = kube.get("Service", name, DEV_NS)
        assert svc["spec"]["selector"] == selector, (name, svc["spec"])
        assert ARGO_MANAGER not in selector_owners(svc), name
    change_and_check(
        engine, "dev", "strategy rolling (after Argo)", release={"strategy": "rolling"}
    )
    wait_workloads_available(kube, [DEV_NS], timeout=90)


def test_dev_argo_on_straight_from_an_ingress_canary_in_one_update(
    engine: Engine, kube: Kube
) -> None:
    """Issue 27 item 2, the Ingress canary: its Services select `appstack.io/track` (stable,
    canary), which the Rollout's pods lack. One update turns Argo on (the Services lose their
    selector), the controller's hash follows under its field manager, and one update leaves."""
    ingress = {"enabled": True, "host": "web.dev.example.com"}
    change_and_check(
        engine, "dev", "canary by Ingress (before Argo)", ingress=ingress,
        release={"strategy": "canary", "canaryImage": f"{IMAGE}:1.3.0", "weight": 10},
    )  # fmt: skip
    track = {n: kube.get("Service", n, DEV_NS)["spec"]["selector"] for n in ("web", "web-canary")}
    assert {s.get("appstack.io/track") for s in track.values()} == {"stable", "canary"}, track
    engine.edit_app("dev", "web", release={"strategy": "canary", "argoRollouts": True})
    assert_no_selector_risk(engine)
    ops = change_and_check(
        engine, "dev", "argoRollouts on straight from an Ingress canary",
        release={"strategy": "canary", "argoRollouts": True},
    )  # fmt: skip
    assert ops.get(("Rollout", DEV_NS, "web")) == "create", ops
    for name in ("web", "web-canary"):
        svc = kube.get("Service", name, DEV_NS)
        assert "selector" not in svc["spec"], (name, svc["spec"])  # the track is gone
        assert selector_owners(svc) == set(), name
        assert_argo_valid(kube, name)
        emulate_argo_switch(kube, name, "7b9c6d5f8")
        assert selector_owners(kube.get("Service", name, DEV_NS)) == {ARGO_MANAGER}, name
    ops = change_and_check(
        engine, "dev", "argoRollouts off to rolling, Ingress off",
        release={"strategy": "rolling"}, ingress=None,
    )  # fmt: skip
    assert ops.get(("Service", DEV_NS, "web-canary")) == "delete", ops
    web = kube.get("Service", "web", DEV_NS)
    assert web["spec"]["selector"] == {
        k: v for k, v in track["web"].items() if k != "appstack.io/track"
    }, web["spec"]
    assert ARGO_MANAGER not in selector_owners(web)
    wait_workloads_available(kube, [DEV_NS], timeout=90)


def history_versions(engine: Engine) -> list[int]:
    rows = json.loads(engine.pulumi("stack", "history", "--json", "--stack", "dev").stdout)
    return sorted(int(r["version"]) for r in rows)


def test_dev_lowering_requests_is_refused_then_fits_in_the_named_updates(
    engine: Engine, kube: Kube, tmp_path: Path
) -> None:
    """Issue 27 item 1, the rest. The quota is sized from the config being applied, and the
    old pods keep their old requests until the new ones replace them: lowering requests.cpu
    50m -> 5m leaves the rollout's peak above the new quota. `stackctl diff` refuses it
    (risk `quota`) and `stackctl deploy` refuses it before any change, naming the headroom
    that fits; the two updates it names then run under the real engine, each converging.
    Quota admission is the API server's: the live quota's `status.used` (the old pods) plus
    one surge pod at the new request is above the refused render's `hard`."""
    used = kube.get("ResourceQuota", "appstack-quota", DEV_NS)["status"]["used"]
    engine.edit_app("dev", "web", resources={"requests": {"cpu": "5m"}})
    diff = engine.stackctl("diff", "dev", "--base", "HEAD", check=False)
    assert diff.returncode == 3, diff.tail()
    text = " ".join(diff.stdout.split())
    assert "quota: ResourceQuota appstack-quota" in text, diff.stdout
    found = re.search(r"1\) this change with appstack:namespaceQuota\.headroomPercent: (\d+)", text)
    assert found, diff.stdout
    headroom = int(found.group(1))
    # The API server's own count says the refused quota cannot admit the rollout's first pod.
    out = tmp_path / "refused"
    engine.stackctl("render", "dev", "--out", str(out))
    (quota_file,) = out.glob("*/resourcequota-appstack-quota.yaml")
    hard = yaml.safe_load(quota_file.read_text())["spec"]["hard"]
    assert amount(used["requests.cpu"]) + amount("5m") > amount(hard["requests.cpu"]), (
        used,
        hard,
    )
    # stackctl deploy runs the same check against the deployed state: refused, nothing ran.
    versions = history_versions(engine)
    refused = engine.stackctl("deploy", "dev", "--yes", policy_cli=True, check=False)
    assert refused.returncode == 3, refused.tail()
    assert "refused before any change" in refused.stderr and "quota:" in refused.stderr, (
        refused.tail()
    )
    assert history_versions(engine) == versions
    # 1) the change with the named headroom; 2) the headroom back. Each converges.
    doc = engine.read_config("dev")
    doc["config"]["appstack:namespaceQuota"] = {"headroomPercent": headroom}
    engine.write_config("dev", doc)
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    settle(engine, "dev", {("ResourceQuota", DEV_NS, "appstack-quota"): "update"}, "headroom")
    wait_workloads_available(kube, [DEV_NS], timeout=90)
    requests = {
        c["resources"]["requests"]["cpu"]
        for p in web_pods(kube, DEV_NS)
        for c in p["spec"]["containers"]
    }
    assert requests == {"5m"}, requests
    engine.commit("e2e: requests lowered with the named headroom")
    doc = engine.read_config("dev")
    doc["config"].pop("appstack:namespaceQuota")
    engine.write_config("dev", doc)
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    settle(engine, "dev", {("ResourceQuota", DEV_NS, "appstack-quota"): "update"}, "headroom back")
    engine.commit("e2e: headroom back")
    live = kube.get("ResourceQuota", "appstack-quota", DEV_NS)
    assert amount(live["status"]["used"]["requests.cpu"]) <= amount(
        live["spec"]["hard"]["requests.cpu"]
    ), live["status"]


def test_dev_destroy_removes_the_stack(engine: Engine, kube: Kube) -> None:
    engine.pulumi("destroy", "--yes", "--skip-preview", "--stack", "dev")

    def gone() -> bool:
        ns = kube.get_or_none("Namespace", DEV_NS)
        return ns is None or ns["status"].get("phase") == "Terminating"

    kube.wait_for(f"namespace {DEV_NS} deleted", gone, timeout=60)


# ================================================================ prod


def test_prod_preview_then_up_creates_every_object(
    engine: Engine, kube: Kube, cluster: Cluster
) -> None:
    engine.init_stack("prod")
    # pulumi-resource-random cannot be built (the module proxy serves no version of it): use the
    # documented alternative, an existing Secret (jenkins.admin.existingSecret); kwok starts pods
    # without reading it.
    doc = engine.read_config("prod")
    doc["config"]["appstack:jenkins"].setdefault("admin", {})["existingSecret"] = "jenkins-admin"
    engine.write_config("prod", doc)
    engine.commit("e2e: prod stack initialised")
    assert_one_reading(engine, "prod")
    steps = engine.preview_steps("prod")
    assert {s.op for s in steps} == {"create"}
    engine.up("prod", timing="pulumi up prod (from empty)")
    live = assert_state_matches_cluster(engine, kube, "prod")
    kinds = {o["kind"] for o in live}
    assert kinds >= {
        "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor",
        "PrometheusRule", "StatefulSet", "PersistentVolumeClaim",
    }, kinds  # fmt: skip
    wait_workloads_available(kube, [PROD_NS, JENKINS_NS], timeout=120)
    for ns in (PROD_NS, JENKINS_NS):
        assert assert_pods_admitted_restricted(kube, ns) >= 1
    web = kube.get("Service", "web", PROD_NS)
    assert web["spec"]["type"] == "LoadBalancer"
    assert web["status"]["loadBalancer"]["ingress"], "LB emulator did not assign an address"
    assert_spread(kube, web_pods(kube, PROD_NS), ("kubernetes.io/hostname", ZONE_KEY))
    for pvc in kube.list("PersistentVolumeClaim", JENKINS_NS):
        assert pvc["status"]["phase"] == "Bound", pvc["status"]
    cluster.assert_running()


def test_prod_second_up_changes_nothing(engine: Engine) -> None:
    engine.up("prod", timing="pulumi up prod (no changes)")
    engine.pulumi("preview", "--expect-no-changes", "--stack", "prod")


def test_prod_policy_pack_passes(engine: Engine) -> None:
    engine.pulumi_policy(
        "preview", "--stack", "prod", "--policy-pack", "policy",
        "--policy-pack-config", "policy/config/prod.json",
    )  # fmt: skip


def test_prod_image_bump_under_a_scaling_hpa(engine: Engine, kube: Kube) -> None:
    kube.patch(
        "Deployment", "web", {"spec": {"replicas": 6}}, namespace=PROD_NS,
        subresource="scale", field_manager=HPA_MANAGER,
    )  # fmt: skip
    wait_workloads_available(kube, [PROD_NS], timeout=90)
    image = f"{IMAGE}:0.1.1"
    engine.edit_app("prod", "web", image=image)
    source, predicted = predict(engine, "prod", "HEAD")
    ops = assert_engine_matches_prediction(source, predicted, engine.preview_steps("prod"))
    assert ops.get(("Deployment", PROD_NS, "web")) == "update", ops
    engine.up("prod", timing="pulumi up prod (image bump)")
    engine.commit("e2e: prod image bump")
    wait_workloads_available(kube, [PROD_NS], timeout=120)
    assert images(kube, PROD_NS) == {image}
    assert kube.get("Deployment", "web", PROD_NS)["spec"]["replicas"] == 6


def test_prod_destroy_stops_at_jenkins_home(engine: Engine, kube: Kube) -> None:
    pvcs = {p["metadata"]["name"]: p for p in kube.list("PersistentVolumeClaim", JENKINS_NS)}
    assert pvcs, "no JENKINS_HOME claim"
    res = engine.pulumi("destroy", "--yes", "--skip-preview", "--stack", "prod", check=False)
    assert res.returncode != 0, "destroy went through a protected JENKINS_HOME"
    assert "protect" in (res.stdout + res.stderr).lower(), res.tail()
    time.sleep(2)
    for name, before in pvcs.items():
        after = kube.get("PersistentVolumeClaim", name, JENKINS_NS)
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert after["status"]["phase"] == "Bound"
        assert after["spec"]["volumeName"] == before["spec"]["volumeName"]
        pv = kube.get("PersistentVolume", after["spec"]["volumeName"])
        assert pv["status"]["phase"] == "Bound"

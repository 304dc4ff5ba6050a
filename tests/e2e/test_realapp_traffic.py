"""`make e2e-app`: traffic through prod's Service while every kind of release changes it, and
graceful shutdown of the pods it terminates (issue 28 item 5, item 6's traffic figures).

prod of the shipped stack file runs on the real nodes (the `real_app` fixture, e2e/realapp.py).
A bounded load (e2e/load.py: 20 keep-alive clients, at most 200 requests per second, stopped when
the change has settled) goes from the host to the Service's LoadBalancer stand-in address (the
host routes it to the nodes, whose kube-proxy DNATs it to a pod, source ranges checked), during:
an image bump under the HPA, an env change, a blue-green flip, each canary step and the
promotion, `stackctl rollback --steps 1`, and a drain of a node (cordon + the Eviction API, as
`kubectl drain` does). Asserted for each: zero failed requests (an HTTP error, a timeout, a reset
in the middle of a request); and for every pod the change terminated, that it stopped being a
ready endpoint (its EndpointSlice, watched) before its process stopped, and that it exited 0
(the app exits 0 once drained). Reconnects (the server closed an idle keep-alive connection),
p50/p99 latency, and the load average at the start and the end are figures
(`realnode.traffic.<scenario>.*`), not assertions.

Each canary step's split is measured with a connection per request (the app names the pod that
answered: `host` in `GET /`) and compared, per track, with the share the replica counts give
(the render: canary pods = the rendered `web-canary` replicas; kube-proxy picks a ready endpoint
uniformly per connection), by the exact binomial test at SPLIT_ALPHA (tests/e2e/traffic_kit.py).

The HPA: metrics-server runs on the real nodes (an add-on of e2e/realnode), so prod's HPA reads
real CPU and may scale the stable Deployment (at prod's request and target this bounded load
stays below it; `tests/e2e/test_realapp_hpa.py` drives a scale-out on purpose). The stable count
is therefore the HPA's, read from the live Deployment, never less than the rendered minReplicas;
whether the HPA is active is recorded as a figure.

The scenarios run in order on the same prod stack; the module restores prod's shipped release
(rolling, the built digest, uncordoned nodes) at its end. Each scenario sets up the release it
needs, so the real-node lock can be held for a subset at a time (`-k "image_bump or env_change
or rollback or drain"`, then `-k "blue_green or canary"`); the rollback goes back one update,
whichever it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e.kube import ApiError
from e2e.load import Load, LoadReport, LoadSpec
from e2e.realapp import RealApp
from e2e.realnode.layout import LAYOUT
from stackctl.render.stack import render_stack
from tests.e2e.traffic_kit import Timeline, graceful_problems, grouped, split_problems

pytestmark = pytest.mark.realapp

ENV = "prod"
APP = "web"
TRACK = "appstack.io/track"
COLOUR = "appstack.io/colour"
CLIENTS = 20
RATE = 200.0
TIMEOUT = 10.0
SPLIT_REQUESTS = 1200
SPLIT_RATE = 150.0
# After a change settled, the terminated pods' last seconds (preStop, drain) end within the
# rendered terminationGracePeriodSeconds; wait that long at most for them to be removed.
SETTLE_TIMEOUT = 240.0


def _rendered(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
    )
    return found


def _app(doc: dict[str, Any]) -> dict[str, Any]:
    app: dict[str, Any] = doc["config"]["appstack:apps"][APP]
    return app


class Traffic:
    """prod under load while `change()` runs; the report, the timeline, the figures."""

    def __init__(self, real_app: RealApp, figures: dict[str, float]) -> None:
        self.real_app, self.figures = real_app, figures
        self.stack = real_app.stacks[ENV]
        svc = self.stack.services[APP]
        self.host, self.port = svc["loadBalancerIP"], svc["ports"]["http"]
        assert self.host, f"no LoadBalancer address on Service {APP}: {svc}"
        self.selector = f"app.kubernetes.io/name={APP},app.kubernetes.io/instance={ENV}"

    def timeline(self) -> Timeline:
        return Timeline(self.real_app.kube, self.stack.namespace, APP, self.selector)

    def during(self, scenario: str, change: Callable[[], Any]) -> tuple[LoadReport, Timeline]:
        spec = LoadSpec(self.host, self.port, clients=CLIENTS, rate=RATE, duration=None,
                        timeout=TIMEOUT)  # fmt: skip
        with self.timeline() as timeline:
            load = Load(spec).start()
            try:
                started = time.monotonic()
                change()
                wall = time.monotonic() - started
                # the pods the change terminated finish their shutdown under the same load
                timeline.wait_gone({t.name for t in timeline.terminated()}, SETTLE_TIMEOUT)
            finally:
                load.stop()
                report = load.wait()
            timeline.check()
        prefix = f"realnode.traffic.{scenario}"
        self.figures.update(report.figures(prefix))
        self.figures[f"{prefix}.change_wall_s"] = wall
        self.figures[f"{prefix}.pods_terminated"] = float(len(timeline.terminated()))
        margins = [
            t.finished_at - t.endpoint_left_at
            for t in timeline.terminated()
            if t.finished_at is not None and t.endpoint_left_at is not None
        ]
        if margins:  # finishedAt is truncated to the second: a lower bound of the margin
            self.figures[f"{prefix}.endpoint_left_before_stop_min_s"] = min(margins)
        print(f"{scenario}: {report.summary()}; change {wall:.1f}s")
        return report, timeline

    def assert_clean(self, scenario: str, report: LoadReport, timeline: Timeline) -> None:
        assert report.failed_total == 0, f"{scenario}: {report.summary()}"
        assert report.requests > 0
        problems = graceful_problems(timeline)
        assert not problems, f"{scenario}: {problems}"

    def split(self, scenario: str, label: str) -> dict[str, int]:
        """A connection per request; counts per value of the answering pod's `label`."""
        with self.timeline() as timeline:
            spec = LoadSpec(self.host, self.port, clients=CLIENTS, rate=SPLIT_RATE,
                            duration=SPLIT_REQUESTS / SPLIT_RATE, timeout=TIMEOUT,
                            per_request=True, split_field="host")  # fmt: skip
            report = Load(spec).start().wait()
            timeline.check()
            group_of = {t.name: t.labels.get(label, "") for t in timeline.pods.values()}
            ready = timeline.ready_endpoints()
        assert report.failed_total == 0, f"{scenario}: {report.summary()}"
        counts = grouped(report.split, group_of)
        self.figures.update(report.figures(f"realnode.traffic.{scenario}"))
        self.ready_by_group = {
            g: sum(1 for name in ready if group_of.get(name) == g) for g in set(group_of.values())
        }
        print(f"{scenario}: split {counts}, ready endpoints {self.ready_by_group}")
        return counts

    def deploy(self, digest: str | None, edit: Callable[[dict[str, Any]], None] | None) -> None:
        self.real_app.deploy(ENV, digest, edit=edit)


@pytest.fixture(scope="module")
def traffic(real_app: RealApp, figures: dict[str, float]) -> Iterator[Traffic]:
    yield Traffic(real_app, figures)
    # Restore the shipped release for whatever runs next: rolling, the built digest, no cordon.
    for spec in LAYOUT:
        real_app.kube.patch("Node", spec.name, {"spec": {"unschedulable": None}})

    def shipped(doc: dict[str, Any]) -> None:
        _app(doc).pop("release", None)
        _app(doc)["env"].pop("E2E_TRAFFIC_STEP", None)

    real_app.deploy(ENV, None, edit=shipped)


@pytest.fixture(scope="module")
def digests(real_app: RealApp) -> dict[str, str]:
    """Images of the app for the releases below: same layers, different digests."""
    names = ("bump", "green", "canary")
    return {name: real_app.variant(name) for name in names}


def test_image_bump_under_the_hpa(
    traffic: Traffic, real_app: RealApp, digests: dict[str, str], figures: dict[str, float]
) -> None:
    report, timeline = traffic.during("image_bump", lambda: traffic.deploy(digests["bump"], None))
    traffic.assert_clean("image_bump", report, timeline)
    images = {p["spec"]["containers"][0]["image"] for p in real_app.pods(ENV)}
    assert images == {real_app.ref(digests["bump"])}, images
    hpa = real_app.kube.get("HorizontalPodAutoscaler", APP, traffic.stack.namespace)
    conditions = {c["type"]: c for c in (hpa.get("status") or {}).get("conditions") or []}
    active = conditions.get("ScalingActive", {})
    # metrics-server serves the HPA's CPU metric on the real nodes (ScalingActive True).
    figures["realnode.traffic.image_bump.hpa_scaling_active"] = float(
        active.get("status") == "True"
    )
    print(f"HPA ScalingActive={active.get('status')} ({active.get('reason')}): "
          f"{active.get('message', '')[:160]}")  # fmt: skip
    assert len(real_app.pods(ENV)) >= hpa["spec"]["minReplicas"]


def test_env_change(traffic: Traffic, digests: dict[str, str]) -> None:
    def edit(doc: dict[str, Any]) -> None:
        _app(doc).setdefault("env", {})["E2E_TRAFFIC_STEP"] = "env-change"

    report, timeline = traffic.during("env_change", lambda: traffic.deploy(digests["bump"], edit))
    traffic.assert_clean("env_change", report, timeline)
    assert timeline.terminated(), "an env change rolls the pods (content-named ConfigMap)"


def test_blue_green_flip(traffic: Traffic, real_app: RealApp, digests: dict[str, str]) -> None:
    green = real_app.ref(digests["green"])

    def blue_green(doc: dict[str, Any]) -> None:
        _app(doc)["release"] = {"strategy": "blueGreen", "active": "blue", "greenImage": green}

    # The switch from rolling to blue-green replaces the Deployment (docs/releases.md: a
    # maintenance-window change), so it is made without the load; the flip is measured.
    traffic.deploy(digests["bump"], blue_green)

    def flip(doc: dict[str, Any]) -> None:
        _app(doc)["release"]["active"] = "green"

    report, timeline = traffic.during("blue_green_flip",
                                      lambda: traffic.deploy(digests["bump"], flip))  # fmt: skip
    traffic.assert_clean("blue_green_flip", report, timeline)
    assert not timeline.terminated(), "a flip changes selectors only, no pod restarts"
    counts = traffic.split("blue_green_after_flip", COLOUR)
    assert set(counts) == {"green"}, f"new connections after the flip: {counts}"


@pytest.mark.parametrize("weight", [10, 25, 50, 100])
def test_canary_step(
    weight: int, traffic: Traffic, real_app: RealApp, digests: dict[str, str],
    figures: dict[str, float],
) -> None:  # fmt: skip
    canary = real_app.ref(digests["canary"])

    def step(doc: dict[str, Any]) -> None:
        _app(doc)["release"] = {"strategy": "canary", "canaryImage": canary, "weight": weight}

    scenario = f"canary_{weight}"
    if weight == 10:  # from blue-green to canary replaces the Deployments: not under load
        traffic.deploy(digests["bump"], step)
    else:
        report, timeline = traffic.during(scenario, lambda: traffic.deploy(digests["bump"], step))
        traffic.assert_clean(scenario, report, timeline)
    # the oracle: the render of the stack file as deployed for the canary replicas; the stable
    # track is the HPA's (it owns spec.replicas), never below the rendered minReplicas
    objects = render_stack(ENV, real_app.engine.project).objects
    canary_replicas = _rendered(objects, "Deployment", f"{APP}-canary")["spec"]["replicas"]
    stable_min = _rendered(objects, "HorizontalPodAutoscaler", APP)["spec"]["minReplicas"]
    counts = traffic.split(f"{scenario}_split", TRACK)
    ready = traffic.ready_by_group
    stable_now = real_app.kube.get("Deployment", APP, traffic.stack.namespace)["spec"]["replicas"]
    assert stable_now >= stable_min, (stable_now, stable_min)
    assert (ready.get("canary"), ready.get("stable")) == (canary_replicas, stable_now), ready
    total = ready["canary"] + ready["stable"]
    expected = {"canary": ready["canary"] / total, "stable": ready["stable"] / total}
    n = sum(counts.values())
    figures[f"realnode.traffic.{scenario}_split.canary_share"] = counts.get("canary", 0) / n
    figures[f"realnode.traffic.{scenario}_split.expected_share"] = expected["canary"]
    figures[f"realnode.traffic.{scenario}_split.weight"] = weight / 100
    problems = split_problems(counts, expected)
    assert not problems, f"weight {weight}: {problems}"


def test_canary_promotion(traffic: Traffic, real_app: RealApp, digests: dict[str, str]) -> None:
    def promote(doc: dict[str, Any]) -> None:
        _app(doc)["release"] = {"strategy": "canary", "weight": 0,
                                "canaryImage": real_app.ref(digests["canary"])}  # fmt: skip

    report, timeline = traffic.during(
        "canary_promote", lambda: traffic.deploy(digests["canary"], promote)
    )
    traffic.assert_clean("canary_promote", report, timeline)
    images = {p["spec"]["containers"][0]["image"] for p in real_app.pods(ENV)}
    assert images == {real_app.ref(digests["canary"])}, images


def test_stackctl_rollback_one_step(traffic: Traffic, real_app: RealApp) -> None:
    namespace = traffic.stack.namespace

    def rollback() -> None:
        real_app.engine.stackctl("rollback", ENV, "--steps", "1", "--yes", policy_cli=True)
        real_app.wait_settled(namespace)

    report, timeline = traffic.during("rollback", rollback)
    traffic.assert_clean("rollback", report, timeline)
    assert timeline.terminated(), "the rollback rolled pods back to the previous config"


def _evict(real_app: RealApp, namespace: str, name: str, deadline: float) -> None:
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}  # fmt: skip
    while True:
        try:
            real_app.kube.request("POST", f"api/v1/namespaces/{namespace}/pods/{name}/eviction",
                                  body)  # fmt: skip
            return
        except ApiError as exc:
            # 429: the PodDisruptionBudget refuses for now (kubectl drain retries); 404: gone
            if exc.status == 404:
                return
            if exc.status != 429 or time.monotonic() > deadline:
                raise AssertionError(f"eviction of {name}: {exc}") from None
        time.sleep(2)


def test_drain_of_a_node(traffic: Traffic, real_app: RealApp, figures: dict[str, float]) -> None:
    namespace = traffic.stack.namespace
    zone_a = [s.name for s in LAYOUT if s.zone == LAYOUT[0].zone]
    victim = next(p for p in real_app.pods(ENV) if p["spec"]["nodeName"] in zone_a)
    node = victim["spec"]["nodeName"]

    def drain() -> None:
        # kubectl drain: cordon, then evict every pod of the node through the Eviction API
        real_app.kube.patch("Node", node, {"spec": {"unschedulable": True}})
        deadline = time.monotonic() + SETTLE_TIMEOUT
        for pod in real_app.kube.list("Pod", namespace):
            if pod["spec"].get("nodeName") == node:
                _evict(real_app, namespace, pod["metadata"]["name"], deadline)
        real_app.wait_settled(namespace)

    report, timeline = traffic.during("drain", drain)
    traffic.assert_clean("drain", report, timeline)
    assert node not in {p["spec"]["nodeName"] for p in real_app.pods(ENV)}
    assert timeline.terminated()

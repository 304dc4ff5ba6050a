"""`make e2e-rollouts-node`: the stack's Argo Rollouts strategy run by the real controller (issue
30 item 2) on the real nodes.

What runs: the monitoring stack of `make e2e-monitoring-node` (prometheus-operator, Prometheus,
e2e/realnode/monitoring.py), the Argo Rollouts controller v1.10.2 in its own namespace
(e2e/realnode/rollouts.py: upstream's install.yaml, the image built here), and prod of `make
e2e-app` (the `real_app` fixture: registry, app image, `stackctl deploy prod`). Every change is
a config change through `stackctl deploy prod`, under a bounded load through prod's
LoadBalancer stand-in (e2e/load.py), in this order on the same stack:

1. rolling -> `{strategy: canary, argoRollouts: true}`: one update;
2. a good version (another digest of the app): the controller walks every setWeight step, each
   followed by its pause and the AnalysisTemplate's analysis against the real Prometheus, and
   promotes it;
3. a bad version (the app's fault switch `FAULT_ERROR_RATIO=0.5` in the new pod template): the
   first step's analysis fails and the controller aborts, the stable ReplicaSet takes all the
   traffic again; time to abort and failed requests are figures;
4. argoRollouts off (back to rolling): one update;
5. rolling -> `{strategy: blueGreen, argoRollouts: true}`: one update, the controller owning the
   Services' selectors;
6. blue-green: a good version passes its pre-promotion analysis (traffic to the preview Service
   from a node, as a tester would send), is promoted as `kubectl argo rollouts promote` does
   (its status patch), passes its post-promotion analysis; a bad version fails its pre-promotion
   analysis and is refused: the active Service never selects it;
7. argoRollouts off again: one update, the Service's selector taken back from the controller.

Shortened through config only (`appstack:apps.web.release`, `appstack:monitoring`):
`analysisIntervalSeconds` 10 (default 60), `analysisCount` 4 (default 5), `stepPauseSeconds` 15
(default 300), `steps` [50, 100] (default [10, 25, 50, 100]) and the ServiceMonitor's
`scrapeInterval` 5s (default 30s). No code path differs from a user's.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.kube import Kube
from e2e.load import Load, LoadReport, LoadSpec
from e2e.realnode import monitoring, rollouts
from e2e.realnode.nodes import RealNodes

pytestmark = [pytest.mark.realnode, pytest.mark.rolloutsnode]

ENV = "prod"
APP = "web"
ANALYSIS, CANARY_STEPS, FAULT = rollouts.ANALYSIS, rollouts.CANARY_STEPS, rollouts.FAULT
CANARY, BLUE_GREEN, SCRAPE_INTERVAL = rollouts.CANARY, rollouts.BLUE_GREEN, rollouts.SCRAPE_INTERVAL
#: The bounded user load (e2e/load.py): small, the machine has two cores for everything.
CLIENTS = 4
RATE = 40.0
TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def prometheus(kube: Kube, real_nodes: RealNodes, figures: dict[str, float]) -> Iterator[str]:
    """The monitoring stack of make e2e-monitoring-node, Ready; Prometheus' base URL."""
    missing = monitoring.missing_tools(real_nodes.binaries)
    assert not missing, f"missing {missing}: run `make e2e-monitoring-tools`"
    monitoring.import_images(real_nodes, real_nodes.binaries)
    monitoring.install(kube)
    monitoring.wait_ready(kube, timeout=420)
    yield f"http://{monitoring.prometheus_ip(kube)}:{monitoring.PROMETHEUS_PORT}"
    monitoring.uninstall(kube)


@pytest.fixture(scope="module")
def controller(
    kube: Kube, real_nodes: RealNodes, prometheus: str, figures: dict[str, float]
) -> Iterator[None]:
    """The Argo Rollouts controller running on a real node."""
    binaries = real_nodes.binaries
    missing = rollouts.missing_tools(binaries)
    assert not missing, f"missing {missing}: run `make e2e-rollouts-tools`"
    started = time.monotonic()
    rollouts.import_image(real_nodes, binaries)
    rollouts.install(kube, binaries)
    rollouts.wait_ready(kube)
    figures["rollouts.node.controller_ready_s"] = time.monotonic() - started
    yield
    rollouts.uninstall(kube, binaries)


@pytest.fixture(scope="module")
def prod(real_app: Any, controller: None) -> Any:
    """prod deployed (rolling, as shipped) with the tier's scrape interval."""

    def scrape(doc: dict[str, Any]) -> None:
        doc["config"].setdefault("appstack:monitoring", {})["scrapeInterval"] = SCRAPE_INTERVAL

    real_app.deploy(ENV, edit=scrape)
    return real_app


# ---------------------------------------------------------------------------- helpers


def _release(release: dict[str, Any] | None, env: dict[str, str] | None = None) -> Callable:
    """A stack-file edit: web's release (None: rolling, the key removed) and its env."""

    def edit(doc: dict[str, Any]) -> None:
        web = doc["config"]["appstack:apps"][APP]
        if release is None:
            web.pop("release", None)
        else:
            web["release"] = dict(release)
        base_env = {k: v for k, v in (web.get("env") or {}).items() if k not in FAULT}
        web["env"] = {**base_env, **(env or {})}

    return edit


class Traffic:
    """A bounded load through prod's LoadBalancer stand-in while a block runs; keep-alive
    connections unless `per_request` (a new connection, so a new endpoint, per request)."""

    def __init__(self, real_app: Any, per_request: bool = False) -> None:
        svc = real_app.stacks[ENV].services[APP]
        self.spec = LoadSpec(svc["loadBalancerIP"], svc["ports"]["http"], clients=CLIENTS,
                             rate=RATE, duration=None, timeout=TIMEOUT,
                             per_request=per_request)  # fmt: skip
        self.load: Load | None = None
        self.report: LoadReport | None = None

    def __enter__(self) -> Traffic:
        self.load = Load(self.spec).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.load is not None
        self.load.stop()
        self.report = self.load.wait()

    def recorded(self, figures: dict[str, float], name: str, also: str = "") -> LoadReport:
        """The ended load's report: its figures as `rollouts.node.<name>.*`, its summary
        printed (with `also` after it)."""
        report = self.report
        assert report is not None, "the load has not ended"
        figures.update(report.figures(f"rollouts.node.{name}"))
        print(f"{name}: {report.summary()}{also}")
        return report


def updates(real_app: Any) -> int:
    """Updates recorded in prod's history."""
    history = json.loads(
        real_app.engine.pulumi(
            "stack", "history", "--json", "--page-size", "0", "--stack", ENV
        ).stdout
        or "[]"
    )
    return sum(1 for h in history if h.get("kind") == "update")


def converged(real_app: Any) -> dict[tuple[str, str, str], str]:
    """What a preview would still change after the update (nothing, when it took one)."""
    from e2e.engine import changes

    return changes(real_app.engine.preview_steps(ENV))


def rollout(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get("Rollout", APP, namespace)
    return found


def wait_rollout(
    kube: Kube, namespace: str, what: str, check: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        ro = rollout(kube, namespace)
        status = ro.get("status") or {}
        if status.get("observedGeneration") != str(ro["metadata"]["generation"]):
            return None
        return ro if check(ro) else None

    try:
        found: dict[str, Any] = kube.wait_for(what, done, timeout=timeout, interval=1)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{rollouts.rollout_summary(kube, APP, namespace)}") from None
    return found


def healthy_at(hash_: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(ro: dict[str, Any]) -> bool:
        st = ro.get("status") or {}
        done = st.get("phase") == "Healthy" and st.get("stableRS") == st.get("currentPodHash")
        return done and (hash_ is None or st.get("stableRS") == hash_)

    return check


def aborted(ro: dict[str, Any]) -> bool:
    """The controller aborted the update (status.abort: an analysis failed)."""
    return bool((ro.get("status") or {}).get("abort"))


def analysis_runs(kube: Kube, namespace: str, pod_hash: str) -> list[dict[str, Any]]:
    """The AnalysisRuns of the ReplicaSet `pod_hash` (the controller labels each run with it)."""
    return [
        r
        for r in kube.list("AnalysisRun", namespace)
        if (r["metadata"].get("labels") or {}).get("rollouts-pod-template-hash") == pod_hash
    ]


def served_requests(base: str, namespace: str, pod_hash: str) -> float:
    """Requests the pods of `pod_hash` answered, as Prometheus scraped them (the series the
    analysis reads: the ServiceMonitor copies the hash label onto them)."""
    promql = (
        f'sum(http_requests_total{{namespace="{namespace}",job="{APP}",'
        f'rollouts_pod_template_hash="{pod_hash}"}})'
    )
    doc = monitoring.http_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    result = doc["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def pod_hashes(real_app: Any) -> set[str]:
    return {p["metadata"]["labels"].get("rollouts-pod-template-hash", "") for p in
            real_app.pods(ENV, APP)}  # fmt: skip


def endpoints(kube: Kube, namespace: str) -> list[tuple[str, str]]:
    """`<app>`'s endpoints: each pod's name with its conditions, `r`eady `s`erving
    `t`erminating (EndpointSlice, discovery.k8s.io/v1)."""
    slices = kube.list(
        "EndpointSlice", namespace, label_selector=f"kubernetes.io/service-name={APP}"
    )
    found = []
    for endpoint in (e for s in slices for e in s.get("endpoints") or []):
        c = endpoint.get("conditions") or {}
        flags = "".join(f[0] for f in ("ready", "serving", "terminating") if c.get(f))
        found.append((str((endpoint.get("targetRef") or {}).get("name")), flags))
    return sorted(found)


def described(found: list[tuple[str, str]]) -> str:
    return ", ".join(f"{pod}[{flags}]" for pod, flags in found)


def selector_owners(service: dict[str, Any]) -> list[str]:
    """Managers of a Service's `spec.selector`, an atomic map (core/v1 ServiceSpec.Selector
    `+mapType=atomic`): server-side apply's managedFields name the whole `f:selector`, never a
    key of it (the first run looked for the key and found no owner at all)."""
    return [
        m["manager"]
        for m in service["metadata"].get("managedFields") or []
        if "f:selector" in ((m.get("fieldsV1") or {}).get("f:spec") or {})
    ]


def switch(
    real_app: Any, figures: dict[str, float], name: str, edit: Callable, digest: str | None = None
) -> LoadReport:
    """One `stackctl deploy` under load; asserts it was one update and nothing is left to
    change; the load's report."""
    before = updates(real_app)
    with Traffic(real_app) as traffic:
        started = time.monotonic()
        real_app.deploy(ENV, digest, edit=edit)
        figures[f"rollouts.node.{name}.deploy_s"] = time.monotonic() - started
        time.sleep(5)  # the old workload's pods finish their shutdown under the load
    report = traffic.recorded(figures, name)
    assert updates(real_app) == before + 1
    assert converged(real_app) == {}, f"{name}: a second update would still change things"
    return report


class ServiceTimeline:
    """While a switch runs, polled: the Service's `rollouts-pod-template-hash`, its ready
    endpoints (EndpointSlices of discovery.k8s.io/v1, `conditions.ready`) and the Rollout's
    life; each change with its time from the start. The load's failures are read against it."""

    def __init__(self, kube: Kube, namespace: str, interval: float = 0.2) -> None:
        self.kube, self.namespace, self.interval = kube, namespace, interval
        self.changes: list[tuple[float, tuple[str, int, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-timeline", daemon=True)

    def state(self) -> tuple[str, int, str]:
        svc = self.kube.get("Service", APP, self.namespace)
        hash_ = (svc["spec"].get("selector") or {}).get("rollouts-pod-template-hash", "-")
        ready = sum(1 for _, flags in endpoints(self.kube, self.namespace) if "r" in flags)
        ro = self.kube.get_or_none("Rollout", APP, self.namespace)
        life = (
            "gone"
            if ro is None
            else "deleting"
            if ro["metadata"].get("deletionTimestamp")
            else "live"
        )
        return hash_, ready, life

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            found = self.state()
            if not self.changes or self.changes[-1][1] != found:
                self.changes.append((time.monotonic() - started, found))
            self._stop.wait(self.interval)

    def __enter__(self) -> ServiceTimeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def text(self) -> str:
        return "; ".join(
            f"{at:.1f}s hash={h} ready={r} rollout={life}" for at, (h, r, life) in self.changes
        )


# ---------------------------------------------------------------------------- the controller


def test_the_controller_runs_from_upstream_manifests_with_the_vendored_schemas(
    kube: Kube, real_nodes: RealNodes, controller: None
) -> None:
    """The controller pod runs on a real node from the image built here; the CRDs it serves
    are the ones the repo vendors (tests/schemas/crd/argoproj.io, what make test validates
    every rendered Rollout and AnalysisTemplate against)."""
    (pod,) = [
        p
        for p in kube.list("Pod", rollouts.NAMESPACE)
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert pod["spec"]["nodeName"] in {n.name for n in real_nodes.nodes}
    assert pod["spec"]["containers"][0]["image"] == rollouts.image()
    for crd in rollouts.crds(real_nodes.binaries):
        (version,) = crd["spec"]["versions"]
        kind = crd["spec"]["names"]["kind"].lower()
        vendored = REPO / "tests/schemas/crd/argoproj.io" / f"{kind}_{version['name']}.json"
        assert json.loads(vendored.read_text()) == version["schema"]["openAPIV3Schema"], kind
        live = kube.get("CustomResourceDefinition", crd["metadata"]["name"])
        (served,) = live["spec"]["versions"]
        assert served["schema"]["openAPIV3Schema"] == version["schema"]["openAPIV3Schema"]


# ---------------------------------------------------------------------------- canary


def test_switching_argo_rollouts_on_from_rolling_takes_one_update(
    kube: Kube, prod: Any, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    report = switch(prod, figures, "canary_on", _release(CANARY))
    ro = wait_rollout(kube, namespace, "the Rollout Healthy", healthy_at(), timeout=300)
    assert kube.get_or_none("Deployment", APP, namespace) is None
    assert pod_hashes(prod) == {ro["status"]["stableRS"]}
    hpa = kube.get("HorizontalPodAutoscaler", APP, namespace)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    assert report.failed_total == 0, report.summary()


def test_a_good_canary_is_promoted_through_every_step_by_its_analysis(
    kube: Kube, prod: Any, prometheus: str, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    stable = rollout(kube, namespace)["status"]["stableRS"]
    good = prod.variant("canary-good")
    # A connection per request: a basic canary's share of the traffic is its share of the
    # endpoints for each new connection (kube-proxy picks per connection). Keep-alive
    # connections opened before the deploy stay on stable pods, the canary's series never
    # appear, and its analysis reads the query's default 0: one run's bad canary passed its
    # first step that way.
    with Traffic(prod, per_request=True) as traffic:
        started = time.monotonic()
        prod.deploy(ENV, good, edit=_release(CANARY))
        ro = wait_rollout(kube, namespace, "the good canary promoted",
                          lambda r: healthy_at()(r) and r["status"]["stableRS"] != stable,
                          timeout=900)  # fmt: skip
        figures["rollouts.node.canary_good.deploy_to_promoted_s"] = time.monotonic() - started
    report = traffic.recorded(figures, "canary_good")
    new = ro["status"]["stableRS"]
    runs = analysis_runs(kube, namespace, new)
    assert len(runs) == len(CANARY_STEPS), rollouts.rollout_summary(kube, APP, namespace)
    for run in runs:
        (metric,) = run["status"]["metricResults"]
        assert run["status"]["phase"] == "Successful", run["status"]
        assert metric["count"] == ANALYSIS["analysisCount"], metric
        assert metric.get("failed", 0) == 0 and metric.get("error", 0) == 0, metric
    assert served_requests(prometheus, namespace, new) > 0, "the canary got no measured traffic"
    assert pod_hashes(prod) == {new}
    assert report.failed_total == 0, report.summary()


def test_a_bad_canary_is_aborted_and_traffic_goes_back_to_stable(
    kube: Kube, prod: Any, prometheus: str, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    stable = rollout(kube, namespace)["status"]["stableRS"]
    good = prod.stacks[ENV].images[APP].rsplit("@", 1)[1]
    bad = prod.variant("canary-bad")
    # A connection per request: a basic canary's share of the traffic is its share of the
    # endpoints for each new connection (kube-proxy picks per connection). Keep-alive
    # connections opened before the deploy stay on stable pods, the canary's series never
    # appear, and its analysis reads the query's default 0: one run's bad canary passed its
    # first step that way.
    with Traffic(prod, per_request=True) as traffic:
        # Timed from the start of the deploy (the update itself included: its wall time is
        # rollouts.node.canary_bad.deploy_s), as the user who deploys sees it.
        deployed = time.monotonic()
        prod.deploy(ENV, bad, edit=_release(CANARY, FAULT))
        figures["rollouts.node.canary_bad.deploy_s"] = time.monotonic() - deployed
        ro = wait_rollout(kube, namespace, "the bad canary aborted", aborted, timeout=600)
        figures["rollouts.node.canary_bad.deploy_to_abort_s"] = time.monotonic() - deployed
        bad_hash = ro["status"]["currentPodHash"]
        assert bad_hash != stable

        def back_on_stable() -> bool:
            return pod_hashes(prod) == {stable}

        kube.wait_for("only stable pods", back_on_stable, timeout=300, interval=1)
        figures["rollouts.node.canary_bad.deploy_to_stable_only_s"] = time.monotonic() - deployed
    report = traffic.recorded(figures, "canary_bad")
    figures["rollouts.node.canary_bad.http_5xx"] = float(report.failed["http_5xx"])
    ro = rollout(kube, namespace)
    assert ro["status"]["phase"] == "Degraded" and ro["status"]["stableRS"] == stable
    (run,) = analysis_runs(kube, namespace, bad_hash)
    assert run["status"]["phase"] == "Failed", run["status"]
    assert served_requests(prometheus, namespace, bad_hash) > 0
    # Failures are the fault's 5xx answers of the canary pods only, never a connection error.
    assert report.failed_total == report.failed["http_5xx"], report.summary()

    # Once the Service's endpoints are stable's alone, every request is answered by stable.
    # Until then a canary pod in its preStop sleep still answers: kube-proxy drops it about a
    # second after it starts terminating, and a connection opened before that stays on it
    # (two runs of this test: 98 and 95 of 400 keep-alive requests answered 500 right after
    # the canary's pods began terminating).
    def stable_endpoints_only() -> bool:
        return {pod.rsplit("-", 2)[-2] for pod, _ in endpoints(kube, namespace)} == {stable}

    kube.wait_for("the Service's endpoints stable's alone", stable_endpoints_only,
                  timeout=120, interval=1)  # fmt: skip
    figures["rollouts.node.canary_bad.deploy_to_stable_endpoints_s"] = time.monotonic() - deployed
    spec = traffic.spec
    before_load = endpoints(kube, namespace)
    after = Load(LoadSpec(spec.host, spec.port, clients=CLIENTS, rate=RATE, duration=10,
                          timeout=TIMEOUT, per_request=True)).start().wait()  # fmt: skip
    assert after.failed_total == 0 and after.requests > 0, (
        f"{after.summary()}; endpoints before: {described(before_load)}; "
        f"after: {described(endpoints(kube, namespace))}"
    )

    # Back to the good version's config: the stable ReplicaSet's template, no steps to walk.
    prod.deploy(ENV, good, edit=_release(CANARY))
    wait_rollout(kube, namespace, "the Rollout Healthy on stable", healthy_at(stable), timeout=300)


def test_switching_argo_rollouts_off_takes_one_update(
    kube: Kube, prod: Any, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    report = switch(prod, figures, "canary_off", _release(None))
    assert kube.get_or_none("Rollout", APP, namespace) is None
    dep = kube.get("Deployment", APP, namespace)
    assert (dep.get("status") or {}).get("readyReplicas", 0) >= 1
    assert report.failed_total == 0, report.summary()


# ---------------------------------------------------------------------------- blue-green


def test_switching_to_argo_blue_green_from_rolling_takes_one_update(
    kube: Kube, prod: Any, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    report = switch(prod, figures, "blue_green_on", _release(BLUE_GREEN))
    ro = wait_rollout(kube, namespace, "the Rollout Healthy", healthy_at(), timeout=300)
    active = ro["status"]["blueGreen"]["activeSelector"]
    for name in (APP, f"{APP}-preview"):
        svc = kube.get("Service", name, namespace)
        assert svc["spec"]["selector"].get("rollouts-pod-template-hash") == active, svc["spec"]
        owners = selector_owners(svc)
        assert owners and not any(o.startswith("pulumi") for o in owners), owners
    assert report.failed_total == 0, report.summary()


def _preview_load(prod: Any, kube: Kube, namespace: str) -> Load:
    """Users testing the preview: requests to the `<app>-preview` ClusterIP from inside a real
    node (its kube-proxy serves the ClusterIP), a new connection per request. kube-proxy picks
    an endpoint per connection: the first run's keep-alive clients, connected while the
    preview still selected the active pods, stayed on them after the controller switched the
    preview to the bad version, the bad pods served no request, and their pre-promotion
    analysis read 0 and passed (docs/releases.md says what a tester must do)."""
    svc = kube.get("Service", f"{APP}-preview", namespace)
    port = next(p["port"] for p in svc["spec"]["ports"] if p.get("name") == "http")
    netns = prod.nodes.nodes[0].spec.netns
    return Load(LoadSpec(svc["spec"]["clusterIP"], port, clients=2, rate=20.0, duration=None,
                         timeout=TIMEOUT, per_request=True, netns=netns)).start()  # fmt: skip


def test_blue_green_promotes_a_good_version_after_its_pre_promotion_analysis(
    kube: Kube, prod: Any, prometheus: str, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    active = rollout(kube, namespace)["status"]["blueGreen"]["activeSelector"]
    good = prod.variant("blue-green-good")
    preview = _preview_load(prod, kube, namespace)
    try:
        with Traffic(prod) as traffic:
            started = time.monotonic()
            prod.deploy(ENV, good, edit=_release(BLUE_GREEN))

            def awaiting_promotion(r: dict[str, Any]) -> bool:
                st = r.get("status") or {}
                new = st.get("currentPodHash")
                runs = analysis_runs(kube, namespace, new) if new and new != active else []
                passed = any(x.get("status", {}).get("phase") == "Successful" for x in runs)
                paused = any(
                    c.get("reason") == "BlueGreenPause" for c in st.get("pauseConditions") or []
                )
                return passed and paused

            ro = wait_rollout(kube, namespace, "pre-promotion analysis passed, paused",
                              awaiting_promotion, timeout=600)  # fmt: skip
            figures["rollouts.node.blue_green_good.deploy_to_analysed_s"] = (
                time.monotonic() - started
            )
            new = ro["status"]["currentPodHash"]
            assert (
                kube.get("Service", APP, namespace)["spec"]["selector"][
                    "rollouts-pod-template-hash"
                ]
                == active
            )
            assert served_requests(prometheus, namespace, new) > 0, "no preview traffic measured"
            # `kubectl argo rollouts promote web` (pkg/kubectl-argo-rollouts/cmd/promote,
            # getPatches): a rollout with pause conditions gets {"status":{"pauseConditions":
            # null}} on the status subresource, and {"spec":{"paused":false}} if spec.paused.
            kube.patch("Rollout", APP, {"status": {"pauseConditions": None}},
                       namespace=namespace, subresource="status")  # fmt: skip
            if ro["spec"].get("paused"):
                kube.patch("Rollout", APP, {"spec": {"paused": False}}, namespace=namespace)
            promoted = time.monotonic()
            wait_rollout(kube, namespace, "promoted and post-promotion analysis passed",
                         healthy_at(new), timeout=600)  # fmt: skip
            figures["rollouts.node.blue_green_good.promote_to_healthy_s"] = (
                time.monotonic() - promoted
            )
    finally:
        preview.stop()
        preview_report = preview.wait()
    report = traffic.recorded(figures, "blue_green_good", f"; preview: {preview_report.summary()}")
    assert (
        kube.get("Service", APP, namespace)["spec"]["selector"]["rollouts-pod-template-hash"] == new
    )
    kinds = sorted(r["metadata"]["labels"]["rollout-type"] for r in
                   analysis_runs(kube, namespace, new))  # fmt: skip
    assert kinds == ["PostPromotion", "PrePromotion"], kinds
    assert all(r["status"]["phase"] == "Successful" for r in analysis_runs(kube, namespace, new))
    assert report.failed_total == 0, report.summary()
    # The controller points the preview at the new ReplicaSet at once, ready or not
    # (argo-rollouts v1.10.2 rollout/service.go `reconcilePreviewService`; the active Service
    # waits for saturation): testers meet failed connections until the preview pods are
    # ready, never an error from a pod. They are refused (kube-proxy rejects a Service with
    # no ready endpoint); one run also had one connect time out among 69 refused.
    connection_failures = preview_report.failed["refused"] + preview_report.failed["timeout"]
    assert preview_report.failed_total == connection_failures, preview_report.summary()


def test_blue_green_refuses_a_bad_version_by_its_pre_promotion_analysis(
    kube: Kube, prod: Any, prometheus: str, figures: dict[str, float]
) -> None:
    namespace = prod.stacks[ENV].namespace
    active = rollout(kube, namespace)["status"]["blueGreen"]["activeSelector"]
    good = prod.stacks[ENV].images[APP].rsplit("@", 1)[1]
    bad = prod.variant("blue-green-bad")
    preview = _preview_load(prod, kube, namespace)
    try:
        with Traffic(prod) as traffic:
            deployed = time.monotonic()
            prod.deploy(ENV, bad, edit=_release(BLUE_GREEN, FAULT))
            figures["rollouts.node.blue_green_bad.deploy_s"] = time.monotonic() - deployed
            ro = wait_rollout(kube, namespace, "the bad version aborted", aborted, timeout=600)
            figures["rollouts.node.blue_green_bad.deploy_to_abort_s"] = time.monotonic() - deployed
    finally:
        preview.stop()
        preview_report = preview.wait()
    report = traffic.recorded(figures, "blue_green_bad", f"; preview: {preview_report.summary()}")
    bad_hash = ro["status"]["currentPodHash"]
    (run,) = analysis_runs(kube, namespace, bad_hash)
    assert run["metadata"]["labels"]["rollout-type"] == "PrePromotion", run["metadata"]
    assert run["status"]["phase"] == "Failed", run["status"]
    assert ro["status"]["blueGreen"]["activeSelector"] == active
    svc = kube.get("Service", APP, namespace)
    assert svc["spec"]["selector"]["rollouts-pod-template-hash"] == active
    # Users on the active Service never met the bad version.
    assert report.failed_total == 0, report.summary()
    assert preview_report.failed["http_5xx"] > 0, preview_report.summary()

    prod.deploy(ENV, good, edit=_release(BLUE_GREEN))
    wait_rollout(kube, namespace, "the Rollout Healthy on the active version",
                 healthy_at(active), timeout=300)  # fmt: skip


def test_switching_argo_blue_green_off_takes_one_update(
    kube: Kube, prod: Any, figures: dict[str, float]
) -> None:
    """The Rollout is deleted in the background (components/app/workloads.py
    `_rollout_annotations`): a foreground delete kept it while its pods went, and the Service,
    whose hash the controller had written back, selected none of the new pods (d8b5e27: 20 of
    1465 requests failed)."""
    namespace = prod.stacks[ENV].namespace
    with ServiceTimeline(kube, namespace) as timeline:
        report = switch(prod, figures, "blue_green_off", _release(None))
    print(f"blue_green_off: {timeline.text()}")
    assert kube.get_or_none("Rollout", APP, namespace) is None
    svc = kube.get("Service", APP, namespace)
    assert "rollouts-pod-template-hash" not in svc["spec"]["selector"], svc["spec"]["selector"]
    assert all(ready > 0 for _, (_, ready, _) in timeline.changes), timeline.text()
    assert report.failed_total == 0, report.summary()

"""`make e2e-monitoring-node`: the monitoring stack of a kube-prometheus-stack install, for real,
on the real nodes (e2e/realnode/monitoring.py): prometheus-operator v0.93.0, a `Prometheus`
(v3.13.1, the operator's default) and an `Alertmanager` (v0.31.1) custom resource in the
monitoring namespace, kube-state-metrics v2.20.0 and the kubelets' cAdvisor, every image built
here from its Go module. Prometheus is read from the host at its pod address (10.245.x.x,
inside the run's node namespaces)."""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.kube import ApiError, Kube
from e2e.realnode import monitoring
from e2e.realnode.nodes import RealNodes

pytestmark = [pytest.mark.realnode, pytest.mark.monitoringnode]

#: Every address of the run: the nodes (10.245.0.0/24) and their pod ranges (10.245.128.0/17).
REAL_NODE_NET = "10.245.0.0/16"

#: Scrapes run every 5s (monitoring.SCRAPE_INTERVAL); a target is up after its first scrape.
TARGETS_TIMEOUT = 180


@pytest.fixture(scope="module")
def stack(kube: Kube, real_nodes: RealNodes, figures: dict[str, float]) -> Iterator[str]:
    """The monitoring stack installed and Ready; yields Prometheus' base URL."""
    missing = monitoring.missing_tools(real_nodes.binaries)
    assert not missing, f"missing {missing}: run `make e2e-monitoring-tools`"
    started = time.monotonic()
    monitoring.import_images(real_nodes, real_nodes.binaries)
    figures["monitoring.node_images_imported_s"] = time.monotonic() - started
    started = time.monotonic()
    monitoring.install(kube)
    monitoring.wait_ready(kube, timeout=420)
    figures["monitoring.node_stack_ready_s"] = time.monotonic() - started
    yield f"http://{monitoring.prometheus_ip(kube)}:{monitoring.PROMETHEUS_PORT}"
    monitoring.uninstall(kube)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    doc = monitoring.http_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def active_targets(base: str) -> list[dict[str, Any]]:
    doc = monitoring.http_json(f"{base}/api/v1/targets?state=active")
    targets: list[dict[str, Any]] = doc["data"]["activeTargets"]
    return targets


def wait_targets_up(kube: Kube, base: str, job: str, count: int) -> list[dict[str, Any]]:
    def up() -> list[dict[str, Any]] | None:
        targets = [t for t in active_targets(base) if t["labels"].get("job") == job]
        healthy = [t for t in targets if t["health"] == "up"]
        return healthy if len(targets) == count and len(healthy) == count else None

    try:
        result: list[dict[str, Any]] = kube.wait_for(
            f"{count} {job} targets up", up, timeout=TARGETS_TIMEOUT, interval=2
        )
    except TimeoutError as exc:
        seen = [
            (t["scrapeUrl"], t["health"], t.get("lastError"))
            for t in active_targets(base)
            if t["labels"].get("job") == job
        ]
        raise AssertionError(f"{exc}: {seen}") from None
    return result


def test_operator_prometheus_alertmanager_and_kube_state_metrics_run(
    kube: Kube, stack: str
) -> None:
    assert monitoring.ready(kube)
    for kind, name in (
        ("Prometheus", monitoring.PROMETHEUS),
        ("Alertmanager", monitoring.ALERTMANAGER),
    ):
        conditions = {
            c["type"]: c["status"]
            for c in (kube.get(kind, name, monitoring.NAMESPACE).get("status") or {}).get(
                "conditions"
            )
            or []
        }
        assert conditions.get("Available") == "True", (kind, conditions)
        assert conditions.get("Reconciled") == "True", (kind, conditions)
    status = monitoring.http_json(
        f"http://{monitoring.alertmanager_ip(kube)}:{monitoring.ALERTMANAGER_PORT}/api/v2/status"
    )
    assert status["cluster"]["status"] in ("ready", "settling", "disabled"), status["cluster"]
    buildinfo = monitoring.http_json(f"{stack}/api/v1/status/buildinfo")["data"]
    assert "v" + buildinfo["version"] == monitoring.prometheus()["spec"]["version"]


def test_prometheus_scrapes_kube_state_metrics_and_every_kubelet(
    kube: Kube, real_nodes: RealNodes, stack: str, figures: dict[str, float]
) -> None:
    started = time.monotonic()
    wait_targets_up(kube, stack, "kube-state-metrics", 1)
    # Two endpoints per kubelet (its /metrics and /metrics/cadvisor), one kubelet per real node.
    kubelets = wait_targets_up(kube, stack, "kubelet", 2 * len(real_nodes.nodes))
    figures["monitoring.node_targets_up_s"] = time.monotonic() - started
    ips = {t["labels"]["instance"].rsplit(":", 1)[0] for t in kubelets}
    assert ips == {n.spec.ip for n in real_nodes.nodes}
    # No target outside the run's own addresses (a kwok node's or pod's address routes off the
    # machine): every scrape goes to a real node or a pod on one.
    inside = ipaddress.ip_network(REAL_NODE_NET)
    for target in active_targets(stack):
        host = urllib.parse.urlsplit(target["scrapeUrl"]).hostname or ""
        assert ipaddress.ip_address(host) in inside, target["scrapeUrl"]
    assert query(stack, 'kube_deployment_status_replicas{namespace="monitoring"}')


def test_cadvisor_series_name_the_pod_and_container_of_their_own_node(
    kube: Kube, real_nodes: RealNodes, stack: str
) -> None:
    """Four kubelets share one host (and one cgroup hierarchy): each must report only its own
    pods' containers, under the pod's and the container's names."""
    node_ip = {n.name: n.spec.ip for n in real_nodes.nodes}
    pods = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in kube.list("Pod", monitoring.NAMESPACE)
    }
    promql = (
        f'container_memory_working_set_bytes{{namespace="{monitoring.NAMESPACE}", '
        'container!="", container!="POD", metrics_path="/metrics/cadvisor"}'
    )

    def series() -> list[dict[str, Any]] | None:
        found = query(stack, promql)
        names = {(s["metric"]["namespace"], s["metric"]["pod"]) for s in found}
        return found if set(pods) <= names else None

    try:
        found = kube.wait_for("cAdvisor series of every monitoring pod", series, timeout=120)
    except TimeoutError as exc:
        everything = query(
            stack,
            "count by (instance, namespace, pod) "
            '(container_memory_working_set_bytes{metrics_path="/metrics/cadvisor"})',
        )
        raise AssertionError(f"{exc}; series by instance/namespace/pod: {everything}") from None
    seen: dict[tuple[str, str, str], str] = {}
    for s in found:
        m = s["metric"]
        pod = pods.get((m["namespace"], m["pod"]))
        assert pod is not None, f"a series of a pod that does not exist: {m}"
        containers = {
            c["name"] for c in pod["spec"]["containers"] + (pod["spec"].get("initContainers") or [])
        }
        assert m["container"] in containers, m
        instance_ip = m["instance"].rsplit(":", 1)[0]
        assert instance_ip == node_ip[pod["spec"]["nodeName"]], (m, pod["spec"]["nodeName"])
        key = (m["namespace"], m["pod"], m["container"])
        assert seen.setdefault(key, m["instance"]) == m["instance"], f"two kubelets report {key}"


# ---------------------------------------------------------------- the stack's alerts, routed
#
# A stack of its own (namespace e2e-alert-routing) whose app has no pod at all: the rendered
# PrometheusRule, ServiceMonitor, PodDisruptionBudget and AlertmanagerConfig are applied (the
# app's workloads are not: this tier runs no app image), so two real conditions hold from the
# start: no scrape target of the app is up (`<App>TargetDown`, critical) and its PDB allows no
# disruption (`<App>PDBNoDisruptionsAllowed`, warning, from kube-state-metrics). Shortened
# through config only (`appstack:monitoring.alerts`): targetDownFor 10s (prod 5m),
# pdbNoDisruptionsFor 10s (prod 1h); routing timings groupWait 1s, groupInterval 10s.

ROUTING_NS = "e2e-alert-routing"
ROUTED_KINDS = ("ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "AlertmanagerConfig")


def _routing_render() -> list[dict[str, Any]]:
    from components import config as config_model
    from stackctl.render.stack import render_config
    from tests.conftest import base_raw

    raw = base_raw("prod")
    raw["namespace"] = ROUTING_NS
    raw["monitoring"] = {
        "enabled": True,
        "scrapeInterval": "5s",
        "alerts": {"targetDownFor": "10s", "pdbNoDisruptionsFor": "10s"},
        "alertRouting": {"enabled": True, "groupWait": "1s", "groupInterval": "10s"},
    }
    return render_config(config_model.load(raw), "e2e-alert-routing").objects


def _alerts(base: str) -> list[dict[str, Any]]:
    doc = monitoring.http_json(f"{base}/api/v1/alerts")
    return [a for a in doc["data"]["alerts"] if a["labels"].get("namespace") == ROUTING_NS]


def test_the_stacks_alerts_fire_and_reach_the_webhook_of_their_severity(
    kube: Kube, stack: str, figures: dict[str, float]
) -> None:
    from components.monitoring.alert_rules import alert_name
    from e2e.realnode.layout import HOST_IP
    from tests.webhook_sink import webhook_sink

    objects = _routing_render()
    amc = next(o for o in objects if o["kind"] == "AlertmanagerConfig")
    secret_ref = {r["name"]: r["webhookConfigs"][0]["urlSecret"] for r in amc["spec"]["receivers"]}
    (secret_name,) = {ref["name"] for ref in secret_ref.values()}
    rules = next(o for o in objects if o["kind"] == "PrometheusRule")
    app = rules["metadata"]["labels"]["app.kubernetes.io/name"]
    target_down = alert_name(app, "TargetDown")
    pdb_alert = alert_name(app, "PDBNoDisruptionsAllowed")
    with webhook_sink(host=HOST_IP) as sink:
        (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
        kube.apply(namespace, field_manager="appstack-e2e-render")
        try:
            # Ops' Secret: one URL per severity (the path tells the receivers apart).
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name, "namespace": ROUTING_NS},
                    "stringData": {
                        ref["key"]: f"{sink.url}/{ref['key']}" for ref in secret_ref.values()
                    },
                }
            )
            started = time.monotonic()
            for obj in objects:
                if obj["kind"] in ROUTED_KINDS:
                    kube.apply(obj, field_manager="appstack-e2e-render")

            def loaded() -> bool:
                groups = monitoring.http_json(f"{stack}/api/v1/rules")["data"]["groups"]
                return any(g["file"].find(ROUTING_NS) >= 0 for g in groups)

            kube.wait_for("the stack's rules loaded by Prometheus", loaded, timeout=180, interval=2)
            figures["monitoring.node_rules_loaded_s"] = time.monotonic() - started

            def firing() -> dict[str, dict[str, Any]] | None:
                states = {a["labels"]["alertname"]: a for a in _alerts(stack)}
                wanted = (target_down, pdb_alert)
                if all(states.get(n, {}).get("state") == "firing" for n in wanted):
                    return states
                return None

            states = kube.wait_for("TargetDown and PDB alerts firing", firing, timeout=240)
            figures["monitoring.node_apply_to_alerts_firing_s"] = time.monotonic() - started
            assert set(states) == {target_down, pdb_alert}, sorted(states)

            def notified() -> dict[str, dict[str, Any]] | None:
                got: dict[str, dict[str, Any]] = {}
                for received in sink.requests:
                    for alert in received.json()["alerts"]:
                        got[alert["labels"]["alertname"]] = {**alert, "path": received.path}
                return got if {target_down, pdb_alert} <= set(got) else None

            got = kube.wait_for("both alerts at the webhook", notified, timeout=180)
            figures["monitoring.node_apply_to_notified_s"] = time.monotonic() - started
            keys = {a: r["key"] for a, r in secret_ref.items()}
            severity_key = {
                "critical": keys["webhook-critical"],
                "warning": keys["webhook-warning"],
            }
            for name, alert in got.items():
                labels = alert["labels"]
                assert alert["path"].endswith("/" + severity_key[labels["severity"]]), (
                    name,
                    alert["path"],
                )
                assert labels["app"] == app and labels["namespace"] == ROUTING_NS, labels
                assert labels["environment"] == "prod", labels
                assert alert["annotations"]["runbook_url"].endswith("/" + name), alert
                assert alert["status"] == "firing"
            assert got[target_down]["labels"]["severity"] == "critical"
            assert got[pdb_alert]["labels"]["severity"] == "warning"

            # The condition goes (the PDB is deleted): the alert resolves and the webhook
            # hears it (sendResolved).
            pdb = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
            kube.delete("PodDisruptionBudget", pdb["metadata"]["name"], ROUTING_NS)
            cleared = time.monotonic()

            def resolved() -> bool:
                return any(
                    a["labels"]["alertname"] == pdb_alert and a["status"] == "resolved"
                    for r in sink.requests
                    for a in r.json()["alerts"]
                )

            kube.wait_for("the PDB alert resolved at the webhook", resolved, timeout=240)
            figures["monitoring.node_cause_gone_to_resolved_notified_s"] = (
                time.monotonic() - cleared
            )
        finally:
            kube.delete("Namespace", ROUTING_NS)


# ---------------------------------------------------------------- the app, deployed for real
#
# make e2e-app's `real_app` (tests/e2e/conftest.py, e2e/realapp.py): dev and prod of the shipped
# stack files deployed by `stackctl deploy` on the real nodes; prod has monitoring on, so its
# ServiceMonitor and PrometheusRule are the engine's, found by the operator through the labels
# docs/slo.md names, and the scrape crosses the stack's own NetworkPolicies (kube-router).

#: Bounded user traffic through prod's LoadBalancer stand-in (the SLI counts user requests).
TRAFFIC_REQUESTS = 40


def _user_traffic(real_app: Any) -> None:
    import urllib.request

    for _ in range(TRAFFIC_REQUESTS):
        with urllib.request.urlopen(real_app.lb_url("prod", path="/"), timeout=5) as resp:
            resp.read()


def test_every_app_target_is_up_through_its_rendered_service_monitor(
    kube: Kube, stack: str, real_app: Any, figures: dict[str, float]
) -> None:
    namespace = real_app.stacks["prod"].namespace
    monitors = kube.list("ServiceMonitor", namespace)
    assert monitors, f"no ServiceMonitor in {namespace}: prod renders one per app"
    started = time.monotonic()
    for monitor in monitors:
        app = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        pods = {p["metadata"]["name"] for p in real_app.pods("prod", app)}
        assert pods, app

        def up(app: str = app, pods: set[str] = pods) -> list[dict[str, Any]] | None:
            targets = [
                t
                for t in active_targets(stack)
                if t["labels"].get("namespace") == namespace and t["labels"].get("job") == app
            ]
            healthy = {t["labels"].get("pod") for t in targets if t["health"] == "up"}
            return targets if healthy == pods and len(targets) == len(pods) else None

        try:
            kube.wait_for(f"{app}'s {len(pods)} targets up", up, timeout=240, interval=2)
        except TimeoutError as exc:
            seen = [
                (t["scrapeUrl"], t["health"], t.get("lastError"))
                for t in active_targets(stack)
                if t["labels"].get("namespace") == namespace
            ]
            raise AssertionError(f"{exc}: {seen}") from None
    figures["monitoring.node_app_targets_up_s"] = time.monotonic() - started


def test_every_recording_rule_of_the_stack_yields_series(
    kube: Kube, stack: str, real_app: Any, figures: dict[str, float]
) -> None:
    namespace = real_app.stacks["prod"].namespace
    records = sorted(
        {
            rule["record"]
            for obj in kube.list("PrometheusRule", namespace)
            for group in obj["spec"]["groups"]
            for rule in group["rules"]
            if "record" in rule
        }
    )
    assert records
    started = time.monotonic()

    def missing() -> list[str]:
        return [r for r in records if not query(stack, f'{r}{{namespace="{namespace}"}}')]

    def all_there() -> bool:
        _user_traffic(real_app)
        return not missing()

    try:
        kube.wait_for("every recording rule with series", all_there, timeout=300, interval=5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: without series: {missing()}") from None
    figures["monitoring.node_recording_rules_series_s"] = time.monotonic() - started


def test_no_alert_of_the_stack_is_pending_or_firing_at_steady_state(
    stack: str, real_app: Any
) -> None:
    namespace = real_app.stacks["prod"].namespace
    _user_traffic(real_app)
    doc = monitoring.http_json(f"{stack}/api/v1/alerts")
    active = [a for a in doc["data"]["alerts"] if a["labels"].get("namespace") == namespace]
    assert active == [], active
    rules = monitoring.http_json(f"{stack}/api/v1/rules")["data"]["groups"]
    ours = [g for g in rules if namespace in g["file"]]
    assert ours and all(r["health"] == "ok" for g in ours for r in g["rules"]), ours


# ---------------------------------------------------------------- a fault, on an app of its own
#
# prod gains an app `web-fault` (the same image, ClusterIP, two replicas) with the reference
# app's documented fault switch on (FAULT_ERROR_RATIO=0.5: half of the user requests answered
# 500, probes untouched), alert routing on and `alerts.errorRatioFor` 10s (prod 5m), all by a
# stack config change through `stackctl deploy`. Runs after the steady-state checks (which it
# would otherwise pollute).

FAULT_APP = "web-fault"


def test_the_fault_switch_fires_the_error_ratio_alert_and_alertmanager_routes_it(
    kube: Kube, stack: str, real_app: Any, figures: dict[str, float]
) -> None:
    import urllib.error
    import urllib.request

    from components.monitoring.alert_rules import alert_name
    from e2e.realnode.layout import HOST_IP, NODE_LABEL
    from tests.webhook_sink import webhook_sink

    namespace = real_app.stacks["prod"].namespace
    routing = {"enabled": True, "groupWait": "1s", "groupInterval": "10s"}
    key, value = NODE_LABEL

    def edit(doc: dict[str, Any]) -> None:
        config = doc["config"]
        config["appstack:apps"][FAULT_APP] = {
            "image": config["appstack:apps"]["web"]["image"],
            "autoscaling": {"minReplicas": 2, "maxReplicas": 2},
            "pdb": {"maxUnavailable": 1},
            "service": {"type": "ClusterIP"},
            "env": {"FAULT_ERROR_RATIO": "0.5"},
            "nodeSelector": {key: value},
        }
        monitoring_config = config.setdefault("appstack:monitoring", {})
        monitoring_config.setdefault("alerts", {})["errorRatioFor"] = "10s"
        monitoring_config["alertRouting"] = routing

    high_error_ratio = alert_name(FAULT_APP, "HighErrorRatio")
    with webhook_sink(host=HOST_IP) as sink:
        defaults = {"critical": "critical", "warning": "warning"}
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "alertmanager-webhooks", "namespace": namespace},
                "stringData": {k: f"{sink.url}/{k}" for k in defaults},
            },
            field_manager="appstack-e2e-ops",
        )
        real_app.deploy("prod", edit=edit, timing="monitoring.node_fault_deploy_s")

        # User requests from the host's bridge address straight to the pods: an internal
        # (ClusterIP) app admits `network.apiServerCidrs` (the site sets the host's address) on
        # its port, the one peer outside the cluster the rendered policy lets in.
        def pod_urls() -> list[str]:
            out = []
            for pod in real_app.pods("prod", FAULT_APP):
                (port,) = [
                    p["containerPort"]
                    for p in pod["spec"]["containers"][0]["ports"]
                    if p.get("name") == "http"
                ]
                out.append(f"http://{pod['status']['podIP']}:{port}/")
            assert out
            return out

        urls = pod_urls()
        started = time.monotonic()

        def status(url: str) -> int:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as err:
                return int(err.code)

        def firing() -> bool:
            statuses = [status(u) for u in urls for _ in range(5)]
            assert set(statuses) <= {200, 500}, statuses
            alerts = monitoring.http_json(f"{stack}/api/v1/alerts")["data"]["alerts"]
            return any(
                a["labels"].get("alertname") == high_error_ratio and a["state"] == "firing"
                for a in alerts
            )

        kube.wait_for(f"{high_error_ratio} firing", firing, timeout=300, interval=1)
        figures["monitoring.node_fault_to_error_ratio_firing_s"] = time.monotonic() - started

        def notified() -> dict[str, Any] | None:
            for received in sink.requests:
                for alert in received.json()["alerts"]:
                    if alert["labels"]["alertname"] == high_error_ratio:
                        return {**alert, "path": received.path}
            return None

        got = kube.wait_for("the error-ratio alert at the webhook", notified, timeout=180)
        figures["monitoring.node_fault_to_notified_s"] = time.monotonic() - started
        labels = got["labels"]
        assert got["path"].endswith("/critical"), got["path"]
        assert labels["severity"] == "critical" and labels["app"] == FAULT_APP, labels
        assert labels["namespace"] == namespace and labels["environment"] == "prod", labels
        assert got["annotations"]["runbook_url"].endswith("/" + high_error_ratio)
        # The fault's app only: web, beside it, raises nothing.
        alerts = monitoring.http_json(f"{stack}/api/v1/alerts")["data"]["alerts"]
        assert not [a for a in alerts if a["labels"].get("app") == "web"], alerts

        # The cause goes (the switch off, by the same kind of config change: the pods roll):
        # the alert resolves and the webhook hears it.
        def fault_off(doc: dict[str, Any]) -> None:
            doc["config"]["appstack:apps"][FAULT_APP]["env"]["FAULT_ERROR_RATIO"] = "0"

        real_app.deploy("prod", edit=fault_off)
        cleared = time.monotonic()
        urls = pod_urls()

        def resolved() -> bool:
            statuses = [status(u) for u in urls for _ in range(5)]
            assert set(statuses) == {200}, statuses
            return any(
                a["labels"]["alertname"] == high_error_ratio and a["status"] == "resolved"
                for r in sink.requests
                for a in r.json()["alerts"]
            )

        kube.wait_for(f"{high_error_ratio} resolved at the webhook", resolved, timeout=300)
        figures["monitoring.node_fault_off_to_resolved_notified_s"] = time.monotonic() - cleared


# ---------------------------------------------------------------- the alerts real conditions fire
#
# Four stacks of their own (tests/e2e/fault_stacks.py): one app each in namespace
# `e2e-alert-<app>`, rendered by the program from prod's defaults and applied as a deploy would,
# with the image prod runs; `for:` durations and the SLO windows shortened through
# `appstack:monitoring.alerts` only. Each fault is a real condition the real controllers
# produce (the kubelet's back-off, the Deployment controller's progress deadline, quota
# admission, the app's own 5xx); each is read from Prometheus' alerts API and at the webhook of
# its severity, then the cause goes and both ends see the resolution.

FAULT_STACK_APPS = ("crash", "stuck", "gone", "burn")


@pytest.fixture(scope="module")
def fault_stacks(
    kube: Kube, stack: str, real_app: Any, figures: dict[str, float]
) -> Iterator[dict[str, Any]]:
    """The four stacks rolled out, their rules loaded by Prometheus and their routes by
    Alertmanager, scraped (every pod's target up) and quiet (no alert of theirs pending or
    firing); one webhook sink for all, each namespace under its own path."""
    from e2e.realnode.layout import HOST_IP
    from tests.e2e.fault_stacks import PULL_SECRET, AlertWatch, FaultStack
    from tests.webhook_sink import webhook_sink

    pull_secret = kube.get("Secret", PULL_SECRET, real_app.stacks["prod"].namespace)
    with webhook_sink(host=HOST_IP) as sink:
        stacks = {
            app: FaultStack(kube, f"e2e-alert-{app}", app, real_app.ref(), sink)
            for app in FAULT_STACK_APPS
        }
        try:
            started = time.monotonic()
            for fault_stack in stacks.values():
                fault_stack.install(pull_secret)

            alertmanager = (
                f"http://{monitoring.alertmanager_ip(kube)}:{monitoring.ALERTMANAGER_PORT}"
            )

            def settled() -> bool:
                rule_files = {
                    g["file"]
                    for g in monitoring.http_json(f"{stack}/api/v1/rules")["data"]["groups"]
                }
                routes = monitoring.http_json(f"{alertmanager}/api/v2/status")["config"]["original"]
                for s in stacks.values():
                    # the operator gave Prometheus the rules and Alertmanager the routes
                    if not any(s.namespace in f for f in rule_files) or s.namespace not in routes:
                        return False
                    if not s.rolled_out():
                        return False
                    up = query(stack, f'sum(up{{namespace="{s.namespace}", job="{s.app}"}})')
                    if not up or float(up[0]["value"][1]) != len(s.pods()):
                        return False
                    if AlertWatch(stack, sink, s.namespace).active():
                        return False
                return True

            try:
                kube.wait_for("the fault stacks rolled out, scraped, quiet", settled, timeout=420)
            except TimeoutError as exc:
                state = {
                    s.namespace: (
                        (s.deployment().get("status") or {}).get("conditions"),
                        query(stack, f'up{{namespace="{s.namespace}"}}'),
                        sorted(AlertWatch(stack, sink, s.namespace).active()),
                    )
                    for s in stacks.values()
                }
                raise AssertionError(f"{exc}: {state}") from None
            figures["monitoring.node_fault_stacks_ready_s"] = time.monotonic() - started
            yield stacks
        finally:
            for fault_stack in stacks.values():
                try:
                    kube.delete("Namespace", fault_stack.namespace)
                except ApiError as exc:  # a teardown reports, never masks the test's error
                    print(f"deleting {fault_stack.namespace}: {exc}")


def _kind_slug(app: str, name: str) -> str:
    """`CrashCrashLooping` of app `crash` -> `crash_looping` (the figure's name part)."""
    import re

    from components.monitoring.alert_rules import alert_prefix

    kind = name.removeprefix(alert_prefix(app)).removeprefix("ErrorBudget")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def _record(
    figures: dict[str, float], scenario: str, app: str, seen: dict[str, Any], since: float
) -> None:
    """Fault (or cure) to Prometheus' state and to the webhook, per alert, as figures."""
    for name, s in seen.items():
        base = f"monitoring.node_{scenario}_{_kind_slug(app, name)}"
        if s.notification["status"] == "firing":
            figures[f"{base}_firing_s"] = s.prometheus - since
            figures[f"{base}_notified_s"] = s.notified - since
        else:
            figures[f"{base}_resolved_s"] = s.prometheus - since
            figures[f"{base}_resolved_notified_s"] = s.notified - since


def _assert_on_call(fault_stack: Any, seen: dict[str, Any]) -> None:
    """Each notification reached the webhook its severity routes to (the rendered
    AlertmanagerConfig), with the labels and runbook the rendered rule gives it."""
    rule = fault_stack.one("PrometheusRule")
    rendered = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    amc = fault_stack.one("AlertmanagerConfig")["spec"]
    key_of = {r["name"]: r["webhookConfigs"][0]["urlSecret"]["key"] for r in amc["receivers"]}
    receiver_of = {
        m["value"]: route["receiver"]
        for route in amc["route"]["routes"]
        for m in route["matchers"]
        if m["name"] == "severity"
    }
    for name, s in seen.items():
        got = s.notification
        labels = got["labels"]
        severity = rendered[name]["labels"]["severity"]
        receiver = receiver_of.get(severity, amc["route"]["receiver"])
        assert got["path"].endswith(f"/{fault_stack.namespace}/{key_of[receiver]}"), (
            name,
            got["path"],
        )
        assert labels["severity"] == severity, labels
        assert labels["app"] == fault_stack.app, labels
        assert labels["namespace"] == fault_stack.namespace, labels
        assert labels["environment"] == "prod", labels
        assert got["annotations"]["runbook_url"] == rendered[name]["annotations"]["runbook_url"]
        assert got["annotations"]["runbook_url"].endswith("/" + name)


def test_a_crash_loop_fires_crash_looping_and_pod_restarting_and_both_clear(
    kube: Kube, stack: str, fault_stacks: dict[str, Any], figures: dict[str, float]
) -> None:
    """A new version with `FAULT_CRASH_ON_START=true` (the app exits 3 before listening): the
    kubelet restarts it with back-off (CrashLoopBackOff); `<App>CrashLooping` (critical) and,
    after `restartsPerHour` (3) restarts, `<App>PodRestarting` (warning) fire. The good version
    deployed again replaces the crashing pod and both resolve."""
    from components.monitoring.alert_rules import alert_name
    from tests.e2e.fault_stacks import AlertWatch

    s = fault_stacks["crash"]
    watch = AlertWatch(stack, s.sink, s.namespace)
    names = [alert_name(s.app, "CrashLooping"), alert_name(s.app, "PodRestarting")]
    since = len(s.sink.requests)
    started = s.deploy({"FAULT_CRASH_ON_START": "true"})
    seen = watch.wait(kube, names, firing=True, since=since, timeout=420)
    _record(figures, "crash_loop", s.app, seen, started)
    _assert_on_call(s, seen)
    # The alerts name the crashing pod, which the kubelet really restarted: its container's
    # last exit is the fault's (code 3, app/server docstring) and it restarted >= 3 times.
    for name in names:
        labels = watch.active()[name]["labels"]
        assert labels["container"] == "app", labels
        pod = kube.get("Pod", labels["pod"], s.namespace)
        (status,) = pod["status"]["containerStatuses"]
        assert status["lastState"]["terminated"]["exitCode"] == 3, status
    assert status["restartCount"] >= 3, status

    since = len(s.sink.requests)
    cured = s.deploy({})
    seen = watch.wait(kube, names, firing=False, since=since, timeout=300)
    _record(figures, "crash_loop", s.app, seen, cured)
    assert s.rolled_out()


def test_a_rollout_stuck_past_its_deadline_fires_rollout_stuck_and_replicas_unavailable(
    kube: Kube, stack: str, fault_stacks: dict[str, Any], figures: dict[str, float]
) -> None:
    """A new version with `FAULT_NEVER_READY=true` (readiness always 503): its surge pod never
    becomes available, the Deployment controller gives up after `progressDeadlineSeconds`
    (30 s through config) and `<App>RolloutStuck` and `<App>ReplicasUnavailable` fire; the good
    version deployed again completes the rollout and both resolve."""
    from components.monitoring.alert_rules import alert_name
    from tests.e2e.fault_stacks import PROGRESS_DEADLINE_SECONDS, AlertWatch

    s = fault_stacks["stuck"]
    assert s.one("Deployment")["spec"]["progressDeadlineSeconds"] == PROGRESS_DEADLINE_SECONDS
    watch = AlertWatch(stack, s.sink, s.namespace)
    names = [alert_name(s.app, "RolloutStuck"), alert_name(s.app, "ReplicasUnavailable")]
    since = len(s.sink.requests)
    started = s.deploy({"FAULT_NEVER_READY": "true"})
    seen = watch.wait(kube, names, firing=True, since=since, timeout=360)
    _record(figures, "rollout_stuck", s.app, seen, started)
    _assert_on_call(s, seen)
    conditions = {c["type"]: c for c in s.deployment()["status"]["conditions"]}
    assert conditions["Progressing"]["status"] == "False", conditions
    assert conditions["Progressing"]["reason"] == "ProgressDeadlineExceeded", conditions

    since = len(s.sink.requests)
    cured = s.deploy({})
    seen = watch.wait(kube, names, firing=False, since=since, timeout=300)
    _record(figures, "rollout_stuck", s.app, seen, cured)
    assert s.rolled_out()


def test_all_of_an_apps_pods_gone_fires_target_down_and_replicas_unavailable(
    kube: Kube, stack: str, fault_stacks: dict[str, Any], figures: dict[str, float]
) -> None:
    """The namespace's pod quota is spent (a ResourceQuota `pods: 0`, as when a quota runs
    out) and the app's pods go (deleted, as a drain or eviction would): the ReplicaSet cannot
    create new ones (quota admission refuses them), no target of the app is left and no replica
    is available, so `<App>TargetDown` and `<App>ReplicasUnavailable` fire. The quota removed,
    the ReplicaSet controller brings the pods back and both resolve."""
    from components.monitoring.alert_rules import alert_name
    from tests.e2e.fault_stacks import AlertWatch

    s = fault_stacks["gone"]
    watch = AlertWatch(stack, s.sink, s.namespace)
    names = [alert_name(s.app, "TargetDown"), alert_name(s.app, "ReplicasUnavailable")]
    quota = "e2e-no-pods"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": quota, "namespace": s.namespace},
            "spec": {"hard": {"pods": "0"}},
        }
    )
    kube.wait_for(
        "the quota's usage computed",
        lambda: (kube.get("ResourceQuota", quota, s.namespace).get("status") or {}).get("hard"),
        timeout=60,
    )
    since = len(s.sink.requests)
    started = time.monotonic()
    for pod in s.pods():
        kube.delete("Pod", pod["metadata"]["name"], s.namespace)
    seen = watch.wait(kube, names, firing=True, since=since, timeout=360)
    _record(figures, "pods_gone", s.app, seen, started)
    _assert_on_call(s, seen)
    assert s.pods() == [], [p["metadata"]["name"] for p in s.pods()]
    assert not query(stack, f'up{{namespace="{s.namespace}", job="{s.app}"}} == 1')

    since = len(s.sink.requests)
    kube.delete("ResourceQuota", quota, s.namespace)
    cured = time.monotonic()
    # The ReplicaSet controller retries a refused pod creation on its per-object exponential
    # back-off (client-go workqueue DefaultTypedControllerRateLimiter: 5 ms doubling up to
    # 1000 s; k8s.io/kubernetes v1.36 pkg/controller/replicaset AddRateLimited), and a quota's
    # deletion does not requeue it: after the burst of refusals the first run of this test saw
    # no pod come back within 600 s. An update of the ReplicaSet requeues it at once (updateRS
    # -> enqueueRS), as an on-call's `kubectl annotate rs` does (docs/slo.md, the runbook note).
    _requeue_replica_sets(kube, s.namespace, s.app)
    seen = watch.wait(kube, names, firing=False, since=since, timeout=600)
    _record(figures, "pods_gone", s.app, seen, cured)
    assert s.rolled_out()


def _requeue_replica_sets(kube: Kube, namespace: str, deployment: str) -> None:
    """Annotate the Deployment's ReplicaSets that want pods: the controller syncs them now."""
    for rs in kube.list("ReplicaSet", namespace):
        owners = [o.get("name") for o in rs["metadata"].get("ownerReferences") or []]
        if deployment in owners and (rs["spec"].get("replicas") or 0) > 0:
            note = {"metadata": {"annotations": {"appstack.io/e2e-requeued": str(time.time())}}}
            kube.patch("ReplicaSet", rs["metadata"]["name"], note, namespace=namespace)


def test_an_error_fault_fires_the_burn_rate_alerts_and_they_clear_with_short_windows(
    kube: Kube, stack: str, fault_stacks: dict[str, Any], figures: dict[str, float]
) -> None:
    """A new version with `FAULT_ERROR_RATIO=0.5` under user requests: half fail with a 500,
    500x the 0.1 % budget of prod's 99.9 % objective, so `<App>ErrorBudgetFastBurn` (critical,
    page) and `<App>ErrorBudgetSlowBurn` (warning, ticket) fire on the real Prometheus. The
    windows are shortened through `alerts.sloWindows` (every short window at most 2m), so once
    the good version serves again both resolve within minutes."""
    from components.monitoring.slo_rules import error_ratio_record, slo_alert_name
    from tests.e2e.fault_stacks import SLO_WINDOWS, AlertWatch

    s = fault_stacks["burn"]
    slo = next(g for g in s.one("PrometheusRule")["spec"]["groups"] if g["name"] == f"{s.app}.slo")
    for rule in slo["rules"]:
        if "record" in rule:
            window = rule["record"].removeprefix(error_ratio_record(""))
            assert f"[{SLO_WINDOWS[window]}]" in rule["expr"], rule
    watch = AlertWatch(stack, s.sink, s.namespace)
    names = [slo_alert_name(s.app, "Fast"), slo_alert_name(s.app, "Slow")]
    statuses: list[int] = []

    def traffic() -> None:
        statuses.extend(s.user_requests(5))

    since = len(s.sink.requests)
    s.deploy({"FAULT_ERROR_RATIO": "0.5"})
    kube.wait_for("the faulty version rolled out", s.rolled_out, timeout=300, interval=2)
    started = time.monotonic()
    seen = watch.wait(kube, names, firing=True, since=since, timeout=300, tick=traffic)
    _record(figures, "burn", s.app, seen, started)
    _assert_on_call(s, seen)
    assert {200, 500} <= set(statuses), sorted(set(statuses))

    since = len(s.sink.requests)
    s.deploy({})
    kube.wait_for("the good version rolled out", s.rolled_out, timeout=300, interval=2)
    statuses.clear()
    cured = time.monotonic()
    seen = watch.wait(kube, names, firing=False, since=since, timeout=420, tick=traffic)
    _record(figures, "burn", s.app, seen, cured)
    assert set(statuses) == {200}, sorted(set(statuses))

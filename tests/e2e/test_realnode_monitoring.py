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

from e2e.kube import Kube
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

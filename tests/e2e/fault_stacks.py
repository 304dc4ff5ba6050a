"""Faults on stacks of their own, for `make e2e-monitoring-node`
(tests/e2e/test_realnode_monitoring.py, "the alerts real conditions fire").

Each fault runs in a namespace (a stack) of its own, so nothing it raises reaches prod's
steady-state check: one app, rendered by the program (`render_config`, as `stackctl render`
does) from prod's defaults with what this site needs (the real nodes' label, the host's address
in `network.apiServerCidrs`, the pull Secret prod's deploy created, two replicas, a ClusterIP
Service, alert routing on, a 5s scrape) and the `for:` durations and SLO windows shortened
through `appstack:monitoring.alerts` (config, never code). Every rendered object is applied by
server-side apply, as a deploy would: a "version" is a render with other `env`, and deploying it
rolls the Deployment through the real Deployment controller.

`AlertWatch` reads the two ends an on-call person sees: Prometheus' alerts API (the rule's state)
and the webhook sink Alertmanager posts to (the notification, with its receiver's path).
"""

from __future__ import annotations

import copy
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from e2e.kube import Kube
from e2e.realnode import monitoring
from e2e.realnode.layout import HOST_IP, NODE_LABEL
from tests.webhook_sink import Sink

FIELD_MANAGER = "appstack-e2e-render"
#: The Secret `stackctl deploy prod` created from `appstack:registry` (components/registry.py).
PULL_SECRET = "registry-credentials"
#: Shortened `for:` durations (production: crashloop 15m, restarts 5m, rollout stuck 15m,
#: replicas unavailable 15m, target down 5m).
ALERTS_FOR = {
    "crashloopFor": "10s",
    "restartsFor": "10s",
    "rolloutStuckFor": "10s",
    "replicasUnavailableFor": "45s",
    "targetDownFor": "10s",
}
#: The SLO windows, shortened (SRE workbook 5m 30m 1h 2h 6h 1d 3d): every short window at
#: most 2m, so a burn alert resolves within minutes of the errors stopping.
SLO_WINDOWS = {"5m": "30s", "30m": "1m", "1h": "2m", "2h": "1m", "6h": "2m", "1d": "3m", "3d": "4m"}
#: The Deployment's progress deadline (prod: 120 s), above the pod start budget the config
#: model demands (startup probe 2s x 5, readiness period 5s, minReadySeconds 10s).
PROGRESS_DEADLINE_SECONDS = 30


#: The order a deploy applies the rendered kinds in: what a pod needs (its ServiceAccount,
#: Secrets, ConfigMaps, the namespace's LimitRange and quota, its NetworkPolicies) before the
#: Deployment that creates the pods; the monitoring objects last.
APPLY_ORDER = (
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "LimitRange", "ResourceQuota",
    "NetworkPolicy", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    "ServiceMonitor", "PrometheusRule", "AlertmanagerConfig",
)  # fmt: skip


def raw_config(namespace: str, app: str, image: str, env: Mapping[str, str]) -> dict[str, Any]:
    """prod's stack config for one app of its own in `namespace`, running `image` with `env`."""
    from tests.conftest import base_raw

    key, value = NODE_LABEL
    raw = base_raw("prod")
    settings = raw["apps"].pop("web")
    settings.update(
        {
            "image": image,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 2},
            "pdb": {"maxUnavailable": 1},
            "service": {"type": "ClusterIP"},
            "env": dict(env),
            "nodeSelector": {key: value},
            "imagePullSecrets": [PULL_SECRET],
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi", "ephemeralStorage": "32Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi", "ephemeralStorage": "128Mi"},
            },
            "probes": {"startup": {"path": "/health", "periodSeconds": 2, "failureThreshold": 5}},
            "rollout": {"progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS},
        }
    )
    raw["apps"][app] = settings
    raw["namespace"] = namespace
    raw["network"] = {"apiServerCidrs": [f"{HOST_IP}/32"]}
    raw["monitoring"] = {
        "enabled": True,
        "scrapeInterval": "5s",
        "alerts": {**ALERTS_FOR, "sloWindows": SLO_WINDOWS},
        "alertRouting": {"enabled": True, "groupWait": "1s", "groupInterval": "10s"},
    }
    return raw


def render(namespace: str, app: str, image: str, env: Mapping[str, str]) -> list[dict[str, Any]]:
    from components import config as config_model
    from stackctl.render.stack import render_config

    raw = raw_config(namespace, app, image, env)
    return render_config(config_model.load(raw), namespace).objects


@dataclass
class FaultStack:
    """One app in a namespace of its own on the real nodes."""

    kube: Kube
    namespace: str
    app: str
    image: str
    sink: Sink
    objects: list[dict[str, Any]] = field(default_factory=list)

    def install(self, pull_secret: Mapping[str, Any]) -> None:
        """The namespace, the pull Secret, ops' webhook Secret (one URL per severity, under the
        sink's `/<namespace>/<key>`), then the good version."""
        self.objects = render(self.namespace, self.app, self.image, {})
        (namespace,) = [o for o in self.objects if o["kind"] == "Namespace"]
        self.kube.apply(namespace, field_manager=FIELD_MANAGER)
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": pull_secret["type"],
                "metadata": {"name": PULL_SECRET, "namespace": self.namespace},
                "data": dict(pull_secret["data"]),
            }
        )
        amc = self.one("AlertmanagerConfig")
        refs = [r["webhookConfigs"][0]["urlSecret"] for r in amc["spec"]["receivers"]]
        (secret_name,) = {ref["name"] for ref in refs}
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": self.namespace},
                "stringData": {
                    ref["key"]: f"{self.sink.url}/{self.namespace}/{ref['key']}" for ref in refs
                },
            }
        )
        self.deploy({})

    def one(self, kind: str) -> dict[str, Any]:
        (obj,) = [o for o in self.objects if o["kind"] == kind]
        return copy.deepcopy(obj)

    def deploy(self, env: Mapping[str, str]) -> float:
        """Render the version with `env` and apply every object (ConfigMaps before the
        Deployment that reads them, in the render's order); the monotonic time it was applied."""
        self.objects = render(self.namespace, self.app, self.image, env)
        for obj in sorted(self.objects, key=lambda o: APPLY_ORDER.index(o["kind"])):
            if obj["kind"] != "Namespace":
                self.kube.apply(obj, field_manager=FIELD_MANAGER)
        return time.monotonic()

    def deployment(self) -> dict[str, Any]:
        return self.kube.get("Deployment", self.app, self.namespace)

    def rolled_out(self) -> bool:
        """The Deployment controller has rolled the applied template out: every replica
        updated, ready and available, no old pod left."""
        dep = self.deployment()
        status, want = dep.get("status") or {}, dep["spec"].get("replicas") or 0
        return (
            status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            and want >= 2
            and status.get("updatedReplicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("replicas", 0) == want
        )

    def pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/name={self.app}"
        return [
            p
            for p in self.kube.list("Pod", self.namespace, selector)
            if not p["metadata"].get("deletionTimestamp")
        ]

    def user_requests(self, count: int = 5) -> list[int]:
        """`count` requests to `/` of every running pod, from the host's address (admitted by
        the rendered NetworkPolicy through `network.apiServerCidrs`); the HTTP statuses (0: no
        answer, e.g. a pod that is going away)."""
        statuses = []
        for pod in self.pods():
            ip = (pod.get("status") or {}).get("podIP")
            ports = [
                p["containerPort"]
                for p in pod["spec"]["containers"][0].get("ports") or []
                if p.get("name") == "http"
            ]
            if not ip or not ports:
                continue
            for _ in range(count):
                statuses.append(http_status(f"http://{ip}:{ports[0]}/"))
        return statuses


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


@dataclass
class Seen:
    """When (monotonic) an alert was first seen in a state, at each end."""

    prometheus: float | None = None
    notified: float | None = None
    notification: dict[str, Any] = field(default_factory=dict)


class AlertWatch:
    """Polls Prometheus' `/api/v1/alerts` and the webhook sink for alerts of one namespace."""

    def __init__(self, prometheus: str, sink: Sink, namespace: str) -> None:
        self.prometheus = prometheus
        self.sink = sink
        self.namespace = namespace

    def active(self) -> dict[str, dict[str, Any]]:
        """alertname -> the alert, for the namespace's pending and firing alerts (the firing
        one when an alert has several series)."""
        doc = monitoring.http_json(f"{self.prometheus}/api/v1/alerts")
        out: dict[str, dict[str, Any]] = {}
        for alert in doc["data"]["alerts"]:
            if alert["labels"].get("namespace") != self.namespace:
                continue
            name = alert["labels"]["alertname"]
            if out.get(name, {}).get("state") != "firing":
                out[name] = alert
        return out

    def notifications(self, since: int, status: str) -> dict[str, dict[str, Any]]:
        """alertname -> the first alert of `status` posted to the sink after request `since`,
        with the receiver's path."""
        out: dict[str, dict[str, Any]] = {}
        for received in self.sink.requests[since:]:
            for alert in received.json()["alerts"]:
                labels = alert["labels"]
                if labels.get("namespace") == self.namespace and alert["status"] == status:
                    out.setdefault(labels["alertname"], {**alert, "path": received.path})
        return out

    def wait(
        self,
        kube: Kube,
        names: list[str],
        *,
        firing: bool,
        since: int,
        timeout: float,
        tick: Callable[[], None] | None = None,
    ) -> dict[str, Seen]:
        """Until every alert of `names` is firing in Prometheus and notified as firing
        (`firing`), or gone from Prometheus and notified as resolved (not `firing`); only
        notifications after sink request `since` count. `tick` runs every poll (traffic)."""
        seen = {name: Seen() for name in names}
        status = "firing" if firing else "resolved"

        def done() -> bool:
            if tick is not None:
                tick()
            now = time.monotonic()
            active = self.active()
            notified = self.notifications(since, status)
            for name, s in seen.items():
                state = active.get(name, {}).get("state")
                if s.prometheus is None and ((state == "firing") if firing else state is None):
                    s.prometheus = now
                if s.notified is None and name in notified:
                    s.notified, s.notification = now, notified[name]
            return all(s.prometheus is not None and s.notified is not None for s in seen.values())

        try:
            kube.wait_for(f"{names} {status}", done, timeout=timeout, interval=1)
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}: in Prometheus {sorted(self.active().items())}; seen {seen}"
            ) from None
        return seen

"""The series a cluster would export for a RENDER: the pods the controllers would create for the
rendered workloads, and what kubelet (cAdvisor), kube-state-metrics v2, the Argo Rollouts
controller and the app itself would export about them, labelled as Prometheus stores them.

Nothing here reads the code's constants: pod names, container names, limits, job names and
target labels come from the rendered objects and from the upstream naming rules:

- pods of a Deployment or a Rollout: the ReplicaSet controller names them
  `<ReplicaSet name>-<5 random>` with ReplicaSet `<workload>-<pod template hash>`; the hash is
  `rand.SafeEncodeString(fmt.Sprint(fnv32a(template)))` (k8s.io/kubernetes
  pkg/controller/controller_utils.go ComputeHash; Argo Rollouts utils/hash). The Deployment
  controller labels the pods `pod-template-hash`, Argo Rollouts `rollouts-pod-template-hash`.
  Pods of a StatefulSet are `<statefulset>-<ordinal>`.
- cAdvisor (kubelet `/metrics/cadvisor`, scraped by the kube-prometheus-stack kubelet
  ServiceMonitor): `namespace`, `pod`, `container` (the pod-spec name; "" for the pod cgroup,
  "POD" for the sandbox), `image`, `id`, `name`, plus target labels `job="kubelet"`,
  `metrics_path`, `node`, `instance`, `service`, `endpoint`.
- kube-state-metrics v2 (scraped with `honorLabels: true`): its own `namespace`, `pod`, `uid`,
  `container` labels; the scrape adds `job`, `instance`, and, on series without their own
  `pod`/`container`, those of the kube-state-metrics pod.
- Argo Rollouts controller (argo-rollouts v1.9.1 controller/metrics): `rollout_info{namespace,
  name, strategy, traffic_router, phase}` and `rollout_info_replicas_*{namespace, name}`; the
  argo-rollouts Helm chart's ServiceMonitor has no `honorLabels`, so the Rollout's namespace
  lands in `exported_namespace` and `namespace` is the controller's.
- the app (app/server/metrics.py): `http_requests_total{method, code, path}`,
  `http_request_duration_seconds_bucket{method, path, le}` (buckets `DURATION_BUCKETS`), scraped
  through the rendered ServiceMonitor: `job` = the Service's `jobLabel` label value, target
  labels `namespace`, `service`, `pod`, `container` (the container exposing the endpoint's
  port), `endpoint`, `instance`, plus the ServiceMonitor's `podTargetLabels` (label names
  sanitized to `[a-zA-Z0-9_]`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.utils import floatToGoString

# k8s.io/apimachinery/pkg/util/rand: SafeEncodeString's alphabet (no vowels, no 0/1/3).
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
ARGO_CONTROLLER_NAMESPACE = "argo-rollouts"
KSM = {"job": "kube-state-metrics", "instance": "10.0.9.9:8080"}
KSM_TARGET = {
    **KSM,
    "pod": "kube-state-metrics-7d9c6b8f4d-x2x2x",
    "container": "kube-state-metrics",
}
ARGO_TARGET = {
    "job": "argo-rollouts-metrics",
    "instance": "10.0.9.8:8090",
    "service": "argo-rollouts-metrics",
    "endpoint": "metrics",
}

Series = tuple[str, str]
"""(series in promtool notation, values expression)."""


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def memory_bytes(quantity: str) -> int:
    """A memory quantity in bytes, as kube-state-metrics reports the limit (`unit="byte"`)."""
    match = re.fullmatch(r"(\d+)([KMGT]i|[kMG])?", quantity)
    assert match, f"memory quantity not handled by the test: {quantity!r}"
    return int(match.group(1)) * _SUFFIXES.get(match.group(2) or "", 1)


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString: each byte mapped into the safe alphabet."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def template_hash(template: Mapping[str, Any], revision: int = 0) -> str:
    """The pod-template hash the controllers compute (collisionCount = `revision`)."""
    data = json.dumps(template, sort_keys=True).encode() + str(revision).encode()
    return safe_encode(str(_fnv32a(data)))


def sanitize_label_name(name: str) -> str:
    """prometheus-operator: a Kubernetes label name as a Prometheus label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def series(metric: str, labels: Mapping[str, str]) -> str:
    """`metric{a="x", ...}` in promtool's input-series notation, labels sorted."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    memory_limit: int | None
    """bytes"""
    ports: Mapping[str, int]
    """port name -> container port"""


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    owner_kind: str
    """Kind of the workload: Deployment, StatefulSet or Rollout."""
    owner: str
    """Name of the workload."""
    labels: Mapping[str, str]
    """The pod's labels at runtime: the template's plus the controller's hash label."""
    containers: tuple[Container, ...]
    ip: str
    node: str
    revision: str = ""
    """The pod-template hash ("" for StatefulSet pods)."""

    @property
    def uid(self) -> str:
        return f"{_fnv32a(self.name.encode()):08x}-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Cluster:
    """The pods of a render and the objects around them."""

    objects: Sequence[Mapping[str, Any]]
    pods: tuple[Pod, ...]
    argo_honor_labels: bool = False

    def of(self, kind: str, name: str | None = None) -> list[Mapping[str, Any]]:
        return [
            o
            for o in self.objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
        ]

    def pods_of(self, owner: str) -> list[Pod]:
        return [p for p in self.pods if p.owner == owner]


# ---------------------------------------------------------------------------------------------
# Pods as the controllers create them


def _containers(template: Mapping[str, Any]) -> tuple[Container, ...]:
    out = []
    for c in template["spec"]["containers"]:
        limit = (c.get("resources") or {}).get("limits", {}).get("memory")
        out.append(
            Container(
                name=c["name"],
                image=c["image"],
                memory_limit=memory_bytes(str(limit)) if limit is not None else None,
                ports={p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p},
            )
        )
    return tuple(out)


def _desired_replicas(objects: Sequence[Mapping[str, Any]], workload: Mapping[str, Any]) -> int:
    """spec.replicas; under an HPA (spec.replicas unset) the HPA's minimum; else the API
    default 1."""
    spec = workload["spec"]
    if "replicas" in spec:
        return int(spec["replicas"])
    for hpa in objects:
        ref = (
            hpa.get("spec", {}).get("scaleTargetRef", {})
            if hpa["kind"] == "HorizontalPodAutoscaler"
            else {}
        )
        if ref.get("kind") == workload["kind"] and ref.get("name") == workload["metadata"]["name"]:
            return int(hpa["spec"].get("minReplicas", 1))
    return 1


def _suffix(seed: str) -> str:
    return safe_encode(f"{_fnv32a(seed.encode()):010d}")[:5]


def controller_pods(
    objects: Sequence[Mapping[str, Any]], rollout_revisions: int = 2
) -> tuple[Pod, ...]:
    """Pods of every rendered Deployment, StatefulSet and Rollout. A Rollout is shown in the
    middle of a release: its pods of `rollout_revisions` ReplicaSets (stable and canary, or
    active and preview), each at the desired count."""
    pods: list[Pod] = []
    counter = 0
    for workload in objects:
        kind = workload["kind"]
        if kind not in ("Deployment", "StatefulSet", "Rollout"):
            continue
        name, ns = workload["metadata"]["name"], workload["metadata"]["namespace"]
        template = workload["spec"]["template"]
        containers = _containers(template)
        replicas = _desired_replicas(objects, workload)
        revisions = rollout_revisions if kind == "Rollout" else 1
        for revision in range(revisions):
            for i in range(replicas):
                counter += 1
                base_labels = dict(template["metadata"].get("labels", {}))
                if kind == "StatefulSet":
                    pod_name, rev = f"{name}-{i}", ""
                    base_labels["statefulset.kubernetes.io/pod-name"] = pod_name
                else:
                    rev = template_hash(template, revision)
                    # names.SimpleNameGenerator: generateName `<ReplicaSet>-` + 5 random
                    # characters, the base cut to 58 characters.
                    pod_name = f"{name}-{rev}-"[:58] + _suffix(f"{name}{rev}{i}")
                    key = "rollouts-pod-template-hash" if kind == "Rollout" else "pod-template-hash"
                    base_labels[key] = rev
                pods.append(
                    Pod(
                        name=pod_name,
                        namespace=ns,
                        owner_kind=kind,
                        owner=name,
                        labels=base_labels,
                        containers=containers,
                        ip=f"10.1.{counter // 250}.{counter % 250 + 1}",
                        node=f"node-{counter % 3}",
                        revision=rev,
                    )
                )
    return tuple(pods)


def cluster(
    objects: Sequence[Mapping[str, Any]],
    rollout_revisions: int = 2,
    argo_honor_labels: bool = False,
) -> Cluster:
    return Cluster(objects, controller_pods(objects, rollout_revisions), argo_honor_labels)


# ---------------------------------------------------------------------------------------------
# Exporters


def cadvisor(pod: Pod, container: str, metric: str, values: str) -> list[Series]:
    """A cAdvisor series of one container, plus the pod-cgroup (`container=""`) and sandbox
    (`container="POD"`) series cAdvisor exports beside it (same values: a rule that forgets
    to select the container would double count)."""
    ctr = next(c for c in pod.containers if c.name == container)
    common = {
        "namespace": pod.namespace,
        "pod": pod.name,
        "job": "kubelet",
        "metrics_path": "/metrics/cadvisor",
        "service": "kubelet",
        "endpoint": "https-metrics",
        "node": pod.node,
        "instance": f"{pod.node}:10250",
    }
    cgroup = f"/kubepods/burstable/pod{pod.uid}"
    return [
        (
            series(
                metric,
                {
                    **common,
                    "container": ctr.name,
                    "image": ctr.image,
                    "id": f"{cgroup}/{ctr.name}",
                    "name": f"{pod.name}-{ctr.name}",
                },
            ),
            values,
        ),
        (series(metric, {**common, "container": "", "image": "", "id": cgroup}), values),
        (
            series(
                metric,
                {
                    **common,
                    "container": "POD",
                    "image": "registry.k8s.io/pause:3.10",
                    "id": f"{cgroup}/sandbox",
                    "name": f"{pod.name}-sandbox",
                },
            ),
            values,
        ),
    ]


def ksm_container(pod: Pod, container: str, metric: str, values: str, **extra: str) -> Series:
    """A kube-state-metrics v2 per-container series."""
    labels = {
        **KSM,
        "namespace": pod.namespace,
        "pod": pod.name,
        "uid": pod.uid,
        "container": container,
        **extra,
    }
    return series(metric, labels), values


def ksm_object(
    metric: str, kind_label: str, namespace: str, name: str, values: str, **extra: str
) -> Series:
    """A kube-state-metrics v2 series about a namespaced object (`deployment`, `statefulset`,
    `horizontalpodautoscaler`, `poddisruptionbudget`)."""
    labels = {**KSM_TARGET, "namespace": namespace, kind_label: name, **extra}
    return series(metric, labels), values


def argo_rollout(
    metric: str, cl: Cluster, rollout: Mapping[str, Any], values: str, **extra: str
) -> Series:
    """An Argo Rollouts controller series about `rollout`."""
    ns = rollout["metadata"]["namespace"]
    labels: dict[str, str] = {**ARGO_TARGET, "name": rollout["metadata"]["name"], **extra}
    if cl.argo_honor_labels:
        labels["namespace"] = ns
    else:
        labels["namespace"] = ARGO_CONTROLLER_NAMESPACE
        labels["exported_namespace"] = ns
    return series(metric, labels), values


def rollout_info(cl: Cluster, rollout: Mapping[str, Any], phase: str) -> Series:
    strategy = rollout["spec"]["strategy"]
    kind = "blueGreen" if "blueGreen" in strategy else "canary"
    router = ""
    if "nginx" in (strategy.get("canary", {}).get("trafficRouting") or {}):
        router = "Nginx"
    return argo_rollout(
        "rollout_info", cl, rollout, "1+0x90", strategy=kind, traffic_router=router, phase=phase
    )


@dataclass(frozen=True)
class ScrapeTarget:
    """One pod endpoint the app's ServiceMonitor scrapes, with its target labels."""

    pod: Pod
    labels: Mapping[str, str]


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def scrape_targets(cl: Cluster, monitor: Mapping[str, Any]) -> list[ScrapeTarget]:
    """The targets of a rendered ServiceMonitor: pods behind the Services it selects, with the
    labels prometheus-operator gives them."""
    spec = monitor["spec"]
    namespaces = spec.get("namespaceSelector", {}).get("matchNames") or [
        monitor["metadata"]["namespace"]
    ]
    targets = []
    for service in cl.of("Service"):
        meta = service["metadata"]
        if meta["namespace"] not in namespaces or not _selects(
            spec["selector"].get("matchLabels", {}), meta.get("labels", {})
        ):
            continue
        for endpoint in spec["endpoints"]:
            port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
            for pod in cl.pods:
                if pod.namespace != meta["namespace"] or not _selects(
                    service["spec"]["selector"], pod.labels
                ):
                    continue
                target_port = port.get("targetPort", port["port"])
                ctr = next(
                    c
                    for c in pod.containers
                    if target_port in c.ports or target_port in c.ports.values()
                )
                number = ctr.ports.get(target_port, target_port)
                labels = {
                    "job": meta["labels"].get(spec.get("jobLabel", ""), meta["name"]),
                    "namespace": pod.namespace,
                    "service": meta["name"],
                    "pod": pod.name,
                    "container": ctr.name,
                    "endpoint": endpoint["port"],
                    "instance": f"{pod.ip}:{number}",
                }
                for key in spec.get("podTargetLabels", []):
                    if key in pod.labels:
                        labels[sanitize_label_name(key)] = pod.labels[key]
                targets.append(ScrapeTarget(pod, labels))
    return targets


def app_targets(cl: Cluster, app: str) -> list[ScrapeTarget]:
    (monitor,) = [
        m
        for m in cl.of("ServiceMonitor")
        if m["metadata"]["labels"].get("app.kubernetes.io/name") == app
    ]
    return scrape_targets(cl, monitor)


def http_requests(target: ScrapeTarget, code: str, values: str, path: str = "/") -> Series:
    return series(
        "http_requests_total", {**target.labels, "method": "GET", "path": path, "code": code}
    ), values


def duration_buckets(
    target: ScrapeTarget, per_minute: Mapping[float, int], bounds: Iterable[float], path: str = "/"
) -> list[Series]:
    """Cumulative histogram buckets: `per_minute` requests per minute observed at each
    duration, over the app's bucket `bounds` (+Inf added)."""
    out = []
    for le in [*bounds, float("inf")]:
        count = sum(n for d, n in per_minute.items() if d <= le)
        label = "+Inf" if le == float("inf") else _go_float(le)
        out.append(
            (
                series(
                    "http_request_duration_seconds_bucket",
                    {**target.labels, "method": "GET", "path": path, "le": label},
                ),
                f"0+{count}x40",
            )
        )
    return out


def _go_float(value: float) -> str:
    """The app's `le` label: prometheus_client's floatToGoString ("0.005", "1.0")."""
    return floatToGoString(value)


def up(target: ScrapeTarget, values: str) -> Series:
    return series("up", target.labels), values


@dataclass
class Scenario:
    """Input series plus the alerts expected from them."""

    series: list[Series] = field(default_factory=list)
    firing: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

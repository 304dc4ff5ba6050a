"""The endpoints of a connection and the cluster they live in, read from rendered manifests."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy.netpol.selectors import selector_matches

#: The label the API server sets on every Namespace (immutable; NamespaceDefaultLabelName,
#: kubernetes pkg/apis/core/v1/defaults.go), so namespaceSelectors can always name one.
NS_NAME_LABEL = "kubernetes.io/metadata.name"

#: The Services an Argo Rollout manages: (strategy block, field naming the Service).
ARGO_SERVICE_FIELDS = (
    ("blueGreen", "activeService"),
    ("blueGreen", "previewService"),
    ("canary", "canaryService"),
    ("canary", "stableService"),
)
#: Workload kinds whose pod template makes pods (Argo Rollouts included).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout")


@dataclass(frozen=True)
class PodPort:
    """One container port of a pod (what a named NetworkPolicy or Service port resolves to)."""

    port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    """A pod: its namespace, labels, container ports and, when known, its IP."""

    namespace: str
    labels: Mapping[str, str]
    ports: tuple[PodPort, ...] = ()
    ip: str | None = None
    name: str = ""

    def named_port(self, name: str, protocol: str) -> int | None:
        """The container port called `name` with `protocol`, if any."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None

    def __str__(self) -> str:
        return f"pod {self.namespace}/{self.name or dict(self.labels)}"


@dataclass(frozen=True)
class External:
    """An address outside the cluster's pods (an API server, a registry, a LoadBalancer IP)."""

    ip: str

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.ip)  # raises ValueError on anything else

    def __str__(self) -> str:
        return f"address {self.ip}"


Endpoint = Pod | External


def _container_ports(spec: Mapping[str, Any]) -> tuple[PodPort, ...]:
    out: list[PodPort] = []
    for container in spec.get("containers") or []:
        for p in container.get("ports") or []:
            out.append(
                PodPort(int(p["containerPort"]), str(p.get("name", "")), p.get("protocol", "TCP"))
            )
    return tuple(out)


def pod_from_manifest(pod: Mapping[str, Any], namespace: str | None = None) -> Pod:
    """A Pod from a pod manifest (or a pod template: metadata + spec)."""
    meta = pod.get("metadata") or {}
    return Pod(
        namespace=namespace or str(meta.get("namespace", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        ports=_container_ports(pod.get("spec") or {}),
        name=str(meta.get("name", "")),
    )


@dataclass
class Cluster:
    """NetworkPolicies, Namespaces, Services and pods of one or more renders."""

    policies: list[Mapping[str, Any]] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    services: list[Mapping[str, Any]] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    argo_services: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """(namespace, Service) -> the pod template labels of the Argo Rollout that manages its
    selector: such a Service has none in the render, and the controller gives it the
    Rollout's `rollouts-pod-template-hash` (argo-rollouts rollout/service.go
    `switchServiceSelector`), which only that Rollout's pods carry."""

    @classmethod
    def from_objects(
        cls, objects: Iterable[Mapping[str, Any]], extra_pods: Sequence[Pod] = ()
    ) -> Cluster:
        """Read NetworkPolicies, Namespaces, Services and workload pods from manifests; pods
        not made by a rendered workload (e.g. Jenkins agents from JCasC) come as `extra_pods`."""
        cluster = cls(pods=list(extra_pods))
        for obj in objects:
            kind = obj.get("kind")
            meta = obj.get("metadata") or {}
            if kind == "NetworkPolicy":
                cluster.policies.append(obj)
            elif kind == "Namespace":
                cluster.namespace(str(meta["name"])).update(meta.get("labels") or {})
            elif kind == "Service":
                cluster.services.append(obj)
            elif kind == "Pod":
                cluster.pods.append(pod_from_manifest(obj))
            elif kind in WORKLOAD_KINDS:
                template = (obj.get("spec") or {}).get("template") or {}
                pod = pod_from_manifest(template, str(meta.get("namespace", "")))
                cluster.pods.append(Pod(pod.namespace, pod.labels, pod.ports, None, meta["name"]))
                if kind == "Rollout":
                    strategy = (obj.get("spec") or {}).get("strategy") or {}
                    for block, key in ARGO_SERVICE_FIELDS:
                        name = (strategy.get(block) or {}).get(key)
                        if name:
                            cluster.argo_services[(pod.namespace, str(name))] = dict(pod.labels)
        return cluster

    def namespace(self, name: str) -> dict[str, str]:
        """The labels of a namespace (created with its automatic name label when unknown)."""
        return self.namespace_labels.setdefault(name, {NS_NAME_LABEL: name})

    def pod(self, namespace: str, labels: Mapping[str, str]) -> Pod:
        """The one pod of `namespace` whose labels include `labels`."""
        found = [
            p
            for p in self.pods
            if p.namespace == namespace and all(p.labels.get(k) == v for k, v in labels.items())
        ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} pods in {namespace} with labels {labels}")
        return found[0]

    def service_backends(
        self, namespace: str, name: str, port: int, protocol: str = "TCP"
    ) -> list[tuple[Pod, int]]:
        """What a connection to Service `namespace/name` on `port` reaches: each selected pod
        and the target port (a named targetPort resolved against that pod's container ports,
        as the endpoints controller does; an unset targetPort is the port itself)."""
        for svc in self.services:
            meta = svc.get("metadata") or {}
            if meta.get("name") != name or meta.get("namespace") != namespace:
                continue
            spec = svc.get("spec") or {}
            for sp in spec.get("ports") or []:
                if int(sp["port"]) != port or sp.get("protocol", "TCP") != protocol:
                    continue
                selector = spec.get("selector") or self.argo_services.get((namespace, name), {})
                return self._backends(namespace, selector, sp, protocol)
            raise LookupError(f"service {namespace}/{name} has no {protocol} port {port}")
        raise LookupError(f"no service {namespace}/{name}")

    def _backends(
        self,
        namespace: str,
        selector: Mapping[str, str],
        svc_port: Mapping[str, Any],
        protocol: str,
    ) -> list[tuple[Pod, int]]:
        target = svc_port.get("targetPort", svc_port["port"])
        out: list[tuple[Pod, int]] = []
        for pod in self.pods:
            if pod.namespace != namespace or not selector:
                continue
            if not selector_matches({"matchLabels": selector}, pod.labels):
                continue
            resolved = pod.named_port(target, protocol) if isinstance(target, str) else target
            if resolved is not None:
                out.append((pod, int(resolved)))
        return out

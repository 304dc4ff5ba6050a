"""Cluster add-ons on the real nodes, as pods, from images built here (e2e/tools/build.sh
coredns kube-router): CoreDNS (the `kubernetes` plugin only: no `forward`, no upstream, a name
outside cluster.local is refused) behind the kube-dns Service at DNS_IP, and kube-router with
only its NetworkPolicy firewall (iptables + ipset; this kernel lacks NFT_QUEUE, which
kube-network-policies needs), one per node with the node's network (hostNetwork in the node's
namespace). Both reach the API server at its ClusterIP through kube-proxy."""

from __future__ import annotations

from typing import Any

from e2e.cluster import SERVICE_CIDR
from e2e.engine import tool_versions
from e2e.kube import Kube
from e2e.realnode.layout import CLUSTER_DOMAIN, DNS_IP, NODE_LABEL

NAMESPACE = "kube-system"
FIELD_MANAGER = "appstack-e2e-addons"
# In the pod as upstream's manifest has it (NetworkPolicies name the pod's port, 53, after the
# Service's translation: the rendered allow-dns-egress policy allows exactly 53). The container
# has no capability: the pod's network namespace lets unprivileged processes bind from 53 on
# (`net.ipv4.ip_unprivileged_port_start`, a namespaced sysctl the kubelet allows as safe).
DNS_PORT = 53
COREDNS_REPLICAS = 2
COREFILE = f""".:{DNS_PORT} {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""


def _meta(name: str, namespaced: bool = True, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"k8s-app": name, **labels}}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def _rbac(name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name)},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": _meta(name, False), "rules": rules},
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(name, False),
            "roleRef": {"apiGroup": rbac.split("/")[0], "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
    ]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def coredns_objects() -> list[dict[str, Any]]:
    """upstream's deployment/kubernetes/coredns.yaml.sed, without `forward` and with the image
    built here (run unprivileged on DNS_PORT)."""
    key, value = NODE_LABEL
    read = ["list", "watch"]
    objects = _rbac(
        "coredns",
        [
            _rule([""], ["endpoints", "services", "pods", "namespaces"], read),
            _rule(["discovery.k8s.io"], ["endpointslices"], read),
        ],
    )
    labels = {"k8s-app": "kube-dns"}
    probe = {"periodSeconds": 2, "failureThreshold": 3, "timeoutSeconds": 2}
    objects += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("coredns"),
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("coredns"),
            "spec": {
                "replicas": COREDNS_REPLICAS,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "nodeSelector": {key: value},
                        "dnsPolicy": "Default",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [
                                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}
                            ],
                        },
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [
                            {
                                "name": "coredns",
                                "image": tool_versions()["COREDNS_IMAGE"],
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"containerPort": DNS_PORT, "name": "dns", "protocol": "UDP"},
                                    {"containerPort": DNS_PORT, "name": "dns-tcp"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    **probe,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    **probe,
                                    "failureThreshold": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "20m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns"),
            "spec": {
                "clusterIP": DNS_IP,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"},
                ],
            },
        },
    ]
    return objects


def kube_router_objects() -> list[dict[str, Any]]:
    """upstream's daemonset/generic-kuberouter-only-advertise-routes.yaml turned the other way:
    only --run-firewall (no routing, no service proxy: kube-proxy does that, no CNI config:
    the node has its bridge). NET_ADMIN and NET_RAW instead of `privileged` (the API server
    refuses privileged pods, --allow-privileged=false)."""
    key, value = NODE_LABEL
    read = ["get", "list", "watch"]
    objects = _rbac(
        "kube-router",
        [
            _rule([""], ["namespaces", "pods", "services", "nodes", "endpoints"], read),
            _rule(["networking.k8s.io"], ["networkpolicies"], read),
            _rule(["discovery.k8s.io"], ["endpointslices"], read),
            _rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update"]),
        ],
    )
    labels = {"k8s-app": "kube-router"}
    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kube-router"),
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "kube-router",
                        "hostNetwork": True,
                        "dnsPolicy": "Default",
                        "nodeSelector": {key: value},
                        "containers": [
                            {
                                "name": "kube-router",
                                "image": tool_versions()["KUBE_ROUTER_IMAGE"],
                                "imagePullPolicy": "Never",
                                "args": [
                                    "--run-firewall=true",
                                    "--run-router=false",
                                    "--run-service-proxy=false",
                                    "--enable-cni=false",
                                    "--enable-ipv4=true",
                                    "--enable-ipv6=false",
                                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                                    "--hostname-override=$(NODE_NAME)",
                                    "--health-port=20244",
                                    "--metrics-port=0",
                                    "--v=1",
                                ],
                                "env": [
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    }
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz", "port": 20244},
                                    "periodSeconds": 3,
                                },
                                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}},
                                "securityContext": {
                                    "runAsUser": 0,
                                    "seccompProfile": {"type": "RuntimeDefault"},
                                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
                                },
                            }
                        ],
                    },
                },
            },
        }
    )
    return objects


def apply_all(kube: Kube, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kube.apply(obj, field_manager=FIELD_MANAGER)


def ready(kube: Kube, nodes: int) -> bool:
    """CoreDNS's replicas and one kube-router per real node Ready."""
    dns = kube.get("Deployment", "coredns", NAMESPACE).get("status") or {}
    router = kube.get("DaemonSet", "kube-router", NAMESPACE).get("status") or {}
    return bool(dns.get("readyReplicas") == COREDNS_REPLICAS and router.get("numberReady") == nodes)

"""Cluster add-ons on the real nodes, as pods, from images built here (e2e/tools/build.sh
coredns kube-router metrics-server):
CoreDNS (the `kubernetes` plugin only: no `forward`, no upstream, a name
outside cluster.local is refused) behind the kube-dns Service at DNS_IP, and kube-router with
only its NetworkPolicy firewall (iptables + ipset; this kernel lacks NFT_QUEUE, which
kube-network-policies needs), one per node with the node's network (hostNetwork in the node's
namespace), and metrics-server behind the aggregated API `v1beta1.metrics.k8s.io` (the
HorizontalPodAutoscaler controller's resource metrics), scraping the real kubelets only. All
reach the API server at its ClusterIP through kube-proxy."""

from __future__ import annotations

import base64
import re
from typing import Any

from e2e.cluster import REPO_ROOT, SERVICE_CIDR, Cluster
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


METRICS_SERVER = "metrics-server"
METRICS_API = "v1beta1.metrics.k8s.io"
# In the pod (its own network namespace: no clash with the kubelet's 10250 on the node).
METRICS_SERVER_PORT = 10250
# metrics-server's --metric-resolution (its minimum; the default is 15 s): how often it scrapes
# each kubelet's /metrics/resource, so the freshest sample the HPA controller can read.
METRICS_RESOLUTION = "10s"
METRICS_SERVER_GOMOD = REPO_ROOT / "e2e" / "tools" / "metrics-server" / "go.mod"


def metrics_server_version() -> str:
    """The sigs.k8s.io/metrics-server version the metrics-server/ tools module builds (its go.mod,
    as e2e/tools/build.sh reads it)."""
    text = METRICS_SERVER_GOMOD.read_text(encoding="utf-8")
    found = re.search(r"^\s*(?:require\s+)?sigs\.k8s\.io/metrics-server (v\S+)", text, re.M)
    if not found:
        raise RuntimeError(f"{METRICS_SERVER_GOMOD} requires no sigs.k8s.io/metrics-server")
    return found.group(1)


def metrics_server_image() -> str:
    """The image name e2e/tools/build.sh metrics-server gives its OCI archive."""
    return f"localhost/appstack-e2e/metrics-server:{metrics_server_version().removeprefix('v')}"


def metrics_server_objects(cluster: Cluster) -> list[dict[str, Any]]:
    """upstream's manifests/base (v0.8.0: rbac.yaml, service.yaml, deployment.yaml,
    apiservice.yaml) with these differences:

    - TLS both ways from the cluster's CA instead of `--kubelet-insecure-tls` and
      `insecureSkipTLSVerify`: the kubelets serve certificates of the cluster CA
      (e2e/realnode/node.py), checked with `--kubelet-certificate-authority` against the
      `kube-root-ca.crt` ConfigMap; metrics-server serves a certificate of the same CA for
      `metrics-server.kube-system.svc`, which the APIService's `caBundle` names;
    - `--node-selector` the real nodes' label: the kwok nodes' address routes off the machine;
    - `--kubelet-preferred-address-types=InternalIP` (the node address in its namespace) and
      `--metric-resolution` METRICS_RESOLUTION."""
    key, value = NODE_LABEL
    name = METRICS_SERVER
    cert = "metrics-server-serving"
    dns = f"{name}.{NAMESPACE}.svc"
    cluster._leaf(cert, f"/CN={dns}", f"subjectAltName=DNS:{dns}\n", "serverAuth")
    rbac = "rbac.authorization.k8s.io"
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]
    labels = {"k8s-app": name}
    objects = _rbac(
        name,
        [
            _rule([""], ["nodes/metrics"], ["get"]),
            _rule([""], ["pods", "nodes"], ["get", "list", "watch"]),
        ],
    )
    objects += [
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": _meta(
                "system:aggregated-metrics-reader",
                False,
                **{"k8s-app": name},  # (a label value has no colon)
                **{f"{rbac}/aggregate-to-{r}": "true" for r in ("view", "edit", "admin")},
            ),
            "rules": [_rule(["metrics.k8s.io"], ["pods", "nodes"], ["get", "list", "watch"])],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": _meta(f"{name}-auth-reader", True, **{"k8s-app": name}),
            "roleRef": {
                "apiGroup": rbac,
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": subject,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"{name}:system:auth-delegator", False, **{"k8s-app": name}),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": subject,
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(f"{name}-serving", True, **{"k8s-app": name}),
            "type": "kubernetes.io/tls",
            "stringData": {
                "tls.crt": (cluster.pki / f"{cert}.crt").read_text(encoding="utf-8"),
                "tls.key": (cluster.pki / f"{cert}.key").read_text(encoding="utf-8"),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {
                "selector": labels,
                "ports": [{"name": "https", "port": 443, "targetPort": "https"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name),
            "spec": {
                "replicas": 1,
                "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": name,
                        "nodeSelector": {key: value},
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": name,
                                "image": metrics_server_image(),
                                "imagePullPolicy": "Never",
                                "args": [
                                    f"--secure-port={METRICS_SERVER_PORT}",
                                    "--cert-dir=/tmp",
                                    "--tls-cert-file=/certs/tls.crt",
                                    "--tls-private-key-file=/certs/tls.key",
                                    "--kubelet-certificate-authority=/kube-ca/ca.crt",
                                    "--kubelet-preferred-address-types=InternalIP",
                                    "--kubelet-use-node-status-port",
                                    f"--node-selector={key}={value}",
                                    f"--metric-resolution={METRICS_RESOLUTION}",
                                    # Below the resolution, as metrics-server requires (its
                                    # default, 10s, equals it and is refused).
                                    "--kubelet-request-timeout=5s",
                                ],
                                "ports": [{"name": "https", "containerPort": METRICS_SERVER_PORT}],
                                "readinessProbe": {
                                    "httpGet": {
                                        "path": "/readyz",
                                        "port": "https",
                                        "scheme": "HTTPS",
                                    },
                                    "periodSeconds": 3,
                                    "failureThreshold": 3,
                                },
                                "livenessProbe": {
                                    "httpGet": {
                                        "path": "/livez",
                                        "port": "https",
                                        "scheme": "HTTPS",
                                    },
                                    "periodSeconds": 10,
                                    "failureThreshold": 6,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "tmp", "mountPath": "/tmp"},
                                    {"name": "certs", "mountPath": "/certs", "readOnly": True},
                                    {"name": "kube-ca", "mountPath": "/kube-ca", "readOnly": True},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                            {"name": "certs", "secret": {"secretName": f"{name}-serving"}},
                            {"name": "kube-ca", "configMap": {"name": "kube-root-ca.crt"}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": METRICS_API, "labels": labels},
            "spec": {
                "service": {"name": name, "namespace": NAMESPACE, "port": 443},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "caBundle": base64.b64encode((cluster.pki / "ca.crt").read_bytes()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]
    return objects


def metrics_api_available(kube: Kube) -> bool:
    """The APIService's Available condition (the aggregator reached metrics-server)."""
    status = kube.get("APIService", METRICS_API).get("status") or {}
    return any(
        c["type"] == "Available" and c["status"] == "True" for c in status.get("conditions") or []
    )


def apply_all(kube: Kube, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kube.apply(obj, field_manager=FIELD_MANAGER)


def ready(kube: Kube, nodes: int) -> bool:
    """CoreDNS's replicas and one kube-router per real node Ready."""
    dns = kube.get("Deployment", "coredns", NAMESPACE).get("status") or {}
    router = kube.get("DaemonSet", "kube-router", NAMESPACE).get("status") or {}
    return bool(dns.get("readyReplicas") == COREDNS_REPLICAS and router.get("numberReady") == nodes)

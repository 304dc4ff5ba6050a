"""The monitoring stack on the real nodes, as a kube-prometheus-stack install lays it out
(`make e2e-monitoring-node`): prometheus-operator, a `Prometheus` and an `Alertmanager` custom
resource, kube-state-metrics and the kubelets' cAdvisor endpoints, in the monitoring namespace
the stack's NetworkPolicies admit (`appstack:network.monitoringNamespace`, default
`monitoring`), every image built here (e2e/tools/build.sh prometheus-operator prometheus
alertmanager kube-state-metrics).

What is upstream's and what is ours:

- the CustomResourceDefinitions (all of monitoring.coreos.com), the operator's Deployment and
  RBAC, the Prometheus RBAC and kube-state-metrics' manifests are read from the Go module zips
  of the versions the tools modules pin (example/prometheus-operator-crd, example/rbac/... and
  kube-state-metrics' examples/standard), changed only in namespace, image, pull policy (the
  images are imported, never pulled) and node selector;
- the `Prometheus` selects ServiceMonitors and PrometheusRules by `release:
  kube-prometheus-stack` in every namespace, as kube-prometheus-stack's chart renders its
  Prometheus with default values (`serviceMonitorSelectorNilUsesHelmValues` /
  `ruleSelectorNilUsesHelmValues` true, `*NamespaceSelector: {}`); the `Alertmanager` selects
  AlertmanagerConfigs the same way, in every namespace, with the operator's default matcher
  strategy (a stack's routes only see alerts of its own namespace);
- kube-state-metrics' and the kubelets' ServiceMonitors follow the chart's (job `kube-state-metrics`
  with honorLabels; job `kubelet` on the operator-managed `kube-system/kubelet` Service, https
  with the service account's token, path `/metrics/cadvisor`).

Nothing here imports the program (the e2e layer may not): tests/test_e2e_monitoring.py holds
these constants to the program's defaults and validates every custom resource here against the
vendored schemas.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import go_module_dir
from e2e.kube import ApiError, Kube, restricted_namespace
from e2e.realnode.layout import NODE_LABEL

TOOLS = Path(__file__).resolve().parent.parent / "tools"
NAMESPACE = "monitoring"
#: The labels kube-prometheus-stack's Prometheus and Alertmanager select by (release name).
SELECTOR_LABELS = {"release": "kube-prometheus-stack"}
FIELD_MANAGER = "appstack-e2e-monitoring"
PROMETHEUS = "kube-prometheus-stack-prometheus"
ALERTMANAGER = "kube-prometheus-stack-alertmanager"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
#: Scrape and rule evaluation of the e2e Prometheus (the stack's ServiceMonitors carry their own
#: interval, `appstack:monitoring.scrapeInterval`).
SCRAPE_INTERVAL = "5s"
EVALUATION_INTERVAL = "5s"
#: The images build.sh writes, as (family, archive, image name, module whose version tags it).
OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
ALERTMANAGER_MODULE = "github.com/prometheus/alertmanager"
KSM_MODULE = "k8s.io/kube-state-metrics/v2"
IMAGES = (
    ("prometheus-operator", "prometheus-operator", OPERATOR_MODULE),
    ("prometheus-operator", "prometheus-config-reloader", OPERATOR_MODULE),
    ("prometheus", "prometheus", PROMETHEUS_MODULE),
    ("alertmanager", "alertmanager", ALERTMANAGER_MODULE),
    ("kube-state-metrics", "kube-state-metrics", KSM_MODULE),
)
#: Pod security of every monitoring pod: `restricted` (the namespace enforces it).
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "fsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}


class _Loader(yaml.SafeLoader):
    """The CRDs hold a bare `=` (an enum value), which PyYAML's YAML 1.1 resolver reads as the
    `value` tag: load it as the string it is."""


def _value(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:value", _value)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader) if d]


@cache
def module_version(family: str, module: str) -> str:
    """The version of `module` that e2e/tools/<family>/go.mod pins."""
    for line in (TOOLS / family / "go.mod").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (module, "require") and module in parts:
            return parts[parts.index(module) + 1]
    raise ValueError(f"e2e/tools/{family}/go.mod does not pin {module}")


def image_tag(family: str, module: str) -> str:
    version = module_version(family, module)
    if module == PROMETHEUS_MODULE:
        # The Go module v0.X0Y.Z / v0.XYY.Z is Prometheus X.Y.Z (build.sh does the same).
        minor = version.split(".")[1]
        return f"v{minor[0]}.{int(minor[1:])}.{version.split('.')[2]}"
    return version


def image(name: str) -> str:
    family, _, module = next(i for i in IMAGES if i[1] == name)
    return f"localhost/appstack-e2e/{name}:{image_tag(family, module)}"


def archives(binaries: Path) -> list[Path]:
    return [binaries / "node-images" / f"{name}.oci.tar" for _, name, _ in IMAGES]


def missing_tools(binaries: Path) -> list[str]:
    return [str(p) for p in archives(binaries) if not p.exists()]


def _module_dir(family: str, module: str) -> Path:
    return go_module_dir(f"{module}@{module_version(family, module)}")


def _on_real_nodes(pod_spec: dict[str, Any]) -> None:
    key, value = NODE_LABEL
    pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), key: value}


def _namespaced(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upstream's example objects moved into NAMESPACE (their bindings' subjects too)."""
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["namespace"] = NAMESPACE
        for subject in obj.get("subjects") or []:
            subject["namespace"] = NAMESPACE
        out.append(obj)
    return out


def crds() -> list[dict[str, Any]]:
    """Every monitoring.coreos.com CRD of the operator version that runs here."""
    base = _module_dir("prometheus-operator", OPERATOR_MODULE) / "example/prometheus-operator-crd"
    return [d for path in sorted(base.glob("*.yaml")) for d in load_yaml(path)]


def namespace() -> dict[str, Any]:
    return restricted_namespace(NAMESPACE)


def operator_objects() -> list[dict[str, Any]]:
    """example/rbac/prometheus-operator of the pinned version (ServiceAccount, ClusterRole and
    binding, Deployment, Service), with the images built here."""
    base = _module_dir("prometheus-operator", OPERATOR_MODULE) / "example/rbac/prometheus-operator"
    names = ("service-account", "cluster-role", "cluster-role-binding", "deployment", "service")
    objects = _namespaced(
        d for n in names for d in load_yaml(base / f"prometheus-operator-{n}.yaml")
    )
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        _on_real_nodes(pod)
        (container,) = pod["containers"]
        container["image"] = image("prometheus-operator")
        container["imagePullPolicy"] = "Never"
        reloader = "--prometheus-config-reloader="
        key, value = NODE_LABEL
        container["args"] = [
            f"{reloader}{image('prometheus-config-reloader')}" if a.startswith(reloader) else a
            for a in container["args"]
        ] + [
            # Only the real nodes' kubelets into kube-system/kubelet: the kwok nodes' address
            # (10.0.0.1) routes off the machine and must never be scraped (found by the first
            # run, which had every kwok node's "kubelet" as a target).
            f"--kubelet-selector={key}={value}",
            # The kubelets' read-only port (10255) is off (readOnlyPort: 0).
            "--kubelet-http-metrics=false",
        ]
        # The operator's readiness: its /healthz on the http port (upstream's manifest has none).
        container["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 2,
        }
    return objects


def prometheus_rbac() -> list[dict[str, Any]]:
    """example/rbac/prometheus: the service account Prometheus discovers and scrapes with."""
    base = _module_dir("prometheus-operator", OPERATOR_MODULE) / "example/rbac/prometheus"
    names = ("service-account", "cluster-role", "cluster-role-binding")
    return _namespaced(d for n in names for d in load_yaml(base / f"prometheus-{n}.yaml"))


def prometheus() -> dict[str, Any]:
    """kube-prometheus-stack's Prometheus with default values: ServiceMonitors, PodMonitors and
    PrometheusRules labelled `release: kube-prometheus-stack`, from every namespace; alerts to
    the Alertmanager below."""
    everywhere: dict[str, Any] = {}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": NAMESPACE, "labels": dict(SELECTOR_LABELS)},
        "spec": {
            "image": image("prometheus"),
            "version": image_tag("prometheus", PROMETHEUS_MODULE),
            "imagePullPolicy": "Never",
            "replicas": 1,
            "serviceAccountName": "prometheus",
            "serviceMonitorSelector": {"matchLabels": dict(SELECTOR_LABELS)},
            "serviceMonitorNamespaceSelector": everywhere,
            "podMonitorSelector": {"matchLabels": dict(SELECTOR_LABELS)},
            "podMonitorNamespaceSelector": everywhere,
            "ruleSelector": {"matchLabels": dict(SELECTOR_LABELS)},
            "ruleNamespaceSelector": everywhere,
            "scrapeInterval": SCRAPE_INTERVAL,
            "evaluationInterval": EVALUATION_INTERVAL,
            "alerting": {
                "alertmanagers": [
                    {
                        "namespace": NAMESPACE,
                        "name": "alertmanager-operated",
                        "port": "web",
                        "apiVersion": "v2",
                    }
                ]
            },
            "nodeSelector": dict([NODE_LABEL]),
            "securityContext": POD_SECURITY,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
    }


def alertmanager() -> dict[str, Any]:
    """kube-prometheus-stack's Alertmanager: AlertmanagerConfigs labelled like the rest, from
    every namespace, scoped to their namespace (matcher strategy OnNamespace, the default)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Alertmanager",
        "metadata": {
            "name": ALERTMANAGER,
            "namespace": NAMESPACE,
            "labels": dict(SELECTOR_LABELS),
        },
        "spec": {
            "image": image("alertmanager"),
            "version": module_version("alertmanager", ALERTMANAGER_MODULE),
            "imagePullPolicy": "Never",
            "replicas": 1,
            "alertmanagerConfigSelector": {"matchLabels": dict(SELECTOR_LABELS)},
            "alertmanagerConfigNamespaceSelector": {},
            "alertmanagerConfigMatcherStrategy": {"type": "OnNamespace"},
            "nodeSelector": dict([NODE_LABEL]),
            "securityContext": POD_SECURITY,
            "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
        },
    }


def kube_state_metrics_objects() -> list[dict[str, Any]]:
    """kube-state-metrics' examples/standard of the pinned version, in NAMESPACE, with the
    image built here, and its ServiceMonitor as kube-prometheus-stack has it."""
    base = _module_dir("kube-state-metrics", KSM_MODULE) / "examples/standard"
    names = ("service-account", "cluster-role", "cluster-role-binding", "deployment", "service")
    objects = _namespaced(d for n in names for d in load_yaml(base / f"{n}.yaml"))
    for obj in objects:
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            _on_real_nodes(pod)
            (container,) = pod["containers"]
            container["image"] = image("kube-state-metrics")
            container["imagePullPolicy"] = "Never"
        if obj["kind"] == "Service":
            obj["metadata"].setdefault("labels", {}).update(SELECTOR_LABELS)
    objects.append(kube_state_metrics_service_monitor())
    return objects


def service_monitor(
    name: str,
    namespace: str,
    selector: dict[str, str],
    endpoints: list[dict[str, Any]],
    job_label: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(SELECTOR_LABELS)},
        "spec": {
            "jobLabel": job_label,
            "selector": {"matchLabels": selector},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": endpoints,
        },
    }


def kube_state_metrics_service_monitor() -> dict[str, Any]:
    """kube-prometheus-stack's: job `kube-state-metrics`, honorLabels (the namespace, pod and
    container labels of its series are the objects', not the exporter's)."""
    return service_monitor(
        "kube-state-metrics",
        NAMESPACE,
        {"app.kubernetes.io/name": "kube-state-metrics"},
        [{"port": "http-metrics", "honorLabels": True, "interval": SCRAPE_INTERVAL}],
        job_label="app.kubernetes.io/name",
    )


def custom_resources() -> list[dict[str, Any]]:
    """The custom resources the tier applies (validated against the vendored schemas by
    tests/test_e2e_monitoring.py; no module zip needed)."""
    return [kube_state_metrics_service_monitor(), kubelet_service_monitor(), prometheus(),
            alertmanager()]  # fmt: skip


def kubelet_service_monitor() -> dict[str, Any]:
    """kube-prometheus-stack's kubelet ServiceMonitor (cAdvisor and the kubelet's own metrics):
    the `kube-system/kubelet` Service the operator keeps (--kubelet-service), https on the
    kubelet port with the service account's token (the kubelets authenticate and authorize it
    through the API server: webhook mode, ClusterRole `prometheus` grants nodes/metrics)."""
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    common = {
        "port": "https-metrics",
        "scheme": "https",
        "interval": SCRAPE_INTERVAL,
        "honorLabels": True,
        "tlsConfig": {"caFile": f"{sa}/ca.crt", "insecureSkipVerify": True},
        "bearerTokenFile": f"{sa}/token",
        "relabelings": [{"sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"}],
    }
    return service_monitor(
        "kubelet",
        "kube-system",
        {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"},
        [common, {**common, "path": "/metrics/cadvisor"}],
        job_label="k8s-app",
    )


def all_objects() -> list[dict[str, Any]]:
    """What `install` applies after the CRDs, in order."""
    return [
        namespace(),
        *operator_objects(),
        *prometheus_rbac(),
        *kube_state_metrics_objects(),
        kubelet_service_monitor(),
        prometheus(),
        alertmanager(),
    ]


def import_images(nodes: Any, binaries: Path) -> None:
    """Every monitoring image into every real node's containerd (k8s.io namespace)."""
    for node in nodes.nodes:
        for archive in archives(binaries):
            node.ctr("images", "import", "--snapshotter", "overlayfs", str(archive))


def install(kube: Kube) -> None:
    """CRDs (create, or replace what an older install left), then every object, server-side."""
    kube.install_crds(crds(), field_manager=FIELD_MANAGER, what="monitoring CRDs")
    for obj in all_objects():
        kube.apply(obj, field_manager=FIELD_MANAGER)


def _ready(kube: Kube, kind: str, name: str) -> bool:
    obj = kube.get_or_none(kind, name, NAMESPACE) or {}
    want = obj.get("spec", {}).get("replicas", 1)
    return bool(want and (obj.get("status") or {}).get("readyReplicas") == want)


def ready(kube: Kube) -> bool:
    """The operator and kube-state-metrics Deployments, and the StatefulSets the operator made
    for the Prometheus and the Alertmanager, all Ready."""
    return (
        _ready(kube, "Deployment", "prometheus-operator")
        and _ready(kube, "Deployment", "kube-state-metrics")
        and _ready(kube, "StatefulSet", f"prometheus-{PROMETHEUS}")
        and _ready(kube, "StatefulSet", f"alertmanager-{ALERTMANAGER}")
    )


def pod_ip(kube: Kube, selector: str) -> str:
    pods = [
        p
        for p in kube.list("Pod", NAMESPACE, selector)
        if (p.get("status") or {}).get("podIP") and p["status"].get("phase") == "Running"
    ]
    if not pods:
        raise LookupError(f"no running pod in {NAMESPACE} matches {selector}")
    return str(pods[0]["status"]["podIP"])


def prometheus_ip(kube: Kube) -> str:
    return pod_ip(kube, f"prometheus={PROMETHEUS}")


def alertmanager_ip(kube: Kube) -> str:
    return pod_ip(kube, f"alertmanager={ALERTMANAGER}")


def http_json(url: str, timeout: float = 10.0) -> Any:
    """GET a JSON document from a pod address (10.245.x.x: inside the run's namespaces)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def describe(kube: Kube) -> str:
    """Pods of NAMESPACE with their container states (for a failed wait)."""
    lines = []
    for pod in kube.list("Pod", NAMESPACE):
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        states = {s["name"]: (s.get("ready"), list(s.get("state", {}))) for s in statuses}
        lines.append(f"{pod['metadata']['name']} {pod['spec'].get('nodeName')} {states}")
    for event in kube.list("Event", NAMESPACE):
        if event.get("type") == "Warning":
            involved = event.get("involvedObject") or {}
            lines.append(
                f"event {involved.get('kind')}/{involved.get('name')}: {event.get('reason')} "
                f"{event.get('message')}"
            )
    for kind in ("Prometheus", "Alertmanager"):
        for obj in kube.list(kind, NAMESPACE):
            conds = (obj.get("status") or {}).get("conditions") or []
            lines.append(
                f"{kind}/{obj['metadata']['name']}: "
                + "; ".join(f"{c['type']}={c['status']} {c.get('message', '')}" for c in conds)
            )
    return "\n".join(lines)


def wait_ready(kube: Kube, timeout: float = 300) -> float:
    started = time.monotonic()
    try:
        kube.wait_for("monitoring stack Ready", lambda: ready(kube), timeout=timeout, interval=2)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{describe(kube)}") from None
    return time.monotonic() - started


def uninstall(kube: Kube) -> None:
    """Remove the namespace (the operator's StatefulSets go with it) and the cluster-scoped
    RBAC; the CRDs stay (the control plane's own go with it)."""
    for obj in all_objects():
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            try:
                kube.delete(obj["kind"], obj["metadata"]["name"])
            except ApiError as exc:
                if exc.status != 404:
                    raise
    try:
        kube.delete("Namespace", NAMESPACE)
    except ApiError as exc:
        if exc.status != 404:
            raise

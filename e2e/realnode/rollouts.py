"""The Argo Rollouts controller on the real nodes (`make e2e-rollouts-node`, issue 30 item 2).

What runs: `rollouts-controller` v1.10.2 built here from `github.com/argoproj/argo-rollouts`
(e2e/tools/build.sh argo-rollouts: the binary, its image `localhost/appstack-e2e/argo-rollouts:
v1.10.2` on no base, as upstream's distroless image holds only the static binary), as a pod of
its own namespace `argo-rollouts` (Pod Security `restricted`), so it reaches Prometheus, which its
AnalysisRuns query, and the API server as any other pod does, through kube-proxy and the
NetworkPolicies in force.

What is upstream's: every object of the module's `manifests/install.yaml` (the five CRDs, the
ServiceAccount, the ClusterRoles and their binding, the ConfigMap, the notification Secret, the
metrics Service and the controller's Deployment), copied by build.sh beside the binary, changed
only in namespace (upstream applies it with `-n argo-rollouts`), image, pull policy (imported,
never pulled), node selector (the real nodes) and a readiness probe on the controller's own
`/healthz` (upstream has only the liveness probe on it).

Nothing here imports the program (the e2e layer may not).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from e2e.kube import ApiError, Kube, restricted_namespace
from e2e.realnode.layout import NODE_LABEL
from e2e.realnode.monitoring import load_yaml, module_version

NAMESPACE = "argo-rollouts"
FIELD_MANAGER = "appstack-e2e-rollouts"
MODULE = "github.com/argoproj/argo-rollouts"
FAMILY = "argo-rollouts"
CONTROLLER = "argo-rollouts"
"""Name of the controller's Deployment, ServiceAccount and container (upstream's)."""
CLUSTER_SCOPED = ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding")

# The tier's release settings (`appstack:apps.web.release`): the analysis and the canary
# shortened through config only (defaults: interval 60 s, 5 measurements, a 300 s pause after
# each of the steps [10, 25, 50, 100]); tests/test_e2e_rollouts.py loads and renders them.
ANALYSIS = {"analysisIntervalSeconds": 10, "analysisCount": 4}
CANARY_STEPS = [50, 100]
CANARY = {
    "strategy": "canary",
    "argoRollouts": True,
    "steps": CANARY_STEPS,
    "stepPauseSeconds": 15,
    **ANALYSIS,
}
#: Blue-green's analysis starts the moment the preview pods are ready, before any of their
#: series exists (the target found, then two scrapes for a rate): the first run's four
#: measurements over 30 s all read 0, for the good version and for the bad one. Six span 50 s.
BLUE_GREEN = {"strategy": "blueGreen", "argoRollouts": True, **ANALYSIS, "analysisCount": 6}
#: The reference app's fault switch (app/server: half of the user requests answered 500).
FAULT = {"FAULT_ERROR_RATIO": "0.5"}
#: `appstack:monitoring.scrapeInterval` of the tier (default 30s): series of a new ReplicaSet's
#: pods exist within a few scrapes of their start.
SCRAPE_INTERVAL = "5s"


def version() -> str:
    return module_version(FAMILY, MODULE)


def image() -> str:
    """The image build.sh writes (named after the pinned version)."""
    return f"localhost/appstack-e2e/argo-rollouts:{version()}"


def archive(binaries: Path) -> Path:
    return binaries / "node-images" / "argo-rollouts.oci.tar"


def install_manifest(binaries: Path) -> Path:
    return binaries / "argo-rollouts" / "install.yaml"


def missing_tools(binaries: Path) -> list[str]:
    return [str(p) for p in (archive(binaries), install_manifest(binaries)) if not p.exists()]


def upstream_objects(binaries: Path) -> list[dict[str, Any]]:
    """manifests/install.yaml of the pinned module, as upstream ships it."""
    return load_yaml(install_manifest(binaries))


def crds(binaries: Path) -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for d in upstream_objects(binaries)
            if d["kind"] == "CustomResourceDefinition"]  # fmt: skip


def namespace() -> dict[str, Any]:
    return restricted_namespace(NAMESPACE)


def controller_objects(binaries: Path) -> list[dict[str, Any]]:
    """Everything of install.yaml but the CRDs, in NAMESPACE, the Deployment adapted (module
    docstring)."""
    out = []
    for obj in upstream_objects(binaries):
        if obj["kind"] == "CustomResourceDefinition":
            continue
        obj = copy.deepcopy(obj)
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = NAMESPACE
        for subject in obj.get("subjects") or []:
            subject["namespace"] = NAMESPACE
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            key, value = NODE_LABEL
            pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), key: value}
            (container,) = pod["containers"]
            container["image"] = image()
            container["imagePullPolicy"] = "Never"
            container["readinessProbe"] = {
                "httpGet": {"path": "/healthz", "port": "healthz"},
                "periodSeconds": 2,
            }
        out.append(obj)
    return out


def import_image(nodes: Any, binaries: Path) -> None:
    """The controller's image into every real node's containerd (k8s.io namespace)."""
    for node in nodes.nodes:
        node.ctr("images", "import", "--snapshotter", "overlayfs", str(archive(binaries)))


def install(kube: Kube, binaries: Path) -> None:
    """The CRDs (created, or replacing the older release the control plane installed: e2e/
    cluster.py puts Rollout and AnalysisTemplate in place for the kwok tier), then every other
    object, server-side."""
    kube.install_crds(crds(binaries), field_manager=FIELD_MANAGER, what="Argo Rollouts CRDs")
    kube.apply(namespace(), field_manager=FIELD_MANAGER)
    for obj in controller_objects(binaries):
        kube.apply(obj, field_manager=FIELD_MANAGER)


def ready(kube: Kube) -> bool:
    dep = kube.get_or_none("Deployment", CONTROLLER, NAMESPACE) or {}
    want = dep.get("spec", {}).get("replicas", 1)
    return bool(want and (dep.get("status") or {}).get("readyReplicas") == want)


def describe(kube: Kube) -> str:
    lines = []
    for pod in kube.list("Pod", NAMESPACE):
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        states = {s["name"]: (s.get("ready"), s.get("state")) for s in statuses}
        lines.append(f"{pod['metadata']['name']} {pod['spec'].get('nodeName')} {states}")
    for event in kube.list("Event", NAMESPACE):
        if event.get("type") == "Warning":
            involved = event.get("involvedObject") or {}
            lines.append(
                f"event {involved.get('kind')}/{involved.get('name')}: {event.get('reason')} "
                f"{event.get('message')}"
            )
    return "\n".join(lines)


def wait_ready(kube: Kube, timeout: float = 180) -> None:
    try:
        kube.wait_for("Argo Rollouts controller Ready", lambda: ready(kube), timeout=timeout,
                      interval=2)  # fmt: skip
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{describe(kube)}") from None


def uninstall(kube: Kube, binaries: Path) -> None:
    """The namespace and the cluster-scoped RBAC; the CRDs stay (the control plane's)."""
    for obj in controller_objects(binaries):
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


def rollout_summary(kube: Kube, name: str, namespace_: str) -> str:
    """The Rollout's status and its AnalysisRuns (for a failed wait)."""
    ro = kube.get_or_none("Rollout", name, namespace_) or {}
    status = ro.get("status") or {}
    keep = ("phase", "message", "abort", "stableRS", "currentPodHash", "currentStepIndex",
            "pauseConditions", "blueGreen", "canary", "conditions")  # fmt: skip
    lines = [f"Rollout {name}: " + repr({k: status.get(k) for k in keep})]
    for run in kube.list("AnalysisRun", namespace_):
        st = run.get("status") or {}
        lines.append(
            f"AnalysisRun {run['metadata']['name']}: {st.get('phase')} {st.get('message', '')} "
            + repr(
                [
                    (
                        m.get("name"),
                        m.get("phase"),
                        [x.get("value") for x in m.get("measurements") or []][-3:],
                    )
                    for m in st.get("metricResults") or []
                ]
            )
        )
    return "\n".join(lines)

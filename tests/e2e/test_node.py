"""`make e2e-node`: a pod really runs on a real node (kubelet + containerd + runc + bridge CNI,
e2e/realnode) under Pod Security `restricted`, and what that profile promises is in force inside
the container: a non-root uid, a read-only root filesystem, no capabilities, a seccomp filter.

Marked `realnode`: `make e2e` deselects it (`-m "not realnode"`), `make e2e-node` selects it.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.request
from typing import Any

import pytest

from e2e.engine import tool_versions
from e2e.kube import Kube
from e2e.kube import restricted_namespace as restricted_manifest
from e2e.realnode.layout import LAYOUT, NODE_LABEL
from e2e.realnode.nodes import RealNodes

pytestmark = pytest.mark.realnode

NAMESPACE = "e2e-node-restricted"
POD = "restricted-probe"
UID = 10001
PORT = 8080
MARK = "E2E-SECURITY"

# What the container finds out about itself, written to its log (read through the API server's
# pods/log, which the kubelet serves) and served on /ready (the readiness probe's path, so the
# pod is Ready only once the report exists). /tmp is world-writable in the image: a refused
# write there is the read-only root filesystem, not a missing permission.
SCRIPT = f"""
set -u
uid=$(id -u)
write=$(touch /tmp/probe-write 2>&1 && echo written || true)
case "$write" in
  *"Read-only file system"*) rootfs=read-only ;;
  written) rootfs=writable ;;
  *) rootfs="error:$(echo "$write" | tr ' ' _)" ;;
esac
capeff=$(grep '^CapEff:' /proc/self/status | tr -d '[:space:]' | cut -d: -f2)
seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d '[:space:]' | cut -d: -f2)
report="uid=$uid capeff=$capeff seccomp=$seccomp rootfs=$rootfs"
echo "{MARK} $report"
echo "$report" > /www/ready
exec httpd -f -p {PORT} -h /www
"""


def restricted_namespace(kube: Kube) -> None:
    kube.create(restricted_manifest(NAMESPACE))
    kube.wait_for(
        "default ServiceAccount",
        lambda: kube.get_or_none("ServiceAccount", "default", NAMESPACE),
        timeout=60,
    )


def probe_pod(image: str) -> dict[str, Any]:
    key, value = NODE_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE, "labels": {"app": POD}},
        "spec": {
            "nodeSelector": {key: value},
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",  # built here and imported; no registry
                    "command": ["/bin/sh", "-c", SCRIPT],
                    "ports": [{"containerPort": PORT, "name": "http"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": PORT},
                        "periodSeconds": 1,
                        "failureThreshold": 3,
                    },
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "16Mi"},
                        "limits": {"cpu": "200m", "memory": "32Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                }
            ],
            "volumes": [{"name": "www", "emptyDir": {"sizeLimit": "1Mi"}}],
        },
    }


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}


def parse_report(text: str) -> dict[str, str]:
    fields = text.split()
    return dict(f.split("=", 1) for f in fields if "=" in f)


def test_a_restricted_pod_runs_to_ready_on_the_real_node(
    real_nodes: RealNodes, kube: Kube, figures: dict[str, float]
) -> None:
    restricted_namespace(kube)
    image = tool_versions()["BUSYBOX_IMAGE"]
    kube.create(probe_pod(image))

    # Poll the API server: the time from the scheduler's binding (spec.nodeName) to Ready.
    scheduled_at: float | None = None
    deadline = time.monotonic() + 180
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        real_nodes.assert_running()
        pod = kube.get("Pod", POD, NAMESPACE)
        if scheduled_at is None and pod["spec"].get("nodeName"):
            scheduled_at = time.monotonic()
        if conditions(pod).get("Ready") == "True":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"pod {POD} not Ready after 180s: {pod.get('status')}")
    assert scheduled_at is not None
    figures["node.pod_scheduled_to_ready_s"] = time.monotonic() - scheduled_at
    specs = {spec.name: spec for spec in LAYOUT}
    assert pod["spec"]["nodeName"] in specs, f"the pod landed on {pod['spec']['nodeName']}"
    assert pod["status"]["phase"] == "Running"

    # The container's own report, through the API server (pods/log, served by the kubelet).
    log = kube.request("GET", f"api/v1/namespaces/{NAMESPACE}/pods/{POD}/log")
    lines = [ln for ln in str(log).splitlines() if ln.startswith(MARK)]
    assert lines, f"no {MARK} line in the container log: {log!r}"
    report = parse_report(lines[-1])
    assert report["uid"] == str(UID) and report["uid"] != "0", report
    assert int(report["capeff"], 16) == 0, f"effective capabilities {report['capeff']}"
    assert report["seccomp"] == "2", f"Seccomp: {report['seccomp']} (2 = filter mode)"
    assert report["rootfs"] == "read-only", f"writing /tmp/probe-write: {report['rootfs']}"

    # The same page the readiness probe read, fetched from the host (routed via the node).
    pod_ip = pod["status"]["podIP"]
    node_range = specs[pod["spec"]["nodeName"]].pod_cidr
    assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(node_range), pod_ip
    with urllib.request.urlopen(f"http://{pod_ip}:{PORT}/ready", timeout=5) as resp:
        served = resp.read().decode()
    assert parse_report(served) == parse_report(lines[-1].removeprefix(MARK)), served

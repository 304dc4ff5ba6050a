"""Test pods on the real nodes and real connection attempts from inside them.

The pods run the busybox test image (`BUSYBOX_IMAGE`, built by e2e/tools/build.sh node; not the
app's image) under Pod Security `restricted`. A connection attempt runs inside a client pod's
container through its node's containerd (`ctr task exec`: the container's own process spec,
namespaces, uid, capabilities and seccomp filter), so the packets come from the pod's address.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from e2e.engine import tool_versions
from e2e.kube import ApiError, Kube
from e2e.kube import restricted_namespace as namespace_manifest
from e2e.realnode.layout import NODE_LABEL
from e2e.realnode.nodes import RealNodes

UID = 10001
PORT = 8080
_exec_ids = itertools.count()


def restricted_namespace(kube: Kube, name: str, labels: dict[str, str] | None = None) -> None:
    """Create e2e/kube.py's restricted Namespace `name`, with `labels` added, and wait for its
    default ServiceAccount."""
    manifest = namespace_manifest(name)
    manifest["metadata"]["labels"].update(labels or {})
    kube.create(manifest)
    kube.wait_for(
        f"default ServiceAccount in {name}",
        lambda: kube.get_or_none("ServiceAccount", "default", name),
        timeout=60,
    )


def pod_spec(script: str, node: str | None = None) -> dict[str, Any]:
    """A restricted busybox pod spec running `script`; on the real nodes (or on `node`)."""
    key, value = NODE_LABEL
    selector = {key: value}
    if node:
        selector["kubernetes.io/hostname"] = node
    return {
        "nodeSelector": selector,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": tool_versions()["BUSYBOX_IMAGE"],
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
                "ports": [{"containerPort": PORT, "name": "http"}],
                "readinessProbe": {
                    "exec": {"command": ["/bin/sh", "-c", "test -e /www/index.html"]},
                    "periodSeconds": 1,
                },
                "resources": {
                    "requests": {"cpu": "10m", "memory": "8Mi"},
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
    }


# Serves its own pod name on PORT (the page names the pod that answered).
SERVER = f'echo "$POD_NAME" > /www/index.html && exec httpd -f -p {PORT} -h /www'


def server_pod(
    name: str, namespace: str, labels: dict[str, str], node: str | None
) -> dict[str, Any]:
    spec = pod_spec(SERVER, node)
    spec["containers"][0]["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def client_pod(
    name: str, namespace: str, labels: dict[str, str], node: str | None
) -> dict[str, Any]:
    """A pod that only waits to be exec'd into (its page marks it ready)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": pod_spec("echo client > /www/index.html && exec sleep 3600", node),
    }


def ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def scheduled_to_ready(pod: dict[str, Any]) -> float:
    """Seconds from the PodScheduled to the Ready condition (the API server's timestamps)."""
    from datetime import datetime

    conds = {c["type"]: c["lastTransitionTime"] for c in pod["status"]["conditions"]}
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    scheduled = datetime.strptime(conds["PodScheduled"], stamp)
    return (datetime.strptime(conds["Ready"], stamp) - scheduled).total_seconds()


def wait_ready(
    kube: Kube, nodes: RealNodes, namespace: str, names: list[str], timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """name -> pod once every named pod is Ready; the figure of the slowest scheduled->Ready."""
    deadline = time.monotonic() + timeout
    pods: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        nodes.assert_running()
        pods = {n: kube.get("Pod", n, namespace) for n in names}
        if all(ready(p) for p in pods.values()):
            return pods
        time.sleep(0.3)
    states = {
        n: (p["spec"].get("nodeName"), p.get("status", {}).get("phase")) for n, p in pods.items()
    }
    raise AssertionError(f"pods not Ready after {timeout:.0f}s: {states}")


def exec_in(
    nodes: RealNodes, pod: dict[str, Any], *cmd: str, timeout: float = 20
) -> tuple[int, str]:
    """Run `cmd` in the pod's container through its node's containerd; (exit code, output)."""
    container = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    node = nodes.node(pod["spec"]["nodeName"])
    proc = node.ctr(
        "task", "exec", "--exec-id", f"e2e-{next(_exec_ids)}", container, *cmd, check=False
    )
    # ctr's own log lines (level=warning: cgroup v1 deprecation) are not the command's output.
    errors = [line for line in proc.stderr.splitlines() if " level=" not in line]
    return proc.returncode, "\n".join([proc.stdout.strip(), *errors]).strip()


def fetch(nodes: RealNodes, client: dict[str, Any], url: str, seconds: int = 3) -> str | None:
    """The page at `url` as the client pod gets it, or None when the connection fails (refused,
    timed out: `timeout` bounds the attempt; busybox 1.35.0's own `wget -T` segfaults)."""
    code, out = exec_in(nodes, client, "timeout", str(seconds), "wget", "-q", "-O-", url)
    return out if code == 0 else None


def delete_namespace(kube: Kube, name: str) -> None:
    try:
        kube.delete("Namespace", name)
    except ApiError as exc:
        if exc.status != 404:
            raise


def connects(nodes: RealNodes, client: dict[str, Any], url: str, seconds: int = 2) -> bool:
    """Whether the client pod gets an HTTP answer from `url`, whatever its status (a refused
    or timed-out connection is False; an HTTP error status is still a connection made)."""
    code, out = exec_in(nodes, client, "timeout", str(seconds), "wget", "-q", "-O-", url)
    return code == 0 or "server returned error" in out

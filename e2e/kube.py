"""A minimal Kubernetes REST client (stdlib only) for the e2e harness and its assertions.

The assertions of `make e2e` read the API server's own state, so they talk to it directly over
its REST API with the admin client certificate: no dependency beyond the standard library, and
nothing between the test and the server that could paper over a difference.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Content types of the PATCH strategies the API server accepts.
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply (JSON is valid YAML)


def restricted_namespace(name: str) -> dict[str, Any]:
    """A Namespace whose pods Pod Security admission holds to `restricted` (latest version)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


# Core and well-known groups: kind -> (api path prefix, plural, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("api/v1", "namespaces", False),
    "Node": ("api/v1", "nodes", False),
    "PersistentVolume": ("api/v1", "persistentvolumes", False),
    "Pod": ("api/v1", "pods", True),
    "Service": ("api/v1", "services", True),
    "Endpoints": ("api/v1", "endpoints", True),
    "ConfigMap": ("api/v1", "configmaps", True),
    "Secret": ("api/v1", "secrets", True),
    "ServiceAccount": ("api/v1", "serviceaccounts", True),
    "PersistentVolumeClaim": ("api/v1", "persistentvolumeclaims", True),
    "ResourceQuota": ("api/v1", "resourcequotas", True),
    "LimitRange": ("api/v1", "limitranges", True),
    "Event": ("api/v1", "events", True),
    "Deployment": ("apis/apps/v1", "deployments", True),
    "StatefulSet": ("apis/apps/v1", "statefulsets", True),
    "DaemonSet": ("apis/apps/v1", "daemonsets", True),
    "ReplicaSet": ("apis/apps/v1", "replicasets", True),
    "HorizontalPodAutoscaler": ("apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("apis/policy/v1", "poddisruptionbudgets", True),
    "NetworkPolicy": ("apis/networking.k8s.io/v1", "networkpolicies", True),
    "EndpointSlice": ("apis/discovery.k8s.io/v1", "endpointslices", True),
    "Ingress": ("apis/networking.k8s.io/v1", "ingresses", True),
    "Role": ("apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "StorageClass": ("apis/storage.k8s.io/v1", "storageclasses", False),
    "PriorityClass": ("apis/scheduling.k8s.io/v1", "priorityclasses", False),
    "APIService": ("apis/apiregistration.k8s.io/v1", "apiservices", False),
    "CustomResourceDefinition": (
        "apis/apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        False,
    ),
    "ServiceMonitor": ("apis/monitoring.coreos.com/v1", "servicemonitors", True),
    "PrometheusRule": ("apis/monitoring.coreos.com/v1", "prometheusrules", True),
    "Prometheus": ("apis/monitoring.coreos.com/v1", "prometheuses", True),
    "Alertmanager": ("apis/monitoring.coreos.com/v1", "alertmanagers", True),
    "AlertmanagerConfig": ("apis/monitoring.coreos.com/v1alpha1", "alertmanagerconfigs", True),
    "Rollout": ("apis/argoproj.io/v1alpha1", "rollouts", True),
    "AnalysisTemplate": ("apis/argoproj.io/v1alpha1", "analysistemplates", True),
    "AnalysisRun": ("apis/argoproj.io/v1alpha1", "analysisruns", True),
    "Application": ("apis/argoproj.io/v1alpha1", "applications", True),
    "AppProject": ("apis/argoproj.io/v1alpha1", "appprojects", True),
}


class ApiError(Exception):
    """A non-2xx answer of the API server (status code and its Status message)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body or {}


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how the admin client authenticates."""

    server: str  # https://127.0.0.1:<port>
    ca_file: Path
    cert_file: Path
    key_file: Path


class Kube:
    """GET/LIST/CREATE/PATCH/DELETE over the REST API with the admin client certificate."""

    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        self.creds = creds
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=str(creds.ca_file))
        ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
        self._ctx = ctx

    # ---- raw requests

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        url = f"{self.creds.server}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                status_doc = json.loads(raw)
            except ValueError:
                status_doc = {"message": raw.decode(errors="replace")}
            raise ApiError(exc.code, str(status_doc.get("message", "")), status_doc) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    # ---- paths

    @staticmethod
    def path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
        prefix, plural, namespaced = KINDS[kind]
        parts = [prefix]
        if namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(plural)
        if name:
            parts.append(name)
        return "/".join(parts)

    # ---- typed helpers

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.path(kind, namespace, name))
        return result

    def get_or_none(self, kind: str, name: str, namespace: str | None = None) -> Any:
        try:
            return self.get(kind, name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        doc = self.request("GET", self.path(kind, namespace), query=query)
        items: list[dict[str, Any]] = doc.get("items") or []
        for item in items:  # list items carry no kind of their own
            item.setdefault("kind", kind)
        return items

    def create(
        self, obj: dict[str, Any], *, dry_run: bool = False, field_manager: str = "appstack-e2e"
    ) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        query = {"fieldManager": field_manager}
        if dry_run:
            query["dryRun"] = "All"
        result: dict[str, Any] = self.request(
            "POST", self.path(obj["kind"], meta.get("namespace")), obj, query=query
        )
        return result

    def apply(self, obj: dict[str, Any], *, field_manager: str, force: bool = True) -> Any:
        """Server-side apply `obj` as `field_manager`."""
        meta = obj["metadata"]
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self.request(
            "PATCH",
            self.path(obj["kind"], meta.get("namespace"), meta["name"]),
            obj,
            content_type=APPLY_PATCH,
            query=query,
        )

    def install_crds(
        self, crds: Sequence[dict[str, Any]], *, field_manager: str, what: str
    ) -> None:
        """Create each upstream CRD manifest (its annotations and any status dropped: the
        server writes the status), or replace the one an earlier install (or the control plane,
        e2e/cluster.py) left, then wait until every one is Established."""
        names = []
        for doc in crds:
            crd = {k: v for k, v in doc.items() if k != "status"}
            crd["metadata"] = {k: v for k, v in doc["metadata"].items() if k != "annotations"}
            name = crd["metadata"]["name"]
            current = self.get_or_none("CustomResourceDefinition", name)
            if current is None:
                self.create(crd, field_manager=field_manager)
            else:
                crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.request("PUT", self.path("CustomResourceDefinition", None, name), crd)
            names.append(name)
        self.wait_established(names, what)

    def wait_established(self, names: Sequence[str], what: str) -> None:
        """Wait until every named CRD has its `Established` condition True."""

        def established() -> bool:
            for name in names:
                status = self.get("CustomResourceDefinition", name).get("status") or {}
                conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
                if conds.get("Established") != "True":
                    return False
            return True

        self.wait_for(f"{what} established", established, timeout=60)

    def patch(
        self,
        kind: str,
        name: str,
        patch: dict[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
        field_manager: str = "appstack-e2e",
    ) -> Any:
        path = self.path(kind, namespace, name) + (f"/{subresource}" if subresource else "")
        query = {"fieldManager": field_manager}
        if content_type == APPLY_PATCH:
            query["force"] = "true"
        return self.request("PATCH", path, patch, content_type=content_type, query=query)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> Any:
        return self.request("DELETE", self.path(kind, namespace, name))

    def wait_for(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float = 120.0,
        interval: float = 0.5,
    ) -> Any:
        """Poll `check` until it returns a truthy value; raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = check()
                if value:
                    return value
            except (ApiError, OSError) as exc:
                last_error = exc
            time.sleep(interval)
        detail = f" (last error: {last_error})" if last_error else ""
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")

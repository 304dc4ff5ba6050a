"""Reach a cluster-internal app from outside the cluster: the API server's service proxy.

An app without an Ingress or a LoadBalancer (dev's ClusterIP Service) has the health URL
`http://<svc>.<ns>.svc.cluster.local:<port>/<path>` (components/endpoints.py), which resolves
only inside the cluster. A CI runner outside it (a hosted GitHub runner) reaches the same
Service through the Kubernetes API server it deploys with:
`<server>/api/v1/namespaces/<ns>/services/http:<svc>:<port>/proxy/<path>` (Kubernetes docs,
"Manually constructing apiserver proxy URLs"), authenticated with the deploy kubeconfig
(KUBECONFIG, scripts/ci/setup-kubeconfig.sh). The API server then connects to a pod of the
Service from its own address, which the app's NetworkPolicy admits when
`appstack:network.apiServerCidrs` names it (components/network.py).

`stackctl verify` takes this path by itself for every cluster-internal URL when it runs
outside the cluster (no KUBERNETES_SERVICE_HOST) and a kubeconfig is there; inside the
cluster (a Jenkins agent pod) the URL is used as it is. No hand-set variable.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from stackctl.errors import UserError

CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local")


@dataclass(frozen=True)
class ApiAccess:
    """How to call the API server of the current kubeconfig context."""

    server: str
    headers: Mapping[str, str] = field(default_factory=dict)
    context: ssl.SSLContext | None = None


def internal_service(url: str) -> tuple[str, str, int, str] | None:
    """(service, namespace, port, path) of a cluster-internal http URL, else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "http" or not host.endswith(CLUSTER_SUFFIXES):
        return None
    labels = host.split(".")
    if len(labels) < 3 or labels[2] != "svc":
        return None
    return labels[0], labels[1], parts.port or 80, parts.path or "/"


def proxy_url(server: str, url: str) -> str:
    """The API server's service-proxy URL for a cluster-internal `url` (module docstring)."""
    found = internal_service(url)
    if found is None:
        raise ValueError(f"{url} is not a cluster-internal Service URL")
    name, namespace, port, path = found
    query = urlsplit(url).query
    return (
        f"{server.rstrip('/')}/api/v1/namespaces/{quote(namespace)}/services/"
        f"http:{quote(name)}:{port}/proxy{path}" + (f"?{query}" if query else "")
    )


def _named(items: Any, name: str, what: str, source: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            found: dict[str, Any] = item.get(what) or {}
            return found
    raise UserError(f"{source}: no {what} named {name!r}")


def _material(entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """A `<key>-data` (base64) or `<key>` (file path, relative to the kubeconfig) entry."""
    data = entry.get(f"{key}-data")
    if data:
        return base64.b64decode(str(data))
    path = entry.get(key)
    return (base / str(path)).read_bytes() if path else None


def load_access(path: Path) -> ApiAccess:
    """The server, TLS trust and credentials of the kubeconfig's current context: a bearer
    token or a client certificate (an exec plugin is refused with a one-line error)."""
    source = f"kubeconfig {path}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{source}: cannot read it: {exc}") from None
    context = _named(doc.get("contexts"), str(doc.get("current-context") or ""), "context", source)
    cluster = _named(doc.get("clusters"), str(context.get("cluster")), "cluster", source)
    user = _named(doc.get("users"), str(context.get("user")), "user", source)
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise UserError(f"{source}: the current context's cluster has no server URL")
    if "exec" in user or "auth-provider" in user:
        raise UserError(
            f"{source}: the user {context.get('user')!r} authenticates through a plugin; "
            "give the deploy kubeconfig a token or a client certificate"
        )
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    if not server.startswith("https://"):
        return ApiAccess(server, headers)
    tls = ssl.create_default_context()
    ca = _material(cluster, "certificate-authority", path.parent)
    if ca:
        tls.load_verify_locations(cadata=ca.decode("ascii"))
    if cluster.get("insecure-skip-tls-verify"):
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    cert, key = (_material(user, k, path.parent) for k in ("client-certificate", "client-key"))
    if cert and key:
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads a chain from files only
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            tls.load_cert_chain(cert_file, key_file)
    return ApiAccess(server, headers, tls)


def route(
    urls: Mapping[str, str], environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], ApiAccess | None]:
    """Each app's URL, a cluster-internal one through the API server when this process runs
    outside the cluster and a kubeconfig is there; the access to use for those."""
    internal = {app for app, url in urls.items() if internal_service(url) is not None}
    if not internal or environ.get("KUBERNETES_SERVICE_HOST"):
        return dict(urls), None
    configured = environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = Path(configured) if configured else Path.home() / ".kube" / "config"
    if not path.is_file():
        return dict(urls), None
    access = load_access(path)
    routed = {
        app: proxy_url(access.server, url) if app in internal else url for app, url in urls.items()
    }
    return routed, access

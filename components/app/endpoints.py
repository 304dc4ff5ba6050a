"""Where each app answers from outside the cluster: the `health_urls` stack output.

`python -m stackctl verify <stack>` reads this output after a deploy and checks every app's
readiness endpoint (the app's `probes.readiness.path`, default `/health/ready`) from where CI
runs. The URL is, in order of preference:

- the Ingress host (https when `ingress.tlsSecretName` is set), under the Ingress path prefix;
- the LoadBalancer address the cloud assigned (empty while it is still pending);
- otherwise the Service's cluster DNS name: reachable only from inside the cluster (a Jenkins
  agent pod), so CI outside the cluster passes its own URL (`verify --url app=URL`).
"""

from __future__ import annotations

import ipaddress

import pulumi

from components.config import AppConfig


def _host(address: str) -> str:
    """An IPv6 literal in brackets, anything else as it is."""
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def health_url(app: AppConfig, address: pulumi.Output[str]) -> pulumi.Output[str]:
    """The readiness URL of one app (see the module docstring); "" while no address exists."""
    ready = app.probes.readiness.path
    if app.ingress.enabled:
        scheme = "https" if app.ingress.tls_secret_name else "http"
        prefix = app.ingress.path.rstrip("/")
        return pulumi.Output.from_input(f"{scheme}://{app.ingress.host}{prefix}{ready}")
    if app.service.type == "LoadBalancer":
        port = "" if app.service.port == 80 else f":{app.service.port}"
        return address.apply(
            lambda found: "" if found in ("", "pending") else f"http://{_host(found)}{port}{ready}"
        )
    return address.apply(
        lambda found: f"http://{found}{ready}"
    )  # <svc>.<ns>.svc.cluster.local:port

"""Configs and object helpers shared by the release tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.conftest import base_raw

NEW_IMAGE = "registry.example.com/appstack/web:1.5.0"
NEW_DIGEST_IMAGE = "registry.example.com/appstack/web@sha256:" + "b" * 64


def release_raw(
    environment: str = "dev", release: Mapping[str, Any] | None = None, **app: Any
) -> dict[str, Any]:
    """base_raw with `apps.web.release` set."""
    return base_raw(environment, release=dict(release or {}), **app)


def blue_green(environment: str = "dev", active: str = "blue", **settings: Any) -> dict[str, Any]:
    """blueGreen, green running the new image, `active` serving."""
    release = {"strategy": "blueGreen", "active": active, "greenImage": NEW_IMAGE}
    release.update(settings.pop("release", {}))
    return release_raw(environment, release, **settings)


def canary(environment: str = "dev", weight: int = 25, **settings: Any) -> dict[str, Any]:
    release = {"strategy": "canary", "canaryImage": NEW_IMAGE, "weight": weight}
    release.update(settings.pop("release", {}))
    return release_raw(environment, release, **settings)


def argo(strategy: str, environment: str = "prod", **settings: Any) -> dict[str, Any]:
    release = {"strategy": strategy, "argoRollouts": True}
    release.update(settings.pop("release", {}))
    raw = release_raw(environment, release, **settings)
    raw["monitoring"] = {"enabled": True}
    return raw


INGRESS = {"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"}

#: The release-strategy variants the validator tests, the render digests and the fidelity test
#: render, by a stable name (also the stack name they render as).
RELEASE_VARIANTS: dict[str, dict[str, Any]] = {
    "blue-green": blue_green("prod", active="green"),
    "blue-green-fixed": blue_green(
        "prod", replicas=3, autoscaling={"enabled": False}, release={"blueImage": NEW_DIGEST_IMAGE}
    ),
    "blue-green-scale-down": blue_green(
        "prod", replicas=2, autoscaling={"enabled": False}, release={"scaleDownIdle": True}
    ),
    "canary": canary("prod", weight=50),
    "canary-replicas": canary("prod", weight=25, replicas=4, autoscaling={"enabled": False}),
    "canary-ingress": canary("prod", weight=10, ingress=INGRESS),
    "argo-blue-green": argo("blueGreen"),
    "argo-canary": argo("canary", ingress=INGRESS),
}


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return found


def selects(selector: Mapping[str, str], pod: Mapping[str, str]) -> bool:
    """A Service-style equality selector matches a pod's labels."""
    return all(pod.get(key) == value for key, value in selector.items())


def selected_workloads(selector: Mapping[str, str], workloads: list[dict[str, Any]]) -> list[str]:
    """Names of the workloads whose pods `selector` selects."""
    return sorted(w["metadata"]["name"] for w in workloads if selects(selector, pod_labels(w)))


def image_of(workload: Mapping[str, Any]) -> str:
    image: str = workload["spec"]["template"]["spec"]["containers"][0]["image"]
    return image

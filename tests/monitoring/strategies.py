"""One config per release strategy, monitoring on, each with a sibling app `web-api` in the
same namespace (its pods must never trip `web`'s alerts), rendered once per test session."""

from __future__ import annotations

import copy
import functools
from typing import Any

from components import config as config_model
from stackctl.render.stack import RenderResult, render_config
from tests.conftest import PROD_IMAGE
from tests.release.helpers import argo, blue_green, canary, release_raw

INGRESS = {"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"}


def _with_sibling(raw: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out["apps"]["web-api"] = {"image": PROD_IMAGE, "service": {"type": "ClusterIP"}}
    out["monitoring"] = {**out.get("monitoring", {}), "enabled": True}
    return out


STRATEGIES: dict[str, dict[str, Any]] = {
    "rolling-hpa": _with_sibling(release_raw("prod")),
    "rolling-fixed": _with_sibling(release_raw("dev", replicas=2)),
    "blueGreen-hpa": _with_sibling(blue_green("prod", active="green")),
    "blueGreen-fixed": _with_sibling(blue_green("dev", replicas=2)),
    "canary": _with_sibling(canary("prod", weight=25, replicas=4, autoscaling={"enabled": False})),
    "canary-ingress": _with_sibling(canary("prod", weight=10, ingress=INGRESS)),
    "argo-canary": _with_sibling(argo("canary")),
    "argo-canary-ingress": _with_sibling(argo("canary", ingress=INGRESS)),
    "argo-blueGreen": _with_sibling(argo("blueGreen")),
}


@functools.cache
def rendered(name: str) -> RenderResult:
    """The render of STRATEGIES[name] (cached for the session: renders are deterministic)."""
    return render_config(config_model.load(STRATEGIES[name]), name)


@functools.cache
def loaded(name: str) -> config_model.StackConfig:
    return config_model.load(STRATEGIES[name])

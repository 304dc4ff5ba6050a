"""The Argo Rollouts tier (e2e/realnode/rollouts.py, make e2e-rollouts-node), checked without a
cluster: its release settings are valid prod config whose render validates against the vendored
CRD schemas of the controller version it runs, the schemas are of that version, and the
analysis' default Prometheus address is the Prometheus the tier runs."""

from __future__ import annotations

import copy
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from e2e.realnode import monitoring, rollouts
from stackctl.render.stack import render_config
from tests import crd_schemas
from tests.conftest import base_raw

REPO = Path(__file__).resolve().parent.parent


def _prod(release: dict[str, Any]) -> list[dict[str, Any]]:
    raw = base_raw("prod")
    raw["apps"]["web"]["release"] = copy.deepcopy(release)
    raw["monitoring"] = {"enabled": True, "scrapeInterval": rollouts.SCRAPE_INTERVAL}
    return render_config(config_model.load(raw), "prod").objects


@pytest.mark.parametrize("release", [rollouts.CANARY, rollouts.BLUE_GREEN], ids=["canary", "bg"])
def test_the_tiers_release_settings_render_objects_the_vendored_schemas_accept(
    release: dict[str, Any],
) -> None:
    objects = _prod(release)
    argo = [o for o in objects if o["apiVersion"].startswith("argoproj.io/")]
    assert {o["kind"] for o in argo} == {"Rollout", "AnalysisTemplate"}
    problems = [p for obj in argo for p in crd_schemas.errors(obj)]
    assert problems == [], "\n".join(problems)
    (metric,) = next(o for o in argo if o["kind"] == "AnalysisTemplate")["spec"]["metrics"]
    assert metric["interval"] == f"{release['analysisIntervalSeconds']}s"
    assert metric["count"] == release["analysisCount"]


def test_the_tiers_canary_walks_its_steps_each_with_an_analysis() -> None:
    rollout = next(o for o in _prod(rollouts.CANARY) if o["kind"] == "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == rollouts.CANARY_STEPS
    assert sum(1 for s in steps if "analysis" in s) == len(rollouts.CANARY_STEPS)


def test_the_vendored_schemas_are_of_the_controller_version_the_tier_runs() -> None:
    version = rollouts.version()
    sources = (crd_schemas.SCHEMA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    (row,) = [line for line in sources.splitlines() if line.startswith("| argoproj.io/{rollout")]
    assert f"argo-rollouts@{version}`" in row, (version, row)


def test_the_image_is_the_one_build_sh_writes() -> None:
    """build.sh's argo-rollouts recipe pins the same version as the family's go.mod and names
    the image after it."""
    recipe = (REPO / "e2e/tools/build.sh").read_text(encoding="utf-8")
    body = recipe[recipe.index("build_argo_rollouts() {") :]
    pinned = re.search(r"m=github.com/argoproj/argo-rollouts v=(\S+)", body)
    assert pinned and f"v{pinned.group(1)}" == rollouts.version()
    assert "image=localhost/appstack-e2e/argo-rollouts:v$v" in body
    assert rollouts.image() == f"localhost/appstack-e2e/argo-rollouts:{rollouts.version()}"


def test_the_analysis_default_address_is_the_tiers_prometheus() -> None:
    """prometheus-operator's governing Service of every Prometheus is `prometheus-operated`
    (prometheus-operator pkg/prometheus, governingServiceName) in the Prometheus' namespace."""
    address = config_model.load(base_raw("prod")).apps["web"].release.prometheus_address
    url = urllib.parse.urlsplit(address)
    assert url.hostname == f"prometheus-operated.{monitoring.NAMESPACE}.svc"
    assert url.port == monitoring.PROMETHEUS_PORT

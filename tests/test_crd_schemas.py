"""Every rendered custom resource (ServiceMonitor, PrometheusRule, Rollout, AnalysisTemplate),
for the dev and prod stacks and every release strategy with monitoring on, validates strictly
against its upstream CRD schema (tests/crd_schemas.py), beside kubernetes-validate for the
built-in kinds (tests/test_validators.py)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from stackctl.render.stack import RenderResult, render_stack
from tests import crd_schemas
from tests.monitoring.strategies import STRATEGIES, rendered
from tests.tooling import SHIPPED_STACKS

STACKS = SHIPPED_STACKS


def _render(name: str) -> RenderResult:
    return render_stack(name) if name in STACKS else rendered(name)


def _custom_resources(result: RenderResult) -> list[dict[str, Any]]:
    return [o for o in result.objects if crd_schemas.is_custom_resource(o)]


@pytest.mark.parametrize("name", [*STACKS, *STRATEGIES])
def test_rendered_custom_resources_validate_strictly_against_upstream_schemas(name: str) -> None:
    objects = _custom_resources(_render(name))
    if name == "dev":
        assert objects == []  # monitoring is off in dev: nothing CRD-backed is rendered
        return
    assert objects
    problems = [p for obj in objects for p in crd_schemas.errors(obj)]
    assert problems == [], "\n".join(problems)


def test_every_custom_kind_the_program_renders_was_validated() -> None:
    """The release strategies render four kinds; the fifth, the AlertmanagerConfig of
    `monitoring.alertRouting`, is validated by tests/monitoring/test_alert_routing.py."""
    kinds = Counter(o["kind"] for name in STRATEGIES for o in _custom_resources(_render(name)))
    assert set(kinds) == {"ServiceMonitor", "PrometheusRule", "Rollout", "AnalysisTemplate"}
    from components.monitoring import routing

    assert routing.API_VERSION.startswith("monitoring.coreos.com/")
    assert crd_schemas.schema_path(routing.API_VERSION, "AlertmanagerConfig").is_file()


def test_the_schemas_are_the_upstream_files_listed_in_sources() -> None:
    sources = (crd_schemas.SCHEMA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for path in sorted(crd_schemas.SCHEMA_DIR.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["type"] == "object" and "spec" in schema["properties"], path
        assert path.parent.name in sources, path


def _rollout() -> dict[str, Any]:
    (rollout,) = [o for o in rendered("argo-canary-ingress").objects if o["kind"] == "Rollout"]
    return copy.deepcopy(rollout)


def test_strict_validation_rejects_an_unknown_field() -> None:
    rollout = _rollout()
    rollout["spec"]["strategy"]["canary"]["maxSurged"] = 1  # misspelt
    rollout["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    problems = crd_schemas.errors(rollout)
    assert len(problems) == 2, problems
    assert any("maxSurged" in p for p in problems) and any("imagePullPolice" in p for p in problems)


def test_strict_validation_keeps_fields_the_schema_preserves() -> None:
    """`x-kubernetes-preserve-unknown-fields` subtrees stay open (the AnalysisTemplate's
    `provider.plugin` in argo-rollouts v1.10.2)."""
    template = next(
        o for o in rendered("argo-canary-ingress").objects if o["kind"] == "AnalysisTemplate"
    )
    template = copy.deepcopy(template)
    template["spec"]["metrics"][0]["provider"] = {"plugin": {"example.com/any": {"free": ["form"]}}}
    assert crd_schemas.errors(template) == []

"""The monitoring stack the real-node tier installs (e2e/realnode/monitoring.py), checked without
a cluster: its custom resources validate strictly against the vendored CRD schemas of the
operator version it runs (tests/schemas/crd, v0.93.0: the pin of e2e/tools/prometheus-operator),
it sits in the namespace the stack's NetworkPolicies admit, and its Prometheus and Alertmanager
select exactly what the stack renders with monitoring on, by the labels docs/slo.md tells users
to select."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from components import config as config_model
from e2e.realnode import monitoring
from stackctl.render.stack import render_config
from tests import crd_schemas
from tests.conftest import base_raw

REPO = Path(__file__).resolve().parent.parent


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's matchLabels/matchExpressions semantics (apimachinery labels.Selector);
    `{}` selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def test_every_custom_resource_of_the_tier_validates_against_the_vendored_schemas() -> None:
    objects = monitoring.custom_resources()
    assert {o["kind"] for o in objects} == {"ServiceMonitor", "Prometheus", "Alertmanager"}
    problems = [p for obj in objects for p in crd_schemas.errors(obj)]
    assert problems == [], "\n".join(problems)


def test_the_vendored_schemas_are_of_the_operator_version_the_tier_runs() -> None:
    version = monitoring.module_version("prometheus-operator", monitoring.OPERATOR_MODULE)
    sources = (crd_schemas.SCHEMA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    rows = [line for line in sources.splitlines() if line.startswith("| monitoring.coreos.com/")]
    assert rows and all(f"| {version} " in row for row in rows), (version, rows)
    kinds = (("Prometheus", "v1"), ("Alertmanager", "v1"), ("AlertmanagerConfig", "v1alpha1"))
    for kind, api in kinds:
        assert crd_schemas.schema_path(f"monitoring.coreos.com/{api}", kind).is_file(), kind


def test_namespace_and_selector_labels_are_the_programs_defaults() -> None:
    """What the stack's NetworkPolicies admit to the metrics port and what its ServiceMonitors
    carry by default (a user's kube-prometheus-stack install, docs/slo.md)."""
    assert config_model.NetworkSettings().monitoring_namespace == monitoring.NAMESPACE
    assert config_model.Monitoring().prometheus_selector_labels == monitoring.SELECTOR_LABELS


def _routed_render() -> list[dict[str, Any]]:
    raw = base_raw("prod")
    raw["monitoring"] = {"enabled": True, "alertRouting": {"enabled": True}}
    return render_config(config_model.load(raw), "routed").objects


def test_prometheus_and_alertmanager_select_what_the_stack_renders() -> None:
    objects = _routed_render()
    prom = monitoring.prometheus()["spec"]
    alertmanager = monitoring.alertmanager()["spec"]
    selectors = {
        "ServiceMonitor": (prom["serviceMonitorSelector"], prom["serviceMonitorNamespaceSelector"]),
        "PrometheusRule": (prom["ruleSelector"], prom["ruleNamespaceSelector"]),
        "AlertmanagerConfig": (
            alertmanager["alertmanagerConfigSelector"],
            alertmanager["alertmanagerConfigNamespaceSelector"],
        ),
    }
    seen = set()
    for obj in objects:
        if obj["kind"] not in selectors:
            continue
        selector, namespaces = selectors[obj["kind"]]
        assert _selects(selector, obj["metadata"]["labels"]), obj["metadata"]["name"]
        assert namespaces == {}  # every namespace: the stack's is not the monitoring one
        seen.add(obj["kind"])
    assert seen == set(selectors)
    # ... and not an object without the labels (the selector is not `{}`).
    unlabelled = copy.deepcopy(next(o for o in objects if o["kind"] == "ServiceMonitor"))
    for key in monitoring.SELECTOR_LABELS:
        del unlabelled["metadata"]["labels"][key]
    assert not _selects(prom["serviceMonitorSelector"], unlabelled["metadata"]["labels"])


def test_the_documented_selector_labels_are_the_ones_the_tier_selects() -> None:
    doc = (REPO / "docs" / "slo.md").read_text(encoding="utf-8")
    for key, value in monitoring.SELECTOR_LABELS.items():
        assert re.search(rf"`{re.escape(key)}: {re.escape(value)}`", doc), (key, value)
    assert f"`{monitoring.NAMESPACE}`" in doc


def test_images_are_the_ones_build_sh_writes() -> None:
    """build.sh names each image localhost/appstack-e2e/<name>:<version of its go.mod pin>
    (Prometheus by its release, not its Go module version)."""
    build = (REPO / "e2e" / "tools" / "build.sh").read_text(encoding="utf-8")
    for _family, name, _module in monitoring.IMAGES:
        assert f'--name "localhost/appstack-e2e/{name}:' in build, name
        assert f"node-images/{name}.oci.tar" in build, name
    assert monitoring.image("prometheus").endswith(":v3.13.1")
    prom = monitoring.prometheus()["spec"]
    assert prom["image"].endswith(":" + prom["version"])

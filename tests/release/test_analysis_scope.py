"""argoRollouts: the release analysis measures the new pods only (issue 9 item 4).

The series are those the cluster would export mid-release for the rendered Rollout
(tests/monitoring/series.py): the pods of the stable and of the newest ReplicaSet, scraped through
the rendered ServiceMonitor. The rendered AnalysisTemplate query is evaluated by promtool with
its args resolved as the Argo Rollouts controller resolves them (`podTemplateHashValue: Latest`:
the pod-template hash of the newest ReplicaSet)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring import series as gen
from tests.monitoring.strategies import loaded, rendered
from tests.tooling import dump_yaml, run_tool

pytestmark = pytest.mark.slow


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"].startswith("web")
        and o["metadata"]["labels"].get("app.kubernetes.io/name") == "web"
    ]
    return found


def _resolved_query(objects: list[dict[str, Any]], newest_hash: str) -> tuple[str, float]:
    """The AnalysisTemplate's query with every arg that the Rollout passes resolved, and the
    success threshold of its condition."""
    template = _one(objects, "AnalysisTemplate")
    rollout = _one(objects, "Rollout")
    strategy = rollout["spec"]["strategy"]
    runs = [s["analysis"] for s in strategy.get("canary", {}).get("steps", []) if "analysis" in s]
    runs += [v for k, v in strategy.get("blueGreen", {}).items() if k.endswith("PromotionAnalysis")]
    values: dict[str, str] = {}
    for run in runs:
        for arg in run.get("args", []):
            source = arg.get("valueFrom", {}).get("podTemplateHashValue")
            assert source == "Latest", arg  # the pods under test: the newest ReplicaSet
            values[arg["name"]] = newest_hash
    (metric,) = template["spec"]["metrics"]
    query = metric["provider"]["prometheus"]["query"]
    for name, value in values.items():
        query = query.replace(f"{{{{args.{name}}}}}", value)
    assert "{{" not in query, f"unresolved analysis arg in {query}"
    threshold = float(re.fullmatch(r"result\[0\] <= ([0-9.]+)", metric["successCondition"])[1])
    return query, threshold


def _traffic(targets: list[gen.ScrapeTarget], per_pod: int, errors: int) -> list[tuple[str, str]]:
    out = []
    for t in targets:
        out.append(gen.http_requests(t, "200", f"0+{per_pod - errors}x30"))
        out.append(gen.http_requests(t, "500", f"0+{errors}x30"))
    return out


@pytest.mark.parametrize("name", ["argo-canary-ingress", "argo-canary", "argo-blueGreen"])
@pytest.mark.parametrize(
    ("canary_errors", "stable_errors", "expected"),
    [(2, 0, 0.2), (0, 9, 0.0)],
    ids=["new-pods-fail-20%", "new-pods-healthy"],
)
def test_the_analysis_reads_the_error_ratio_of_the_new_pods_alone(
    tmp_path: Path, name: str, canary_errors: int, stable_errors: int, expected: float
) -> None:
    objects = rendered(name).objects
    cluster = gen.cluster(objects)  # the Rollout mid-release: stable and newest ReplicaSet
    targets = gen.app_targets(cluster, "web")
    revisions = list(
        dict.fromkeys(t.pod.revision for t in targets if t.pod.owner_kind == "Rollout")
    )
    assert len(revisions) == 2, revisions
    stable, newest = revisions
    # weight 10: the new pods get a tenth of the traffic (10 vs 90 requests a minute per pod)
    series = _traffic([t for t in targets if t.pod.revision == stable], 90, stable_errors)
    series += _traffic([t for t in targets if t.pod.revision == newest], 10, canary_errors)
    query, threshold = _resolved_query(objects, newest)
    doc = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {
                        "expr": f"round({query}, 0.0001)",
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": expected}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "analysis_test.yml"
    path.write_text(dump_yaml(doc, sort_keys=False, width=1000), encoding="utf-8")
    result = run_tool("promtool", "test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, f"{query}\n{result.stdout}\n{result.stderr}"
    # 20 % failing new pods fail the analysis, whatever the dilution by stable traffic
    assert (expected > threshold) == (canary_errors > 0)
    assert threshold == loaded(name).monitoring.alerts.error_ratio

"""Run the generated rules through promtool: `check rules`, then `test rules` with a firing and a
silent case for every alert (one promtool run per alert, so a failure names the alert) and
`promql_expr_test`s for the recording rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.alert_rules import (
    ALERT_KINDS,
    AlertThresholds,
    RuleTarget,
    alert_name,
    app_rule_groups,
    rules_file,
)
from tests.monitoring.alert_cases import (
    CASES,
    EVALUATION_INTERVAL,
    FIRING_LATENCY,
    SILENT_LATENCY,
    alert_rules,
    http_series,
    latency_buckets,
    promtool_test_file,
    sample_groups,
)
from tests.tooling import run_tool

pytestmark = pytest.mark.slow


def _write_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(rules_file(sample_groups()), encoding="utf-8")
    return path


def _promtool_test(tmp_path: Path, doc: dict[str, Any]) -> None:
    test_path = tmp_path / "rules_test.yml"
    test_path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000), encoding="utf-8")
    result = run_tool("promtool", "test", "rules", str(test_path), cwd=tmp_path)
    assert result.returncode == 0, (
        f"promtool test rules failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
        f"--- rules.yml\n{(tmp_path / 'rules.yml').read_text()}\n"
        f"--- rules_test.yml\n{test_path.read_text()}"
    )


OTHER_TARGET = RuleTarget(
    app="web-api",
    namespace="shop-prod",
    metrics_job="web-api-metrics",
    hpa=None,
    pdb=None,
    runbook_base_url="https://runbooks.example.com/appstack/",
)
EXTREME = AlertThresholds(
    error_ratio=1e-06, p95_latency_seconds=120.0, memory_limit_ratio=1, restarts_per_hour=1000
)


@pytest.mark.parametrize(
    "groups",
    [
        pytest.param(sample_groups(), id="web-with-hpa-and-pdb"),
        pytest.param(app_rule_groups(OTHER_TARGET, EXTREME), id="web-api-no-hpa-no-pdb"),
    ],
)
def test_promtool_check_rules(tmp_path: Path, groups: list[dict[str, Any]]) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_file(groups), encoding="utf-8")
    result = run_tool("promtool", "check", "rules", str(rules))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{rules.read_text()}"
    n_rules = sum(len(group["rules"]) for group in groups)
    assert f"SUCCESS: {n_rules} rules found" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    emitted = set(alert_rules(sample_groups()))
    assert emitted == {alert_name("web", kind) for kind in ALERT_KINDS}
    assert set(CASES) == set(ALERT_KINDS)
    for kind, cases in CASES.items():
        assert any(case.firing for case in cases), f"{kind}: no case where it fires"
        assert any(not case.firing for case in cases), f"{kind}: no case where it stays silent"


@pytest.mark.parametrize("kind", ALERT_KINDS)
def test_alert_fires_and_stays_silent(tmp_path: Path, kind: str) -> None:
    rules = _write_rules(tmp_path)
    _promtool_test(tmp_path, promtool_test_file(rules.name, kind, sample_groups()))


def test_recording_rules_values(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path)
    series = '{job="web", namespace="shop"}'

    def expr_test(expr: str, value: float) -> dict[str, Any]:
        # promtool 2.42 compares sample values exactly: round away the float noise of rate() and
        # histogram_quantile() (round() also drops __name__, leaving exactly job and namespace).
        return {
            "expr": f"round({expr}, 0.0001)",
            "eval_time": "20m",
            "exp_samples": [{"labels": series, "value": round(value, 4)}],
        }

    def group(name: str, input_series: list[tuple[str, str]], checks: list[Any]) -> dict[str, Any]:
        return {
            "name": name,
            "interval": EVALUATION_INTERVAL,
            "input_series": [{"series": s, "values": v} for s, v in input_series],
            "promql_expr_test": checks,
        }

    doc = {
        "rule_files": [rules.name],
        "evaluation_interval": EVALUATION_INTERVAL,
        "tests": [
            group(
                "request and error rates and their ratio",
                [
                    (http_series("200"), "0+90x30"),
                    (http_series("500"), "0+6x30"),
                    (http_series("502"), "0+4x30"),
                ],
                [
                    expr_test(f"job:http_requests:rate5m{series}", 100 / 60),
                    expr_test(f"job:http_request_errors:rate5m{series}", 10 / 60),
                    expr_test(f"job:http_request_errors:ratio_rate5m{series}", 0.1),
                ],
            ),
            group(
                "no 5xx at all: the error ratio is 0, not absent",
                [(http_series("200"), "0+90x30")],
                [expr_test(f"job:http_request_errors:ratio_rate5m{series}", 0)],
            ),
            group(
                "p95 from the histogram buckets",
                latency_buckets(FIRING_LATENCY),
                [expr_test(f"job:http_request_duration_seconds:p95_5m{series}", 0.875)],
            ),
            group(
                "p95 below the threshold",
                latency_buckets(SILENT_LATENCY),
                [expr_test(f"job:http_request_duration_seconds:p95_5m{series}", 0.40625)],
            ),
        ],
    }
    _promtool_test(tmp_path, doc)

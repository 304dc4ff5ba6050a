"""The Jenkins alerts through promtool: `check rules`, and `test rules` with a firing and a silent
case for every alert (one promtool run per alert, so a failure names it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.jenkins.alerts import ALERTS, JenkinsAlertTarget, jenkins_rule_groups, rules_file
from tests.tooling import dump_yaml, run_tool

pytestmark = pytest.mark.slow

TARGET = JenkinsAlertTarget(
    namespace="jenkins",
    job="jenkins",
    runbook_base_url="https://runbooks.example.com/appstack/",
    queue_threshold=10,
)
SCRAPE = 'job="jenkins", namespace="jenkins", instance="10.0.3.7:8080", pod="jenkins-0"'
OTHER = 'job="jenkins", namespace="ci-staging", instance="10.0.9.1:8080", pod="jenkins-0"'
LABELS = {"job": "jenkins", "namespace": "jenkins"}


def _annotations(alert: str, value: float) -> dict[str, str]:
    rule = next(r for g in jenkins_rule_groups(TARGET) for r in g["rules"] if r["alert"] == alert)
    out = {}
    for key, text in rule["annotations"].items():
        text = text.replace("{{ $labels.namespace }}", LABELS["namespace"])
        text = text.replace("{{ $labels.job }}", LABELS["job"])
        out[key] = text.replace("{{ $value }}", f"{value:g}")
    return out


def _firing(alert: str, value: float) -> dict[str, Any]:
    return {
        "exp_labels": {**LABELS, "severity": ALERTS[alert][0]},
        "exp_annotations": _annotations(alert, value),
    }


# alert -> list of (case name, input series, eval time, expected alerts)
CASES: dict[str, list[tuple[str, list[tuple[str, str]], str, list[dict[str, Any]]]]] = {
    "JenkinsControllerDown": [
        (
            "scrape failing for 10m",
            [(f"up{{{SCRAPE}}}", "0x20")],
            "10m",
            [_firing("JenkinsControllerDown", 0)],
        ),
        (
            "target gone entirely",
            [(f"up{{{OTHER}}}", "1x20")],
            "10m",
            [_firing("JenkinsControllerDown", 1)],
        ),
        ("healthy", [(f"up{{{SCRAPE}}}", "1x20")], "10m", []),
        ("down for less than 5m", [(f"up{{{SCRAPE}}}", "0x20")], "4m", []),
        (
            "another Jenkins down",
            [(f"up{{{SCRAPE}}}", "1x20"), (f"up{{{OTHER}}}", "0x20")],
            "10m",
            [],
        ),
    ],
    "JenkinsBuildQueueLong": [
        (
            "12 queued for 20m",
            [(f"jenkins_queue_size_value{{{SCRAPE}}}", "12x30")],
            "20m",
            [_firing("JenkinsBuildQueueLong", 12)],
        ),
        ("12 queued for 10m only", [(f"jenkins_queue_size_value{{{SCRAPE}}}", "12x30")], "10m", []),
        ("at the threshold", [(f"jenkins_queue_size_value{{{SCRAPE}}}", "10x30")], "20m", []),
        ("short queue", [(f"jenkins_queue_size_value{{{SCRAPE}}}", "3x30")], "20m", []),
    ],
    "JenkinsNoExecutorsAvailable": [
        (
            "queued, no executor for 15m",
            [
                (f"jenkins_executor_free_value{{{SCRAPE}}}", "0x20"),
                (f"jenkins_queue_size_value{{{SCRAPE}}}", "3x20"),
            ],
            "15m",
            [_firing("JenkinsNoExecutorsAvailable", 0)],
        ),
        (
            "idle: no executor, nothing queued",
            [
                (f"jenkins_executor_free_value{{{SCRAPE}}}", "0x20"),
                (f"jenkins_queue_size_value{{{SCRAPE}}}", "0x20"),
            ],
            "15m",
            [],
        ),
        (
            "queued but an executor is free",
            [
                (f"jenkins_executor_free_value{{{SCRAPE}}}", "1x20"),
                (f"jenkins_queue_size_value{{{SCRAPE}}}", "3x20"),
            ],
            "15m",
            [],
        ),
        (
            "agents took 5m to come up",
            [
                (f"jenkins_executor_free_value{{{SCRAPE}}}", "0x20"),
                (f"jenkins_queue_size_value{{{SCRAPE}}}", "3 3 3 3 3 0x15"),
            ],
            "15m",
            [],
        ),
    ],
}


def _write_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(rules_file(jenkins_rule_groups(TARGET)), encoding="utf-8")
    return path


def test_rules_carry_for_severity_and_annotations() -> None:
    (group,) = jenkins_rule_groups(TARGET)
    assert [r["alert"] for r in group["rules"]] == list(ALERTS)
    for rule in group["rules"]:
        severity, duration = ALERTS[rule["alert"]]
        assert rule["for"] == duration and rule["labels"] == {"severity": severity}
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"] == (
            f"https://runbooks.example.com/appstack/jenkins#{rule['alert'].lower()}"
        )
    queue = next(r for r in group["rules"] if r["alert"] == "JenkinsBuildQueueLong")
    assert "jenkins_queue_size_value" in queue["expr"] and "> 10" in queue["expr"]
    none_free = next(r for r in group["rules"] if r["alert"] == "JenkinsNoExecutorsAvailable")
    assert "jenkins_executor_free_value" in none_free["expr"]


def test_negative_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="queue_threshold"):
        JenkinsAlertTarget(namespace="jenkins", queue_threshold=-1)


def test_promtool_check_rules(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path)
    result = run_tool("promtool", "check", "rules", str(rules))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{rules.read_text()}"
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    assert set(CASES) == set(ALERTS)
    for alert, cases in CASES.items():
        assert any(expected for *_, expected in cases), alert
        assert any(not expected for *_, expected in cases), alert


@pytest.mark.parametrize("alert", list(ALERTS))
def test_alert_fires_and_stays_silent(tmp_path: Path, alert: str) -> None:
    rules = _write_rules(tmp_path)
    doc = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": name,
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {"eval_time": eval_time, "alertname": alert, "exp_alerts": expected}
                ],
            }
            for name, series, eval_time, expected in CASES[alert]
        ],
    }
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(dump_yaml(doc, sort_keys=False, width=1000), encoding="utf-8")
    result = run_tool("promtool", "test", "rules", str(test_file), cwd=tmp_path)
    assert result.returncode == 0, (
        f"{result.stdout}\n{result.stderr}\n{rules.read_text()}\n{test_file.read_text()}"
    )

"""Alerts for the Jenkins controller, as plain Python data (no pulumi import).

`jenkins_rule_groups()` returns the `spec.groups` of a prometheus-operator PrometheusRule;
`rules_file()` wraps the same list under a top-level `groups:` key, the standalone rules file that
`promtool check rules` / `promtool test rules` read (tests/jenkins/test_jenkins_alerts.py).

Metrics (scraped from the controller's `/prometheus/` endpoint by the ServiceMonitor, so `job` is
the Service's `app.kubernetes.io/name` label and `namespace` the Jenkins namespace):

* `up` — Prometheus' own scrape health of the target;
* `jenkins_queue_size_value` — items in the build queue, and `jenkins_executor_free_value` —
  executors free to take an item. Both are the Metrics plugin's Dropwizard gauges
  (`jenkins.queue.size.value`, `jenkins.executor.free.value`) that the Prometheus plugin exports
  under these names (its own collectors add the `default_jenkins_*` family besides).

With a Kubernetes cloud the controller has no executors of its own (numExecutors 0): free
executors are 0 whenever no agent pod is up, which is normal while idle. Only "0 free executors
*while* items wait" for a sustained time means agents are not coming up (container cap reached,
pods unschedulable, image pulls failing, agents unable to connect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "ALERTS",
    "JenkinsAlertTarget",
    "jenkins_rule_groups",
    "rules_file",
]

#: Alert name -> (severity, `for` duration).
ALERTS: dict[str, tuple[str, str]] = {
    "JenkinsControllerDown": ("critical", "5m"),
    "JenkinsBuildQueueLong": ("warning", "15m"),
    "JenkinsNoExecutorsAvailable": ("warning", "10m"),
}


@dataclass(frozen=True)
class JenkinsAlertTarget:
    """What the rules select and where their runbooks live."""

    namespace: str
    """Namespace of the controller (the scrape target's `namespace` label)."""
    job: str = "jenkins"
    """Scrape job (the Service's app.kubernetes.io/name label, via the ServiceMonitor)."""
    runbook_base_url: str = "https://runbooks.example.com/appstack"
    """Base of each alert's runbook_url (`<base>/jenkins#<alert name in lowercase>`)."""
    queue_threshold: int = 10
    """JenkinsBuildQueueLong fires when more items than this wait for 15 minutes."""

    def __post_init__(self) -> None:
        if self.queue_threshold < 0:
            raise ValueError(f"queue_threshold must be >= 0, got {self.queue_threshold}")


def _runbook(target: JenkinsAlertTarget, alert: str) -> str:
    return f"{target.runbook_base_url.rstrip('/')}/jenkins#{alert.lower()}"


def _rule(
    target: JenkinsAlertTarget, alert: str, expr: str, summary: str, description: str
) -> dict[str, Any]:
    severity, duration = ALERTS[alert]
    return {
        "alert": alert,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": _runbook(target, alert),
        },
    }


def jenkins_rule_groups(target: JenkinsAlertTarget) -> list[dict[str, Any]]:
    """The rule groups (one group `jenkins.alerts`) for the controller in `target.namespace`.

    Every expression aggregates `by (namespace, job)`, so the alert's labels never depend on
    which pod or instance was scraped and `{{ $labels.namespace }}` always resolves.
    """
    sel = f'job="{target.job}", namespace="{target.namespace}"'
    queue = f"max by (namespace, job) (jenkins_queue_size_value{{{sel}}})"
    free = f"max by (namespace, job) (jenkins_executor_free_value{{{sel}}})"
    rules = [
        _rule(
            target,
            "JenkinsControllerDown",
            f"(max by (namespace, job) (up{{{sel}}}) == 0) or absent(up{{{sel}}})",
            "Jenkins controller is down",
            "Prometheus cannot scrape the Jenkins controller in namespace "
            "{{ $labels.namespace }} (job {{ $labels.job }}) for 5 minutes: no builds start "
            "and the UI is unavailable.",
        ),
        _rule(
            target,
            "JenkinsBuildQueueLong",
            f"{queue} > {target.queue_threshold}",
            "Jenkins build queue is long",
            "{{ $value }} items have waited in the Jenkins build queue of namespace "
            f"{{{{ $labels.namespace }}}} for 15 minutes (threshold {target.queue_threshold}).",
        ),
        _rule(
            target,
            "JenkinsNoExecutorsAvailable",
            f"({free} == 0) and on (namespace, job) ({queue} > 0)",
            "Jenkins has queued builds and no free executor",
            "Builds wait in namespace {{ $labels.namespace }} while no executor has been free "
            "for 10 minutes: agent pods are not starting or not connecting (container cap, "
            "scheduling, image pulls, network policy).",
        ),
    ]
    return [{"name": "jenkins.alerts", "rules": rules}]


def rules_file(groups: Sequence[dict[str, Any]]) -> str:
    """A standalone Prometheus rules file (`groups:` at the top) for promtool."""
    return yaml.safe_dump({"groups": list(groups)}, sort_keys=False, width=1000)

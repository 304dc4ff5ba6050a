"""Availability SLO of one app as Prometheus rules: recording rules for the error ratio over every
window the alerts need, and the multi-window, multi-burn-rate alerts of the Google SRE workbook
(chapter 5, "Alerting on SLOs", table 5-8 / recommendation 6):

    severity   burn rate   long window   short window   budget spent when it fires
    page       14.4x       1h            5m             2 % of a 30-day budget in 1 hour
    page        6x         6h            30m            5 % in 6 hours
    ticket      3x         1d            2h             10 % in 1 day
    ticket      1x         3d            6h             10 % in 3 days

An alert needs both windows above `burn rate x (1 - objective)`: the long window proves the burn
is significant, the short one that it is still going on (so the alert resets minutes after the
errors stop instead of hours). The page alert is `<App>ErrorBudgetFastBurn` (severity
critical), the ticket `<App>ErrorBudgetSlowBurn` (severity warning).

The SLI is the app's own request counter (app/server/metrics.py): `http_requests_total{code, path,
method}` scraped with `job` = the app name and `namespace`. Good events are responses that are not
5xx. Requests to the probe routes (`/health`, `/health/ready`) are left out: they come from the
kubelet, not from users, and a draining pod answers its readiness probe with 503 by design
(app/server/lifecycle.py), which is not an outage. Pure data, no pulumi:
components/monitoring/component.py appends these groups to the app's PrometheusRule; docs/slo.md
explains the error budget.

A test stack may shorten the windows (`appstack:monitoring.alerts.sloWindows`, config only):
each workbook window maps to the range its recording rule reads instead; the recorded series
keep the workbook window's name, so the alerts, dashboards and queries stay the same. Every
burn rate's short window must stay shorter than its long one (`window_ranges`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BURN_RATES",
    "PROBE_PATHS",
    "WINDOWS",
    "BurnRate",
    "SloTarget",
    "app_slo_groups",
    "error_ratio_record",
    "slo_alert_name",
    "slo_groups_for",
    "window_ranges",
]

#: Routes the kubelet probes (app/server/routes.py ROUTE_HEALTH / ROUTE_READY): not user traffic.
PROBE_PATHS: tuple[str, ...] = ("/health", "/health/ready")


@dataclass(frozen=True)
class BurnRate:
    """One multi-window condition: both windows' error ratios above factor x budget."""

    factor: float
    long: str
    short: str
    severity: str


#: SRE workbook table 5-8: fast burn pages, slow burn tickets.
BURN_RATES: tuple[BurnRate, ...] = (
    BurnRate(14.4, "1h", "5m", "critical"),
    BurnRate(6.0, "6h", "30m", "critical"),
    BurnRate(3.0, "1d", "2h", "warning"),
    BurnRate(1.0, "3d", "6h", "warning"),
)
#: Every window a recording rule exists for, shortest first.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


_DURATION_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")
_UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(duration: object) -> float:
    """Seconds of a Prometheus duration (model.ParseDuration: units y w d h m s ms, largest
    first, each at most once); -1 for anything else."""
    if not isinstance(duration, str) or not duration:
        return -1
    parts = _DURATION_PART.findall(duration)
    units = [u for _, u in parts]
    order = ["y", "w", "d", "h", "m", "s", "ms"]
    if "".join(n + u for n, u in parts) != duration or units != sorted(set(units), key=order.index):
        return -1
    return sum(int(n) / 1000 if u == "ms" else int(n) * _UNIT_SECONDS[u] for n, u in parts)


def window_ranges(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The range each workbook window's recording rule reads: the window itself unless
    `overrides` (`appstack:monitoring.alerts.sloWindows`) shortens it. ValueError for a key that
    is not a workbook window, a value that is not a Prometheus duration, or a burn rate whose
    short window would not be shorter than its long one."""
    ranges = {w: w for w in WINDOWS}
    for window, duration in (overrides or {}).items():
        if window not in ranges:
            raise ValueError(
                f"sloWindows: {window!r} is not an SLO window; allowed: {', '.join(WINDOWS)}"
            )
        if _seconds(duration) <= 0:
            raise ValueError(
                f"sloWindows[{window!r}] must be a Prometheus duration longer than 0 such as "
                f"'2m' (units y w d h m s ms), got {duration!r}"
            )
        ranges[window] = duration
    for rate in BURN_RATES:
        long, short = ranges[rate.long], ranges[rate.short]
        if _seconds(short) >= _seconds(long):
            raise ValueError(
                f"sloWindows: the {rate.factor:g}x burn rate's short window {rate.short} "
                f"({short}) must be shorter than its long window {rate.long} ({long})"
            )
    return ranges


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class SloTarget:
    """Whose SLO: the scrape job and namespace of one app, and its objective."""

    app: str
    namespace: str
    objective_percent: float
    runbook_base_url: str

    def __post_init__(self) -> None:
        for name in ("app", "namespace"):
            value = getattr(self, name)
            if not _DNS_LABEL.match(value) or len(value) > 63:
                raise ValueError(f"SloTarget.{name} must be a DNS-1123 label, got {value!r}")
        # 14.4 x budget must stay below 100 % errors, or the fast-burn page could never fire.
        if not 100 - 100 / BURN_RATES[0].factor < self.objective_percent < 100:
            raise ValueError(
                f"SloTarget.objective_percent must be in ({100 - 100 / BURN_RATES[0].factor:.2f}, "
                f"100), got {self.objective_percent!r}"
            )

    @property
    def budget(self) -> float:
        """The error budget as a ratio: 1 - objective (0.001 for 99.9 %)."""
        return round(1 - self.objective_percent / 100, 12)


def error_ratio_record(window: str) -> str:
    """Name of the recorded error ratio over `window` (SRE workbook naming)."""
    return f"job:slo_errors_per_request:ratio_rate{window}"


def slo_alert_name(app: str, speed: str) -> str:
    """`web-api`, "Fast" -> `WebApiErrorBudgetFastBurn`."""
    prefix = "".join(p[:1].upper() + p[1:] for p in re.split(r"[-_.]", app) if p)
    return f"{prefix}ErrorBudget{speed}Burn"


def _num(value: float) -> str:
    return repr(round(value, 12))


def _recording_rules(t: SloTarget, ranges: Mapping[str, str]) -> list[dict[str, Any]]:
    probes = "|".join(re.escape(p) for p in PROBE_PATHS)
    users = f'job="{t.app}", namespace="{t.namespace}", path!~"{probes}"'
    rules: list[dict[str, Any]] = []
    for window in WINDOWS:
        span = ranges[window]
        total = f"sum by (job, namespace) (rate(http_requests_total{{{users}}}[{span}]))"
        errors = (
            f'sum by (job, namespace) (rate(http_requests_total{{{users}, code=~"5.."}}[{span}]))'
        )
        rules.append(
            {
                "record": error_ratio_record(window),
                # `or 0 * total`: no 5xx at all is a ratio of 0, not an absent series.
                "expr": f"(\n  {errors}\n  or\n  0 * {total}\n)\n/\n{total}",
                "labels": {"slo": "availability"},
            }
        )
    return rules


def _alert(
    t: SloTarget, speed: str, rates: tuple[BurnRate, ...], ranges: Mapping[str, str]
) -> dict[str, Any]:
    sel = f'{{job="{t.app}", namespace="{t.namespace}", slo="availability"}}'
    conditions = [
        f"(\n  {error_ratio_record(r.long)}{sel} > {_num(r.factor * t.budget)}\n  and\n"
        f"  {error_ratio_record(r.short)}{sel} > {_num(r.factor * t.budget)}\n)"
        for r in rates
    ]
    name = slo_alert_name(t.app, speed)
    windows = "; ".join(f"{r.factor:g}x over {ranges[r.long]} and {ranges[r.short]}" for r in rates)
    action = "page" if rates[0].severity == "critical" else "ticket"
    return {
        "alert": name,
        "expr": "\nor\n".join(conditions),
        "labels": {"severity": rates[0].severity, "slo": "availability"},
        "annotations": {
            "summary": (
                "{{ $labels.namespace }}/{{ $labels.job }}: error budget burning "
                f"{'fast' if speed == 'Fast' else 'slowly'}"
            ),
            "description": (
                "{{ $labels.namespace }}/{{ $labels.job }} is spending its "
                f"{t.objective_percent:g}% availability error budget too fast ({windows}); "
                "{{ $value | humanizePercentage }} of the user requests fail with a 5xx "
                f"({action})."
            ),
            "runbook_url": f"{t.runbook_base_url.rstrip('/')}/{name}",
        },
    }


def app_slo_groups(
    target: SloTarget, windows: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The `<app>.slo` rule group: the error-ratio recording rules and the two burn alerts;
    `windows` shortens the workbook windows (`window_ranges`)."""
    ranges = window_ranges(windows)
    fast = tuple(r for r in BURN_RATES if r.severity == "critical")
    slow = tuple(r for r in BURN_RATES if r.severity == "warning")
    return [
        {
            "name": f"{target.app}.slo",
            "rules": [
                *_recording_rules(target, ranges),
                _alert(target, "Fast", fast, ranges),
                _alert(target, "Slow", slow, ranges),
            ],
        }
    ]


class _SloSettings(Protocol):
    @property
    def enabled(self) -> bool: ...

    @property
    def availability(self) -> float: ...


def slo_groups_for(
    app: str,
    namespace: str,
    slo: _SloSettings,
    runbook_base_url: str,
    windows: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The SLO group of an app from its `slo` settings and the stack's `sloWindows`; [] when
    the SLO is off."""
    if not slo.enabled:
        return []
    return app_slo_groups(SloTarget(app, namespace, slo.availability, runbook_base_url), windows)

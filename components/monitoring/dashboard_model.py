"""The dashboards as typed data: `DashboardSpec` (rows of `PanelSpec`, each with its PromQL
`Query`s), what an app's dashboard is about (`AppView`) and the stable Grafana uids.
components/monitoring/dashboard_queries.py fills them, dashboards.py turns them into Grafana's
dashboard JSON model."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from components.monitoring import slo_rules
from components.monitoring.alert_model import AlertThresholds, RuleTarget

PanelKind = Literal["timeseries", "stat"]


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    """The PromQL expression (no Grafana macros: Prometheus evaluates it as written)."""
    legend: str
    """Legend template, e.g. `{{path}}`."""


@dataclass(frozen=True)
class PanelSpec:
    """One panel: a title, what it plots and how."""

    title: str
    """Panel title."""
    kind: PanelKind
    """Grafana panel type: a time series graph or a single stat."""
    unit: str
    """Grafana unit id (`reqps`, `percentunit`, `s`, `short`)."""
    queries: tuple[Query, ...]
    """Its PromQL targets (refId A, B, ... in order)."""
    description: str
    """What the panel means, shown on hover."""
    threshold: float | None = None
    """The alert threshold drawn on the panel (red from this value), when an alert has one."""


@dataclass(frozen=True)
class RowSpec:
    """A titled row of panels."""

    title: str
    """Row title."""
    panels: tuple[PanelSpec, ...]
    """Panels of the row, left to right."""


@dataclass(frozen=True)
class DashboardSpec:
    """A whole dashboard."""

    uid: str
    """Grafana uid: stable across renders, at most 40 characters."""
    title: str
    """Dashboard title."""
    tags: tuple[str, ...]
    """Tags (search in Grafana)."""
    rows: tuple[RowSpec, ...]
    """Rows, top to bottom."""
    links: tuple[tuple[str, str], ...] = ()
    """(title, uid) of related dashboards."""


@dataclass(frozen=True)
class AppView:
    """What one app's dashboard is about (from the same render as its rules)."""

    target: RuleTarget
    """The app's scrape job, namespace, container, workloads, HPAs, PDBs."""
    thresholds: AlertThresholds
    """The thresholds of its alerts (drawn on the panels)."""
    slo: slo_rules.SloTarget | None
    """Its availability SLO; None when the SLO is off."""
    alert_names: tuple[str, ...]
    """The names of every alert of its PrometheusRule."""


#: Most characters Grafana allows in a dashboard uid.
UID_MAX = 40
#: The burn-rate windows the app dashboard plots (each has a recording rule).
BURN_WINDOWS: tuple[str, ...] = ("5m", "1h", "6h", "1d", "3d")


def dashboard_uid(*parts: str) -> str:
    """A stable uid from the parts (namespace, app): readable when short, else hashed."""
    readable = "-".join(parts)
    if len(readable) <= UID_MAX and re.fullmatch(r"[a-z0-9-]+", readable):
        return readable
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"appstack-{digest[: UID_MAX - 9]}"


def app_uid(namespace: str, app: str) -> str:
    """The uid of an app's dashboard."""
    return dashboard_uid(namespace, app)


def stack_uid(namespace: str) -> str:
    """The uid of a stack's dashboard (one stack per namespace)."""
    return dashboard_uid(namespace, "overview")


def or_zero(expr: str) -> str:
    """An expression over series that exist only while something fails, 0 otherwise."""
    return f"({expr} or vector(0))"


def queries(spec: DashboardSpec) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of a dashboard, in order."""
    return [(p.title, q.expr) for row in spec.rows for p in row.panels for q in p.queries]

"""Grafana dashboards as code: a `DashboardSpec` (components/monitoring/dashboard_queries.py's data)
built with grafana-foundation-sdk (the types and builders Grafana generates from its dashboard
schema, pinned in requirements.txt for Grafana 11.6) into the dashboard JSON model.

Shipped the way kube-prometheus-stack's Grafana loads dashboards: its `k8s-sidecar` container
watches ConfigMaps with the label `grafana_dashboard: "1"` (chart values
`grafana.sidecar.dashboards.label` / `labelValue`; `searchNamespace: ALL` since chart 45.12) and
writes each data key (`<uid>.json`) into Grafana's dashboard provider directory.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from components.monitoring.dashboard_model import DashboardSpec, PanelSpec

#: The dashboard variable every panel's datasource is (a Prometheus datasource of the Grafana).
DATASOURCE_VARIABLE = "datasource"
#: Grid width of a Grafana dashboard.
GRID_WIDTH = 24
PANEL_HEIGHT = 8
#: Refresh of the dashboards (the default scrape interval is 30s).
REFRESH = "30s"

_DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")


def _thresholds(value: float | None) -> builder.ThresholdsConfig:
    steps = [model.Threshold(value=None, color="green")]
    if value is not None:
        steps.append(model.Threshold(value=value, color="red"))
    return builder.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


def _panel(spec: PanelSpec, panel_id: int, width: int) -> timeseries.Panel | stat.Panel:
    targets = [
        prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i))
        for i, q in enumerate(spec.queries)
    ]
    panel: timeseries.Panel | stat.Panel
    if spec.kind == "stat":
        panel = stat.Panel().color_mode(common.BigValueColorMode.BACKGROUND)
    else:
        panel = timeseries.Panel()
        if spec.threshold is not None:
            style = common_builder.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
            panel = panel.thresholds_style(style)
    panel = (
        panel.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(_DATASOURCE)
        .unit(spec.unit)
        .thresholds(_thresholds(spec.threshold))
        .span(width)
        .height(PANEL_HEIGHT)
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def dashboard_model(spec: DashboardSpec) -> dict[str, Any]:
    """Grafana's dashboard JSON model of a spec (what Grafana stores and the sidecar loads)."""
    board = (
        builder.Dashboard(spec.title)
        .uid(spec.uid)
        .tags(list(spec.tags))
        .refresh(REFRESH)
        .time("now-6h", "now")
        .timezone("browser")
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            builder.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
        )
    )
    for title, uid in spec.links:
        board = board.link(
            builder.DashboardLink(title)
            .type(model.DashboardLinkType.LINK)
            .url(f"/d/{uid}")
            .keep_time(True)
        )
    panel_id = 0
    for row in spec.rows:
        panel_id += 1
        board = board.with_row(builder.Row(row.title).id(panel_id))
        width = max(GRID_WIDTH // 4, GRID_WIDTH // max(len(row.panels), 1))
        for panel_spec in row.panels:
            panel_id += 1
            board = board.with_panel(_panel(panel_spec, panel_id, width))
    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def dashboard_json(spec: DashboardSpec) -> str:
    """The dashboard JSON a ConfigMap carries: stable key order, one line per key."""
    return json.dumps(dashboard_model(spec), indent=1, sort_keys=True) + "\n"

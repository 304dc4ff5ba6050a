"""Every app metric the rendered rules read is one the running reference app exports,
with the labels the rules use: scraped from a real process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.monitoring import alert_rules
from components.monitoring.component import rule_groups
from stackctl.render.stack import render_stack
from tests.app.test_server import Service, start_service, stop


@pytest.fixture
def running_app(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path)
    try:
        yield service
    finally:
        stop(service.proc)


def test_every_app_metric_in_the_prod_rules_is_exported_by_the_app(running_app: Service) -> None:
    prod = render_stack("prod")
    groups = [
        g for obj in prod.objects if obj["kind"] == "PrometheusRule" for g in obj["spec"]["groups"]
    ]
    used = alert_rules.metric_names_used(groups)
    assert used == {"http_requests_total", "http_request_duration_seconds"}
    for path in ("/", "/health", "/sleep?ms=1", "/missing"):
        running_app.get(path)
    samples = running_app.samples()
    exported = {name for name, _ in samples}
    label_names = {name: set() for name in exported}  # type: dict[str, set[str]]
    for name, labels in samples:
        label_names[name] |= {k for k, _ in labels}
    assert "http_requests_total" in exported
    assert {"method", "code", "path"} <= label_names["http_requests_total"]
    assert "http_request_duration_seconds_bucket" in exported
    assert {"method", "path", "le"} <= label_names["http_request_duration_seconds_bucket"]


def test_rule_groups_follow_the_configured_thresholds() -> None:
    from components import config as config_model
    from tests.conftest import base_raw

    raw = base_raw("prod")
    raw["monitoring"] = {"enabled": True, "alerts": {"errorRatio": 0.07}}
    cfg = config_model.load(raw)
    groups = rule_groups("web", "shop", cfg.apps["web"], cfg.monitoring)
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    assert "0.07" in alerts["WebHighErrorRatio"]["expr"]
    assert "WebHPAAtMaxReplicas" in alerts  # prod autoscales
    dev = config_model.load({**base_raw("dev"), "monitoring": {"enabled": True}})
    dev_alerts = {
        r["alert"]
        for g in rule_groups("web", "shop", dev.apps["web"], dev.monitoring)
        for r in g["rules"]
        if "alert" in r
    }
    assert "WebHPAAtMaxReplicas" not in dev_alerts  # no HPA in dev

"""The stack's alert routing (components/monitoring/routing.py): one AlertmanagerConfig per
stack, only with monitoring and `alertRouting` on; every rendered alert reaches the receiver of
its severity with the labels an on-call person needs. Oracles: the rendered PrometheusRules
(every alert the stack declares, its severity and labels), Alertmanager's routing rules (a
route matches when all its matchers do; the first matching child route takes the alert,
otherwise its parent's receiver does: prometheus/alertmanager dispatch/route.go `Match`) and
prometheus-operator's AlertmanagerConfig conversion (receiver names prefixed
`<namespace>/<name>/`, a `namespace` matcher added under the `OnNamespace` strategy:
pkg/alertmanager/amcfg.go)."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import pytest

from components import config as config_model
from stackctl.render.stack import RenderResult, render_config, render_stack
from tests import crd_schemas
from tests.conftest import base_raw

ROUTED = {"enabled": True, "alertRouting": {"enabled": True, "groupWait": "5s"}}


def _raw(environment: str, monitoring: dict[str, Any]) -> dict[str, Any]:
    raw = base_raw(environment)
    raw["apps"]["api"] = copy.deepcopy(raw["apps"]["web"])
    raw["monitoring"] = monitoring
    return raw


@functools.cache
def _routed() -> RenderResult:
    return render_config(config_model.load(_raw("prod", ROUTED)), "routed")


def _of_kind(result: RenderResult, kind: str) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["kind"] == kind]


def _alerts(result: RenderResult) -> list[dict[str, Any]]:
    return [
        rule
        for obj in _of_kind(result, "PrometheusRule")
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _matches(matchers: list[dict[str, str]], labels: dict[str, str]) -> bool:
    for m in matchers:
        value = labels.get(m["name"], "")
        kind = m.get("matchType", "=")
        ok = {
            "=": value == m["value"],
            "!=": value != m["value"],
            "=~": re.fullmatch(m["value"], value) is not None,
            "!~": re.fullmatch(m["value"], value) is None,
        }[kind]
        if not ok:
            return False
    return True


def _receiver(route: dict[str, Any], labels: dict[str, str]) -> str:
    """Alertmanager's routing of one alert through an AlertmanagerConfig route (no `continue`
    in ours): the first child route whose matchers all match, recursively, else this one."""
    for child in route.get("routes") or []:
        if _matches(child.get("matchers") or [], labels):
            return _receiver(child, labels)
    return str(route["receiver"])


def test_nothing_is_routed_unless_monitoring_and_routing_are_on() -> None:
    # The shipped stacks: dev has monitoring off, prod has it on without routing.
    for stack in ("dev", "prod"):
        assert _of_kind(render_stack(stack), "AlertmanagerConfig") == [], stack
    monitored = render_config(config_model.load(_raw("prod", {"enabled": True})), "monitored")
    assert _of_kind(monitored, "AlertmanagerConfig") == []
    assert _of_kind(monitored, "PrometheusRule")


def test_routing_without_monitoring_is_refused_naming_the_key() -> None:
    raw = _raw("prod", {"enabled": False, "alertRouting": {"enabled": True}})
    with pytest.raises(config_model.ConfigError) as err:
        config_model.load(raw)
    assert "monitoring.alertRouting.enabled" in str(err.value)
    assert "monitoring.enabled: true" in str(err.value)


def test_one_alertmanager_config_per_stack_selected_like_its_service_monitors() -> None:
    result = _routed()
    (amc,) = _of_kind(result, "AlertmanagerConfig")
    monitors = _of_kind(result, "ServiceMonitor")
    assert len(monitors) == 2  # two apps, one routing object
    assert amc["metadata"]["namespace"] == monitors[0]["metadata"]["namespace"]
    selector = config_model.Monitoring().prometheus_selector_labels
    for obj in [amc, *monitors]:
        assert selector.items() <= obj["metadata"]["labels"].items()
    assert crd_schemas.errors(amc) == []


def test_every_alert_reaches_the_webhook_of_its_severity() -> None:
    result = _routed()
    (amc,) = _of_kind(result, "AlertmanagerConfig")
    spec = amc["spec"]
    namespace = amc["metadata"]["namespace"]
    urls = {r["name"]: r["webhookConfigs"][0]["urlSecret"] for r in spec["receivers"]}
    routing = config_model.AlertRouting()
    alerts = _alerts(result)
    assert {a["labels"]["severity"] for a in alerts} == {"critical", "warning"}
    for alert in alerts:
        # The alert as Alertmanager receives it: rule labels plus the series' namespace and job.
        labels = {**alert["labels"], "namespace": namespace, "alertname": alert["alert"]}
        secret = urls[_receiver(spec["route"], labels)]
        want_key = {"critical": routing.critical_key, "warning": routing.warning_key}
        assert secret == {
            "name": routing.webhook_secret,
            "key": want_key[labels["severity"]],
        }, alert["alert"]
    for receiver in spec["receivers"]:
        assert receiver["webhookConfigs"][0]["sendResolved"] is True
    assert spec["route"]["groupWait"] == "5s"  # from config
    assert spec["route"]["repeatInterval"] == routing.repeat_interval


def test_every_alert_carries_app_environment_and_runbook() -> None:
    result = _routed()
    for obj in _of_kind(result, "PrometheusRule"):
        app = obj["metadata"]["labels"]["app.kubernetes.io/name"]
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    assert "labels" not in rule or "environment" not in rule["labels"]
                    continue
                assert rule["labels"]["app"] == app, rule["alert"]
                assert rule["labels"]["environment"] == "prod", rule["alert"]
                assert rule["annotations"]["runbook_url"].endswith("/" + rule["alert"])
                # `app` on the rule never disagrees with the series' job (= the app name).
                assert f'job="{app}"' in rule["expr"] or "job" not in rule["expr"], rule["alert"]


def test_no_url_is_in_the_render() -> None:
    (amc,) = _of_kind(_routed(), "AlertmanagerConfig")
    text = repr(amc)
    assert "http://" not in text and "https://" not in text

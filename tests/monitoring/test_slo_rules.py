"""The availability SLO rules (components/monitoring/slo_rules.py), judged by promtool on series
generated from what app.server really exports (metric and label names read from its registry)
under the scrape labels the render gives them (ServiceMonitor job label, namespace, pod names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.server import ROUTE_HEALTH, ROUTE_READY, ROUTE_ROOT, create_metrics
from components.monitoring.alert_rules import rules_file
from components.monitoring.slo_rules import slo_alert_name
from tests.conftest import Render, base_raw, load_error, one
from tests.tooling import dump_yaml, run_tool

pytestmark = pytest.mark.slow

RAW = {**base_raw("prod"), "monitoring": {"enabled": True}}


def request_counter() -> tuple[str, tuple[str, ...]]:
    """Sample name and label names of the app's request counter, from its own registry."""
    for family in create_metrics("test").registry.collect():
        if family.type == "counter" and family.name.startswith("http_requests"):
            sample = f"{family.name}_total"
            return sample, ("method", "code", "path")
    raise AssertionError("app/server/metrics.py exports no http_requests counter")


class Scrape:
    """What Prometheus stores for the rendered app: job from the ServiceMonitor's jobLabel."""

    def __init__(self, render: Render) -> None:
        result = render(RAW)
        self.result = result
        monitor = one(result.objects, "ServiceMonitor", "web")
        service = one(result.objects, "Service", "web-metrics")
        self.job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        self.namespace = monitor["metadata"]["namespace"]
        deployment = one(result.objects, "Deployment", "web")
        self.pod = f"{deployment['metadata']['name']}-6d4cf56db6-x7k2p"
        rule = one(result.objects, "PrometheusRule", "web")
        self.groups = [g for g in rule["spec"]["groups"] if g["name"].endswith(".slo")]
        self.metric, self.label_names = request_counter()

    def series(self, code: str, path: str) -> str:
        values = {"method": "GET", "code": code, "path": path}
        labels = ", ".join(f'{k}="{values[k]}"' for k in self.label_names)
        return (
            f'{self.metric}{{job="{self.job}", namespace="{self.namespace}", '
            f'instance="10.0.0.1:9090", pod="{self.pod}", {labels}}}'
        )


@pytest.fixture(scope="module")
def scrape() -> Scrape:
    from components import config as config_model
    from stackctl.render.stack import render_config

    return Scrape(lambda raw: render_config(config_model.load(raw), "prod"))


def alerts_of(scrape: Scrape) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in scrape.groups for r in g["rules"] if "alert" in r}


def expected(scrape: Scrape, name: str, value: float) -> dict[str, Any]:
    """The alert as promtool must see it: labels, and annotations rendered from the rule's
    own templates with the value the expression computes (humanizePercentage = %.4g of v*100)."""
    rule = alerts_of(scrape)[name]
    subs = {
        "{{ $labels.namespace }}": scrape.namespace,
        "{{ $labels.job }}": scrape.job,
        "{{ $value | humanizePercentage }}": f"{value * 100:.4g}%",
    }
    annotations = {}
    for key, text in rule["annotations"].items():
        for template, actual in subs.items():
            text = text.replace(template, actual)
        annotations[key] = text
    return {
        "exp_labels": {
            **rule["labels"],
            "job": scrape.job,
            "namespace": scrape.namespace,
        },
        "exp_annotations": annotations,
    }


def promtool_test(
    tmp_path: Path, scrape: Scrape, tests: list[dict[str, Any]], every: str = "1m"
) -> None:
    rules = tmp_path / "slo.yml"
    rules.write_text(rules_file(scrape.groups), encoding="utf-8")
    doc = {"rule_files": [rules.name], "evaluation_interval": every, "tests": tests}
    test_file = tmp_path / "slo_test.yml"
    test_file.write_text(dump_yaml(doc, sort_keys=False, width=1000), encoding="utf-8")
    proc = run_tool("promtool", "test", "rules", str(test_file), cwd=tmp_path)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{rules.read_text()}"


def traffic(
    scrape: Scrape, minutes: int, ok: float, errors: float, probe_503: float = 0
) -> list[dict[str, str]]:
    """Per-minute counter increments, `minutes` long: user requests on `/` (200 and 500) and the
    kubelet's readiness probe (200, or 503 while a pod drains)."""
    return [
        {"series": scrape.series("200", ROUTE_ROOT), "values": f"0+{ok}x{minutes}"},
        {"series": scrape.series("500", ROUTE_ROOT), "values": f"0+{errors}x{minutes}"},
        {"series": scrape.series("200", ROUTE_HEALTH), "values": f"0+6x{minutes}"},
        {"series": scrape.series("503", ROUTE_READY), "values": f"0+{probe_503}x{minutes}"},
    ]


def case(
    name: str,
    series: list[dict[str, str]],
    at: str,
    firing: dict[str, list[dict[str, Any]]],
    every: str = "1m",
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": every,
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": alert, "exp_alerts": exp}
            for alert, exp in firing.items()
        ],
    }


FAST = slo_alert_name("web", "Fast")
SLOW = slo_alert_name("web", "Slow")


def test_rendered_slo_group_passes_promtool_check(tmp_path: Path, scrape: Scrape) -> None:
    assert [g["name"] for g in scrape.groups] == ["web.slo"]
    rules = tmp_path / "slo.yml"
    rules.write_text(rules_file(scrape.groups), encoding="utf-8")
    proc = run_tool("promtool", "check", "rules", str(rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(alerts_of(scrape)) == {FAST, SLOW}
    assert alerts_of(scrape)[FAST]["labels"]["severity"] == "critical"  # pages
    assert alerts_of(scrape)[SLOW]["labels"]["severity"] == "warning"  # tickets


def test_fast_burn_pages_and_resets_when_errors_stop(tmp_path: Path, scrape: Scrape) -> None:
    # 2 % of user requests fail: 20x the 0.1 % budget of 99.9 % (above 14.4x)
    ratio = 20 / 1020
    recovered = [
        *traffic(scrape, 60, 1000, 20)[:1],
        {"series": scrape.series("500", ROUTE_ROOT), "values": "0+20x60 1200+0x40"},
    ]
    recovered[0]["values"] = "0+1000x100"
    promtool_test(
        tmp_path,
        scrape,
        [
            case(
                "2% errors for an hour",
                traffic(scrape, 70, 1000, 20),
                "65m",
                {FAST: [expected(scrape, FAST, ratio)], SLOW: [expected(scrape, SLOW, ratio)]},
            ),
            # once the errors stop, the short windows (5m, 30m) are clean within 30 minutes and
            # the page resolves, although the long windows (1h, 6h) still hold the burst
            case("errors stopped 35 minutes ago", recovered, "95m", {FAST: []}),
        ],
    )


def test_draining_readiness_probes_are_not_user_errors(tmp_path: Path, scrape: Scrape) -> None:
    """Readiness answers 503 while a pod drains (app.server lifecycle); counted as user traffic, 30
    probe 503s a minute beside 100 requests would be a 23 % error ratio."""
    series = traffic(scrape, 70, 100, 0, probe_503=30)
    promtool_test(tmp_path, scrape, [case("only probes fail", series, "65m", {FAST: [], SLOW: []})])


def test_slow_burn_tickets_without_paging(tmp_path: Path, scrape: Scrape) -> None:
    # Three days at a 5m scrape/evaluation step (the 5m window then has no rate, which only
    # removes the 14.4x branch of the page; the ticket uses 2h..3d windows).
    steps = 3 * 24 * 60 // 5
    # 0.2 % errors: 2x the budget -> above 1x over 3d and 6h (ticket), below 6x and 14.4x
    slow = traffic(scrape, steps, 5000, 10)
    # 0.05 % errors: within the budget, nothing at all
    healthy = traffic(scrape, steps, 10000, 5)
    promtool_test(
        tmp_path,
        scrape,
        [
            case(
                "0.2% for three days",
                slow,
                "3d",
                {FAST: [], SLOW: [expected(scrape, SLOW, 10 / 5010)]},
                every="5m",
            ),
            case("0.05% for three days", healthy, "3d", {FAST: [], SLOW: []}, every="5m"),
        ],
        every="5m",
    )


@pytest.mark.parametrize("objective", [93.0, 100.0])
def test_objective_must_leave_a_budget_a_fast_burn_can_exceed(objective: float) -> None:
    assert "slo.availability" in load_error(base_raw("prod", slo={"availability": objective}))


def test_slo_off_renders_no_slo_group(render: Render) -> None:
    result = render({**base_raw("prod", slo={"enabled": False}), "monitoring": {"enabled": True}})
    groups = one(result.objects, "PrometheusRule", "web")["spec"]["groups"]
    assert not [g for g in groups if g["name"].endswith(".slo")]


# A test stack's shortened windows (`appstack:monitoring.alerts.sloWindows`): the e2e tier's.
SHORT_WINDOWS = {
    "5m": "1m",
    "30m": "2m",
    "1h": "3m",
    "2h": "2m",
    "6h": "3m",
    "1d": "4m",
    "3d": "5m",
}


def short_raw() -> dict[str, Any]:
    return {
        **base_raw("prod"),
        "monitoring": {"enabled": True, "alerts": {"sloWindows": SHORT_WINDOWS}},
    }


def test_short_windows_change_only_the_ranges_the_records_read(render: Render) -> None:
    def slo_rules(raw: dict[str, Any]) -> list[dict[str, Any]]:
        rule = one(render(raw).objects, "PrometheusRule", "web")
        (group,) = [g for g in rule["spec"]["groups"] if g["name"].endswith(".slo")]
        return list(group["rules"])

    standard, short = slo_rules(RAW), slo_rules(short_raw())
    assert [r.get("record") for r in short] == [r.get("record") for r in standard]
    for before, after in zip(standard, short, strict=True):
        if "record" not in before:
            assert before["expr"] == after["expr"]  # the alerts read the same records
            continue
        window = before["record"].removeprefix("job:slo_errors_per_request:ratio_rate")
        assert f"[{window}]" in before["expr"]
        assert after["expr"] == before["expr"].replace(f"[{window}]", f"[{SHORT_WINDOWS[window]}]")


def test_short_windows_fire_and_resolve_within_minutes(tmp_path: Path, render: Render) -> None:
    from components import config as config_model
    from stackctl.render.stack import render_config

    scrape = Scrape(lambda _raw: render_config(config_model.load(short_raw()), "prod"))
    # every 15 s: 100 good and 20 failed user requests (1/6 fail: 167x the 0.1 % budget)
    every = "15s"
    failing = traffic(scrape, 40, 100, 20)
    stopped = traffic(scrape, 40, 100, 20)
    stopped[1]["values"] = "0+20x20 400+0x20"  # the errors stop after 5 minutes
    promtool_test(
        tmp_path,
        scrape,
        [
            case(
                "1/6 of the requests fail for four minutes",
                failing,
                "4m",
                {FAST: [expected(scrape, FAST, 1 / 6)], SLOW: [expected(scrape, SLOW, 1 / 6)]},
                every=every,
            ),
            # 4 minutes after the errors stopped, every short window (at most 3m) is clean,
            # though the long ones (4m, 5m) still hold errors: both alerts resolve
            case("errors stopped 4 minutes ago", stopped, "9m", {FAST: [], SLOW: []}, every=every),
        ],
        every=every,
    )


def test_the_windows_config_names_are_the_workbook_windows() -> None:
    from typing import get_args

    from components.config.settings import SLO_WINDOW_PAIRS, SloWindow
    from components.monitoring.slo_rules import BURN_RATES, WINDOWS

    assert tuple((r.long, r.short) for r in BURN_RATES) == SLO_WINDOW_PAIRS
    assert set(get_args(SloWindow)) == set(WINDOWS)


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ({"7m": "1m"}, "input should be '5m', '30m', '1h', '2h', '6h', '1d' or '3d'"),
        ({"5m": "soon"}, "is not a Prometheus duration"),
        (
            {"5m": "2h"},
            "short window 5m (2h) of a burn rate must stay shorter than its long window 1h",
        ),
        (
            {"3d": "1h"},
            "short window 6h (6h) of a burn rate must stay shorter than its long window 3d",
        ),
    ],
)
def test_bad_windows_are_refused_naming_the_key(windows: dict[str, str], message: str) -> None:
    raw = {**base_raw("prod"), "monitoring": {"enabled": True, "alerts": {"sloWindows": windows}}}
    error = load_error(raw)
    assert "appstack:monitoring.alerts" in error and "sloWindows" in error
    assert message in error


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ({"7m": "1m"}, "allowed: 5m, 30m, 1h, 2h, 6h, 1d, 3d"),
        ({"5m": "1m1h"}, "must be a Prometheus duration longer than 0"),
        ({"5m": "0s"}, "must be a Prometheus duration longer than 0"),
        ({"30m": "6h"}, "short window 30m (6h) must be shorter than its long window 6h (6h)"),
    ],
)
def test_the_rules_refuse_windows_the_config_would(windows: dict[str, str], message: str) -> None:
    from components.monitoring.slo_rules import window_ranges

    with pytest.raises(ValueError, match="sloWindows") as info:
        window_ranges(windows)
    assert message in str(info.value)

"""`out/e2e-figures.json` is merged by every tier: a later tier never drops an earlier figure."""

from __future__ import annotations

import json
from pathlib import Path

from e2e import figures


def test_a_later_tier_keeps_earlier_figures_and_replaces_its_own(tmp_path: Path) -> None:
    path = tmp_path / "out" / "e2e-figures.json"
    figures.merge({"e2e.up": 40.0, "node.ready": 25.1234}, path)
    figures.merge({"node.ready": 20.0, "supply.push": 3.5}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "e2e.up": 40.0,
        "node.ready": 20.0,
        "supply.push": 3.5,
    }


def test_figures_are_rounded_to_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    figures.merge({"x": 1.23456}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 1.235}


def test_an_unreadable_figures_file_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text("{not json", encoding="utf-8")
    figures.merge({"x": 2}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 2.0}


def test_the_printout_gives_each_figure_the_unit_its_name_states() -> None:
    assert figures.unit("failure.s3.gateway_start_s") == " s"
    assert figures.unit("pulumi up prod (image bump)") == " s"
    assert figures.unit("rollback --steps 1") == " s"
    assert figures.unit("realnode.traffic.canary_25.p99_ms") == " ms"
    assert figures.unit("hpa.load_cpu_utilization_percent") == " %"
    # counts, load averages and shares carry no unit (they once printed as seconds)
    for name in (
        "failure.node.image_pull.requests",
        "realnode.traffic.canary_25.failed",
        "hpa.scaled_out_replicas.count",
        "hpa.loadavg_1m",
        "realnode.traffic.canary_10_split.canary_share",
    ):
        assert figures.unit(name) == "", name

"""e2e/traces.py: the summary of the OpenTelemetry JSON that `pulumi --otel-traces file://...`
writes (one OTLP `{"resourceSpans": [...]}` document per line)."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.traces import Span, peak_overlap, read_spans, summary


def otlp_line(service: str, name: str, start_s: float, end_s: float) -> str:
    span = {
        "name": name,
        "startTimeUnixNano": str(int(start_s * 1e9)),
        "endTimeUnixNano": str(int(end_s * 1e9)),
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    )


def test_spans_are_read_with_their_service_and_times(tmp_path: Path) -> None:
    path = tmp_path / "up.json"
    path.write_text(
        otlp_line("pulumi-cli", "pulumirpc.ResourceProvider/Create", 10.0, 12.5)
        + "\n\n"
        + otlp_line("pulumi-resource-provider", "/pulumirpc.ResourceProvider/Create", 10.1, 12.4)
        + "\n"
    )
    spans = list(read_spans(path))
    assert [(s.service, s.name) for s in spans] == [
        ("pulumi-cli", "pulumirpc.ResourceProvider/Create"),
        ("pulumi-resource-provider", "/pulumirpc.ResourceProvider/Create"),
    ]
    assert abs(spans[0].seconds - 2.5) < 1e-6


def test_peak_overlap_counts_the_spans_running_at_one_moment() -> None:
    spans = [Span("cli", "Create", a, b) for a, b in ((0, 10), (1, 2), (1.5, 3), (5, 6), (9, 11))]
    assert peak_overlap(spans) == 3  # at 1.5-2: the first three


def test_back_to_back_spans_do_not_overlap() -> None:
    assert peak_overlap([Span("cli", "Create", 0, 1), Span("cli", "Create", 1, 2)]) == 1


def test_the_summary_names_the_start_of_registration() -> None:
    spans = [
        Span("pulumi-cli", "pulumi", 0, 10),
        Span("pulumi-cli", "pulumirpc.ResourceMonitor/RegisterResource", 4, 5),
        Span("pulumi-cli", "pulumirpc.ResourceMonitor/RegisterResource", 6, 9),
    ]
    lines = summary(spans)
    assert lines[0] == "spans cover 10.0 s"
    assert lines[1] == "first RegisterResource at +4.0 s, last at +6.0 s"

"""Where a `pulumi up` spends its time, from the OpenTelemetry traces `make bench-e2e` writes.

`python -m e2e.bench --trace-dir DIR` passes `--otel-traces=file://DIR/<label>-<case>.json` to
every `pulumi up`/`preview` (pulumi pkg/v3 v3.274.0 cmd/pulumi/pulumi.go: "Use file:// for local
JSON files"): one OTLP JSON document per line, spans of the CLI, the language host and the
plugins. `python -m e2e.traces FILE...` prints, per file, the wall time the spans cover and, per
span name, count, summed and longest duration and the peak number running at once: enough to
read the engine's parallelism (how many provider `Create`/`Update` calls overlap), the await
time inside them, and the program's start-up (the time before the first `RegisterResource`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    start: float  # seconds since the epoch
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def read_spans(path: Path) -> Iterator[Span]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        for resource_spans in doc.get("resourceSpans") or []:
            attributes = (resource_spans.get("resource") or {}).get("attributes") or []
            service = next(
                (
                    a["value"].get("stringValue", "")
                    for a in attributes
                    if a.get("key") == "service.name"
                ),
                "",
            )
            for scope in resource_spans.get("scopeSpans") or []:
                for span in scope.get("spans") or []:
                    yield Span(
                        service,
                        str(span.get("name", "")),
                        int(span["startTimeUnixNano"]) / 1e9,
                        int(span["endTimeUnixNano"]) / 1e9,
                    )


def peak_overlap(spans: Sequence[Span]) -> int:
    """The largest number of the spans running at one moment."""
    edges = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def summary(spans: Sequence[Span], top: int = 25) -> list[str]:
    if not spans:
        return ["(no spans)"]
    first, last = min(s.start for s in spans), max(s.end for s in spans)
    lines = [f"spans cover {last - first:.1f} s"]
    register = [s for s in spans if s.name.endswith("/RegisterResource")]
    if register:
        lines.append(
            f"first RegisterResource at +{min(s.start for s in register) - first:.1f} s, "
            f"last at +{max(s.start for s in register) - first:.1f} s"
        )
    by_name: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in spans:
        by_name[(span.service, span.name)].append(span)
    rows = sorted(by_name.items(), key=lambda item: -sum(s.seconds for s in item[1]))
    lines.append(f"{'service':<28} {'span':<52} {'count':>6} {'sum s':>8} {'max s':>7} {'peak':>5}")
    for (service, name), group in rows[:top]:
        lines.append(
            f"{service[:28]:<28} {name[-52:]:<52} {len(group):>6} "
            f"{sum(s.seconds for s in group):>8.1f} {max(s.seconds for s in group):>7.2f} "
            f"{peak_overlap(group):>5}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.traces", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25, help="span names shown (default 25)")
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"== {path}")
        print("\n".join(summary(list(read_spans(path)), args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

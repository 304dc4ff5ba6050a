"""`make bench`: wall time of rendering the shipped stacks and synthetic prod stacks of 1, 10 and
50 services, each beside its **floor**. A benchmark, not a test: it asserts nothing and is never
run by `make test`.

- render: load and validate the config, run the program under the mock runtime, write the YAML
  files (what `stackctl render` does after its imports).
- floor: the Kubernetes objects of that same render registered as bare resources
  (`pulumi.CustomResource` with the same type, name and inputs; no components, no config model,
  no typed SDK classes) under the same mock runtime (`stackctl.engine.capture`), turned into
  manifests and written by the same writer. What is left between the two is the project's own
  overhead; `ratio` is render / floor.
- marginal: the cost of one more object between the 10- and 50-service stacks,
  (t50 - t10) / (objects50 - objects10).
- peak memory: the Python heap's high-water mark of one render (tracemalloc, measured in a
  separate pass so that it does not slow the timed runs), and the process's maximum RSS.

Each case runs once untimed (imports, warm-up; reported as `first`), then REPEAT times with the
render and its floor alternating so that load on the machine hits both alike; the medians are
compared.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components import config as config_model
from stackctl import engine
from stackctl.render import RenderResult, manifests, render_config, render_stack, write

SYNTHETIC_SIZES = (1, 10, 50)
#: Targets of issue 12, printed beside the measured values.
RATIO_TARGET = 1.2
MARGINAL_TARGET_MS = 3.0


def synthetic(services: int) -> dict[str, Any]:
    """A prod stack of `services` apps, each autoscaled with a PDB, ingress and egress."""
    apps: dict[str, Any] = {}
    for i in range(services):
        apps[f"svc{i:03d}"] = {
            "image": f"registry.example.com/bench/svc{i:03d}:1.0.{i}",
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": True, "host": f"svc{i:03d}.example.com"},
            "egress": [{"app": f"svc{(i + 1) % services:03d}", "ports": [{"port": 8080}]}]
            if services > 1
            else [],
        }
    return {
        "environment": "prod",
        "namespace": "bench",
        "apps": apps,
        "monitoring": {"enabled": True},
    }


Render = Callable[[], RenderResult]


def synthetic_case(services: int) -> Render:
    raw = synthetic(services)
    return lambda: render_config(config_model.load(raw), "bench")


# ---------------------------------------------------------------------------------------------
# The floor: the same objects as bare resources
# ---------------------------------------------------------------------------------------------


def _as_input(value: Any) -> Any:
    """A captured input value as a program would pass it (captured secrets become secrets)."""
    if rpc.is_rpc_secret(value):
        return pulumi.Output.secret(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: _as_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_input(v) for v in value]
    return value


def floor_case(result: RenderResult) -> Render:
    """Register the Kubernetes objects of `result` as bare resources; manifests as render does."""
    bare = [
        (r.type, r.name, _as_input(r.inputs))
        for r in result.resources
        if r.type.startswith("kubernetes:") and r.custom
    ]

    def program() -> None:
        for type_token, name, inputs in bare:
            pulumi.CustomResource(type_token, name, inputs)

    def run() -> RenderResult:
        cap = engine.capture(program, project=config_model.PROJECT, stack=result.stack)
        objects, options = manifests(cap)
        return RenderResult(result.stack, result.environment, objects, options)

    return run


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def render_and_write(render: Render, out: Path) -> RenderResult:
    result = render()
    write(result, out)
    return result


@dataclass
class Measured:
    name: str
    objects: int
    first: float
    render: list[float]
    floor: list[float]
    peak_bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.render)

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)

    @property
    def ratio(self) -> float:
        return self.median / self.floor_median


def measure(name: str, render: Render, repeat: int, out: Path) -> Measured:
    start = time.perf_counter()
    result = render_and_write(render, out / name)
    first = time.perf_counter() - start
    floor = floor_case(result)
    floor_objects = render_and_write(floor, out / f"{name}-floor").objects
    if floor_objects != result.objects:  # the floor must write exactly what the render wrote
        raise SystemExit(f"{name}: the floor's objects differ from the render's")
    measured = Measured(name, len(result.objects), first, [], [])
    for _ in range(repeat):
        for runs, case, target in ((measured.render, render, name), (measured.floor, floor, "f")):
            start = time.perf_counter()
            render_and_write(case, out / target)
            runs.append(time.perf_counter() - start)
    return measured


def peak_memory(render: Render, out: Path) -> int:
    """The Python heap's high-water mark while rendering and writing once."""
    tracemalloc.start()
    try:
        render_and_write(render, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def report(results: list[Measured]) -> list[str]:
    header = ("case", "objects", "first s", "render s", "floor s", "ratio", "ms/object", "peak MiB")
    lines = ["{:<14} {:>7} {:>8} {:>9} {:>8} {:>6} {:>10} {:>9}".format(*header)]
    for m in results:
        lines.append(
            f"{m.name:<14} {m.objects:>7d} {m.first:>8.3f} {m.median:>9.3f} "
            f"{m.floor_median:>8.3f} {m.ratio:>6.2f} {1000 * m.median / m.objects:>10.2f} "
            f"{m.peak_bytes / 2**20:>9.1f}"
        )
    by_name = {m.name: m for m in results}
    small, large = by_name.get("synthetic-10"), by_name.get("synthetic-50")
    if small and large:
        extra = large.objects - small.objects
        marginal = 1000 * (large.median - small.median) / extra
        floor_marginal = 1000 * (large.floor_median - small.floor_median) / extra
        lines.append(
            f"marginal cost 10 -> 50 services: {marginal:.2f} ms/object "
            f"(floor {floor_marginal:.2f}; target <= {MARGINAL_TARGET_MS:.1f})"
        )
        lines.append(
            f"synthetic-50: render / floor = {large.ratio:.2f} (target <= {RATIO_TARGET:.1f})"
        )
    lines.append(f"max RSS of this process: {max_rss_mib():.0f} MiB")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackctl.bench", description=__doc__)
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per case and floor (default 5)"
    )
    parser.add_argument("cases", nargs="*", help="cases to run (default: all)")
    args = parser.parse_args(argv)
    cases: dict[str, Render] = {
        "dev": lambda: render_stack("dev"),
        "prod": lambda: render_stack("prod"),
    }
    for size in SYNTHETIC_SIZES:
        cases[f"synthetic-{size}"] = synthetic_case(size)
    unknown = sorted(set(args.cases) - set(cases))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; available: {', '.join(cases)}")
    selected = {n: c for n, c in cases.items() if not args.cases or n in args.cases}
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="appstack-bench-") as tmp:
        out = Path(tmp)
        for name, render in selected.items():
            results.append(measure(name, render, args.repeat, out))
        for measured in results:
            measured.peak_bytes = peak_memory(selected[measured.name], out / "memory")
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench`: wall time of rendering the shipped stacks and synthetic stacks of 1, 10 and 50
services, in seconds and milliseconds per rendered object. A benchmark, not a test: it asserts
nothing and is never run by `make test`.

Each case is rendered REPEAT times in this process (the first run includes imports and warm-up
and is reported separately); the best and median of the rest are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from components import config as config_model
from stackctl import diff_cmd
from stackctl.render import RenderResult, render_config, render_stack

SYNTHETIC_SIZES = (1, 10, 50)


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


def synthetic_case(services: int) -> Callable[[], RenderResult]:
    cfg = config_model.load(synthetic(services))
    return lambda: render_config(cfg, "bench")


def timed(run: Callable[[], RenderResult], repeat: int) -> tuple[float, list[float], int]:
    start = time.perf_counter()
    result = run()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return first, times, len(result.objects)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackctl.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (default 3)")
    args = parser.parse_args(argv)
    cases: list[tuple[str, Callable[[], RenderResult]]] = [
        ("dev", lambda: render_stack("dev")),
        ("prod", lambda: render_stack("prod")),
    ]
    for size in SYNTHETIC_SIZES:
        cases.append((f"synthetic-{size}", synthetic_case(size)))
    cases.append(("diff-prod-HEAD", diff_cmd.bench_case))  # two renders (git HEAD, tree) + compare
    header = ("case", "objects", "first s", "best s", "median s", "ms/object")
    print("{:<14} {:>7} {:>8} {:>8} {:>9} {:>10}".format(*header))
    for name, run in cases:
        first, times, objects = timed(run, args.repeat)
        best, median = min(times), statistics.median(times)
        print(
            f"{name:<14} {objects:>7d} {first:>8.3f} {best:>8.3f} {median:>9.3f} "
            f"{1000 * median / objects:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench`: wall time of rendering the shipped stacks and synthetic prod stacks of 1, 10 and
50 services, each beside its **floor**. A benchmark, not a test: it asserts nothing and is never
run by `make test`.

- render: load and validate the config, run the program under the mock runtime, write the YAML
  files (what `stackctl render` does after its imports).
- floor: the Kubernetes objects of that same render registered one by one with the Kubernetes
  SDK's own class for each kind (the same type, name and inputs; no components, no config model)
  under the same mock runtime (`stackctl.mockruntime.capture`), turned into manifests and written by
  the same writer. What is left between the two is the project's own overhead; `ratio` is
  render / floor.
- bare: the same, registered as `pulumi.CustomResource` (no typed SDK classes, no aliases, no
  input types): the Pulumi SDK's core alone, printed beside the floor.
- marginal: the cost of one more object between the 10- and 50-service stacks,
  (t50 - t10) / (objects50 - objects10).
- peak memory: the Python heap's high-water mark of one render (tracemalloc, measured in a
  separate pass so that it does not slow the timed runs), and the process's maximum RSS.

Each case runs once untimed (imports, warm-up; reported as `first`), then `--repeat` times
(default 11) with the render and its floors alternating so that load on the machine hits all
alike; the medians are compared. On a shared 2-core VM one run of the same code can take a third
longer than the next: five rounds printed 50-service ratios of 1.13-1.21 for one version of the
code, eleven narrowed that to mostly 1.11-1.15, but one invocation still printed 1.22.

Each timed run starts from a collected heap (`gc.collect()`, untimed), as a `stackctl render`
process starts from a fresh one. Without it a run pays for the full collections that the
objects left by the runs before it trigger, whichever variant those were: alternating render
and floor alone, the 50-service ratio read 1.19 without the collection and 1.12-1.14 with it
for the same code. Each run still pays every collection its own allocations trigger.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import re
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import config as config_model
from stackctl import mockruntime
from stackctl.diff import cmd as diff_cmd
from stackctl.render.stack import RenderResult, manifests, render_config, render_stack, write

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
# The floors: the same objects as bare resources
# ---------------------------------------------------------------------------------------------


def _as_input(value: Any) -> Any:
    """A captured input value as a program would pass it (captured secrets become secrets)."""
    if mockruntime.is_secret(value):
        return pulumi.Output.secret(mockruntime.unwrap_secret(value))
    if isinstance(value, Mapping):
        return {k: _as_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_input(v) for v in value]
    return value


def _holds_secret(value: Any) -> bool:
    if mockruntime.is_secret(value):
        return True
    if isinstance(value, Mapping):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def sdk_class(type_token: str) -> type[pulumi.CustomResource] | None:
    """The Kubernetes SDK's class for `kubernetes:<group>/<version>:<Kind>`; None for a kind it
    has no class for (a custom resource: `apiextensions.CustomResource`)."""
    group_version, kind = type_token.split(":")[1:]
    group, version = group_version.split("/")
    if group.endswith(".k8s.io"):
        package = group.split(".")[0]  # networking.k8s.io -> pulumi_kubernetes.networking
    elif "." in group:
        return None  # a custom resource's group (monitoring.coreos.com, argoproj.io)
    else:
        package = group  # core, apps, policy, autoscaling
    try:
        module = importlib.import_module(f"pulumi_kubernetes.{package}.{version}")
    except ImportError:
        return None
    found = getattr(module, kind, None)
    return found if isinstance(found, type) and issubclass(found, pulumi.CustomResource) else None


def _register_typed(type_token: str, name: str, inputs: dict[str, Any]) -> None:
    fields = {k: v for k, v in inputs.items() if k not in ("apiVersion", "kind")}
    cls = sdk_class(type_token)
    if cls is None:
        k8s.apiextensions.CustomResource(
            name, api_version=inputs["apiVersion"], kind=inputs["kind"], **fields
        )
    else:
        cls(name, **{_snake(k): v for k, v in fields.items()})


def _register_bare(type_token: str, name: str, inputs: dict[str, Any]) -> None:
    pulumi.CustomResource(type_token, name, inputs)


FLOORS: dict[str, Callable[[str, str, dict[str, Any]], None]] = {
    # the Kubernetes SDK's own class for each kind (the typed classes a program must use)
    "sdk": _register_typed,
    # the Pulumi SDK's core alone: no typed class, no aliases, no input types
    "bare": _register_bare,
}


def floor_case(result: RenderResult, register: str = "sdk") -> Render:
    """Register the Kubernetes objects of `result` one by one, without components, parents or
    config model, under the same mock runtime; manifests as render does."""
    objects = [
        (r.type, r.name, r.inputs, _holds_secret(r.inputs))
        for r in result.resources
        if r.type.startswith("kubernetes:") and r.custom
    ]
    register_one = FLOORS[register]

    def program() -> None:
        # a secret becomes an Output inside the run: an Output belongs to the run's event loop
        for type_token, name, inputs, secret in objects:
            register_one(type_token, name, _as_input(inputs) if secret else inputs)

    def run() -> RenderResult:
        cap = mockruntime.capture(program, project=config_model.PROJECT, stack=result.stack)
        found, options = manifests(cap)
        return RenderResult(result.stack, result.environment, found, options)

    return run


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def render_and_write(render: Render, out: Path) -> RenderResult:
    result = render()
    write(result, out)
    return result


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def time(self, render: Render, out: Path) -> None:
        gc.collect()  # untimed: each run starts from a collected heap (see the module docstring)
        wall, cpu = time.perf_counter(), time.process_time()
        render_and_write(render, out)
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


VARIANTS = ("render", *FLOORS)


@dataclass
class Measured:
    name: str
    objects: int
    first: float
    runs: dict[str, Runs]
    peak_bytes: int = 0

    def ratio(self, floor: str, cpu: bool = False) -> float:
        if cpu:
            return self.runs["render"].cpu_median / self.runs[floor].cpu_median
        return self.runs["render"].median / self.runs[floor].median


def measure(name: str, render: Render, repeat: int, out: Path) -> Measured:
    start = time.perf_counter()
    result = render_and_write(render, out / name)
    first = time.perf_counter() - start
    cases = {"render": render}
    for floor in FLOORS:
        cases[floor] = floor_case(result, floor)
        # the floor must write exactly what the render wrote
        if render_and_write(cases[floor], out / f"{name}-{floor}").objects != result.objects:
            raise SystemExit(f"{name}: the {floor} floor's objects differ from the render's")
    measured = Measured(name, len(result.objects), first, {v: Runs() for v in VARIANTS})
    for _ in range(repeat):  # alternating, so that load on the machine hits every variant alike
        for variant, case in cases.items():
            measured.runs[variant].time(case, out / variant)
    return measured


def timed_extra(name: str, run: Render, repeat: int) -> str:
    objects = len(run().objects)
    runs = Runs()
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        runs.wall.append(time.perf_counter() - wall)
        runs.cpu.append(time.process_time() - cpu)
    return (
        f"{name}: {objects} objects, median {runs.median:.3f} s wall, {runs.cpu_median:.3f} s cpu"
    )


def peak_memory(render: Render, out: Path) -> int:
    """The Python heap's high-water mark while rendering and writing once."""
    gc.collect()
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
    header = [
        "case",
        "objects",
        "first",
        "render",
        "cpu",
        "floor",
        "ratio",
        "bare",
        "ratio",
        "ms/obj",
        "peak-MiB",
    ]
    row = "{:<13} {:>7} {:>6} {:>7} {:>6} {:>6} {:>5} {:>6} {:>5} {:>6} {:>8}"
    lines = [row.format(*header)]
    for m in results:
        render, sdk, bare = m.runs["render"], m.runs["sdk"], m.runs["bare"]
        lines.append(
            row.format(
                m.name,
                m.objects,
                f"{m.first:.3f}",
                f"{render.median:.3f}",
                f"{render.cpu_median:.3f}",
                f"{sdk.median:.3f}",
                f"{m.ratio('sdk'):.2f}",
                f"{bare.median:.3f}",
                f"{m.ratio('bare'):.2f}",
                f"{1000 * render.median / m.objects:.2f}",
                f"{m.peak_bytes / 2**20:.1f}",
            )
        )
    by_name = {m.name: m for m in results}
    small, large = by_name.get("synthetic-10"), by_name.get("synthetic-50")
    if small and large:
        extra = large.objects - small.objects

        def marginal(variant: str, cpu: bool = False) -> float:
            a, b = small.runs[variant], large.runs[variant]
            if cpu:
                return 1000 * (b.cpu_median - a.cpu_median) / extra
            return 1000 * (b.median - a.median) / extra

        lines += [
            "",
            f"synthetic-50 render / floor: {large.ratio('sdk'):.2f} wall, "
            f"{large.ratio('sdk', cpu=True):.2f} cpu (target <= {RATIO_TARGET:.1f}); "
            f"render / bare: {large.ratio('bare'):.2f} wall, "
            f"{large.ratio('bare', cpu=True):.2f} cpu",
            f"marginal cost 10 -> 50 services: {marginal('render'):.2f} ms/object wall, "
            f"{marginal('render', cpu=True):.2f} cpu (target <= {MARGINAL_TARGET_MS:.1f}); "
            f"floor {marginal('sdk'):.2f}, bare {marginal('bare'):.2f} ms/object wall",
        ]
    lines.append(f"max RSS of this process: {max_rss_mib():.0f} MiB")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackctl.bench", description=__doc__)
    parser.add_argument(
        "--repeat", type=int, default=11, help="timed runs per case and floor (default 11)"
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
        # commands built on render, timed alone (they have no floor of their own)
        extras = {"diff-prod-HEAD": diff_cmd.bench_case}  # two renders (git HEAD, tree) + compare
        extra_lines = [
            timed_extra(name, run, args.repeat) for name, run in extras.items() if not args.cases
        ]
    print("\n".join([*report(results), "", *extra_lines]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench-e2e`: the real engine at scale, each figure beside its floor (issue 31).

A benchmark tier, not a test: it asserts only that what it timed did what it names (every
Deployment rolled out, a no-op changed nothing), and it is part of neither `.ci/run` nor
`make e2e`. On the e2e control plane (e2e/cluster.py: kwok nodes, Jenkins off), for synthetic prod
stacks of 1, 10 and 50 services (`stackctl.bench.synthetic`), each run times:

- `up-empty`: `pulumi up` from an empty stack; floor: `kubectl apply --server-side` of the
  rendered manifests + every Deployment rolled out;
- `up-noop`: `pulumi up --expect-no-changes`; floor: the same apply again + the same wait;
- `preview`: `pulumi preview --expect-no-changes`; floor: `kubectl diff --server-side`;
- `bump`: `pulumi up` after an image bump of every service; floor: apply of the bumped
  manifests + rollout;
- `rollback`: `stackctl rollback --steps 1` (back to the unbumped images); floor: apply of the
  unbumped manifests + rollout.

The floor's `kubectl` is built from the k8s tools module (e2e/tools/k8s). "Rolled out" is what
the Kubernetes provider awaits for a Deployment (pulumi-kubernetes v4.25.0
provider/pkg/await/deployment.go): the controller has observed the generation, the condition
`Progressing` is True with reason `NewReplicaSetAvailable` and `Available` is True; here also
every replica updated and available (`kubectl rollout status`'s rule). The floor polls the API
server for it every 0.2 s.

The floor of a run goes first, then the engine, then the next run: load from other work on the
machine (2 cores, shared) hits both alike. Between them everything is deleted (the namespace and
the stack's state), untimed. Medians over `--runs`; beside each figure the 1-minute load average
read when that step ended (its median over the runs). Figures go to out/e2e-figures.json under
`bench-e2e.<n>svc.<case>.<engine|floor|ratio|load>` (seconds, ratio engine/floor, load average).

`pulumi up`/`preview` run with `ENGINE_ENV` (`--cli-defaults`: the CLI's own settings); stackctl
with its own. Right after each engine `up`, bump and rollback the API server is read once
(`unfinished_rollouts`), and beside the runs `failed_rollout` checks that an update whose rollout
cannot finish fails (docs/performance.md, "The guarantees").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import config as config_model
from e2e import figures as figures_file
from e2e.cluster import Cluster, install_signal_handlers
from e2e.engine import Engine, Result
from e2e.kube import Kube
from stackctl.bench import SYNTHETIC_SIZES, synthetic
from stackctl.render.stack import render_config

STACK = "prod-bench"  # stackctl reads the environment from the name (prod, -suffixed)
CASES = ("up-empty", "up-noop", "preview", "bump", "rollback")
FLOOR_MANAGER = "bench-floor"
ROLLOUT_TIMEOUT = 900.0
FIGURES_FILE = figures_file.FIGURES_FILE
#: The engine settings this benchmark recommends for `pulumi up` (docs/performance.md): 256
#: resource operations at once instead of the CLI's 4 x GOMAXPROCS (8 on 2 cores; pkg/v3
#: v3.274.0 cmd/pulumi/operations/up.go `defaultParallel`, which reads PULUMI_PARALLEL when no
#: flag is given), enough for every await of a 50-service stack; and the diffs in parallel
#: (PULUMI_PARALLEL_DIFF, resource/deploy/step_generator.go). The order the program declares is
#: kept whatever the number.
ENGINE_ENV = {"PULUMI_PARALLEL": "256", "PULUMI_PARALLEL_DIFF": "true"}
#: what the CLI does unless told (pkg/v3 v3.274.0 cmd/pulumi/operations/up.go: 4 x GOMAXPROCS;
#: PULUMI_PARALLEL_DIFF unset), stated for stackctl too, which otherwise sets ENGINE_ENV
CLI_DEFAULTS = {"PULUMI_PARALLEL": str(4 * (os.cpu_count() or 1)), "PULUMI_PARALLEL_DIFF": "false"}
#: the image tag of every synthetic service before (`1.0.<i>`) and after the bump
BUMPED_MINOR = "1.1"


def bumped(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The synthetic config with every app's image tag moved from 1.0.<i> to 1.1.<i>."""
    apps = {}
    for name, app in raw["apps"].items():
        repo, tag = app["image"].rsplit(":", 1)
        apps[name] = {**app, "image": f"{repo}:{BUMPED_MINOR}.{tag.rsplit('.', 1)[1]}"}
    return {**raw, "apps": apps}


def manifest_stream(raw: Mapping[str, Any]) -> tuple[str, int, str]:
    """The render of `raw` as one YAML stream, Namespaces first (kubectl applies in stream
    order); with the object count and the namespace."""
    objects = render_config(config_model.load(dict(raw)), STACK).objects
    objects.sort(key=lambda o: o["kind"] != "Namespace")
    return yaml.safe_dump_all(objects, sort_keys=False), len(objects), str(raw["namespace"])


def load1() -> float:
    return os.getloadavg()[0]


@dataclass
class Samples:
    """Per case: engine and floor seconds and the load average at the end of each."""

    engine: dict[str, list[float]] = field(default_factory=dict)
    floor: dict[str, list[float]] = field(default_factory=dict)
    load: dict[str, list[float]] = field(default_factory=dict)

    def add(self, side: str, case: str, seconds: float) -> None:
        getattr(self, side).setdefault(case, []).append(seconds)
        self.load.setdefault(case, []).append(load1())
        # each figure as it is taken: a run cut short still shows what it measured
        print(f"  {side:<6} {case:<9} {seconds:7.1f} s  load {load1():.1f}", flush=True)


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    """The provider's success rule for a Deployment (see the module docstring)."""
    meta, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    progressing, available = conditions.get("Progressing"), conditions.get("Available")
    replicas = spec.get("replicas", 1)
    return (
        progressing is not None
        and progressing["status"] == "True"
        and progressing.get("reason") == "NewReplicaSetAvailable"
        and available is not None
        and available["status"] == "True"
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) >= replicas
        and status.get("replicas", 0) == replicas
    )


def unfinished_rollouts(kube: Kube, namespace: str, want: set[str]) -> list[str]:
    """Deployments whose rollout to an image in `want` has not finished, read once, right after
    the engine returned: a ReplicaSet of another template still has pods, or the one of the
    wanted image has none available. (An HPA may be scaling the new ReplicaSet up meanwhile:
    that is not a rollout.) The guarantee kept with every lever: `pulumi up` returns only after
    each Deployment's rollout finished (pulumi-kubernetes provider/pkg/await/deployment.go)."""
    sets: dict[str, list[dict[str, Any]]] = {}
    for rs in kube.list("ReplicaSet", namespace):
        for owner in rs["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Deployment":
                sets.setdefault(owner["name"], []).append(rs)
    problems = []
    for deployment in kube.list("Deployment", namespace):
        name = deployment["metadata"]["name"]
        current = [r for r in sets.get(name, []) if _images_of(r) <= want]
        stale = [r for r in sets.get(name, []) if not _images_of(r) <= want]
        if not any((r.get("status") or {}).get("availableReplicas", 0) > 0 for r in current):
            problems.append(f"{name}: no available pod of {sorted(want & _images_of(deployment))}")
        for rs in stale:
            if (rs.get("status") or {}).get("replicas", 0) > 0:
                problems.append(f"{name}: ReplicaSet {rs['metadata']['name']} still has pods")
    return problems


def _images_of(obj: Mapping[str, Any]) -> set[str]:
    return {c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}


class Floor:
    """kubectl against the bench cluster, and the waits of a plain CI step."""

    def __init__(self, kubectl: Path, kubeconfig: Path, kube: Kube) -> None:
        self.kubectl, self.kubeconfig, self.kube = kubectl, kubeconfig, kube

    def run(self, *args: str, stdin: str | None = None, ok: Sequence[int] = (0,)) -> None:
        proc = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=ROLLOUT_TIMEOUT,
        )
        if proc.returncode not in ok:
            raise RuntimeError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")

    def apply(self, stream: str) -> None:
        self.run(
            "apply", "--server-side", f"--field-manager={FLOOR_MANAGER}", "-f", "-", stdin=stream
        )

    def diff(self, stream: str) -> None:
        # exit 1: differences found; >1: kubectl or the server failed
        self.run(
            "diff",
            "--server-side",
            f"--field-manager={FLOOR_MANAGER}",
            "-f",
            "-",
            stdin=stream,
            ok=(0, 1),
        )

    def wait_rolled_out(self, namespace: str, expected: int, what: str) -> None:
        def done() -> bool:
            found = self.kube.list("Deployment", namespace)
            return len(found) == expected and all(rolled_out(d) for d in found)

        self.kube.wait_for(what, done, timeout=ROLLOUT_TIMEOUT, interval=0.2)

    def delete_namespace(self, namespace: str) -> None:
        self.run(
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--wait=true",
            f"--timeout={int(ROLLOUT_TIMEOUT)}s",
        )


def timed(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


class EngineSide:
    """The same stack through the real engine (e2e/engine.py's world)."""

    def __init__(
        self,
        engine: Engine,
        env: Mapping[str, str],
        trace_dir: Path | None = None,
        stack: str = STACK,
    ) -> None:
        self.engine, self.stack = engine, stack
        # For `pulumi up`/`preview` (the CLI reads PULUMI_PARALLEL when no --parallel is given,
        # pkg/v3 cmd/pulumi/operations/up.go `defaultParallel`); not for stackctl (rollback).
        # The program's own modules compiled once, as in a user's checkout (`__pycache__/`),
        # even where this machine's environment sets PYTHONDONTWRITEBYTECODE (empty = unset).
        self.env = {"PYTHONDONTWRITEBYTECODE": "", **env}
        self.trace_dir = trace_dir
        self.label = ""

    def write_config(self, raw: Mapping[str, Any]) -> None:
        doc = self.engine.read_config(self.stack)
        doc["config"] = {f"appstack:{key}": value for key, value in raw.items()}
        self.engine.write_config(self.stack, doc)

    def init(self, raw: Mapping[str, Any], *, commit: bool = True) -> None:
        self.engine.init_stack(self.stack)
        self.write_config(raw)
        if commit:  # the commit a rollback checks (stackctl.ops.rollback check_same_commit)
            self.engine.commit(f"bench: {len(raw['apps'])} services")

    def trace(self, case: str) -> list[str]:
        """`--otel-traces file://...` (OpenTelemetry JSON, pkg/v3 cmd/pulumi/pulumi.go) when
        tracing: one file per command, `<label>-<case>.json`."""
        if self.trace_dir is None:
            return []
        return [f"--otel-traces=file://{self.trace_dir / f'{self.label}-{case}.json'}"]

    def up(self, case: str, *extra: str, check: bool = True) -> Result:
        args = ["up", "--yes", "--skip-preview", "--stack", self.stack, *extra]
        return self.engine.pulumi(*args, *self.trace(case), extra_env=self.env, check=check)

    def preview(self) -> None:
        args = ["preview", "--stack", self.stack, "--expect-no-changes"]
        self.engine.pulumi(*args, *self.trace("preview"), extra_env=self.env)

    def rollback(self) -> None:
        # stackctl as an operator runs it: with the CLI's own parallelism (docs/performance.md)
        env = {k: v for k, v in self.env.items() if k not in ENGINE_ENV}
        self.engine.stackctl(
            "rollback", self.stack, "--steps", "1", "--yes", policy_cli=True, extra_env=env
        )

    def remove(self) -> None:
        self.engine.pulumi("stack", "rm", self.stack, "--force", "--yes")


@dataclass
class Size:
    """One synthetic stack: its config before and after the bump, rendered."""

    services: int
    raw: dict[str, Any]
    raw_bumped: dict[str, Any]
    stream: str
    stream_bumped: str
    objects: int
    namespace: str
    deployments: int

    @classmethod
    def of(cls, services: int) -> Size:
        raw = synthetic(services)
        raw_bumped = bumped(raw)
        stream, objects, namespace = manifest_stream(raw)
        stream_bumped = manifest_stream(raw_bumped)[0]
        deployments = sum(1 for doc in yaml.safe_load_all(stream) if doc["kind"] == "Deployment")
        return cls(
            services, raw, raw_bumped, stream, stream_bumped, objects, namespace, deployments
        )


def images(kube: Kube, namespace: str) -> set[str]:
    return {
        c["image"]
        for d in kube.list("Deployment", namespace)
        for c in d["spec"]["template"]["spec"]["containers"]
    }


def expected_images(raw: Mapping[str, Any]) -> set[str]:
    return {str(app["image"]) for app in raw["apps"].values()}


def floor_run(floor: Floor, size: Size, samples: Samples) -> None:
    ns, n = size.namespace, size.deployments

    def apply_and_wait(stream: str, what: str) -> Callable[[], None]:
        def action() -> None:
            floor.apply(stream)
            floor.wait_rolled_out(ns, n, what)

        return action

    samples.add("floor", "up-empty", timed(apply_and_wait(size.stream, "floor: up")))
    samples.add("floor", "up-noop", timed(apply_and_wait(size.stream, "floor: no-op")))
    samples.add("floor", "preview", timed(lambda: floor.diff(size.stream)))
    samples.add("floor", "bump", timed(apply_and_wait(size.stream_bumped, "floor: bump")))
    if images(floor.kube, ns) != expected_images(size.raw_bumped):
        raise RuntimeError("floor: the bump did not reach every Deployment")
    samples.add("floor", "rollback", timed(apply_and_wait(size.stream, "floor: rollback")))
    floor.delete_namespace(ns)


def engine_run(side: EngineSide, floor: Floor, size: Size, samples: Samples) -> None:
    ns, kube = size.namespace, floor.kube
    before, after = expected_images(size.raw), expected_images(size.raw_bumped)

    def returned_rolled_out(what: str, want: set[str]) -> None:
        found = unfinished_rollouts(kube, ns, want)
        if found or images(kube, ns) != want:
            raise RuntimeError(f"engine: {what} returned before the rollouts finished: {found}")

    side.init(size.raw)
    samples.add("engine", "up-empty", timed(lambda: side.up("up-empty")))
    returned_rolled_out("up", before)
    samples.add("engine", "up-noop", timed(lambda: side.up("up-noop", "--expect-no-changes")))
    samples.add("engine", "preview", timed(side.preview))
    side.write_config(size.raw_bumped)  # a config-only release at the same commit
    samples.add("engine", "bump", timed(lambda: side.up("bump")))
    returned_rolled_out("the bump", after)
    samples.add("engine", "rollback", timed(side.rollback))
    returned_rolled_out("the rollback", before)
    floor.delete_namespace(ns)
    side.remove()


FAIL_STACK = "prod-bench-fail"
FAIL_NAMESPACE = "bench-fail"
#: more CPU than any kwok node has (e2e/cluster.py NODE_ALLOCATABLE: 16): never scheduled
UNSCHEDULABLE = {"requests": {"cpu": "64"}, "limits": {"cpu": "64"}}


def failed_rollout(engine: Engine, floor: Floor, env: Mapping[str, str]) -> float:
    """A failed rollout fails the update, with every lever in: a 1-service stack is deployed,
    then updated to pods no node can hold. The provider waits for the rollout until its
    timeout (10 minutes, pulumi-kubernetes provider/pkg/await/deployment.go) and fails the
    Deployment's step; `pulumi up` must exit non-zero, the stack's history must record the
    update as failed, and the new pods must indeed be unscheduled. Returns how long the failing
    `pulumi up` took. Runs beside the measured runs (it only waits)."""
    raw, kube = {**synthetic(1), "namespace": FAIL_NAMESPACE}, floor.kube
    side = EngineSide(engine, env, stack=FAIL_STACK)
    side.init(raw, commit=False)
    side.up("fail-ok")
    app = next(iter(raw["apps"]))
    side.write_config({**raw, "apps": {app: {**raw["apps"][app], "resources": UNSCHEDULABLE}}})
    res = side.up("fail", check=False)
    history = json.loads(engine.pulumi("stack", "history", "--json", "--stack", FAIL_STACK).stdout)
    pending = [
        p["metadata"]["name"]
        for p in kube.list("Pod", FAIL_NAMESPACE)
        if (p.get("status") or {}).get("phase") == "Pending"
    ]
    problems = []
    if res.returncode == 0:
        problems.append("`pulumi up` succeeded although the rollout could not finish")
    if f"{app}-deployment" not in res.stdout + res.stderr:
        problems.append("the failure does not name the Deployment")
    if not history or history[0].get("result") != "failed":
        problems.append(f"history records {history[:1]}")
    if not pending:
        problems.append("no unschedulable pod: the scenario did not fail the rollout")
    if problems:
        raise RuntimeError(f"failed rollout: {'; '.join(problems)}\n{res.tail()}")
    floor.delete_namespace(FAIL_NAMESPACE)
    side.remove()
    return res.seconds


class Beside(threading.Thread):
    """`failed_rollout` in a thread beside the measured runs; `result()` re-raises its error."""

    def __init__(self, engine: Engine, floor: Floor, env: Mapping[str, str]) -> None:
        super().__init__(name="failed-rollout", daemon=True)
        self.args = (engine, floor, env)
        self.seconds: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.seconds = failed_rollout(*self.args)
        except BaseException as exc:  # handed to the main thread by result()
            self.error = exc

    def result(self) -> float:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.seconds is not None
        return self.seconds


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def figures(size: Size, samples: Samples, prefix: str) -> dict[str, float]:
    found: dict[str, float] = {f"{prefix}.{size.services}svc.objects": size.objects}
    for case in CASES:
        engine, floor = median(samples.engine[case]), median(samples.floor[case])
        key = f"{prefix}.{size.services}svc.{case}"
        found[f"{key}.engine"] = engine
        found[f"{key}.floor"] = floor
        found[f"{key}.ratio"] = engine / floor if floor else float("nan")
        found[f"{key}.load"] = median(samples.load[case])
    return found


def table(results: Sequence[tuple[Size, Samples]], runs: int) -> list[str]:
    row = "{:>8} {:>7} {:<9} {:>8} {:>8} {:>6} {:>5}  {}"
    lines = [
        f"make bench-e2e: medians of {runs} run(s); seconds; load = 1-min load average at the "
        "end of each step (median)",
        row.format(
            "services", "objects", "case", "engine", "floor", "ratio", "load", "runs (engine)"
        ),
    ]
    for size, samples in results:
        for case in CASES:
            engine, floor = samples.engine[case], samples.floor[case]
            lines.append(
                row.format(
                    size.services,
                    size.objects,
                    case,
                    f"{median(engine):.1f}",
                    f"{median(floor):.1f}",
                    f"{median(engine) / median(floor):.1f}",
                    f"{median(samples.load[case]):.1f}",
                    " ".join(f"{v:.1f}" for v in engine),
                )
            )
    return lines


def write_figures(found: Mapping[str, float]) -> None:
    figures_file.merge(found)


def run(
    sizes: Sequence[int],
    runs: int,
    prefix: str,
    env: Mapping[str, str],
    trace_dir: Path | None = None,
    check_failed_rollout: bool = True,
    floor_only: bool = False,
) -> int:
    install_signal_handlers()
    results: list[tuple[Size, Samples]] = []
    with Cluster() as cluster:
        kubectl = cluster.binaries / "kubectl"
        if not os.access(kubectl, os.X_OK):
            raise SystemExit(f"missing {kubectl}: run `make e2e-tools`")
        engine = Engine(root=cluster.root / "engine", kubeconfig=cluster.kubeconfig)
        engine.root.mkdir()
        engine.setup()
        floor = Floor(kubectl, cluster.kubeconfig, cluster.kube)
        side = EngineSide(engine, env, trace_dir)
        beside = Beside(engine, floor, env) if check_failed_rollout else None
        if beside is not None:
            beside.start()
        try:
            for services in sizes:
                size, samples = Size.of(services), Samples()
                for attempt in range(runs):
                    print(f"bench-e2e: {services} services, run {attempt + 1}/{runs}", flush=True)
                    side.label = f"{services}svc-run{attempt + 1}"
                    floor_run(floor, size, samples)
                    cluster.assert_running()
                    if not floor_only:
                        engine_run(side, floor, size, samples)
                        cluster.assert_running()
                if floor_only:
                    continue
                results.append((size, samples))
                write_figures(figures(size, samples, prefix))
                print("\n".join(table(results[-1:], runs)), flush=True)
            if beside is not None:
                seconds = beside.result()
                write_figures({f"{prefix}.failed-rollout.engine": seconds})
                print(f"a failed rollout failed its update after {seconds:.0f} s", flush=True)
        finally:
            log = Path("out/bench-e2e.log")
            log.parent.mkdir(parents=True, exist_ok=True)
            if engine.log.exists():
                log.write_text(engine.log.read_text(encoding="utf-8"), encoding="utf-8")
    print("\n".join(table(results, runs)))
    print(f"(figures in {FIGURES_FILE}, engine output in out/bench-e2e.log)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SYNTHETIC_SIZES)),
        help="comma-separated service counts (default 1,10,50)",
    )
    parser.add_argument(
        "--cli-defaults",
        action="store_true",
        help="the CLI's own parallelism (4 x cores, serial diffs) instead of ENGINE_ENV",
    )
    parser.add_argument("--prefix", default="bench-e2e", help="figure name prefix")
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="only the floors (kubectl), printed as they are taken; no engine, no figures file",
    )
    parser.add_argument(
        "--skip-failed-rollout",
        action="store_true",
        help="skip the scenario beside the runs that checks a failed rollout fails its update "
        "(it waits for the provider's 10-minute timeout)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for every engine command (repeatable)",
    )
    parser.add_argument(
        "--trace-dir",
        type=Path,
        default=None,
        help="write each pulumi up/preview's OpenTelemetry trace (JSON) into this directory",
    )
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: comma-separated positive integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.runs < 1:
        parser.error("--sizes and --runs must be positive")
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(extra) != len(args.env):
        parser.error(f"--env: KEY=VALUE expected, got {args.env}")
    env = {**(CLI_DEFAULTS if args.cli_defaults else ENGINE_ENV), **extra}
    if args.trace_dir is not None:
        args.trace_dir = args.trace_dir.resolve()
        args.trace_dir.mkdir(parents=True, exist_ok=True)
    check = not (args.skip_failed_rollout or args.floor_only)
    return run(sizes, args.runs, args.prefix, env, args.trace_dir, check, args.floor_only)


if __name__ == "__main__":
    sys.exit(main())

"""Issue 29, scenario 1 on the real nodes (`make e2e-app`): bad versions of prod caught by
`stackctl deploy` and rolled back by the CI path, under load, with no failed request.

prod of the shipped stack file runs on the four real nodes (the `real_app` fixture,
e2e/realapp.py). Each episode deploys a new version the way a pipeline does, with
`scripts/ci/deploy.sh prod` and `DEPLOY_IMAGES=web=<repo>@sha256:<digest>` (the real engine,
the policy pack, the real kubelets pulling from the run's registry), while a bounded load
(e2e/load.py: 20 keep-alive clients, at most 100 requests per second) goes from the host
through the LoadBalancer stand-in for the whole episode, until the previous version serves on
every replica again. The versions:

- (a) an image that cannot be pulled: a digest the run's registry does not have;
- (b) a version whose readiness never passes: the app's image with `FAULT_NEVER_READY=true` in
  its config (`RealApp.variant`: same layers, one more Env entry; the app's documented switch);
- (c) one that crashes before it is ready: the same with `FAULT_CRASH_ON_START=true` (the app
  exits 3, app/server);
- (d) a slow but good one: `STARTUP_DELAY_SECONDS=40`, inside prod's startup budget (startup
  probe 2 s x 30), which must deploy, verify and stay.

Asserted for each bad version: deploy.sh fails; `stackctl deploy` printed one `failed:` line
naming the app and the reason the pods give (the pull failure and the missing digest; the
readiness probe's 503 on the path the render probes; CrashLoopBackOff with the app's exit code);
the watch stopped the update early on a certain signal for (a) and (c) and at the progress
deadline for (b); deploy.sh rolled back automatically; every replica runs the previous image and
is Ready again; the previous version's Ready pods never fell below the render's HPA minimum
while it ran (maxUnavailable 0); and not one request failed. For (d): deploy.sh succeeds, no
stop, every pod runs the slow image. Times are figures (`failure.node.<case>.*`), not
assertions: detection (from the update changing the Deployment to stackctl's stop line) and
restore (from that line until the Deployment is back on the previous image with every replica
updated and ready, and every pod not being deleted runs that image, Ready: the bad pods that
are still terminating never served). deploy.sh's output, each line timed, is kept in
out/e2e-failure-node/<case>.log.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import REPO_ROOT
from e2e.load import Load, LoadReport, LoadSpec
from e2e.realapp import RealApp, pod_ready
from stackctl.render.stack import render_stack

pytestmark = pytest.mark.realapp

ENV = "prod"
APP = "web"
CLIENTS = 20
RATE = 100.0
TIMEOUT = 10.0
EPISODE_TIMEOUT = 900.0
SLOW_START_SECONDS = 40
LOG_DIR = REPO_ROOT / "out" / "e2e-failure-node"
#: stackctl's line when its watch stops the update (stackctl/ops/deploy.py `watched_update`)
STOP = "; stopping the update"


@dataclass
class Episode:
    """One deploy.sh run under load: its output (each line with the time it arrived), its
    exit status, the load report, and what the poller saw of the Deployment."""

    case: str
    status: int = 0
    lines: list[tuple[float, str]] = field(default_factory=list)
    report: LoadReport | None = None
    changed_at: float | None = None
    """When the Deployment's pod template first named the new image."""
    detected_at: float | None = None
    """stackctl's stop line (else its `failed:` line)."""
    restored_at: float | None = None
    """First time after the stop when the previous version served on every replica."""
    previous_ready_min: int | None = None
    """The fewest Ready pods of the previous version seen while the episode ran."""

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first(self, pattern: str) -> tuple[float, str] | None:
        return next(((t, ln) for t, ln in self.lines if re.search(pattern, ln)), None)


class Poller(threading.Thread):
    """Reads prod's Deployment and pods every half second: when the new image reached the
    pod template, and when the previous image is back on every replica."""

    def __init__(self, real_app: RealApp, new: str, previous: str, episode: Episode) -> None:
        super().__init__(daemon=True, name="failure-poller")
        self.real_app, self.new, self.previous, self.episode = real_app, new, previous, episode
        self.namespace = real_app.stacks[ENV].namespace
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def template_image(self, dep: dict[str, Any]) -> str:
        containers = dep["spec"]["template"]["spec"]["containers"]
        return str(containers[0]["image"])

    def restored(self, dep: dict[str, Any]) -> bool:
        status, want = dep.get("status") or {}, dep["spec"].get("replicas", 1)
        if self.template_image(dep) != self.previous:
            return False
        if status.get("observedGeneration", 0) < dep["metadata"]["generation"]:
            return False
        counts = [status.get(k, 0) for k in ("updatedReplicas", "readyReplicas",
                                             "availableReplicas")]  # fmt: skip
        if counts != [want] * 3:
            return False
        serving = self.real_app.pods(ENV, APP)  # not being deleted
        return len(serving) >= want and all(
            p["spec"]["containers"][0]["image"] == self.previous and pod_ready(p) for p in serving
        )

    def count_previous_ready(self) -> None:
        ready = sum(
            1
            for p in self.real_app.pods(ENV, APP)
            if p["spec"]["containers"][0]["image"] == self.previous and pod_ready(p)
        )
        low = self.episode.previous_ready_min
        self.episode.previous_ready_min = ready if low is None else min(low, ready)

    def run(self) -> None:
        try:
            while not self.stopped.wait(0.5):
                dep = self.real_app.kube.get("Deployment", APP, self.namespace)
                now = time.monotonic()
                if self.episode.restored_at is None:
                    self.count_previous_ready()
                if self.episode.changed_at is None and self.template_image(dep) == self.new:
                    self.episode.changed_at = now
                if (
                    self.episode.detected_at is not None
                    and self.episode.restored_at is None
                    and self.restored(dep)
                ):
                    self.episode.restored_at = now
        except BaseException as exc:  # reported by the test
            self.error = exc


class Pipeline:
    """prod deployed as CI deploys it, under load through the LoadBalancer stand-in."""

    def __init__(self, real_app: RealApp, state_dir: Path) -> None:
        self.real_app, self.state_dir = real_app, state_dir
        svc = real_app.stacks[ENV].services[APP]
        self.host, self.port = svc["loadBalancerIP"], svc["ports"]["http"]
        assert self.host, f"no LoadBalancer address on Service {APP}: {svc}"

    def running_image(self) -> str:
        images = {str(p["spec"]["containers"][0]["image"]) for p in self.real_app.pods(ENV, APP)}
        assert len(images) == 1, f"prod runs more than one image before the episode: {images}"
        return images.pop()

    def env(self, image: str) -> dict[str, str]:
        engine = self.real_app.engine
        apps = self.real_app.apps(ENV)
        return {
            **engine.env,
            **engine.policy_env,  # deploy, rollback, history through the policy pack's CLI
            "DEPLOY_IMAGES": ",".join(f"{app}={image}" for app in apps),
            "CI_STATE_DIR": str(self.state_dir),
            "PYTHONUNBUFFERED": "1",  # each line when it is written: the stop's time
            "VERIFY_TIMEOUT": "180",
            "DEPLOY_TIMEOUT": "10m",
        }

    def episode(self, case: str, image: str) -> Episode:
        """deploy.sh prod with `image`, under load until the previous version serves on every
        replica again (or, when the deploy succeeds, until deploy.sh ends)."""
        previous = self.running_image()
        episode = Episode(case)
        poller = Poller(self.real_app, image, previous, episode)
        spec = LoadSpec(self.host, self.port, clients=CLIENTS, rate=RATE, duration=None,
                        timeout=TIMEOUT)  # fmt: skip
        load = Load(spec).start()
        poller.start()
        proc: subprocess.Popen[str] | None = None
        try:
            proc = subprocess.Popen(
                ["bash", str(self.real_app.engine.project / "scripts" / "ci" / "deploy.sh"), ENV],
                cwd=self.real_app.engine.project, env=self.env(image), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            assert proc.stdout is not None
            deadline = time.monotonic() + EPISODE_TIMEOUT
            for line in proc.stdout:
                now = time.monotonic()
                episode.lines.append((now, line.rstrip("\n")))
                if episode.detected_at is None and STOP in line:
                    episode.detected_at = now
                assert now < deadline, f"deploy.sh still running after {EPISODE_TIMEOUT:.0f}s"
            episode.status = proc.wait(timeout=60)
            if episode.status != 0 and episode.detected_at is None:
                failed = episode.first(r"^failed: ")
                episode.detected_at = failed[0] if failed else time.monotonic()
            if episode.status != 0:
                until = time.monotonic() + 240
                while episode.restored_at is None and time.monotonic() < until:
                    assert poller.error is None, f"poller: {poller.error!r}"
                    time.sleep(0.5)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()  # only after a failed assertion above
                proc.wait(timeout=60)
            poller.stopped.set()
            load.stop()
            episode.report = load.wait()
            poller.join(timeout=30)
        self.log(episode)
        assert poller.error is None, f"poller: {poller.error!r}"
        return episode

    def log(self, episode: Episode) -> None:
        """deploy.sh's output to out/e2e-failure-node/<case>.log; the load's summary printed."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        start = episode.lines[0][0] if episode.lines else 0.0
        marks = [
            (episode.changed_at, "[poller] the Deployment names the new image"),
            (episode.restored_at, "[poller] the previous version serves on every replica"),
        ]
        timed = sorted([*episode.lines, *((t, m) for t, m in marks if t is not None)])
        (LOG_DIR / f"{episode.case}.log").write_text(
            "".join(f"{t - start:8.1f}s {line}\n" for t, line in timed), encoding="utf-8"
        )  # fmt: skip
        summary = episode.report.summary() if episode.report else "no load report"
        print(f"{episode.case}: deploy.sh {ENV} exit {episode.status}; {summary}")

    def figures(self, episode: Episode, figures: dict[str, float]) -> None:
        prefix = f"failure.node.{episode.case}"
        assert episode.report is not None
        figures.update(episode.report.figures(prefix))
        detected = episode.detected_at
        if episode.changed_at is not None and detected is not None:
            figures[f"{prefix}.detect_s"] = detected - episode.changed_at
        if episode.restored_at is not None and detected is not None:
            figures[f"{prefix}.restore_s"] = episode.restored_at - detected
        figures[f"{prefix}.deploy_sh_s"] = episode.lines[-1][0] - episode.lines[0][0]
        if episode.status != 0 and episode.previous_ready_min is not None:
            figures[f"{prefix}.previous_ready_min.count"] = float(episode.previous_ready_min)


@pytest.fixture(scope="module")
def pipeline(real_app: RealApp) -> Iterator[Pipeline]:
    # prod's last good update runs the project's HEAD with the built image, so the CI rollback
    # is the config rollback to it (scripts/ci/rollback_plan.py `config`)
    real_app.deploy(ENV)
    with tempfile.TemporaryDirectory(prefix="appstack-ci-state-") as state:
        yield Pipeline(real_app, Path(state))
    real_app.deploy(ENV)  # the built image again, for whatever runs next


def rendered(real_app: RealApp, kind: str) -> dict[str, Any]:
    """prod's `kind` named after the app as the stack renders it (the oracle for the probe
    path, the container's name and the replica floor)."""
    objects = render_stack(ENV, real_app.engine.project).objects
    found: dict[str, Any] = next(
        o for o in objects if o["kind"] == kind and o["metadata"]["name"] == APP
    )
    return found


def rendered_container(real_app: RealApp) -> dict[str, Any]:
    container: dict[str, Any] = rendered(real_app, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def assert_failed_and_rolled_back(
    pipeline: Pipeline, episode: Episode, previous: str, reason: str
) -> str:
    """deploy.sh failed; stackctl deploy said why in one line (`reason`: a pattern of what
    follows the app's name); the CI path rolled back; every replica runs `previous` again,
    Ready; no request failed. Returns the `failed:` line."""
    text = episode.text()
    assert episode.status == 1, text[-4000:]
    failed = [ln for _, ln in episode.lines if ln.startswith(f"failed: rollout of {ENV} failed")]
    assert len(failed) == 1, text[-4000:]
    assert re.match(f"failed: rollout of {ENV} failed: app {APP}: {reason}", failed[0]), failed[0]
    assert "automatic rollback of prod finished" in text, text[-4000:]
    assert episode.restored_at is not None, "the previous version is not back on every replica"
    images = {p["spec"]["containers"][0]["image"] for p in pipeline.real_app.pods(ENV, APP)}
    assert images == {previous}, images
    # the old pods kept serving: never fewer Ready than the HPA's floor (maxUnavailable 0)
    floor = rendered(pipeline.real_app, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    assert (episode.previous_ready_min or 0) >= floor, (episode.previous_ready_min, floor)
    assert episode.report is not None and episode.report.requests > 0
    assert episode.report.failed_total == 0, episode.report.summary()
    return failed[0]


def bad_version(
    pipeline: Pipeline, figures: dict[str, float], name: str, image: str
) -> tuple[Episode, str, str]:
    """A bad version through the pipeline: its episode, the image that ran before it, and the
    line with which stackctl stopped the update."""
    previous = pipeline.running_image()
    episode = pipeline.episode(name, image)
    pipeline.figures(episode, figures)
    stop = episode.first(STOP)
    assert stop is not None, f"{name}: stackctl never stopped the update"
    return episode, previous, stop[1]


def test_an_image_that_cannot_be_pulled_fails_early_and_is_rolled_back(
    pipeline: Pipeline, real_app: RealApp, figures: dict[str, float]
) -> None:
    missing = real_app.ref(f"sha256:{secrets.token_hex(32)}")  # no such manifest in the registry
    episode, previous, stop = bad_version(pipeline, figures, "image_pull", missing)
    assert re.search(
        r"rollout failed before its deadline: appstack/web \((ErrImagePull|ImagePullBackOff) "
        r"on new pod web-\S+ for \d+ s\)", stop), stop  # fmt: skip
    line = assert_failed_and_rolled_back(
        pipeline, episode, previous, "(ErrImagePull|ImagePullBackOff): Failed to pull image"
    )
    assert missing in line, line  # the kubelet's pull error names the reference


def test_a_version_never_ready_is_stopped_at_its_deadline_and_rolled_back(
    pipeline: Pipeline, real_app: RealApp, figures: dict[str, float]
) -> None:
    bad = real_app.ref(real_app.variant("never-ready", {"FAULT_NEVER_READY": "true"}))
    episode, previous, stop = bad_version(pipeline, figures, "never_ready", bad)
    assert "rollout deadline exceeded: appstack/web" in stop, stop
    probe = rendered_container(real_app)["readinessProbe"]["httpGet"]
    assert_failed_and_rolled_back(
        pipeline, episode, previous,
        re.escape("ReadinessProbeFailed: Readiness probe failed: HTTP probe failed with "
                  f"statuscode: 503 (GET {probe['path']} on port {probe['port']})"),
    )  # fmt: skip


def test_a_version_that_crashes_on_start_fails_early_and_is_rolled_back(
    pipeline: Pipeline, real_app: RealApp, figures: dict[str, float]
) -> None:
    bad = real_app.ref(real_app.variant("crash-on-start", {"FAULT_CRASH_ON_START": "true"}))
    episode, previous, stop = bad_version(pipeline, figures, "crash_on_start", bad)
    assert re.search(
        r"rollout failed before its deadline: appstack/web \(CrashLoopBackOff on new pod web-",
        stop), stop  # fmt: skip
    name = rendered_container(real_app)["name"]
    # exit 3: the app's documented exit code for FAULT_CRASH_ON_START (app/server)
    line = assert_failed_and_rolled_back(
        pipeline, episode, previous, re.escape(f"CrashLoopBackOff: container {name} exit code 3")
    )
    # the app's own last words (its one `error:` line), kept by the kubelet as the container's
    # termination message (the render's terminationMessagePolicy FallbackToLogsOnError)
    assert "; last output: error: crashing on start (FAULT_CRASH_ON_START=true)" in line, line


def test_a_slow_but_good_version_deploys(
    pipeline: Pipeline, real_app: RealApp, figures: dict[str, float]
) -> None:
    slow = real_app.ref(
        real_app.variant("slow-start", {"STARTUP_DELAY_SECONDS": str(SLOW_START_SECONDS)})
    )
    episode = pipeline.episode("slow_good", slow)
    pipeline.figures(episode, figures)
    text = episode.text()
    assert episode.status == 0, text[-4000:]
    assert episode.first(STOP) is None, "the watch stopped a good rollout"
    assert "deploy prod: verified" in text, text[-4000:]
    real_app.wait_settled(real_app.stacks[ENV].namespace)
    images = {p["spec"]["containers"][0]["image"] for p in real_app.pods(ENV, APP)}
    assert images == {slow}, images
    report = episode.report
    assert report is not None and report.failed_total == 0, report and report.summary()

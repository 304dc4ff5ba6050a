"""Issue 29: failure paths with the real engine against the real control plane (kwok nodes):
`make e2e-failure`. One ordered story on the dev stack (run with `pytest -x`), told twice: on
the run's `file://` backend, then on a team backend, an S3 API server on loopback (versitygw,
e2e/s3.py) to which the dev stack moves as a team moves it (export, init, import). Scenario 1
(a bad version stopped at its deadline) does not depend on the backend and runs on `file://`
only; the figures of the S3 run are named `failure.s3.*`.

kwok proves the control plane only. The bad version here is one no node can run (a
`nodeSelector` no node matches: the scheduler leaves its pods Unschedulable), a stand-in for the
kubelet-side failures (ErrImagePull, readiness, CrashLoopBackOff), which need a real node (the
real-node tier). Everything else is what it is: the Deployment controller's progress deadline,
Pulumi's lock and checkpoint, SIGKILL, kube-apiserver restarted and stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import REPO_ROOT, Cluster
from e2e.engine import Engine, changes
from e2e.kube import KINDS, Kube
from tests.e2e.live import assert_state_matches_cluster, wait_workloads_available

pytestmark = pytest.mark.failure

NS = "appstack-dev"
IMAGE = "registry.example.com/appstack/web"
#: a version no node can run (see the module docstring)
NOWHERE = {"appstack.example/pool": "none"}
#: dev's start budget is 60 (startup) + 5 (readiness) + 5 (minReady) = 70 s: 75 s is allowed
DEADLINE = 75
STACK_LABELS = "app.kubernetes.io/instance=dev,app.kubernetes.io/managed-by=pulumi"
#: the holder of scenario 3, killed in scenario 2a
HELD: dict[str, Any] = {}
#: a CI agent on another machine: the hostname its update's lock records
OTHER_AGENT = "ci-agent-2"


@pytest.fixture(scope="module", autouse=True, params=["file", "s3"])
def backend(request: pytest.FixtureRequest, engine: Engine) -> Iterator[str]:
    """The state backend the story runs on (every test runs once per backend, the `file`
    story first): for `s3`, the dev stack moves to the S3 API server (conftest `s3_gateway`)."""
    local = engine.root / "state"
    if request.param == "s3":
        gateway = request.getfixturevalue("s3_gateway")
        engine.move_stack("dev", gateway.backend_url, gateway.files, gateway.environment)
    yield str(request.param)
    engine.use_backend(f"file://{local}", local, {})


def figure(backend: str, name: str) -> str:
    """A figure's name: `failure.<name>` on file://, `failure.s3.<name>` on the S3 backend."""
    return f"failure.{name}" if backend == "file" else f"failure.{backend}.{name}"


# ---------------------------------------------------------------- helpers


def stackctl_args(*args: str) -> list[str]:
    return [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "stackctl", *args]


def spawn(engine: Engine, args: list[str], log: Path, *, policy: bool) -> subprocess.Popen[bytes]:
    """A command in the background, in a session of its own (so every process it starts can
    be found and ended by the test)."""
    env = engine.env
    if policy:
        env.update(engine.policy_env)
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=engine.project, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, session id), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def tree(root: int) -> set[int]:
    table = proc_table()
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = {p for p, (ppid, _) in table.items() if ppid == pid}
        frontier.extend(children - found)
        found |= children
    return found & set(table)


def end_session(session: int) -> None:
    for pid, (_, sid) in proc_table().items():
        if sid == session:
            with_suppress_kill(pid)


def with_suppress_kill(pid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def lock_files(engine: Engine) -> list[Path]:
    return sorted((engine.state / ".pulumi" / "locks").glob("*/appstack/dev/*.json"))


def wait_mid_update(engine: Engine, kube: Kube, name: str, generation: int) -> dict[str, Any]:
    """Until the stack is locked and the Deployment `name` is past `generation` (the update
    is applying it and waiting for its rollout); returns the lock's content."""

    def ready() -> Any:
        locks = lock_files(engine)
        deployment = kube.get_or_none("Deployment", name, NS)
        if locks and deployment and deployment["metadata"]["generation"] > generation:
            return json.loads(locks[0].read_text())
        return None

    found: dict[str, Any] = kube.wait_for("the update mid-rollout", ready, timeout=240)
    return found


def generation(kube: Kube, name: str = "web") -> int:
    found = kube.get_or_none("Deployment", name, NS)
    return int(found["metadata"]["generation"]) if found else 0


def set_good(engine: Engine) -> None:
    engine.edit_app("dev", "web", nodeSelector=None, release=None,
                    rollout={"progressDeadlineSeconds": DEADLINE})  # fmt: skip


def assert_converged(engine: Engine, kube: Kube) -> None:
    """No change pending; every state object exists (same uid), and every object in the
    cluster with the stack's labels that no controller owns is in the state: no orphan, no
    duplicate."""
    pending = changes(engine.preview_steps("dev", "--expect-no-changes"))
    assert pending == {}, pending
    assert_state_matches_cluster(engine, kube, "dev")
    state = {
        (str(r["type"]).rsplit(":", 1)[-1], (r.get("outputs") or {}).get("metadata", {}).get(
            "namespace") or "", (r.get("outputs") or {}).get("metadata", {}).get("name"))
        for r in engine.kubernetes_resources("dev")
    }  # fmt: skip
    live = set()
    for kind, (_, _, namespaced) in KINDS.items():
        if kind in ("Node", "Pod", "ReplicaSet", "Endpoints", "CustomResourceDefinition"):
            continue
        try:
            items = kube.list(kind, NS if namespaced else None, STACK_LABELS)
        except Exception:  # a CRD kind this cluster does not serve
            continue
        for obj in items:
            meta = obj["metadata"]
            if not meta.get("ownerReferences"):
                live.add((kind, meta.get("namespace") or "", meta["name"]))
    orphans = live - state
    assert not orphans, f"in the cluster, not in the state: {sorted(orphans)}"
    history = json.loads(engine.pulumi("stack", "export", "--stack", "dev").stdout)
    assert not history["deployment"].get("pending_operations"), "pending operations left"


@pytest.fixture
def background(engine: Engine) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        end_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module", autouse=True)
def no_holder_left() -> Iterator[None]:
    """The holder of scenario 3 lives across two tests; it never outlives the module."""
    yield
    holder = HELD.get("holder")
    if holder is not None:
        end_session(holder.pid)
        holder.wait(timeout=30)


# ---------------------------------------------------------------- the story


def test_failure_baseline_deploy(engine: Engine, kube: Kube, backend: str) -> None:
    if not engine.has_stack("dev"):
        engine.init_stack("dev")
    engine.edit_app("dev", "web", image=f"{IMAGE}:1.0.0",
                    rollout={"progressDeadlineSeconds": DEADLINE})  # fmt: skip
    engine.commit("e2e failure: dev baseline")
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True,
                    timing=figure(backend, "baseline_deploy_s"))  # fmt: skip
    # a second, unchanged release: `rollback --steps 1` after a failed deploy goes back to it
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    wait_workloads_available(kube, [NS], timeout=120)
    assert_converged(engine, kube)


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_a_version_no_node_runs_is_stopped_at_its_progress_deadline(
    engine: Engine, kube: Kube, figures: dict[str, float]
) -> None:
    """Scenario 1 on the control plane: the watch stops the update at the Deployment's
    deadline and the message names the app and the scheduler's reason; rollback restores."""
    engine.edit_app("dev", "web", image=f"{IMAGE}:1.0.1", nodeSelector=NOWHERE)
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True, check=False)
    assert res.returncode == 1, res.tail()
    failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1, res.stderr
    assert "rollout of dev failed: app web: Unschedulable: " in failed[0], failed[0]
    assert "rollout deadline exceeded: appstack-dev/web; stopping the update" in res.stdout
    assert res.seconds >= DEADLINE, res.seconds  # stopped by the watch, not the provider
    figures["failure.detect_bad_version_s"] = res.seconds
    assert not lock_files(engine), "the stopped update left its lock"
    started = time.monotonic()
    engine.stackctl("rollback", "dev", "--steps", "1", "--yes", policy_cli=True)
    wait_workloads_available(kube, [NS], timeout=120)
    figures["failure.rollback_after_detection_s"] = time.monotonic() - started
    engine.git("checkout", "--", ".")
    assert_converged(engine, kube)


def test_a_second_deploy_is_refused_at_once_naming_the_holder(
    engine: Engine, kube: Kube, background: list[subprocess.Popen[bytes]], tmp_path: Path,
    figures: dict[str, float], backend: str,
) -> None:  # fmt: skip
    """Scenario 3, and the start of scenario 2: a `pulumi up` holds the stack (a blue-green
    switch whose new Deployments no node can run: the provider waits for them)."""
    before = generation(kube)
    # a longer deadline: the provider waits 2 x 200 s, far longer than this test and the next
    engine.edit_app("dev", "web", nodeSelector=NOWHERE, rollout={"progressDeadlineSeconds": 200},
                    release={"strategy": "blueGreen", "active": "blue"})  # fmt: skip
    holder = spawn(
        engine,
        [str(engine.binaries / "pulumi"), "up", "--yes", "--skip-preview", "--stack", "dev",
         "--non-interactive"],
        tmp_path / "holder.log", policy=False,
    )  # fmt: skip
    HELD["holder"] = holder
    lock = lock_files_wait(engine, kube, before)
    state_before = engine.export("dev")["deployment"].get("resources")
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True, check=False)
    assert res.returncode == 1, res.tail()
    assert f"dev is locked by a running update: {lock['username']}@{lock['hostname']} " \
        f"(pid {lock['pid']})" in res.stderr, res.stderr  # fmt: skip
    assert "== preview" not in res.stdout, "it previewed before refusing"
    figures[figure(backend, "lock_refusal_s")] = res.seconds
    assert holder.poll() is None, "the holder ended meanwhile"
    assert engine.export("dev")["deployment"].get("resources") == state_before
    HELD.update(holder=holder, lock=lock)


def lock_files_wait(engine: Engine, kube: Kube, before: int) -> dict[str, Any]:
    def ready() -> Any:
        locks = lock_files(engine)
        blue = kube.get_or_none("Deployment", "web-blue", NS)
        return json.loads(locks[0].read_text()) if locks and blue else None

    found: dict[str, Any] = kube.wait_for("the blue-green update mid-rollout", ready, timeout=240)
    return found


def test_sigkill_of_pulumi_up_then_deploy_recovers(
    engine: Engine, kube: Kube, figures: dict[str, float], backend: str
) -> None:
    """Scenario 2a: the holder is killed; the next stackctl deploy finds its stale lock and
    its pending operations, resolves them and converges."""
    holder, lock = HELD.pop("holder"), HELD.pop("lock")
    with suppress(ProcessLookupError):  # the holder is not in `background`: it lives till here
        os.kill(int(lock["pid"]), signal.SIGKILL)
    holder.wait(timeout=30)
    end_session(holder.pid)  # the CLI's plugins would outlive it by up to 5 minutes
    assert lock_files(engine), "a killed update leaves its lock"
    set_good(engine)
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    assert "found a stale lock of dev: held by " in res.stdout, res.stdout
    assert "pending operation(s) of an interrupted update of dev" in res.stdout, res.stdout
    figures[figure(backend, "recovery_after_pulumi_kill_s")] = res.seconds
    wait_workloads_available(kube, [NS], timeout=120)
    assert_converged(engine, kube)
    assert kube.get_or_none("Deployment", "web-blue", NS) is None


def test_sigkill_of_stackctl_ends_its_engine_and_deploy_recovers(
    engine: Engine, kube: Kube, background: list[subprocess.Popen[bytes]], tmp_path: Path,
    figures: dict[str, float], backend: str,
) -> None:  # fmt: skip
    """Scenario 2b: stackctl killed mid-update takes its engine and plugins with it."""
    before = generation(kube)
    engine.edit_app("dev", "web", nodeSelector=NOWHERE)
    deploy = spawn(engine, stackctl_args("deploy", "dev", "--yes"), tmp_path / "deploy.log",
                   policy=True)  # fmt: skip
    background.append(deploy)
    wait_mid_update(engine, kube, "web", before)
    processes = tree(deploy.pid)
    assert len(processes) >= 3, f"stackctl, guard and CLI expected: {processes}"
    os.kill(deploy.pid, signal.SIGKILL)
    killed = time.monotonic()
    deploy.wait(timeout=10)

    def all_gone() -> bool:
        return not (processes & set(proc_table()))

    kube.wait_for("the engine to end with stackctl", all_gone, timeout=60, interval=0.2)
    figures[figure(backend, "engine_gone_after_stackctl_kill_s")] = time.monotonic() - killed
    set_good(engine)
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    figures[figure(backend, "recovery_after_stackctl_kill_s")] = res.seconds
    assert "found a stale lock of dev" in res.stdout or not lock_files(engine), res.stdout
    wait_workloads_available(kube, [NS], timeout=120)
    assert_converged(engine, kube)


def test_a_lock_from_another_machine_is_broken_only_on_request(
    engine: Engine, kube: Kube, background: list[subprocess.Popen[bytes]], tmp_path: Path,
    figures: dict[str, float], backend: str,
) -> None:  # fmt: skip
    """Scenario 3, `--force-unlock`: a pipeline on another agent (a UTS namespace of its own:
    another hostname in its lock) holds the stack; stackctl cannot see that process, so its
    lock counts as live and refuses a deploy. The agent dies mid-update (its lock stays). A
    `--force-unlock` without confirmation is refused in CI, the lock and the state untouched;
    confirmed (`--yes`), the lock is broken, the update message names it, and the deploy
    resolves the dead update's pending operations and converges."""
    before = generation(kube)
    engine.edit_app("dev", "web", nodeSelector=NOWHERE)
    # util-linux unshare: a UTS namespace, then `hostname` there, then the CLI in its place
    agent = ["unshare", "--uts", "sh", "-c", f'hostname {OTHER_AGENT} && exec "$@"', "sh",
             str(engine.binaries / "pulumi"), "up", "--yes", "--skip-preview", "--stack", "dev",
             "--non-interactive"]  # fmt: skip
    holder = spawn(engine, agent, tmp_path / "agent.log", policy=False)
    background.append(holder)
    lock = wait_mid_update(engine, kube, "web", before)
    assert lock["hostname"] == OTHER_AGENT, lock
    named = f"{lock['username']}@{OTHER_AGENT} (pid {lock['pid']})"
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True, check=False)
    assert res.returncode == 1 and f"dev is locked by a running update: {named}" in res.stderr, (
        res.tail()
    )
    end_session(holder.pid)  # the agent dies: its update's lock stays
    holder.wait(timeout=30)
    assert lock_files(engine), "a killed update leaves its lock"
    state = engine.export("dev")
    set_good(engine)
    res = engine.stackctl("deploy", "dev", "--force-unlock", policy_cli=True, check=False)
    assert res.returncode != 0 and "needs confirmation" in res.stderr, res.tail()
    assert lock_files(engine) and engine.export("dev") == state, "refused, yet something changed"
    res = engine.stackctl("deploy", "dev", "--force-unlock", "--yes", policy_cli=True)
    figures[figure(backend, "deploy_after_force_unlock_s")] = res.seconds
    assert f"force-unlock: removing the lock of {named}" in res.stdout, res.stdout
    assert "pending operation(s) of an interrupted update of dev" in res.stdout, res.stdout
    wait_workloads_available(kube, [NS], timeout=120)
    assert_converged(engine, kube)
    newest = json.loads(engine.pulumi("stack", "history", "--json", "--stack", "dev").stdout)[0]
    assert f"\nforce-unlocked: the lock of {named} since " in newest["message"], newest["message"]


def test_lost_state_is_restored_from_the_newest_backup(
    engine: Engine, kube: Kube, figures: dict[str, float], backend: str
) -> None:
    """Scenario 6: deploy (backs up the state), lose the state, restore, no change."""
    engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    uids = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["uid"]
        for kind in ("Deployment", "Service", "ConfigMap")
        for o in kube.list(kind, NS, STACK_LABELS)
    }
    stacks = engine.state / ".pulumi" / "stacks" / "appstack"
    lost = sorted(stacks.glob("dev.json*"))
    assert lost, sorted(stacks.iterdir())
    for path in lost:
        path.unlink()
    res = engine.stackctl("restore", "dev", "--yes", policy_cli=True)
    figures[figure(backend, "restore_s")] = res.seconds
    engine.pulumi("preview", "--expect-no-changes", "--stack", "dev")
    engine.up("dev")
    assert_converged(engine, kube)
    after = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["uid"]
        for kind in ("Deployment", "Service", "ConfigMap")
        for o in kube.list(kind, NS, STACK_LABELS)
    }
    assert after == uids, "the restore changed cluster objects"


@pytest.mark.parametrize("fault", ["restart", "unreachable-20s"])
def test_a_control_plane_fault_mid_update_then_the_next_deploy_converges(
    engine: Engine, kube: Kube, cluster: Cluster, background: list[subprocess.Popen[bytes]],
    tmp_path: Path, figures: dict[str, float], fault: str, backend: str,
) -> None:  # fmt: skip
    """Scenario 4: kube-apiserver restarted, or unreachable for 20 s, while an update runs:
    it completes or fails cleanly (one line, no traceback, no lock left); the next deploy
    converges with no manual step."""
    before = generation(kube)
    # a rollout that cannot finish, so the fault lands while the provider waits for it
    engine.edit_app("dev", "web", image=f"{IMAGE}:2.0.{0 if fault == 'restart' else 1}",
                    nodeSelector=NOWHERE)  # fmt: skip
    log = tmp_path / "deploy.log"
    deploy = spawn(engine, stackctl_args("deploy", "dev", "--yes"), log, policy=True)
    background.append(deploy)
    wait_mid_update(engine, kube, "web", before)
    if fault == "restart":
        figures[figure(backend, "apiserver_restart_down_s")] = cluster.restart_apiserver()
    else:
        cluster.pause_apiserver(20)
    code = deploy.wait(timeout=900)
    out = log.read_text(errors="replace")
    assert "Traceback" not in out, out[-3000:]
    assert code in (0, 1), out[-3000:]
    if code == 1:
        assert [ln for ln in out.splitlines() if ln.startswith("failed: ")], out[-3000:]
    assert not lock_files(engine), "the update left its lock"
    set_good(engine)
    res = engine.stackctl("deploy", "dev", "--yes", policy_cli=True)
    figures[figure(backend, f"converge_after_apiserver_{fault.split('-')[0]}_s")] = res.seconds
    wait_workloads_available(kube, [NS], timeout=120)
    assert_converged(engine, kube)

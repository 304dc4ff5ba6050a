"""Graceful shutdown of the reference app under load, on loopback, against the values the shipped
prod stack renders (the oracle): the pod's preStop sleep and terminationGracePeriodSeconds, and
the app's settings from the rendered ConfigMap (app.server's documented defaults where the
ConfigMap sets none).

A pod that Kubernetes terminates gets, in order: the preStop sleep (meanwhile the EndpointSlice
controller marks it terminating and kube-proxy stops sending new connections to it), SIGTERM, and
SIGKILL at terminationGracePeriodSeconds from the start of preStop. The app is asked to keep
serving through that window and to drain what is in flight. Here the kubelet's preStop sleep is
replaced by the app's own SHUTDOWN_DELAY_SECONDS of the same length (app/server documents the two
as equivalent), and the endpoint removal by a stand-in: a watcher that polls readiness and stops
the load at its first 503 (named as such below). What is checked on the real app process:
readiness fails at once, the listener refuses new connections only after that and after the
delay, every request the load sent (keep-alive, 20 clients) got a full answer, requests in flight
across the listener's close finish with 200, and the process exits 0, drained, within the grace
period the kubelet leaves after preStop. The same on real nodes, through a Service:
tests/e2e/test_realnode_traffic.py.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.server import load_config
from e2e.load import Load, LoadSpec
from tests.app.test_server import LOCALHOST, Service, start_service, stop
from tests.renders import Renders
from tests.tooling import SHIPPED_STACKS

STACK = "prod"
APP = "web"
# A second of slack in the app's own worst case (app/server: "plus about one second").
APP_EXIT_SLACK_SECONDS = 1


def _rendered_lifecycle(
    renders: Renders, stack: str = STACK
) -> tuple[dict[str, Any], dict[str, str]]:
    """The stack's `web` Deployment's pod spec and its ConfigMap's data, as rendered."""
    objects = renders.stack(stack).objects
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == APP
    ]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (source,) = container["envFrom"]
    name = source["configMapRef"]["name"]
    (config_map,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name
    ]
    return pod, dict(config_map["data"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_rendered_grace_period_covers_pre_stop_delay_and_the_apps_drain(
    renders: Renders, stack: str
) -> None:
    pod, env = _rendered_lifecycle(renders, stack)
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    config = load_config(env)
    worst = (
        pre_stop
        + config.shutdown_delay_seconds
        + config.drain_timeout_seconds
        + APP_EXIT_SLACK_SECONDS
    )
    # the kubelet sends SIGKILL terminationGracePeriodSeconds after preStop began
    assert worst < pod["terminationGracePeriodSeconds"], (pre_stop, config, pod)


def test_sigterm_under_keepalive_load_drains_without_a_failed_request(
    renders: Renders, tmp_path: Path
) -> None:
    pod, env = _rendered_lifecycle(renders)
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod["terminationGracePeriodSeconds"]
    config = load_config(env)
    delay = pre_stop + config.shutdown_delay_seconds  # the pod's window before it stops accepting
    app_env = {k: v for k, v in env.items() if k not in ("PORT", "METRICS_PORT", "APP_VERSION")}
    app_env["SHUTDOWN_DELAY_SECONDS"] = f"{delay:g}"
    svc: Service = start_service(tmp_path, **app_env)
    try:
        _drain_under_load(svc, delay, grace - pre_stop)
    finally:
        stop(svc.proc)


LATE_MS = 5000


class KeepAliveRequest:
    """A keep-alive connection opened (and used once) now; `send_at` sends one more request on
    it at a given time, in a thread."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(LOCALHOST, port, timeout=30)
        self.conn.request("GET", "/health")
        self.conn.getresponse().read()
        self.sent_at: float | None = None
        self.answered_at = 0.0
        self.answer: tuple[int, Any, str | None] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: None)

    def send_at(self, when: float, path: str) -> None:
        def run() -> None:
            time.sleep(max(0.0, when - time.monotonic()))
            try:
                self.sent_at = time.monotonic()
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                body = json.loads(resp.read())
                self.answered_at = time.monotonic()
                self.answer = (resp.status, body, resp.getheader("Connection"))
            except BaseException as exc:  # reported by the test
                self.error = exc
            finally:
                self.conn.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()


def _when(check: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _refused(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # the probe's own handshake sat in the accept backlog as the listener closed: the kernel
        # resets it (only a probe can race it: no user traffic arrives after the delay)
        return True


def _drain_under_load(svc: Service, delay: float, budget_after_pre_stop: float) -> None:
    load = Load(LoadSpec(LOCALHOST, svc.port, path="/sleep?ms=100", clients=20, rate=150,
                         duration=None, timeout=10))  # fmt: skip
    load.start()
    _when(lambda: load.succeeded >= 50, 30, "the load to be served")
    # In flight across the listener's close: on a keep-alive connection opened before SIGTERM
    # (one that kube-proxy's conntrack keeps on this pod after the endpoint left), sent 3 seconds
    # before the listener closes and answered after.
    late = KeepAliveRequest(svc.port)
    signalled = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)  # as the kubelet sends it after preStop

    # Stand-in for the EndpointSlice controller and kube-proxy: at the first readiness 503 no
    # new request goes to this instance (the load stops; what it sent is still answered).
    def not_ready() -> bool:
        try:
            return svc.get("/health/ready", timeout=2).status == 503
        except OSError:
            return False

    ready_failed = _when(not_ready, 5, "readiness 503")
    late.send_at(signalled + delay - 3, f"/sleep?ms={LATE_MS}")
    load.stop()
    report_box: list[Any] = []
    waiter = threading.Thread(target=lambda: report_box.append(load.wait()), daemon=True)
    waiter.start()
    refused = _when(lambda: _refused(svc.port), delay + 15, "the listener to refuse")
    exit_code = svc.proc.wait(timeout=budget_after_pre_stop)
    exited = time.monotonic()
    waiter.join(timeout=30)
    late.thread.join(timeout=30)

    (report,) = report_box
    assert report.failed_total == 0, report.summary()
    assert report.requests >= 50
    # ordering (from the app's lifecycle): readiness failed first, the listener closed only after
    # the configured delay, the process exited within what the grace period leaves after preStop
    assert ready_failed < refused
    assert refused - signalled >= delay
    assert exited - signalled < budget_after_pre_stop
    assert exit_code == 0
    assert late.error is None, late.error
    assert late.sent_at is not None and late.sent_at < refused < late.answered_at
    assert late.answer == (200, {"slept_ms": LATE_MS}, "close")  # draining: Connection: close
    stopped = svc.log_events()[-1]
    assert (stopped["event"], stopped["drained"], stopped["in_flight_abandoned"]) == (
        "stopped",
        True,
        0,
    )

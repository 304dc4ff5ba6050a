"""Health and drain: readiness and the in-flight count every handler shares (`ServiceState`), and
the process's life: listen, serve, and on SIGTERM/SIGINT answer readiness 503, stop accepting,
drain in-flight requests (bounded), exit (steps 1-4 of the package docstring)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Final

from prometheus_client import disable_created_metrics

from app.server.config import Config, ConfigError, load_config
from app.server.handlers import AppHandler, Handler, MetricsHandler, Server
from app.server.log import log_event
from app.server.metrics import Metrics, create_metrics
from app.server.routes import SERVICE_NAME

SHUTDOWN_SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT})


class ServiceState:
    """Readiness and the in-flight request count, shared by all handler threads."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        # Which instance answered (`GET /`): the pod's name in Kubernetes, where the kubelet
        # sets the container's hostname to metadata.name (without spec.hostname).
        self.host = socket.gethostname()
        self._draining = threading.Event()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._fault_lock = threading.Lock()
        self._user_requests = 0

    def fault_due(self) -> bool:
        """Whether this user request is one the fault switch fails (FAULT_ERROR_RATIO): the
        n-th request fails when floor(n * ratio) grows, so exactly that share fails, evenly."""
        ratio = self.config.fault_error_ratio
        if ratio <= 0:
            return False
        with self._fault_lock:
            self._user_requests += 1
            n = self._user_requests
        return int(n * ratio) > int((n - 1) * ratio)

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def start_draining(self) -> None:
        self._draining.set()

    def enter(self) -> None:
        with self._cond:
            self._in_flight += 1
        self.metrics.in_flight.inc()

    def leave(self) -> None:
        self.metrics.in_flight.dec()
        with self._cond:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is in flight or `timeout` passed; return how many still are."""
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight == 0, timeout=timeout)
            return self._in_flight


def _serve_in_thread(server: Server, name: str) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.25}, name=name, daemon=True
    )
    thread.start()
    return thread


def _listen(config: Config, port: int, handler: type[Handler], state: ServiceState) -> Server:
    try:
        return Server((config.host, port), handler, state)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(f"error: cannot listen on {config.host} port {port}: {reason}", file=sys.stderr)
        raise SystemExit(1) from None


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT, drain, and return the exit code."""
    # Before the signals are blocked: a pod stopped while it starts just ends.
    if config.startup_delay_seconds:
        log_event("starting", startup_delay_seconds=config.startup_delay_seconds)
        time.sleep(config.startup_delay_seconds)
    if config.fault_crash_on_start:
        # FAULT_CRASH_ON_START: exit before listening, so no probe ever passes (the kubelet
        # restarts it into CrashLoopBackOff).
        log_event("crashed", level="error", reason="FAULT_CRASH_ON_START")
        print("error: crashing on start (FAULT_CRASH_ON_START=true)", file=sys.stderr)
        return 3
    # Block the shutdown signals before any thread exists (threads inherit the mask); the main
    # thread collects them with sigwait. Blocked signals are delivered even to PID 1.
    signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    # No `*_created` series: they would double the series count for nothing. (Process-wide
    # switch, hence here and not in create_metrics; prometheus_client leaves it unannotated.)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    state = ServiceState(config, create_metrics(config.version))
    app_server = _listen(config, config.port, AppHandler, state)
    metrics_server = _listen(config, config.metrics_port, MetricsHandler, state)
    _serve_in_thread(app_server, "app-listener")
    _serve_in_thread(metrics_server, "metrics-listener")
    log_event(
        "started",
        service=SERVICE_NAME,
        version=config.version,
        host=config.host,
        port=app_server.server_port,
        metrics_port=metrics_server.server_port,
        pid=os.getpid(),
    )

    signum = signal.sigwait(SHUTDOWN_SIGNALS)
    state.start_draining()
    log_event(
        "draining",
        signal=signal.Signals(signum).name,
        shutdown_delay_seconds=config.shutdown_delay_seconds,
        drain_timeout_seconds=config.drain_timeout_seconds,
    )
    time.sleep(config.shutdown_delay_seconds)
    app_server.shutdown()  # stop the accept loop
    app_server.server_close()  # close the listening socket: new connections are refused
    abandoned = state.wait_idle(config.drain_timeout_seconds)
    metrics_server.shutdown()
    metrics_server.server_close()
    log_event("stopped", drained=abandoned == 0, in_flight_abandoned=abandoned)
    return 0


def main() -> int:
    """Entry point of ``python -m app.server``: returns the process exit code."""
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(config)

"""appstack reference HTTP service: the workload the stack deploys.

Run it with ``python -m app.server`` (or call `main()`). Standard library HTTP server
(`http.server.ThreadingHTTPServer`, one thread per connection, HTTP/1.1 keep-alive) plus
`prometheus_client`. Nothing is written to disk, so it runs on a read-only root filesystem.

Configuration (environment variables). An invalid value prints one ``error:`` line on stderr
naming the variable and its allowed range and exits with code 2 (no traceback):

* ``HOST`` (default ``0.0.0.0``): IPv4/IPv6 address literal both listeners bind to.
* ``PORT`` (``8080``): 1-65535; the app and health endpoints.
* ``METRICS_PORT`` (``9090``): 1-65535, different from PORT; ``GET /metrics`` only.
* ``SHUTDOWN_DELAY_SECONDS`` (``0``): 0-300; after SIGTERM keep accepting this long while
  readiness already answers 503 (time for endpoint removal to propagate). Leave it 0 when the
  pod has a preStop sleep: that already delays SIGTERM.
* ``DRAIN_TIMEOUT_SECONDS`` (``20``): 0-300; once the listener is closed, wait at most this
  long for in-flight requests, then exit anyway.
* ``APP_VERSION`` (``dev``): 1-128 printable characters (no control characters).

Endpoints on PORT (only GET and HEAD; HEAD answers like GET without a body; every body is JSON):

* ``GET /``              200 ``{"service": "appstack", "version": APP_VERSION}``
* ``GET /health``        liveness: 200 ``{"status": "ok"}``, also while draining
* ``GET /health/ready``  readiness: 200 ``{"status": "ready"}``; 503 ``{"status": "draining"}``
                         from the moment SIGTERM/SIGINT is received
* ``GET /sleep?ms=N``    diagnostic endpoint for drain and latency tests: sleeps N milliseconds
                         (integer >= 0, capped at 10000) and answers 200 ``{"slept_ms": N}``;
                         400 when ``ms`` is missing or not a non-negative integer
* unknown path -> 404 (whatever the method); known path with another method -> 405 with
  ``Allow: GET, HEAD``. A request that carries a body is answered and its connection closed
  (bodies are never read).

Metrics on METRICS_PORT: ``GET /metrics`` in the Prometheus text format (OpenMetrics when the
scraper asks for it), from a private `CollectorRegistry` (not the process-global default):

* ``http_requests_total{method,code,path}``              counter
* ``http_request_duration_seconds{method,path}``         histogram, buckets 0.005 .. 10 s
* ``http_requests_in_flight``                            gauge
* ``app_build_info{version}``                            gauge, always 1

Label policy (bounded cardinality): ``path`` is the route template for a known route (``/``,
``/health``, ``/health/ready``, ``/sleep``; the query string is never part of it) and the literal
``other`` for anything else; ``method`` is the request method for the nine standard HTTP methods
and ``other`` otherwise; ``code`` is the numeric status sent. Every request on PORT that gets a
response is counted, **including the liveness and readiness probes** (they are real requests;
filter on ``path`` to exclude them) and malformed requests the server rejects with 4xx (as
``method="other"`` unless the method was parsed, ``path="other"``). Scrapes of METRICS_PORT are
not counted. The duration runs from reading the request line to the last byte of the response.

Shutdown on SIGTERM or SIGINT (both are blocked in every thread and collected with
`signal.sigwait`, so this also works as PID 1 in a container and no handler races a lock):

1. readiness answers 503 at once; log ``draining``;
2. keep serving for SHUTDOWN_DELAY_SECONDS, then stop accepting and close the listener
   (responses sent while draining carry ``Connection: close``);
3. wait up to DRAIN_TIMEOUT_SECONDS for in-flight requests (the metrics listener keeps
   serving meanwhile); requests still running after that are abandoned;
4. log ``stopped`` and exit 0. Further signals during steps 1-3 are ignored (SIGKILL ends it).

The worst case from SIGTERM to exit is therefore SHUTDOWN_DELAY_SECONDS + DRAIN_TIMEOUT_SECONDS
plus about one second: a pod's terminationGracePeriodSeconds must be larger than that.

Logging: one JSON object per line on stdout for each lifecycle event (``started``,
``draining``, ``stopped``) and for unexpected request-handling errors (``request_error``, the
exception type only). There is no access log; request bodies and header values are never logged.
Startup failures (bad config: exit 2; cannot listen: exit 1) print one ``error:`` line on stderr.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder

__all__ = [
    "DURATION_BUCKETS",
    "OTHER",
    "ROUTES",
    "Config",
    "ConfigError",
    "Metrics",
    "create_metrics",
    "load_config",
    "main",
    "method_label",
    "path_label",
]

SERVICE_NAME: Final = "appstack"
OTHER: Final = "other"
ROUTE_ROOT: Final = "/"
ROUTE_HEALTH: Final = "/health"
ROUTE_READY: Final = "/health/ready"
ROUTE_SLEEP: Final = "/sleep"
ROUTES: Final = frozenset({ROUTE_ROOT, ROUTE_HEALTH, ROUTE_READY, ROUTE_SLEEP})
METRICS_PATH: Final = "/metrics"
ALLOWED_METHODS: Final = ("GET", "HEAD")
STANDARD_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLEEP_MAX_MS: Final = 10_000
# Socket timeout per connection: bounds idle keep-alive connections and slow clients.
SOCKET_TIMEOUT_SECONDS: Final = 30.0
MAX_REQUEST_LINE: Final = 8192
SHUTDOWN_SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT})

_PORT_RANGE: Final = (1, 65535)
_SECONDS_RANGE: Final = (0.0, 300.0)
_SECONDS_RE: Final = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_INT_RE: Final = re.compile(r"[0-9]{1,9}")
_VERSION_MAX_LEN: Final = 128


# --------------------------------------------------------------------------- configuration


class ConfigError(ValueError):
    """An environment variable holds a value outside its allowed range."""


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"  # all interfaces: the pod IP must be reachable
    port: int = 8080
    metrics_port: int = 9090
    shutdown_delay_seconds: float = 0.0
    drain_timeout_seconds: float = 20.0
    version: str = "dev"


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    low, high = _PORT_RANGE
    if _INT_RE.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be an integer in {low}-{high}, got {_shown(raw)}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    low, high = _SECONDS_RANGE
    if _SECONDS_RE.fullmatch(raw) is None or not low <= float(raw) <= high:
        raise ConfigError(
            f"{name} must be a number of seconds in {low:g}-{high:g} (e.g. 20 or 0.5), "
            f"got {_shown(raw)}"
        )
    return float(raw)


def load_config(env: Mapping[str, str]) -> Config:
    """Read and validate the configuration; raise `ConfigError` naming the first bad variable."""
    defaults = Config()
    host = env.get("HOST", defaults.host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"HOST must be an IPv4 or IPv6 address literal (e.g. 0.0.0.0, ::, 127.0.0.1), "
            f"got {_shown(host)}"
        ) from None
    port = _port(env, "PORT", defaults.port)
    metrics_port = _port(env, "METRICS_PORT", defaults.metrics_port)
    if metrics_port == port:
        raise ConfigError(f"METRICS_PORT must be in 1-65535 and differ from PORT, both are {port}")
    delay = _seconds(env, "SHUTDOWN_DELAY_SECONDS", defaults.shutdown_delay_seconds)
    drain = _seconds(env, "DRAIN_TIMEOUT_SECONDS", defaults.drain_timeout_seconds)
    version = env.get("APP_VERSION", defaults.version)
    # Informational only (JSON and a label value), so any printable text is accepted: an image
    # tag, a git SHA, "1.2.3+build.4", ...
    if not 1 <= len(version) <= _VERSION_MAX_LEN or not version.isprintable():
        raise ConfigError(
            f"APP_VERSION must be 1-{_VERSION_MAX_LEN} printable characters, got {_shown(version)}"
        )
    return Config(host, port, metrics_port, delay, drain, version)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    in_flight: Gauge
    build_info: Gauge


def create_metrics(version: str) -> Metrics:
    """The service's metrics, registered in a fresh private registry."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "http_requests",
        "HTTP requests answered, by method, status code and route template.",
        ("method", "code", "path"),
        registry=registry,
    )
    duration = Histogram(
        "http_request_duration_seconds",
        "Time from reading the request line to the end of the response.",
        ("method", "path"),
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    in_flight = Gauge(
        "http_requests_in_flight",
        "HTTP requests being handled right now.",
        registry=registry,
    )
    build_info = Gauge(
        "app_build_info",
        "Build information; the value is always 1.",
        ("version",),
        registry=registry,
    )
    build_info.labels(version=version).set(1)
    return Metrics(registry, requests, duration, in_flight, build_info)


def path_label(path: str) -> str:
    """Bounded `path` label: the route template of a known route, else ``other``."""
    return path if path in ROUTES else OTHER


def method_label(method: str | None) -> str:
    """Bounded `method` label: a standard HTTP method, else ``other``."""
    return method if method in STANDARD_METHODS else OTHER


# --------------------------------------------------------------------------- logging


def log_event(event: str, level: str = "info", **fields: object) -> None:
    """Write one structured (JSON) log line to stdout."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, object] = {"ts": now, "level": level, "logger": "app.server"}
    record["event"] = event
    record.update(fields)
    print(json.dumps(record, separators=(",", ":")), flush=True)


# --------------------------------------------------------------------------- serving state


class ServiceState:
    """Readiness and the in-flight request count, shared by all handler threads."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._draining = threading.Event()
        self._cond = threading.Condition()
        self._in_flight = 0

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


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # abandoned requests must not keep the process alive
    block_on_close = False  # server_close() must not join handler threads (drain is bounded)
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        state: ServiceState,
    ) -> None:
        self.state = state
        self.address_family = (
            socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
        )
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup); nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exception()
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # the client went away or stalled: nothing to report
        log_event("request_error", level="error", error=type(exc).__name__)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler: no access log, fixed Server header, hooks around each request."""

    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS
    # Buffer each response so it leaves at the flush in handle_one_request, after it has been
    # counted: a client that reads /metrics right after a response then always sees it.
    wbufsize = -1
    server: _Server
    status_sent: int = 0

    def version_string(self) -> str:
        return SERVICE_NAME

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: metrics cover traffic, and request data stays out of the logs."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status_sent = int(code)
        super().send_response(code, message)

    def handle_one_request(self) -> None:
        # Same steps as BaseHTTPRequestHandler.handle_one_request, with one explicit dispatch
        # (instead of do_<METHOD>) so every method, and every rejected request, is handled here.
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except TimeoutError:
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.status_sent = 0
        self.begin_request()
        try:
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            elif self.parse_request():  # on failure it has already sent a 4xx response
                self.dispatch_or_500()
            self.count_response()
            self.wfile.flush()
        finally:
            self.end_request()

    def dispatch_or_500(self) -> None:
        try:
            self.dispatch()
        except (ConnectionError, TimeoutError):
            raise  # the client is gone: nothing can be sent
        except Exception as exc:
            log_event("request_error", level="error", error=type(exc).__name__)
            self.close_connection = True
            if self.status_sent:
                return  # the response had started: closing the connection is all that is left
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def begin_request(self) -> None:
        """Called once a request line has arrived."""

    def count_response(self) -> None:
        """Called once the response is complete, before it is flushed to the client."""

    def end_request(self) -> None:
        """Called after the response was sent (or the request failed)."""

    def dispatch(self) -> None:
        raise NotImplementedError

    def has_body(self) -> bool:
        length = self.headers.get("Content-Length")
        return (length is not None and length.strip() != "0") or (
            "Transfer-Encoding" in self.headers
        )

    def send_body(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # A body we did not read would be parsed as the next request; while draining, clients
        # should reconnect elsewhere. Either way, close the connection after this response.
        if self.has_body() or self.server.state.draining:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(
        self,
        status: HTTPStatus,
        payload: Mapping[str, object],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_body(status, body, "application/json", headers)


class AppHandler(_Handler):
    """The application endpoints on PORT."""

    route: str = OTHER
    started: float = 0.0
    counted: bool = False

    def begin_request(self) -> None:
        self.route = OTHER
        self.started = time.perf_counter()
        self.counted = False
        self.server.state.enter()

    def end_request(self) -> None:
        self.count_response()  # a request that failed before its flush is counted here
        self.server.state.leave()

    def count_response(self) -> None:
        if self.counted:
            return
        self.counted = True
        state = self.server.state
        if self.status_sent:
            method = method_label(self.command)
            metrics = state.metrics
            metrics.requests.labels(
                method=method, code=str(self.status_sent), path=self.route
            ).inc()
            metrics.duration.labels(method=method, path=self.route).observe(
                time.perf_counter() - self.started
            )

    def dispatch(self) -> None:
        url = urlsplit(self.path)
        self.route = path_label(url.path)
        if self.route == OTHER:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        elif self.command not in ALLOWED_METHODS:
            self.send_json(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": "method not allowed"},
                {"Allow": ", ".join(ALLOWED_METHODS)},
            )
        elif self.route == ROUTE_ROOT:
            config = self.server.state.config
            self.send_json(HTTPStatus.OK, {"service": SERVICE_NAME, "version": config.version})
        elif self.route == ROUTE_HEALTH:
            self.send_json(HTTPStatus.OK, {"status": "ok"})
        elif self.route == ROUTE_READY:
            if self.server.state.draining:
                self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "draining"})
            else:
                self.send_json(HTTPStatus.OK, {"status": "ready"})
        else:
            self.sleep(url.query)

    def sleep(self, query: str) -> None:
        try:
            values = parse_qs(query, keep_blank_values=True, max_num_fields=16).get("ms", [])
        except ValueError:
            values = []
        if len(values) != 1 or _INT_RE.fullmatch(values[0]) is None:
            self.send_json(
                HTTPStatus.BAD_REQUEST,
                {"error": f"query parameter ms must be one integer >= 0, max {SLEEP_MAX_MS}"},
            )
            return
        ms = min(int(values[0]), SLEEP_MAX_MS)
        time.sleep(ms / 1000)
        self.send_json(HTTPStatus.OK, {"slept_ms": ms})


class MetricsHandler(_Handler):
    """``GET /metrics`` on METRICS_PORT; nothing else."""

    def dispatch(self) -> None:
        if urlsplit(self.path).path != METRICS_PATH:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        elif self.command not in ALLOWED_METHODS:
            self.send_json(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": "method not allowed"},
                {"Allow": ", ".join(ALLOWED_METHODS)},
            )
        else:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(self.server.state.metrics.registry)
            self.send_body(HTTPStatus.OK, body, content_type)


# --------------------------------------------------------------------------- lifecycle


def _serve_in_thread(server: _Server, name: str) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.25}, name=name, daemon=True
    )
    thread.start()
    return thread


def _listen(config: Config, port: int, handler: type[_Handler], state: ServiceState) -> _Server:
    try:
        return _Server((config.host, port), handler, state)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(f"error: cannot listen on {config.host} port {port}: {reason}", file=sys.stderr)
        raise SystemExit(1) from None


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT, drain, and return the exit code."""
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


if __name__ == "__main__":
    sys.exit(main())

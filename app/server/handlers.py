"""HTTP handling: the threaded server, a handler base with one dispatch for every method and
rejected request, the application endpoints on PORT (`AppHandler`, which counts every response)
and `GET /metrics` on METRICS_PORT (`MetricsHandler`)."""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import sys
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder

from app.server.config import INTEGER
from app.server.log import log_event
from app.server.metrics import method_label, path_label
from app.server.routes import (
    ALLOWED_METHODS,
    METRICS_PATH,
    OTHER,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_ROOT,
    SERVICE_NAME,
)

if TYPE_CHECKING:
    from app.server.lifecycle import ServiceState

SLEEP_MAX_MS: Final = 10_000
# Socket timeout per connection: bounds idle keep-alive connections and slow clients.
SOCKET_TIMEOUT_SECONDS: Final = 30.0
MAX_REQUEST_LINE: Final = 8192


class Server(ThreadingHTTPServer):
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


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler: no access log, fixed Server header, hooks around each request."""

    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS
    # Buffer each response so it leaves at the flush in handle_one_request, after it has been
    # counted: a client that reads /metrics right after a response then always sees it.
    wbufsize = -1
    server: Server
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


class AppHandler(Handler):
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
        elif self.route not in (ROUTE_HEALTH, ROUTE_READY) and self.server.state.fault_due():
            # the documented fault switch (FAULT_ERROR_RATIO, off by default): user routes only,
            # so the probes keep the pod in service while it fails its users
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "fault injected"})
        elif self.route == ROUTE_ROOT:
            config = self.server.state.config
            self.send_json(
                HTTPStatus.OK,
                {
                    "service": SERVICE_NAME,
                    "version": config.version,
                    "host": self.server.state.host,
                },
            )
        elif self.route == ROUTE_HEALTH:
            self.send_json(HTTPStatus.OK, {"status": "ok"})
        elif self.route == ROUTE_READY:
            if self.server.state.draining:
                self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "draining"})
            elif self.server.state.config.fault_never_ready:
                self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "never-ready"})
            else:
                self.send_json(HTTPStatus.OK, {"status": "ready"})
        else:
            self.sleep(url.query)

    def sleep(self, query: str) -> None:
        try:
            values = parse_qs(query, keep_blank_values=True, max_num_fields=16).get("ms", [])
        except ValueError:
            values = []
        if len(values) != 1 or INTEGER.fullmatch(values[0]) is None:
            self.send_json(
                HTTPStatus.BAD_REQUEST,
                {"error": f"query parameter ms must be one integer >= 0, max {SLEEP_MAX_MS}"},
            )
            return
        ms = min(int(values[0]), SLEEP_MAX_MS)
        time.sleep(ms / 1000)
        self.send_json(HTTPStatus.OK, {"slept_ms": ms})


class MetricsHandler(Handler):
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

"""e2e/load.py against real servers on loopback that each test starts.

The oracle is what each server really did, counted on the server side: the connections it
accepted, the responses it sent (by status), the connections it closed idle, truncated or reset.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from e2e.load import (
    FAILED_KINDS,
    Load,
    LoadError,
    LoadReport,
    LoadSpec,
    binomial_bounds,
    check_target,
    percentile,
    run,
)

REPO = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"
BODY = b'{"service":"test"}'


def _response(status: int = 200, body: bytes = BODY, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


class ScriptedServer:
    """A raw HTTP/1.1 server: `script(request_index_on_connection)` says what it does with each
    request: ``ok`` (answer, keep the connection), ``ok-then-close`` (answer without
    ``Connection: close``, then close the idle connection), ``close-unread`` (wait until the
    next request's bytes arrive, then close without reading them: the kernel resets), ``truncate``
    (half a response, then FIN), ``reset-mid`` (half a response, then RST). `did` counts what
    it did; `accepted` the connections."""

    def __init__(self, script: Callable[[int], str]) -> None:
        self.script = script
        self.did: Counter[str] = Counter()
        self.accepted = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = int(self.sock.getsockname()[1])
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.closing = True
        self.sock.close()

    def _count(self, what: str) -> None:
        with self.lock:
            self.did[what] += 1

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buf = b""
        index = 0
        try:
            while True:
                action = self.script(index)
                if action == "close-unread":
                    # wait for the request's first bytes (never read); EOF: the client left
                    if buf == b"" and not conn.recv(1, socket.MSG_PEEK):
                        return
                    self._count(action)  # counted before the client can see it
                    self._rst(conn)
                    return
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                _, _, buf = buf.partition(b"\r\n\r\n")
                full = _response()
                if action == "truncate":
                    conn.sendall(full[: len(full) - 5])
                    self._count(action)
                    conn.shutdown(socket.SHUT_WR)
                    return
                if action == "reset-mid":
                    conn.sendall(full[: len(full) - 5])
                    time.sleep(0.2)
                    self._count(action)  # counted before the client can see it
                    self._rst(conn)
                    return
                self._count("answered")
                if action == "ok-then-close":
                    self._count("closed-idle")
                conn.sendall(full)
                if action == "ok-then-close":
                    return
                index += 1
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _rst(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


@contextmanager
def scripted(script: Callable[[int], str]) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script)
    try:
        yield server
    finally:
        server.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, body, delay = self.server.decide()
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


class _HttpServer(ThreadingHTTPServer):
    """http.server with a `decide(n)` per request: (status, body, delay); `sent` counts what
    it decided, per status and per body."""

    daemon_threads = True

    def __init__(self, decide: Callable[[int], tuple[int, bytes, float]]) -> None:
        super().__init__((LOCALHOST, 0), _Handler)
        self._decide = decide
        self._n = 0
        self.lock = threading.Lock()
        self.sent: Counter[Any] = Counter()

    def decide(self) -> tuple[int, bytes, float]:
        with self.lock:
            n = self._n
            self._n += 1
            status, body, delay = self._decide(n)
            self.sent[status] += 1
            self.sent[body] += 1
            if delay:
                self.sent["slow"] += 1
        return status, body, delay


@contextmanager
def http_server(decide: Callable[[int], tuple[int, bytes, float]]) -> Iterator[_HttpServer]:
    server = _HttpServer(decide)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def spec(port: int, **kwargs: Any) -> LoadSpec:
    base: dict[str, Any] = {"clients": 4, "rate": 100.0, "duration": 1.5, "timeout": 5.0}
    return LoadSpec(LOCALHOST, port, **{**base, **kwargs})


def no_failures(report: LoadReport) -> None:
    assert report.failed_total == 0, report.summary()


# ----------------------------------------------------------------------------- keep-alive


def test_a_healthy_keepalive_server_gets_every_request_on_one_connection_per_client() -> None:
    with scripted(lambda i: "ok") as server:
        report = run(spec(server.port))
    no_failures(report)
    assert report.requests == report.succeeded == server.did["answered"] > 4
    assert server.accepted == 4  # keep-alive: one connection per client
    assert report.reconnects == 0
    assert len(report.latencies_ms) == report.requests
    assert 0 < report.p50_ms <= report.p99_ms


def test_the_total_rate_never_exceeds_its_bound() -> None:
    with scripted(lambda i: "ok") as server:
        report = run(spec(server.port, clients=10, rate=50.0, duration=1.0))
    # one slot per 1/rate from the start: at most rate x duration + the first slot
    assert server.did["answered"] == report.requests <= 50.0 * report.duration_s + 1


def test_idle_connections_the_server_closed_are_reconnects_not_failures() -> None:
    # every connection answers one request and is then closed idle by the server
    with scripted(lambda i: "ok-then-close") as server:
        report = run(spec(server.port))
    no_failures(report)
    assert report.requests == server.did["answered"] == server.accepted
    # each client's first connection is new; every later request found its connection closed
    assert report.reconnects == server.accepted - 4 > 0


def test_a_request_racing_the_idle_close_is_retried_once_and_counted_as_reconnect() -> None:
    # the second request of every connection arrives and the server closes without reading it
    # (the kernel answers with a reset): the client retries once on a new connection
    with scripted(lambda i: "ok" if i == 0 else "close-unread") as server:
        report = run(spec(server.port))
    no_failures(report)
    assert report.requests == server.did["answered"]
    assert report.reconnects == server.did["close-unread"] > 0


def test_a_response_cut_by_eof_on_a_reused_connection_fails_and_is_not_retried() -> None:
    with scripted(lambda i: "ok" if i == 0 else "truncate") as server:
        report = run(spec(server.port))
    assert report.failed["reset"] == server.did["truncate"] > 0
    assert report.succeeded == server.did["answered"]
    assert report.reconnects == 0
    assert sum(report.failed.values()) == report.failed["reset"]


def test_a_reset_in_the_middle_of_a_response_fails() -> None:
    with scripted(lambda i: "reset-mid") as server:
        report = run(spec(server.port, rate=20.0))
    assert report.failed["reset"] == server.did["reset-mid"] == report.requests > 0
    assert report.succeeded == 0 and report.reconnects == 0


def test_error_statuses_fail_by_kind_as_the_server_sent_them() -> None:
    def decide(n: int) -> tuple[int, bytes, float]:
        return (503 if n % 3 == 1 else 404 if n % 7 == 2 else 200), BODY, 0.0

    with http_server(decide) as server:
        report = run(spec(server.server_port))
    assert report.failed["http_5xx"] == server.sent[503] > 0
    assert report.failed["http_4xx"] == server.sent[404] > 0
    assert report.succeeded == server.sent[200]
    assert report.requests == server.sent[200] + server.sent[503] + server.sent[404]


def test_a_response_slower_than_the_timeout_is_a_timeout() -> None:
    def decide(n: int) -> tuple[int, bytes, float]:
        return 200, BODY, 4.0 if n % 4 == 3 else 0.0

    with http_server(decide) as server:
        report = run(spec(server.server_port, timeout=2.0, rate=20.0, duration=2.0))
    assert report.failed["timeout"] == server.sent["slow"] > 0
    assert report.succeeded == server.sent[200] - server.sent["slow"]


def test_a_refused_connection_is_failed_refused() -> None:
    with socket.create_server((LOCALHOST, 0)) as sock:
        port = int(sock.getsockname()[1])
    report = run(spec(port, clients=2, rate=10.0, duration=0.5))
    assert report.failed["refused"] == report.requests > 0


def test_stop_ends_a_load_without_duration_and_finishes_its_requests() -> None:
    with scripted(lambda i: "ok") as server:
        load = Load(spec(server.port, duration=None)).start()
        time.sleep(0.5)
        load.stop()
        report = load.wait()
    no_failures(report)
    assert report.requests == server.did["answered"] > 0
    assert report.load_start > 0 and report.load_end > 0  # os.getloadavg(): 1 minute average


# ------------------------------------------------------------------- connection per request


def test_connection_per_request_counts_the_split_field_as_the_server_sent_it() -> None:
    bodies = [b'{"host":"pod-a"}', b'{"host":"pod-b"}', b'{"host":"pod-b"}']

    def decide(n: int) -> tuple[int, bytes, float]:
        return 200, bodies[n % 3], 0.0

    with http_server(decide) as server:
        report = run(spec(server.server_port, per_request=True, split_field="host"))
    no_failures(report)
    assert report.split == {"pod-a": server.sent[bodies[0]], "pod-b": server.sent[bodies[1]]}
    assert report.requests == sum(report.split.values())


def test_connection_per_request_opens_one_connection_per_request() -> None:
    with scripted(lambda i: "ok") as server:
        report = run(spec(server.port, per_request=True))
    no_failures(report)
    assert server.accepted == server.did["answered"] == report.requests
    assert report.reconnects == 0


# ------------------------------------------------------------------------- targets, helpers


@pytest.mark.parametrize("host", ["192.0.2.1", "10.0.0.1", "8.8.8.8", "10.96.0.1", "::2"])
def test_addresses_outside_the_run_are_refused_before_any_socket(host: str) -> None:
    with pytest.raises(LoadError, match=f"host {host} is not allowed"):
        Load(LoadSpec(host, 80))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.245.0.12", "10.245.129.7"])
def test_loopback_and_the_runs_own_network_are_allowed(host: str) -> None:
    check_target(host)


def test_the_service_range_is_allowed_only_from_a_node_namespace() -> None:
    with pytest.raises(LoadError):
        check_target("10.96.0.20")
    check_target("10.96.0.20", netns="ae2e-n0")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clients", 0, "clients must be in 1-200"),
        ("rate", 0.0, "rate must be in"),
        ("duration", -1.0, "duration must be in"),
        ("path", "x", "path must be an absolute path"),
        ("port", 0, "port must be in 1-65535"),
    ],
)
def test_a_bad_setting_is_named(field: str, value: object, message: str) -> None:
    with pytest.raises(LoadError, match=message):
        Load(dataclasses.replace(LoadSpec(LOCALHOST, 8080), **{field: value}))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("n", "p", "alpha"), [(10, 0.5, 0.05), (20, 0.1, 0.05), (400, 0.25, 1e-3)])
def test_binomial_bounds_are_the_exact_equal_tailed_acceptance_region(
    n: int, p: float, alpha: float
) -> None:
    lo, hi = binomial_bounds(n, p, alpha)
    # the definition, from the binomial distribution directly: each tail <= alpha/2, and one
    # more count on either side would exceed it
    below = _binomial_cdf(lo - 1, n, p) if lo > 0 else 0.0
    above = 1 - _binomial_cdf(hi, n, p)
    assert below <= alpha / 2 and above <= alpha / 2 + 1e-12
    assert _binomial_cdf(lo, n, p) > alpha / 2
    assert 1 - _binomial_cdf(hi - 1, n, p) > alpha / 2


def test_binomial_bounds_match_the_textbook_region() -> None:
    # Bin(10, 0.5): P(K <= 1) = 0.0107, P(K <= 2) = 0.0547: the 5 % region is 2..8
    assert binomial_bounds(10, 0.5, 0.05) == (2, 8)
    assert binomial_bounds(50, 0.0, 0.01) == (0, 0)
    assert binomial_bounds(50, 1.0, 0.01) == (50, 50)


# ----------------------------------------------------------------------------------- the CLI


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "e2e.load", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_refuses_an_outside_address_with_one_error_line_and_exit_2() -> None:
    out, err = _cli("192.0.2.1", "80", "--duration", "1").communicate(timeout=60)
    assert err.startswith("error: host 192.0.2.1 is not allowed")
    assert "Traceback" not in err and out == ""


def test_cli_stops_on_sigterm_and_prints_the_report_as_json() -> None:
    with scripted(lambda i: "ok") as server:
        proc = _cli(LOCALHOST, str(server.port), "--duration", "120", "--clients", "2",
                    "--rate", "50")  # fmt: skip
        deadline = time.monotonic() + 60
        while server.did["answered"] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        data = json.loads(out)
        assert data["requests"] == server.did["answered"] >= 5
        assert set(data["failed"]) == set(FAILED_KINDS)


@pytest.mark.parametrize("netns", ["ae2e-n99", "default", "../ae2e-n0", "ae2e-n0/.."])
def test_a_netns_that_is_not_an_existing_node_namespace_of_the_run_is_refused(netns: str) -> None:
    with pytest.raises(LoadError, match="netns must be an existing namespace ae2e-n<i>"):
        Load(LoadSpec("10.96.0.20", 80, netns=netns))

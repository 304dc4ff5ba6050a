"""A bounded HTTP/1.1 load generator for the e2e tiers (standard library only, threads).

`Load` runs N clients (default 20) against one address and port at a bounded total rate (default
300 requests per second): every request waits for the next slot of one shared pacer, so the rate
never exceeds the bound even after a stall. It stops by itself after `duration` seconds, or when
`stop()` is called (`duration=None`). A request in flight at the stop is finished.

Where it may send traffic (checked in code, `check_target`): loopback, the run's own addresses
(10.245.0.0/16: the real nodes, their pods, the host bridge; e2e/realnode/layout.py), and the
cluster's service range only from inside one of the run's node network namespaces (where the
node's kube-proxy rewrites it). Anything else is refused before a socket is opened: never a kwok
node or pod address, never an address off this machine.

Two modes:

- keep-alive (default): each client holds one HTTP/1.1 connection and sends its requests on it,
  opening a new one when the server closed it (``Connection: close`` or EOF);
- connection per request (``per_request=True``): each request on a new connection with
  ``Connection: close``, so a Service's load balancing (kube-proxy picks an endpoint per
  connection) decides each one; with ``split_field`` the responses are counted by that field of
  their JSON body (``host``: the app's pod, see app/server) to measure a traffic split.

Classification of each request (what a user of the service sees):

- success: a complete response with a 2xx status;
- failed, by kind: ``http_5xx``, ``http_4xx`` (the generator only sends valid GETs to a route
  the app serves, so a 4xx is the server's fault too), ``http_other`` (1xx/3xx), ``timeout`` (no
  complete response within `timeout` seconds of the request's start), ``reset`` (the connection
  was closed or reset after the request was sent and before the full response: mid-response, or
  before any byte on a fresh connection), ``refused`` (a new connection could not be opened:
  refused, unreachable), ``protocol`` (a response that is not HTTP/1.x);
- reconnect (not a failure, counted separately): the server had closed an idle keep-alive
  connection before the request went out. Detected as real clients do: before reusing a
  connection it is polled (readable with EOF, a reset, or unsolicited bytes: urllib3's
  `is_connection_dropped`), and a request on a *reused* connection that gets EOF or a reset
  before any response byte is retried once on a new connection (Go net/http's retry of an
  idempotent request after "server closed idle connection"). A client cannot tell that race
  from a server that read the request and died without a byte; like Go, it retries once, and the
  retry's own failure counts as failed. A request whose response had started never retries.

The report (`LoadReport`): requests (finished: success + failed), failed by kind, reconnects,
latency p50/p99 of the successful requests (nearest rank, milliseconds, from the first attempt's
start to the last byte, a reconnect included), the split counts, and the machine's load
average (1 minute) at the start and the end.

With ``netns`` (one of the run's node network namespaces) every client thread enters that
namespace first (setns(2) is per thread), so the test process itself can load a ClusterIP
through that node's kube-proxy. ``python -m e2e.load HOST PORT [--duration S] [--netns NAME]
...`` prints the report as JSON; SIGTERM/SIGINT stop it early and still print the report.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import ipaddress
import json
import math
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from e2e.cluster import SERVICE_CIDR
from e2e.realnode.layout import NETNS_PREFIX

LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
RUN_NETWORK: Final = ipaddress.ip_network("10.245.0.0/16")
SERVICE_NETWORK: Final = ipaddress.ip_network(SERVICE_CIDR)
NETNS_DIR: Final = Path("/run/netns")
_CLONE_NEWNET: Final = 0x40000000  # <linux/sched.h>

DEFAULT_CLIENTS: Final = 20
DEFAULT_RATE: Final = 300.0
MAX_CLIENTS: Final = 200
MAX_RATE: Final = 2000.0
MAX_DURATION: Final = 3600.0
MAX_HEAD: Final = 65536
MAX_BODY: Final = 1 << 20

SUCCESS: Final = "success"
FAILED_KINDS: Final = ("http_5xx", "http_4xx", "http_other", "timeout", "reset", "refused",
                       "protocol")  # fmt: skip


class LoadError(ValueError):
    """A load specification outside its allowed values (the message names the setting)."""


def check_netns(name: str) -> None:
    """`name` must be one of the run's node network namespaces (``ae2e-n<i>``) and exist."""
    if re.fullmatch(rf"{NETNS_PREFIX}[0-9]+", name) is None or not (NETNS_DIR / name).exists():
        raise LoadError(f"netns must be an existing namespace {NETNS_PREFIX}<i> of the run: {name}")


def enter_netns(name: str) -> None:
    """Move the calling thread, and only it, into the run's node network namespace `name`
    (setns(2) with CLONE_NEWNET reassociates the calling thread); sockets it opens afterwards
    live there."""
    check_netns(name)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({name}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def current_run_netns() -> str | None:
    """The name of the run's node network namespace (``ae2e-n<i>``) the calling thread is in,
    if any: the one whose /run/netns file is the same namespace as /proc/thread-self/ns/net."""
    try:
        mine = os.stat("/proc/thread-self/ns/net")
        names = sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(NETNS_PREFIX))
    except OSError:
        return None
    for name in names:
        try:
            other = os.stat(NETNS_DIR / name)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (mine.st_dev, mine.st_ino):
            return name
    return None


def check_target(host: str, netns: str | None = None) -> None:
    """Refuse any address the load may not reach (module docstring). `netns`: the run's node
    namespace the caller is in (`current_run_netns()`), which makes the service range allowed."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise LoadError(f"host must be an IP address literal, got {host!r}") from None
    if any(address in net for net in LOOPBACK) or address in RUN_NETWORK:
        return
    if address in SERVICE_NETWORK and netns is not None:
        return
    raise LoadError(
        f"host {host} is not allowed: loopback, {RUN_NETWORK} (the run's own network namespaces)"
        f", or {SERVICE_NETWORK} from inside a node namespace {NETNS_PREFIX}<i> only"
        + ("" if netns is None else f" (in {netns})")
    )


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how fast and for how long."""

    host: str
    """IP address literal (see `check_target`)."""
    port: int
    path: str = "/"
    """Request target of every GET (absolute path, with an optional query)."""
    clients: int = DEFAULT_CLIENTS
    """Concurrent clients, each with its own connection."""
    rate: float = DEFAULT_RATE
    """Upper bound of the total request rate (requests per second, all clients together)."""
    duration: float | None = 30.0
    """Seconds until the load stops by itself; None: until `Load.stop()`."""
    timeout: float = 5.0
    """Seconds a request may take (connect to last byte) before it counts as a timeout."""
    per_request: bool = False
    """A new connection per request (``Connection: close``) instead of keep-alive."""
    split_field: str | None = None
    """Count responses by this top-level field of their JSON body."""
    netns: str | None = None
    """Send from inside this node network namespace of the run (``ae2e-n<i>``): each client
    thread enters it (`enter_netns`), so a ClusterIP goes through that node's kube-proxy."""

    def validate(self) -> None:
        if self.netns is not None:
            check_netns(self.netns)
        check_target(self.host, self.netns or current_run_netns())
        if not 1 <= self.port <= 65535:
            raise LoadError(f"port must be in 1-65535, got {self.port}")
        if not self.path.startswith("/") or any(c in self.path for c in " \r\n"):
            raise LoadError(f"path must be an absolute path without spaces, got {self.path!r}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise LoadError(f"clients must be in 1-{MAX_CLIENTS}, got {self.clients}")
        if not 0 < self.rate <= MAX_RATE:
            raise LoadError(f"rate must be in (0, {MAX_RATE:g}] requests/s, got {self.rate}")
        if self.duration is not None and not 0 < self.duration <= MAX_DURATION:
            raise LoadError(f"duration must be in (0, {MAX_DURATION:g}] s, got {self.duration}")
        if not 0 < self.timeout <= 60:
            raise LoadError(f"timeout must be in (0, 60] s, got {self.timeout}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def binomial_bounds(n: int, p: float, alpha: float) -> tuple[int, int]:
    """Acceptance region [lo, hi] of the exact two-sided binomial test (equal tails): a count of
    successes in `n` independent trials of probability `p` is below lo with probability at most
    alpha/2 and above hi with probability at most alpha/2. A traffic split measured with a
    connection per request is such a count (kube-proxy picks an endpoint uniformly at random per
    connection), so a count outside [lo, hi] contradicts `p` at false-alarm rate `alpha`."""
    if n < 0 or not 0.0 <= p <= 1.0 or not 0.0 < alpha < 1.0:
        raise LoadError(
            f"binomial_bounds needs n >= 0, p in [0, 1], alpha in (0, 1): {n} {p} {alpha}"
        )
    if p in (0.0, 1.0):
        return (0, 0) if p == 0.0 else (n, n)

    def pmf(k: int) -> float:
        log = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
               + k * math.log(p) + (n - k) * math.log1p(-p))  # fmt: skip
        return math.exp(log)

    lo, tail = 0, 0.0
    while lo < n and tail + pmf(lo) <= alpha / 2:
        tail += pmf(lo)
        lo += 1
    hi, tail = n, 0.0
    while hi > 0 and tail + pmf(hi) <= alpha / 2:
        tail += pmf(hi)
        hi -= 1
    return lo, hi


@dataclass
class LoadReport:
    """What happened (module docstring: the classification)."""

    requests: int = 0
    succeeded: int = 0
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILED_KINDS, 0))
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    split: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    load_start: float = 0.0
    load_end: float = 0.0
    errors: list[str] = field(default_factory=list)
    """The first few failure details (kind: what happened), for the test's message."""

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    def figures(self, prefix: str) -> dict[str, float]:
        """Stable figure names under `prefix` (e.g. ``realnode.traffic.image_bump``)."""
        out = {
            f"{prefix}.requests": float(self.requests),
            f"{prefix}.failed": float(self.failed_total),
            f"{prefix}.reconnects": float(self.reconnects),
            f"{prefix}.p50_ms": round(self.p50_ms, 2),
            f"{prefix}.p99_ms": round(self.p99_ms, 2),
            f"{prefix}.load_avg_start": self.load_start,
            f"{prefix}.load_avg_end": self.load_end,
        }
        return {k: v for k, v in out.items() if not math.isnan(v)}

    def summary(self) -> str:
        failed = ", ".join(f"{k} {v}" for k, v in self.failed.items() if v) or "none"
        return (
            f"{self.requests} requests in {self.duration_s:.1f} s, failed {self.failed_total} "
            f"({failed}), reconnects {self.reconnects}, p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, load average {self.load_start:.2f} -> {self.load_end:.2f}"
            + (f", split {dict(sorted(self.split.items()))}" if self.split else "")
            + (f"; first errors: {self.errors}" if self.errors else "")
        )

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["latencies_ms"] = [round(x, 3) for x in self.latencies_ms]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadReport:
        return cls(**data)


class _Failed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class _ClosedBeforeResponse(Exception):
    """EOF or reset after the request was sent, before any response byte."""


@dataclass
class _Response:
    status: int
    body: bytes
    close: bool


class _Pacer:
    """One slot per request, at most `rate` per second: a slot is never earlier than the
    previous one plus 1/rate, nor in the past (a stall is not made up with a burst)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def slot(self) -> float:
        with self._lock:
            slot = max(self._next, time.monotonic())
            self._next = slot + self._interval
            return slot


class _Connection:
    """One HTTP/1.1 client connection (keep-alive), raw socket, its own response parser."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.sock: socket.socket | None = None
        self.used = 0  # requests answered on this socket

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.used = 0

    def open(self, deadline: float) -> None:
        self.close()
        try:
            self.sock = socket.create_connection(
                (self.spec.host, self.spec.port), timeout=_remaining(deadline)
            )
        except TimeoutError as exc:
            raise _Failed("timeout", f"connect: {exc}") from None
        except OSError as exc:
            raise _Failed("refused", f"connect: {exc.strerror or type(exc).__name__}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def dropped(self) -> bool:
        """Whether the peer closed (or wrote unsolicited bytes to) this idle connection."""
        assert self.sock is not None
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def request(self, deadline: float) -> _Response:
        assert self.sock is not None
        close = "Connection: close\r\n" if self.spec.per_request else ""
        head = (
            f"GET {self.spec.path} HTTP/1.1\r\nHost: {self.spec.host}:{self.spec.port}\r\n"
            f"User-Agent: appstack-e2e-load\r\nAccept: application/json\r\n{close}\r\n"
        )
        try:
            self.sock.settimeout(_remaining(deadline))
            self.sock.sendall(head.encode())
        except TimeoutError:
            raise _Failed("timeout", "sending the request") from None
        except OSError as exc:  # EPIPE/ECONNRESET: the peer had closed it
            raise _ClosedBeforeResponse(str(exc)) from None
        return self._read(deadline)

    def _recv(self, deadline: float, got: int) -> bytes:
        assert self.sock is not None
        try:
            self.sock.settimeout(_remaining(deadline))
            data = self.sock.recv(65536)
        except TimeoutError:
            raise _Failed("timeout", f"after {got} response bytes") from None
        except OSError as exc:
            if got == 0:
                raise _ClosedBeforeResponse(str(exc)) from None
            raise _Failed("reset", f"after {got} response bytes: {exc}") from None
        if not data and got == 0:
            raise _ClosedBeforeResponse("EOF")
        return data

    def _read(self, deadline: float) -> _Response:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self._recv(deadline, len(buf))
            if not data:
                raise _Failed("reset", f"EOF after {len(buf)} bytes of the response head")
            buf += data
            if len(buf) > MAX_HEAD and b"\r\n\r\n" not in buf:
                raise _Failed("protocol", "response head too long")
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _Failed("protocol", f"status line {lines[0][:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked(rest, deadline, len(head) + 4)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise _Failed("protocol", f"Content-Length {length} too large")
            body = rest
            while len(body) < length:
                data = self._recv(deadline, len(head) + 4 + len(body))
                if not data:
                    raise _Failed("reset", f"EOF after {len(body)} of {length} body bytes")
                body += data
            body = body[:length]
        else:  # no length: the body runs to EOF
            close, body = True, rest
            while data := self._recv(deadline, len(head) + 4 + len(body)):
                body += data
                if len(body) > MAX_BODY:
                    raise _Failed("protocol", "body too large")
        return _Response(status, body, close)

    def _chunked(self, buf: bytes, deadline: float, offset: int) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in buf:
                data = self._recv(deadline, offset + len(buf))
                if not data:
                    raise _Failed("reset", "EOF inside a chunked body")
                buf += data
            size_line, _, buf = buf.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                raise _Failed("protocol", f"chunk size {size_line[:20]!r}") from None
            while len(buf) < size + 2:
                data = self._recv(deadline, offset + len(buf))
                if not data:
                    raise _Failed("reset", "EOF inside a chunk")
                buf += data
            if size == 0:
                return body  # (trailers are not used by the servers here)
            body += buf[:size]
            buf = buf[size + 2 :]
            if len(body) > MAX_BODY:
                raise _Failed("protocol", "body too large")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Failed("timeout", "request deadline passed")
    return left


class Load:
    """The running load (module docstring). Use as a context manager, or start()/stop()/wait()."""

    def __init__(self, spec: LoadSpec) -> None:
        spec.validate()
        self.spec = spec
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._report = LoadReport()
        self._pacer = _Pacer(spec.rate)
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._end: float | None = None

    def start(self) -> Load:
        self._report.load_start = os.getloadavg()[0]
        self._started = time.monotonic()
        if self.spec.duration is not None:
            self._end = self._started + self.spec.duration
        for i in range(self.spec.clients):
            thread = threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def succeeded(self) -> int:
        """Successful requests so far (while it runs)."""
        with self._lock:
            return self._report.succeeded

    def wait(self) -> LoadReport:
        """Wait for every client to finish (after the duration, or after stop()); the report."""
        for thread in self._threads:
            thread.join()
        self._report.duration_s = time.monotonic() - self._started
        self._report.load_end = os.getloadavg()[0]
        return self._report

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.wait()

    def _running(self) -> bool:
        return not self._stop.is_set() and (self._end is None or time.monotonic() < self._end)

    def _client(self) -> None:
        if self.spec.netns is not None:
            enter_netns(self.spec.netns)
        conn = _Connection(self.spec)
        try:
            while self._running():
                slot = self._pacer.slot()
                while (delay := slot - time.monotonic()) > 0:
                    if self._stop.wait(min(delay, 0.2)):
                        return
                if not self._running():
                    return
                self._one(conn)
        finally:
            conn.close()

    def _one(self, conn: _Connection) -> None:
        started = time.monotonic()
        deadline = started + self.spec.timeout
        reconnects = 0
        try:
            if conn.sock is not None and conn.used and conn.dropped():
                reconnects += 1  # the server closed the idle connection: noticed before sending
                conn.close()
            while True:
                reused = conn.sock is not None and conn.used > 0
                if conn.sock is None:
                    conn.open(deadline)
                try:
                    response = conn.request(deadline)
                    break
                except _ClosedBeforeResponse as exc:
                    conn.close()
                    if not reused or reconnects:
                        raise _Failed("reset", f"closed before the response: {exc}") from None
                    reconnects += 1  # closed idle connection raced the request: retry once
            conn.used += 1
            if response.close or self.spec.per_request:
                conn.close()
        except _Failed as exc:
            conn.close()
            self._record(None, started, reconnects, exc)
            return
        self._record(response, started, reconnects, None)

    def _record(
        self, response: _Response | None, started: float, reconnects: int, error: _Failed | None
    ) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        kind = error.kind if error is not None else None
        split_key = None
        if response is not None:
            status = response.status
            if 200 <= status < 300:
                kind = None
                if self.spec.split_field is not None:
                    split_key = _field(response.body, self.spec.split_field)
            elif 500 <= status < 600:
                kind = "http_5xx"
            elif 400 <= status < 500:
                kind = "http_4xx"
            else:
                kind = "http_other"
            detail = f"HTTP {status}"
        else:
            detail = str(error)
        with self._lock:
            report = self._report
            report.requests += 1
            report.reconnects += reconnects
            if kind is None:
                report.succeeded += 1
                report.latencies_ms.append(elapsed_ms)
                if split_key is not None:
                    report.split[split_key] = report.split.get(split_key, 0) + 1
            else:
                report.failed[kind] += 1
                if len(report.errors) < 10:
                    report.errors.append(detail)


def _field(body: bytes, name: str) -> str:
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError):
        return "<not json>"
    return "<missing>" if value is None else str(value)


def run(spec: LoadSpec) -> LoadReport:
    """Run `spec` to its end (it needs a duration) and return the report."""
    if spec.duration is None:
        raise LoadError("run() needs a duration (or use Load(...).start() and stop())")
    load = Load(spec).start()
    return load.wait()


@contextmanager
def running(spec: LoadSpec) -> Iterator[Load]:
    """Load while the block runs (`spec.duration` is the upper bound); stopped at its end."""
    load = Load(spec).start()
    try:
        yield load
    finally:
        load.stop()
        load.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.load", description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--path", default="/")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--per-request", action="store_true")
    parser.add_argument("--split-field")
    parser.add_argument("--netns", help="run inside this node namespace of the run")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        args.host,
        args.port,
        path=args.path,
        clients=args.clients,
        rate=args.rate,
        duration=args.duration,
        timeout=args.timeout,
        per_request=args.per_request,
        split_field=args.split_field,
        netns=args.netns,
    )
    try:
        load = Load(spec)
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: load.stop())
    report = load.start().wait()
    print(json.dumps(report.to_json()))
    print(report.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

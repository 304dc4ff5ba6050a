"""Behaviour of the reference service (app/server/), run as a real subprocess.

Every network call goes to 127.0.0.1 with a bounded timeout; every process started here is
killed in a fixture teardown. Read-only endpoint checks share one module-scoped process and
compare metric deltas; lifecycle checks each start their own process.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.server import (
    DURATION_BUCKETS,
    OTHER,
    ROUTES,
    Config,
    create_metrics,
    load_config,
    method_label,
    path_label,
)

REPO = Path(__file__).resolve().parents[2]
LOCALHOST = "127.0.0.1"
HTTP_TIMEOUT = 5.0
READY_TIMEOUT = 10.0
VERSION = "1.2.3-test"
SERVICE_ENV = (
    "HOST",
    "PORT",
    "METRICS_PORT",
    "SHUTDOWN_DELAY_SECONDS",
    "DRAIN_TIMEOUT_SECONDS",
    "APP_VERSION",
    "FAULT_ERROR_RATIO",
    "FAULT_NEVER_READY",
    "FAULT_CRASH_ON_START",
    "STARTUP_DELAY_SECONDS",
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Response:
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    stdout: Path
    stderr: Path

    def get(
        self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 5.0
    ) -> Response:
        return request(self.port, path, method, body=body, timeout=timeout)

    def samples(self) -> Samples:
        resp = request(self.metrics_port, "/metrics")
        assert resp.status == 200
        out: Samples = {}
        for family in text_string_to_metric_families(resp.body.decode()):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

    def log_events(self) -> list[dict[str, object]]:
        lines = self.stdout.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"service exited ({self.proc.returncode}) waiting for {what}: "
                    f"{self.stderr.read_text()}"
                )
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.02)
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


def service_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(overrides)
    return env


def launch(tmp: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp / "stdout.log", tmp / "stderr.log"
    with out.open("wb") as out_f, err.open("wb") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.server"],
            cwd=REPO,
            env=dict(env),
            stdout=out_f,
            stderr=err_f,
            stdin=subprocess.DEVNULL,
        )
    return proc, out, err


def start_service(tmp: Path, **overrides: str) -> Service:
    port, metrics_port = free_port(), free_port()
    while metrics_port == port:
        metrics_port = free_port()
    env = service_env(
        HOST=LOCALHOST,
        PORT=str(port),
        METRICS_PORT=str(metrics_port),
        APP_VERSION=VERSION,
        **overrides,
    )
    proc, out, err = launch(tmp, env)
    service = Service(proc, port, metrics_port, out, err)
    service.wait_until(
        lambda: service.get("/health/ready", timeout=1).status == 200, READY_TIMEOUT, "readiness"
    )
    # The readiness answer reaches the client before its handler leaves the in-flight count: a
    # test that waits for its own request to be in flight must not see that one instead.
    service.wait_until(
        lambda: service.samples()[("http_requests_in_flight", labels())] == 0,
        READY_TIMEOUT,
        "the readiness request to leave the in-flight count",
    )
    return service


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def delta(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Per-label-set increase of one sample name (only the label sets that changed)."""
    changed = {}
    for (sample_name, labels), value in after.items():
        if sample_name == name:
            diff = value - before.get((sample_name, labels), 0.0)
            if diff:
                changed[labels] = diff
    return changed


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


@dataclass
class BackgroundRequest:
    """One request running in a thread, so the test can signal the server meanwhile."""

    port: int
    path: str
    timeout: float = 15.0
    response: Response | None = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.response = request(self.port, self.path, timeout=self.timeout)
        except BaseException as exc:  # recorded for the test to inspect
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"request {self.path} still running after {timeout}s"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("service"), DRAIN_TIMEOUT_SECONDS="1")
    try:
        yield svc
    finally:
        stop(svc.proc)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start a dedicated service (for lifecycle tests); always killed at teardown."""
    started: list[Service] = []

    def _spawn(**overrides: str) -> Service:
        sub = tmp_path / f"svc{len(started)}"
        sub.mkdir()
        svc = start_service(sub, **overrides)
        started.append(svc)
        return svc

    try:
        yield _spawn
    finally:
        for svc in started:
            stop(svc.proc)


@pytest.fixture
def run_with_env(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run the service to completion with an environment that must make it exit on its own."""
    procs: list[subprocess.Popen[bytes]] = []

    def _run(**overrides: str) -> subprocess.CompletedProcess[str]:
        sub = tmp_path / f"run{len(procs)}"
        sub.mkdir()
        env = service_env(HOST=LOCALHOST, PORT=str(free_port()), METRICS_PORT=str(free_port()))
        env.update(overrides)
        proc, out, err = launch(sub, env)
        procs.append(proc)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("service kept running although its configuration is invalid")
        return subprocess.CompletedProcess(proc.args, code, out.read_text(), err.read_text())

    try:
        yield _run
    finally:
        for proc in procs:
            stop(proc)


# --------------------------------------------------------------------------- endpoints


def test_root_reports_service_name_and_version_as_json(service: Service) -> None:
    resp = service.get("/")
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    # host: the name of the host the process runs on (this one), the pod's name in Kubernetes
    assert resp.json() == {"service": "appstack", "version": VERSION, "host": socket.gethostname()}


def test_liveness_answers_200_ok(service: Service) -> None:
    resp = service.get("/health")
    assert (resp.status, resp.json()) == (200, {"status": "ok"})


def test_readiness_answers_200_while_serving(service: Service) -> None:
    resp = service.get("/health/ready")
    assert (resp.status, resp.json()) == (200, {"status": "ready"})


def test_head_answers_like_get_without_a_body(service: Service) -> None:
    get, head = service.get("/"), service.get("/", "HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == str(len(get.body))


@pytest.mark.parametrize("path", ["/nope", "/health/", "/metrics", "/health/ready/x"])
def test_unknown_path_answers_404(service: Service, path: str) -> None:
    resp = service.get(path)
    assert (resp.status, resp.json()) == (404, {"error": "not found"})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_answer_405_with_allow_header(
    service: Service, method: str
) -> None:
    resp = service.get("/health", method, body=b"{}")
    assert resp.status == 405
    assert resp.headers["allow"] == "GET, HEAD"


def test_sleep_waits_the_requested_milliseconds(service: Service) -> None:
    started = time.monotonic()
    resp = service.get("/sleep?ms=200")
    assert (resp.status, resp.json()) == (200, {"slept_ms": 200})
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("query", ["", "?ms=", "?ms=-1", "?ms=abc", "?ms=1.5", "?ms=1&ms=2"])
def test_sleep_rejects_a_missing_or_non_integer_ms_with_400(service: Service, query: str) -> None:
    assert service.get(f"/sleep{query}").status == 400


def test_metrics_port_serves_prometheus_text_on_metrics_only(service: Service) -> None:
    resp = request(service.metrics_port, "/metrics")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert request(service.metrics_port, "/").status == 404
    assert request(service.metrics_port, "/metrics", "POST").status == 405


def test_app_port_does_not_serve_metrics(service: Service) -> None:
    assert service.get("/metrics").status == 404


# --------------------------------------------------------------------------- metrics


def test_request_counter_increments_once_per_request_with_method_code_and_route(
    service: Service,
) -> None:
    before = service.samples()
    for _ in range(3):
        service.get("/")
    service.get("/health")
    service.get("/health")
    service.get("/health/ready")
    service.get("/health", "POST", body=b"x")
    service.get("/", "HEAD")
    after = service.samples()
    assert delta(before, after, "http_requests_total") == {
        labels(method="GET", code="200", path="/"): 3,
        labels(method="GET", code="200", path="/health"): 2,
        labels(method="GET", code="200", path="/health/ready"): 1,
        labels(method="POST", code="405", path="/health"): 1,
        labels(method="HEAD", code="200", path="/"): 1,
    }


def test_duration_histogram_counts_every_request_in_the_documented_buckets(
    service: Service,
) -> None:
    before = service.samples()
    service.get("/sleep?ms=30")
    service.get("/sleep?ms=0")
    service.get("/health/ready")
    after = service.samples()
    assert delta(before, after, "http_request_duration_seconds_count") == {
        labels(method="GET", path="/sleep"): 2,
        labels(method="GET", path="/health/ready"): 1,
    }
    sleep_buckets = {
        dict(lbls)["le"]: value
        for (name, lbls), value in after.items()
        if name == "http_request_duration_seconds_bucket"
        and dict(lbls)["path"] == "/sleep"
        and dict(lbls)["method"] == "GET"
    }
    assert set(sleep_buckets) == {*(str(b) for b in DURATION_BUCKETS), "+Inf"}
    count = after[("http_request_duration_seconds_count", labels(method="GET", path="/sleep"))]
    assert sleep_buckets["+Inf"] == count
    assert sleep_buckets["0.005"] < count  # the 30 ms sleep cannot land in the first bucket


def test_unknown_paths_are_all_labelled_other(service: Service) -> None:
    before = service.samples()
    for path in ("/a", "/b/c?x=1", "/health/", "/%2e%2e/etc/passwd"):
        service.get(path)
    after = service.samples()
    assert delta(before, after, "http_requests_total") == {
        labels(method="GET", code="404", path="other"): 4
    }
    seen_paths = {dict(lbls).get("path") for (name, lbls) in after if name.startswith("http_")}
    assert seen_paths <= {*ROUTES, OTHER, None}


def test_query_string_is_not_part_of_the_path_label(service: Service) -> None:
    before = service.samples()
    service.get("/sleep?ms=1")
    service.get("/?utm=1")
    after = service.samples()
    assert delta(before, after, "http_requests_total") == {
        labels(method="GET", code="200", path="/sleep"): 1,
        labels(method="GET", code="200", path="/"): 1,
    }


def test_nonstandard_method_is_labelled_other(service: Service) -> None:
    before = service.samples()
    assert service.get("/", "BREW").status == 405
    after = service.samples()
    assert delta(before, after, "http_requests_total") == {
        labels(method="other", code="405", path="/"): 1
    }


def test_build_info_gauge_reports_the_version(service: Service) -> None:
    assert service.samples()[("app_build_info", labels(version=VERSION))] == 1


def test_metrics_scrapes_are_not_counted_as_requests(service: Service) -> None:
    before = service.samples()
    after = service.samples()
    assert delta(before, after, "http_requests_total") == {}


def test_label_helpers_bound_cardinality() -> None:
    assert [path_label(p) for p in sorted(ROUTES)] == sorted(ROUTES)
    assert {path_label(p) for p in ("/x", "", "/health/", "/sleep/1", "/metrics")} == {OTHER}
    assert method_label("GET") == "GET"
    assert {method_label(m) for m in ("BREW", "get", None, "")} == {OTHER}


# --------------------------------------------------------------------------- lifecycle


def test_started_is_logged_as_one_json_line(service: Service) -> None:
    started = [e for e in service.log_events() if e["event"] == "started"]
    assert len(started) == 1
    assert started[0]["port"] == service.port
    assert started[0]["metrics_port"] == service.metrics_port
    assert started[0]["version"] == VERSION


def test_sigterm_fails_readiness_while_in_flight_request_completes_then_exits_0(
    spawn: Callable[..., Service],
) -> None:
    svc = spawn(SHUTDOWN_DELAY_SECONDS="1", DRAIN_TIMEOUT_SECONDS="5")
    slow = BackgroundRequest(svc.port, "/sleep?ms=1500")
    svc.wait_until(
        lambda: svc.samples()[("http_requests_in_flight", labels())] == 1, 5, "in-flight request"
    )
    signalled = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    svc.wait_until(lambda: svc.get("/health/ready", timeout=1).status == 503, 0.9, "503")
    assert svc.get("/health/ready").json() == {"status": "draining"}
    assert svc.get("/health").status == 200  # liveness stays up: no restart while draining
    slow.join(timeout=5)
    assert slow.error is None
    assert slow.response is not None
    assert (slow.response.status, slow.response.json()) == (200, {"slept_ms": 1500})
    assert svc.proc.wait(timeout=8) == 0
    assert time.monotonic() - signalled < 1 + 5
    events = svc.log_events()
    assert [e["event"] for e in events] == ["started", "draining", "stopped"]
    assert events[1]["signal"] == "SIGTERM"
    assert events[2]["drained"] is True


def test_listener_stops_accepting_after_shutdown_delay_while_in_flight_requests_finish(
    spawn: Callable[..., Service],
) -> None:
    svc = spawn(SHUTDOWN_DELAY_SECONDS="0.2", DRAIN_TIMEOUT_SECONDS="5")
    slow = BackgroundRequest(svc.port, "/sleep?ms=2000")
    svc.wait_until(
        lambda: svc.samples()[("http_requests_in_flight", labels())] == 1, 5, "in-flight request"
    )
    svc.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            with socket.create_connection((LOCALHOST, svc.port), timeout=1):
                return False
        except ConnectionRefusedError:
            return True

    svc.wait_until(refused, 1.5, "the app listener to refuse connections")
    assert slow.thread.is_alive()  # still draining when the listener is already closed
    slow.join(timeout=5)
    assert slow.response is not None
    assert slow.response.status == 200
    assert svc.proc.wait(timeout=8) == 0


def test_drain_timeout_bounds_shutdown_when_a_request_outlives_it(
    spawn: Callable[..., Service],
) -> None:
    svc = spawn(SHUTDOWN_DELAY_SECONDS="0", DRAIN_TIMEOUT_SECONDS="0.5")
    slow = BackgroundRequest(svc.port, "/sleep?ms=10000")
    svc.wait_until(
        lambda: svc.samples()[("http_requests_in_flight", labels())] == 1, 5, "in-flight request"
    )
    signalled = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    assert svc.proc.wait(timeout=5) == 0
    assert time.monotonic() - signalled < 3
    slow.join(timeout=5)
    assert slow.response is None  # abandoned: the connection died with the process
    stopped = svc.log_events()[-1]
    assert stopped["event"] == "stopped"
    assert (stopped["drained"], stopped["in_flight_abandoned"]) == (False, 1)


def test_sigint_drains_and_exits_0_like_sigterm(spawn: Callable[..., Service]) -> None:
    svc = spawn()
    svc.proc.send_signal(signal.SIGINT)
    assert svc.proc.wait(timeout=5) == 0
    events = svc.log_events()
    assert [e["event"] for e in events] == ["started", "draining", "stopped"]
    assert events[1]["signal"] == "SIGINT"


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("PORT", "70000", "1-65535"),
        ("PORT", "http", "1-65535"),
        ("PORT", "", "1-65535"),
        ("METRICS_PORT", "0", "1-65535"),
        ("DRAIN_TIMEOUT_SECONDS", "-1", "0-300"),
        ("DRAIN_TIMEOUT_SECONDS", "301", "0-300"),
        ("SHUTDOWN_DELAY_SECONDS", "nan", "0-300"),
        ("HOST", "localhost", "address literal"),
        ("APP_VERSION", "", "1-128 printable"),
        ("APP_VERSION", "1.0\x1b[2J", "1-128 printable"),
        ("FAULT_ERROR_RATIO", "1.5", "ratio in 0-1"),
        ("FAULT_ERROR_RATIO", "half", "ratio in 0-1"),
    ],
)
def test_invalid_env_exits_2_with_one_error_line_naming_the_variable(
    run_with_env: Callable[..., subprocess.CompletedProcess[str]],
    variable: str,
    value: str,
    allowed: str,
) -> None:
    result = run_with_env(**{variable: value})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {variable} ")
    assert allowed in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_metrics_port_equal_to_port_exits_2(
    run_with_env: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run_with_env(PORT="18123", METRICS_PORT="18123")
    assert result.returncode == 2
    assert result.stderr.startswith("error: METRICS_PORT ")
    assert "Traceback" not in result.stderr


def test_port_already_in_use_exits_1_with_one_error_line(
    run_with_env: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((LOCALHOST, 0))
        busy.listen()
        result = run_with_env(PORT=str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot listen on ")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_defaults_match_the_documented_ports_and_timeouts() -> None:
    config = load_config({})
    assert (config.host, config.port, config.metrics_port) == ("0.0.0.0", 8080, 9090)
    assert (config.shutdown_delay_seconds, config.drain_timeout_seconds) == (0.0, 20.0)
    assert config.version == "dev"


@pytest.mark.parametrize("version", ["_v1.2.3+build.4", "0f3c2a9d1b7e", "1.0 beta", "x" * 128])
def test_app_version_accepts_any_printable_tag_or_sha_up_to_128_chars(version: str) -> None:
    assert load_config({"APP_VERSION": version}).version == version


def test_an_unexpected_handler_error_answers_500_and_is_counted_as_5xx() -> None:
    # in-process: a fault cannot be injected into the subprocess
    from app.server.handlers import AppHandler, Server
    from app.server.lifecycle import ServiceState

    class Broken(AppHandler):
        def dispatch(self) -> None:
            self.route = "/"
            raise RuntimeError("boom")

    state = ServiceState(Config(), create_metrics("t"))
    httpd = Server((LOCALHOST, 0), Broken, state)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        resp = request(httpd.server_port, "/")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert (resp.status, resp.json()) == (500, {"error": "internal error"})
    counted = state.metrics.registry.get_sample_value(
        "http_requests_total", {"method": "GET", "code": "500", "path": "/"}
    )
    assert counted == 1


# --------------------------------------------------------------------------- fault switches
# (issue 29: a bad version caught by the rollout; the switches are off unless set)


def test_fault_switches_are_off_by_default() -> None:
    config = load_config({})
    assert (config.fault_never_ready, config.fault_crash_on_start) == (False, False)
    assert config.startup_delay_seconds == 0.0


def test_never_ready_keeps_readiness_503_while_liveness_answers_200(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = service_env(
        HOST=LOCALHOST, PORT=str(port), METRICS_PORT=str(metrics_port), FAULT_NEVER_READY="true"
    )
    proc, _, _ = launch(tmp_path, env)
    try:
        svc = Service(proc, port, metrics_port, tmp_path / "stdout.log", tmp_path / "stderr.log")
        svc.wait_until(lambda: svc.get("/health", timeout=1).status == 200, READY_TIMEOUT, "live")
        # A readiness probe (kubelet: any status outside 200-399 fails) fails on every try.
        for _ in range(3):
            ready = svc.get("/health/ready")
            assert ready.status == 503 and ready.json() == {"status": "never-ready"}
        assert svc.get("/").status == 200
    finally:
        stop(proc)


def test_crash_on_start_exits_3_before_listening_with_one_error_line(
    run_with_env: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run_with_env(FAULT_CRASH_ON_START="true")
    assert result.returncode == 3
    assert result.stderr.splitlines() == ["error: crashing on start (FAULT_CRASH_ON_START=true)"]
    events = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert events == ["crashed"], "it must exit before `started` (nothing listens)"


def test_startup_delay_holds_the_listener_back_then_serves(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = service_env(
        HOST=LOCALHOST, PORT=str(port), METRICS_PORT=str(metrics_port), STARTUP_DELAY_SECONDS="1.5"
    )
    started = time.monotonic()
    proc, out, _ = launch(tmp_path, env)
    try:
        svc = Service(proc, port, metrics_port, out, tmp_path / "stderr.log")
        svc.wait_until(
            lambda: svc.get("/health/ready", timeout=1).status == 200, READY_TIMEOUT, "ready"
        )
        assert time.monotonic() - started >= 1.5
        # `started` is logged just after the listeners serve: wait for the line
        svc.wait_until(lambda: len(svc.log_events()) >= 2, READY_TIMEOUT, "the started line")
        assert [e["event"] for e in svc.log_events()][:2] == ["starting", "started"]
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("FAULT_NEVER_READY", "yes", "true or false"),
        ("FAULT_CRASH_ON_START", "1", "true or false"),
        ("STARTUP_DELAY_SECONDS", "301", "0-300"),
    ],
)
def test_a_bad_fault_switch_exits_2_naming_it(
    run_with_env: Callable[..., subprocess.CompletedProcess[str]],
    variable: str,
    value: str,
    allowed: str,
) -> None:
    result = run_with_env(**{variable: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {variable} ") and allowed in result.stderr

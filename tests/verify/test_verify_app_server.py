"""`stackctl verify` against the real reference service (app/server/), started locally on
loopback: ready, becoming ready, draining, refusing connections, hung (SIGSTOP) and slow to
answer. No HTTP mock: every answer comes from the server the stack deploys."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stackctl.cli import main
from stackctl.ops import verify
from stackctl.ops.operator import Console
from stackctl.ops.verify import Budget, check_app, root_url, run_verify

REPO = Path(__file__).resolve().parents[2]
FAST = Budget(timeout=4.0, request_timeout=0.5, interval=0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int

    @property
    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health/ready"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)


def start_server(port: int | None = None, **env: str) -> Server:
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.server"],
        cwd=REPO,
        env={
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_PORT": str(free_port()),
            "APP_VERSION": env.pop("APP_VERSION", "1.2.3"),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the `started` log line: both listeners are up
    assert json.loads(line)["event"] == "started", line
    return Server(proc, port)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = start_server()
    yield srv
    srv.stop()


def run(urls: dict[str, str], budget: Budget = FAST, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = run_verify("dev", urls, budget, console=Console(out=out), **kwargs)
    return code, out.getvalue()


def test_ready_app_passes_on_the_first_attempt(server: Server) -> None:
    code, text = run({"web": server.ready_url})
    assert code == 0, text
    assert f"web  ok      {server.ready_url}  200 ready (attempt 1," in text
    assert "verify dev: all 1 app(s) ready" in text


def test_app_that_becomes_ready_is_retried_until_it_answers() -> None:
    port = free_port()
    started: list[Server] = []
    timer = threading.Timer(1.0, lambda: started.append(start_server(port)))
    timer.start()
    try:
        result = check_app("web", f"http://127.0.0.1:{port}/health/ready", FAST)
    finally:
        timer.join()
        for srv in started:
            srv.stop()
    assert result.ready, result
    assert result.attempts > 1  # refused at first, then ready


def test_draining_app_fails_with_its_readiness_answer() -> None:
    srv = start_server(SHUTDOWN_DELAY_SECONDS="30")
    try:
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.stdout is not None
        assert json.loads(srv.proc.stdout.readline())["event"] == "draining"
        code, text = run({"web": srv.ready_url}, Budget(1.0, 0.5, 0.2))
    finally:
        srv.stop()
    assert code == 1
    assert "web  FAILED" in text and "503 draining" in text
    assert "verify dev: FAILED, not ready: web" in text


def test_refused_connection_fails_within_the_overall_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}/health/ready"
    started = time.monotonic()
    code, text = run({"web": url}, Budget(1.5, 0.5, 0.2))
    assert code == 1
    assert "connection refused" in text
    assert time.monotonic() - started < 5


def test_hung_app_times_out_per_request(server: Server) -> None:
    server.proc.send_signal(signal.SIGSTOP)  # the kernel still accepts; nothing answers
    started = time.monotonic()
    code, text = run({"web": server.ready_url}, Budget(1.5, 0.4, 0.2))
    assert code == 1
    assert "no answer within" in text
    assert time.monotonic() - started < 6


def test_slow_app_that_recovers_within_the_timeout_passes(server: Server) -> None:
    server.proc.send_signal(signal.SIGSTOP)
    threading.Timer(1.0, lambda: server.proc.send_signal(signal.SIGCONT)).start()
    result = check_app("web", server.ready_url, Budget(5.0, 0.4, 0.2))
    assert result.ready, result
    assert result.attempts > 1


def test_one_line_per_app_and_exit_1_when_any_is_not_ready(server: Server) -> None:
    refused = f"http://127.0.0.1:{free_port()}/health/ready"
    code, text = run({"web": server.ready_url, "api": refused}, Budget(1.0, 0.3, 0.2))
    assert code == 1
    lines = [ln for ln in text.splitlines() if ln.startswith(("web ", "api "))]
    assert [ln.split()[0:2] for ln in lines] == [["api", "FAILED"], ["web", "ok"]]


def test_expected_version_is_read_from_the_app(server: Server) -> None:
    assert root_url(server.ready_url) == f"http://127.0.0.1:{server.port}/"
    ok = check_app("web", server.ready_url, FAST, expect_version="1.2.3")
    assert ok.ready and "version 1.2.3" in ok.detail
    waiting = check_app("web", server.ready_url, Budget(0.6, 0.3, 0.2), expect_version="9.9.9")
    assert not waiting.ready and "waiting for 9.9.9" in waiting.detail


def test_pending_load_balancer_fails_without_a_request() -> None:
    result = check_app("web", "", FAST)
    assert not result.ready and result.attempts == 0 and "pending" in result.detail


def test_cli_reads_the_stack_outputs(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    seen: list[str] = []

    def outputs(stack: str, _project: Path) -> dict[str, Any]:
        seen.append(stack)
        return {"health_urls": {"web": server.ready_url}, "namespace": "appstack"}

    monkeypatch.setattr(verify, "OUTPUTS", outputs)
    assert main(["verify", "prod", "--timeout", "3", "--interval", "0.2"]) == 0
    assert seen == ["prod"]
    assert "web  ok" in capsys.readouterr().out
    # no health_urls output: bad input, exit 2, no traceback
    monkeypatch.setattr(verify, "OUTPUTS", lambda *_a: {"namespace": "appstack"})
    assert main(["verify", "prod"]) == 2
    assert "has no `health_urls` output" in capsys.readouterr().err
    # --no-outputs checks only the given URLs
    monkeypatch.setattr(verify, "OUTPUTS", lambda *_a: pytest.fail("outputs read"))
    args = ["verify", "dev", "--no-outputs", "--url", f"web={server.ready_url}", "--timeout", "3"]
    assert main(args) == 0

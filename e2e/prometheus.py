"""A real Prometheus server (Debian `prometheus` 2.42, /usr/bin/prometheus) on loopback, for
`make e2e-monitoring`: it scrapes processes of the reference app and evaluates the stack's
rendered recording and alerting rules.

A stand-in for the operator path, named as such: the scrape targets are static (the app's
metrics port on 127.0.0.1) with the labels a ServiceMonitor gives them (`job` = the app name,
`namespace`), instead of prometheus-operator discovering the rendered ServiceMonitor on real
nodes. Nothing here connects off the machine: Prometheus listens on 127.0.0.1 and scrapes only
127.0.0.1; it has no Alertmanager.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

PROMETHEUS = "/usr/bin/prometheus"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ScrapeTarget:
    """One app as a ServiceMonitor would present it: job = the app name, its namespace."""

    job: str
    namespace: str
    port: int


class Prometheus:
    """`with Prometheus(root, targets, rules_text, interval) as prom:` a running server."""

    def __init__(
        self, root: Path, targets: list[ScrapeTarget], rules_text: str, interval: str = "1s"
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.targets = targets
        self.rules_text = rules_text
        self.interval = interval
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        """prometheus.yml: global scrape and evaluation intervals, the rules file, one static
        job per app labelled like the ServiceMonitor's targets."""
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(self.root / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": t.job,
                    "static_configs": [
                        {"targets": [f"{LOOPBACK}:{t.port}"], "labels": {"namespace": t.namespace}}
                    ],
                }
                for t in self.targets
            ],
        }

    def __enter__(self) -> Prometheus:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "rules.yml").write_text(self.rules_text, encoding="utf-8")
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        log = (self.root / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._wait_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root / "data", ignore_errors=True)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "prometheus exited: " + (self.root / "prometheus.log").read_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout:.0f}s")

    def api(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET /api/v1/<path>: the decoded JSON body, also for a 4xx (status "error")."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
        return body

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query: the API's whole answer (status, data or error)."""
        return self.api("query", {"query": expr})

    def alerts(self) -> list[dict[str, Any]]:
        """Every pending or firing alert (GET /api/v1/alerts)."""
        alerts: list[dict[str, Any]] = self.api("alerts")["data"]["alerts"]
        return alerts

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, last error) of every loaded rule (GET /api/v1/rules)."""
        groups = self.api("rules")["data"]["groups"]
        return [
            (r["name"], r.get("health", ""), r.get("lastError", ""))
            for g in groups
            for r in g["rules"]
        ]

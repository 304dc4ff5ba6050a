"""An S3 API server on loopback for an e2e run: the team state backend of issue 29 scenario 5.

`S3Gateway` runs the `versitygw` binary `e2e/tools/build.sh versitygw` built from
`github.com/versity/versitygw` (v1.8.0, its go.mod), a real S3 API server, with its posix
backend over a directory of the run (`<root>/data`: bucket `<bucket>` is `<root>/data/<bucket>`,
an object `<key>` the file `<root>/data/<bucket>/<key>`, which is how the tests see what the
backend holds without going through the client under test). For each run:

- a free loopback port (`--port 127.0.0.1:<port>`), plain HTTP (loopback only);
- root credentials generated per run, given through the environment versitygw reads
  (`ROOT_ACCESS_KEY_ID`, `ROOT_SECRET_ACCESS_KEY`), never on a command line or in a log;
- request logging off (`--quiet`); the process gets a parent-death signal.

The bucket is created by the caller over the S3 API (CreateBucket). `backend_url` is the URL
both Pulumi CLIs open (gocloud.dev s3blob: `endpoint`, `s3ForcePathStyle`, `disableSSL`,
`region`; docs/ci.md), `environment` the AWS variables Pulumi and stackctl read.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e.cluster import _set_parent_death_signal, bin_dir, free_port

REGION = "us-east-1"
START_TIMEOUT = 30.0


class GatewayError(RuntimeError):
    """versitygw could not be started (the message says why)."""


@dataclass
class S3Gateway:
    bucket: str = "appstack-state"
    binaries: Path = field(default_factory=bin_dir)
    access_key: str = field(default_factory=lambda: "E2E" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30), repr=False)
    port: int = 0
    start_seconds: float = 0.0
    root: Path = field(default_factory=Path, init=False)  # made by start()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> S3Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def files(self) -> Path:
        """Where the bucket's objects are files (the posix backend's layout)."""
        return self.data / self.bucket

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def backend_url(self) -> str:
        return (
            f"s3://{self.bucket}?endpoint={self.endpoint}&s3ForcePathStyle=true"
            f"&disableSSL=true&region={REGION}"
        )

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def start(self) -> None:
        exe = self.binaries / "versitygw"
        if not os.access(exe, os.X_OK):
            raise GatewayError(f"missing {exe}; build it with `e2e/tools/build.sh versitygw`")
        self.root = Path(tempfile.mkdtemp(prefix="appstack-s3-"))
        self.data.mkdir()
        self.port = self.port or free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOT_", "VGW_"))},
            "ROOT_ACCESS_KEY_ID": self.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.secret_key,
        }
        args = [str(exe), "--port", f"127.0.0.1:{self.port}", "--region", REGION, "--quiet",
                "posix", str(self.data)]  # fmt: skip
        started = time.monotonic()
        with (self.root / "versitygw.log").open("wb") as log:
            self._proc = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_set_parent_death_signal,
            )  # fmt: skip
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                tail = (self.root / "versitygw.log").read_text(errors="replace")[-2000:]
                raise GatewayError(f"versitygw exited {self._proc.returncode}:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise GatewayError(f"versitygw did not listen on {self.endpoint} in {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=15)
        self._proc = None
        if self.root != Path() and os.environ.get("APPSTACK_E2E_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

"""A real OCI registry for an e2e run: distribution v3 with TLS and basic auth.

`Registry.start()` runs the `registry` binary that `e2e/tools/build.sh registry` built from
`github.com/distribution/distribution/v3` (`$APPSTACK_E2E_BIN`, default
`~/.cache/appstack-e2e/bin`), with, in a temp dir made for the run:

- a CA made per run (`openssl`) and a serving certificate for the listen address (an IP SAN, plus
  `localhost` when the address is loopback); clients trust `ca.crt` and nothing else;
- basic auth from an htpasswd file with a bcrypt entry (distribution accepts bcrypt only), for
  one user with a random password (`htpasswd -B`, Debian apache2-utils);
- filesystem storage in the temp dir with `storage.delete.enabled: true`, so manifests can be
  deleted by digest (OCI distribution spec, "Deleting Manifests") and `garbage_collect()` can
  reclaim the blobs no manifest references;
- the listen address is a parameter: loopback by default; a real-node run passes an address its
  node network namespaces reach (the serving certificate names it).

`stop()` sends SIGTERM (the registry drains for `http.draintimeout`, then exits) and removes the
temp dir; the process also gets a parent-death signal, so a killed harness leaves nothing behind.
`python -m e2e.registry [--address A]` starts one for manual use and prints how to reach it.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from e2e.cluster import Process, _set_parent_death_signal, bin_dir, install_signal_handlers

USER = "appstack-e2e"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class RegistryError(RuntimeError):
    """The registry could not be started or answered an API call unexpectedly."""


@dataclass(frozen=True)
class Response:
    """One registry API answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def free_port(address: str) -> int:
    family = socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Registry:
    """distribution's registry on `address` (loopback by default); a context manager."""

    address: str = "127.0.0.1"
    port: int = 0
    binaries: Path = field(default_factory=bin_dir)
    keep: bool = field(default_factory=lambda: os.environ.get("APPSTACK_E2E_KEEP") == "1")
    user: str = USER
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    root: Path = field(init=False)
    process: Process | None = field(default=None, init=False)

    def __enter__(self) -> Registry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- where it is

    @property
    def host(self) -> str:
        """`host:port` as image references name it (IPv6 in brackets)."""
        ip = ip_address(self.address)
        return f"[{ip}]:{self.port}" if ip.version == 6 else f"{ip}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "pki" / "ca.crt"

    @property
    def cert_dir(self) -> Path:
        """A directory with only the CA, for skopeo/buildah `--cert-dir`/`--dest-cert-dir`."""
        return self.root / "certs.d"

    @property
    def auth_file(self) -> Path:
        """containers-auth.json(5) for this registry (skopeo/buildah `--authfile`), mode 0600."""
        return self.root / "auth.json"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yml"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        exe = self.binaries / "registry"
        if not os.access(exe, os.X_OK):
            raise RegistryError(
                f"missing {exe}; build it with `make e2e-supply-tools` (or set APPSTACK_E2E_BIN)"
            )
        if shutil.which("htpasswd") is None:
            raise RegistryError("htpasswd not found: scripts/apt-install.sh apache2-utils")
        ip_address(self.address)  # a ValueError names a bad address before anything starts
        self.root = Path(tempfile.mkdtemp(prefix="appstack-registry-"))
        try:
            self.port = self.port or free_port(self.address)
            self._certificates()
            self._htpasswd()
            self._write_config()
            self._write_client_files()
            self._run()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._terminate()
        if hasattr(self, "root") and self.root.exists():
            if self.keep:
                print(f"e2e: kept {self.root} (APPSTACK_E2E_KEEP=1)", file=sys.stderr)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    def garbage_collect(self, *, delete_untagged: bool = False) -> str:
        """`registry garbage-collect` on the storage, the documented way: registry not serving.

        Stops the server, runs the collector (mark and sweep of the blobs no manifest references;
        with `delete_untagged`, manifests no tag references too), starts the server again on the
        same address. Returns the collector's output.
        """
        self._terminate()
        args = [str(self.binaries / "registry"), "garbage-collect"]
        if delete_untagged:
            args.append("--delete-untagged")
        proc = subprocess.run(
            [*args, str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
            env=self._env(),
            preexec_fn=_set_parent_death_signal,
        )
        self._run()
        if proc.returncode != 0:
            raise RegistryError(f"registry garbage-collect failed: {proc.stderr.strip()}")
        return proc.stdout + proc.stderr

    # ---------------------------------------------------------------- API

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def api(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        auth: bool = True,
    ) -> Response:
        """One HTTPS request to the registry (`path` starts with /v2/); any status is returned."""
        req = urllib.request.Request(
            f"https://{self.host}{path}", data=body, method=method, headers=dict(headers or {})
        )
        if auth:
            req.add_header("Authorization", self.authorization())
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as resp:
                return Response(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers.items()), err.read())

    def tags(self, repository: str) -> list[str]:
        resp = self.api("GET", f"/v2/{repository}/tags/list")
        if resp.status == 404:
            return []
        if resp.status != 200:
            raise RegistryError(f"tags/list {repository}: HTTP {resp.status} {resp.body!r}")
        body = resp.json()
        assert isinstance(body, dict)
        return sorted(body.get("tags") or [])

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest resolves to (`Docker-Content-Digest`); None if absent."""
        resp = self.api(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryError(f"HEAD manifest {repository}:{reference}: HTTP {resp.status}")
        return resp.headers.get("Docker-Content-Digest")

    def push_blob(self, repository: str, data: bytes) -> str:
        """Monolithic blob upload (POST then PUT with `digest`, OCI distribution spec end-4a/6)."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = self.api("POST", f"/v2/{repository}/blobs/uploads/")
        if start.status != 202:
            raise RegistryError(f"blob upload to {repository}: HTTP {start.status} {start.body!r}")
        location = start.headers["Location"]
        path = urllib.parse.urlsplit(location)
        query = f"{path.query}&" if path.query else ""
        done = self.api(
            "PUT",
            f"{path.path}?{query}digest={digest}",
            headers={"Content-Type": "application/octet-stream"},
            body=data,
        )
        if done.status != 201:
            raise RegistryError(f"blob PUT to {repository}: HTTP {done.status} {done.body!r}")
        return digest

    def push_manifest(self, repository: str, tag: str, manifest: dict[str, object]) -> str:
        body = json.dumps(manifest, sort_keys=True).encode()
        resp = self.api(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            headers={"Content-Type": str(manifest["mediaType"])},
            body=body,
        )
        if resp.status != 201:
            raise RegistryError(
                f"manifest PUT {repository}:{tag}: HTTP {resp.status} {resp.body!r}"
            )
        return resp.headers["Docker-Content-Digest"]

    def push_image(self, repository: str, tag: str, *, created: str, content: bytes) -> str:
        """A one-layer OCI image (a gzipped tar holding one file with `content`) whose config
        says `created` (RFC 3339): retention tests control each tag's age through it."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("payload")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
        config = json.dumps(
            {
                "created": created,
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/payload"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            },
            sort_keys=True,
        ).encode()
        return self.push_manifest(
            repository,
            tag,
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.push_blob(repository, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.push_blob(repository, layer),
                        "size": len(layer),
                    }
                ],
            },
        )

    def tail(self, lines: int = 30) -> str:
        log = self.root / "registry.log"
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        return "\n".join(text[-lines:])

    # ---------------------------------------------------------------- parts

    def _env(self) -> dict[str, str]:
        # distribution v3 sets up OpenTelemetry tracing through autoexport, whose default is an
        # OTLP exporter; "none" keeps it from exporting anywhere.
        return {**os.environ, "OTEL_TRACES_EXPORTER": "none"}

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(
            ["openssl", *args], cwd=self.root / "pki", capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RegistryError(f"openssl {args[0]} failed: {proc.stderr.strip()}")

    def _certificates(self) -> None:
        (self.root / "pki").mkdir()
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=appstack-e2e-registry-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        sans = [f"IP:{ip_address(self.address)}"]
        if ip_address(self.address).is_loopback:
            sans.append("DNS:localhost")
        (self.root / "pki" / "server.ext").write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(sans)}\n"
        )
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=appstack-e2e-registry",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext",
        )  # fmt: skip
        (self.root / "pki" / "ca.key").unlink()  # nothing else is ever signed by this CA

    def _htpasswd(self) -> None:
        # -B bcrypt (the only hash distribution's htpasswd accepts), -i password from stdin (never
        # on a command line), -c create.
        proc = subprocess.run(
            ["htpasswd", "-B", "-i", "-c", str(self.root / "htpasswd"), self.user],
            input=self.password,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RegistryError(f"htpasswd failed: {proc.stderr.strip()}")

    def _write_config(self) -> None:
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "draintimeout": "5s",
                "tls": {
                    "certificate": str(self.root / "pki" / "server.crt"),
                    "key": str(self.root / "pki" / "server.key"),
                },
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {"htpasswd": {"realm": "appstack-e2e", "path": str(self.root / "htpasswd")}},
        }
        # JSON is YAML: the registry reads this file with its YAML parser.
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def _write_client_files(self) -> None:
        self.cert_dir.mkdir()
        shutil.copy(self.ca_file, self.cert_dir / "ca.crt")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        fd = os.open(self.auth_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"auths": {self.host: {"auth": token}}}, out)

    def _run(self) -> None:
        log = self.root / "registry.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(self.binaries / "registry"), "serve", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=self._env(),
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        self.process = Process("registry", popen, log)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        # The API version check (OCI distribution spec, end-1): 401 without credentials proves
        # TLS and auth are on, 200 with them proves the htpasswd entry.
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                raise RegistryError(
                    f"registry exited ({self.process.popen.returncode}):\n{self.tail()}"
                )
            with suppress(OSError):
                anonymous = self.api("GET", "/v2/", auth=False).status
                if anonymous == 401 and self.api("GET", "/v2/").status == 200:
                    return
            time.sleep(0.3)
        raise RegistryError(f"registry not ready after {timeout:.0f}s:\n{self.tail()}")

    def _terminate(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.popen.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGTERM)
        try:
            proc.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.registry", description=__doc__)
    parser.add_argument("--address", default="127.0.0.1", help="listen IP (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    args = parser.parse_args(argv)
    install_signal_handlers()
    try:
        with Registry(address=args.address, port=args.port) as reg:
            print(
                f"registry: https://{reg.host} (distribution, TLS + basic auth)\n"
                f"CA: {reg.ca_file}\nauth file (skopeo/buildah --authfile): {reg.auth_file}\n"
                f"user: {reg.user}; the password is in the auth file\n"
                f"Ctrl-C stops it and removes {reg.root}",
                flush=True,
            )
            while reg.process is not None and reg.process.popen.poll() is None:
                time.sleep(2)
            print(f"registry exited:\n{reg.tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except (RegistryError, ValueError) as exc:
        print(f"e2e registry: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

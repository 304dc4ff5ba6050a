"""The reference image, built for real: `app/Dockerfile` by buildah, pushed to the e2e registry.

No public image registry is reachable here, so the Dockerfile's base image
(`FROM python:3.11.14-slim-bookworm`, both stages) is a **stand-in** made on this machine:
`mmdebstrap` of Debian bookworm (from this machine's own apt sources) with python3, python3-venv,
python3-pip, ca-certificates, netbase and tzdata, plus

- `/usr/local/bin/python` -> `/usr/bin/python3` (the official image's `python`, which the
  Dockerfile's `RUN python -m venv ...` and `ENTRYPOINT ["python", ...]` call);
- this machine's CA bundle as `/etc/ssl/certs/ca-certificates.crt` (Debian's pip reads that
  file), so the build's `pip install` reaches the package index through this machine's TLS;
- the labels `org.opencontainers.image.description` and `io.appstack.e2e.stand-in` saying what it
  is (the app image inherits them, so a stand-in-based image says so too).

It is Debian's Python 3.11 (3.11.2), not the Docker official image's 3.11.14. It is stored in the
builder's store under the name the FROM resolves to (`docker.io/library/python:3.11.14-slim-
bookworm`), and the build runs with `--pull=never`, so nothing is looked up remotely. The stand-in
is cached as an OCI archive under `$E2E_CACHE/images/` keyed by its inputs (packages, suite, apt
sources, CA bundle, this file), never in the work tree.

The Dockerfile is built unchanged with `buildah bud --isolation chroot` (no OCI runtime needed;
Debian's crun refuses this machine's hybrid cgroups) into a store made for the run, pushed to the
registry with TLS (the run's CA) and basic auth, and its digest is taken from the push
(`--digestfile`). `skopeo` then copies it back by digest, which proves the registry serves exactly
that manifest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "app" / "Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
SUITE = "bookworm"
STANDIN_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-pip",
    "ca-certificates",
    "netbase",
    "tzdata",
)
STANDIN_LABEL = "io.appstack.e2e.stand-in"
# mmdebstrap and the image's files: a fixed epoch, so the same inputs give the same rootfs.
SOURCE_DATE_EPOCH = "1704067200"


class ImageError(RuntimeError):
    """A build, push or pull step failed (the message has the tool's own error)."""


def cache_dir() -> Path:
    return Path(os.environ.get("E2E_CACHE") or Path.home() / ".cache" / "appstack-e2e")


def dockerfile_base(dockerfile: Path = DOCKERFILE) -> str:
    """The one base image every stage of the Dockerfile starts FROM (stage names excluded)."""
    stages: set[str] = set()
    bases: set[str] = set()
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            if match.group(1) not in stages:
                bases.add(match.group(1))
            if match.group(2):
                stages.add(match.group(2))
    if len(bases) != 1:
        raise ImageError(f"{dockerfile}: expected one base image, found {sorted(bases)}")
    return bases.pop()


def qualified(name: str) -> str:
    """A short image name as containers' short-name normalisation stores it (docker.io/library)."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def run(args: list[str], what: str, *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        args, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ImageError(f"{what} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def _sources_files() -> list[Path]:
    files: list[Path] = []
    for path in APT_SOURCES:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(
                p for p in path.iterdir() if p.suffix in (".list", ".sources") and p.is_file()
            )
    return files


def standin_key(base: str) -> str:
    """Hash of everything the stand-in is made from."""
    h = hashlib.sha256()
    for part in (base, SUITE, *STANDIN_PACKAGES, SOURCE_DATE_EPOCH):
        h.update(part.encode() + b"\0")
    for path in (*_sources_files(), CA_BUNDLE, Path(__file__)):
        h.update(path.read_bytes())
    h.update(run(["mmdebstrap", "--version"], "mmdebstrap --version").encode())
    return h.hexdigest()[:16]


@dataclass
class Buildah:
    """buildah with a store of its own (vfs driver, chroot isolation) under `root`."""

    root: Path
    timings: dict[str, float] = field(default_factory=dict)

    def __call__(self, *args: str, what: str = "") -> str:
        return run(
            [
                "buildah",
                "--root",
                str(self.root / "storage"),
                "--runroot",
                str(self.root / "run"),
                "--storage-driver",
                "vfs",
                *args,
            ],
            what or f"buildah {args[0]}",
            env={"BUILDAH_ISOLATION": "chroot", "TMPDIR": str(self.root / "tmp")},
        )

    def setup(self) -> None:
        for d in ("storage", "run", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def standin_base(self, base: str) -> Path:
        """The stand-in for `base` as a cached OCI archive (made when its key is new), loaded
        into this store under the name `base` resolves to."""
        archive = cache_dir() / "images" / f"standin-{standin_key(base)}.oci.tar"
        if not archive.exists():
            started = time.monotonic()
            self._make_standin(base, archive)
            self.timings["supply.standin_base_build_s"] = time.monotonic() - started
        self("pull", "--quiet", f"oci-archive:{archive}", what="buildah pull (stand-in)")
        image_id = self("images", "--quiet", "--no-trunc", "--filter", "dangling=false").split()
        if not image_id:
            raise ImageError("the stand-in base did not load")
        self("tag", image_id[0], qualified(base))
        return archive

    def _make_standin(self, base: str, archive: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="standin-", dir=self.root / "tmp"))
        try:
            rootfs = work / "rootfs.tar"
            hooks = [
                'mkdir -p "$1/usr/local/bin"',
                'ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',
                f'cp {CA_BUNDLE} "$1/etc/ssl/certs/ca-certificates.crt"',
            ]
            run(
                [
                    "nice",
                    "mmdebstrap",
                    "--variant=minbase",
                    "--format=tar",
                    f"--include={','.join(STANDIN_PACKAGES)}",
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    *(f"--customize-hook={h}" for h in hooks),
                    SUITE,
                    str(rootfs),
                    *(str(p) for p in _sources_files()),
                ],
                "mmdebstrap (stand-in base)",
                env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            )
            container = self("from", "scratch").strip()
            try:
                self("add", container, str(rootfs), "/")
                self(
                    "config",
                    "--env", "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env", "LANG=C.UTF-8",
                    "--cmd", "python3",
                    "--label", f"{STANDIN_LABEL}=true",
                    "--label",
                    "org.opencontainers.image.description=STAND-IN for "
                    f"{base}, made by appstack's e2e from Debian {SUITE} packages "
                    "(python3 3.11 from Debian); not the Docker official image",
                    container,
                )  # fmt: skip
                archive.parent.mkdir(parents=True, exist_ok=True)
                tmp = archive.with_suffix(".tmp")
                self(
                    "commit", "--quiet", "--timestamp", SOURCE_DATE_EPOCH,
                    container, f"oci-archive:{tmp}:{qualified(base)}",
                )  # fmt: skip
                tmp.rename(archive)
            finally:
                self("rm", container)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def build(self, dockerfile: Path, context: Path, tag: str) -> None:
        started = time.monotonic()
        self(
            "bud", "--isolation", "chroot", "--pull=never", "--layers=false",
            "--format", "oci", "-f", str(dockerfile), "-t", tag, str(context),
            what="buildah bud app/Dockerfile",
        )  # fmt: skip
        self.timings["supply.image_build_s"] = time.monotonic() - started

    def push(self, tag: str, dest: str, *, authfile: Path, cert_dir: Path) -> str:
        """Push `tag` to `docker://dest`; returns the pushed manifest's digest."""
        digest_file = self.root / "tmp" / "digest"
        started = time.monotonic()
        self(
            "push", "--authfile", str(authfile), "--cert-dir", str(cert_dir),
            "--digestfile", str(digest_file), tag, f"docker://{dest}",
            what=f"buildah push {dest}",
        )  # fmt: skip
        self.timings["supply.image_push_s"] = time.monotonic() - started
        digest = digest_file.read_text().strip()
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ImageError(f"buildah push wrote no digest ({digest!r})")
        return digest


def skopeo_pull_by_digest(ref: str, dest_dir: Path, *, authfile: Path, cert_dir: Path) -> Path:
    """`skopeo copy docker://<repo>@sha256:... oci:<dir>`: the registry serves that manifest."""
    run(
        [
            "skopeo", "copy", "--quiet", "--src-authfile", str(authfile),
            "--src-cert-dir", str(cert_dir), f"docker://{ref}", f"oci:{dest_dir}:pulled",
        ],
        f"skopeo copy {ref}",
    )  # fmt: skip
    return dest_dir

"""The deploy gate: signed images only (issue 32 item 4).

`stackctl deploy <stack> --image <service>=<repo>@sha256:<digest>` in an environment whose
`appstack:imageSigning.required` is true (prod by default: the environment defaults,
components/config/stack.py) verifies every given image with cosign against
`appstack:imageSigning.publicKey` BEFORE anything changes: no config is written, no engine runs.
One image without a valid signature refuses the whole deploy, naming the service, the digest and
the config key.

Verification is cosign's own (`cosign verify --key <public key> <repo>@sha256:<digest>`): the
signature manifest `<repo>:sha256-<digest>.sig` must hold a signature over a payload whose
`critical.image.docker-manifest-digest` is this digest, made by the configured key. With
`transparencyLog: false` (no Rekor reachable, signatures made with `--tlog-upload=false`), the
command adds `--insecure-ignore-tlog=true` and an empty Sigstore trusted root (the key is the
only trust; cosign then fetches nothing from Sigstore's TUF repository). cosign reads registry
credentials from `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`) and trusts the CAs of
`SSL_CERT_FILE`/`SSL_CERT_DIR` like every Go program: the deploy's environment is passed on.

The Pulumi program never calls a registry: the render and the preview stay functions of config;
this gate lives in stackctl only. A tag (no digest) cannot be verified and is refused where
signatures are required.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from components.config import ConfigError, ImageSigning, load_image_signing
from components.config.base import IMAGE_PATTERN
from components.config.reading import stack_file_config
from stackctl.errors import OperationFailed, UserError
from stackctl.ops.operator import Console
from stackctl.ops.stacks import stack_environment, stack_short_name

SIGNING_KEY = "appstack:imageSigning"
REQUIRED_KEY = f"{SIGNING_KEY}.required"
PUBLIC_KEY = f"{SIGNING_KEY}.publicKey"
#: cosign's binary: $STACKCTL_COSIGN, else `cosign` on PATH (e2e/tools/build.sh cosign).
COSIGN_ENV = "STACKCTL_COSIGN"
VERIFY_TIMEOUT_SECONDS = 120.0
#: A Sigstore trusted root that trusts nothing (no Fulcio CA, no Rekor, CT log or TSA key): with
#: it, cosign checks the signature against the configured key alone and fetches nothing from
#: the public Sigstore TUF repository (which it otherwise tries, verify.go `cosign.TrustedRoot`).
EMPTY_TRUSTED_ROOT = '{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}\n'


class UnsignedImage(OperationFailed):
    """An image the stack's environment may not run: no valid signature from its key."""


@dataclass(frozen=True)
class Verdict:
    """cosign's answer for one image: valid, or why not (its last error line)."""

    valid: bool
    detail: str = ""


class SignatureVerifier(Protocol):
    """Verifies one image reference against a PEM public key."""

    def verify(self, reference: str, public_key: str, *, transparency_log: bool) -> Verdict: ...


@dataclass(frozen=True)
class CosignVerifier:
    """`cosign verify --key <file> [--insecure-ignore-tlog=true] <ref>`, exit status = verdict."""

    executable: str
    timeout: float = VERIFY_TIMEOUT_SECONDS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CosignVerifier:
        env = os.environ if environ is None else environ
        wanted = env.get(COSIGN_ENV) or "cosign"
        found = shutil.which(wanted, path=env.get("PATH"))
        if found is None:
            raise UserError(
                f"cosign not found ({COSIGN_ENV} or `cosign` on PATH): this stack requires "
                f"signed images ({REQUIRED_KEY}); install cosign v2 (e2e/tools/build.sh cosign "
                "builds v2.6.5)"
            )
        return cls(executable=found)

    def command(self, reference: str, key_dir: Path, *, transparency_log: bool) -> list[str]:
        """Without a transparency log: `--insecure-ignore-tlog=true` and the empty trusted root
        (the key is the only trust); with one, cosign's own trusted root (Sigstore's TUF)."""
        args = [self.executable, "verify", "--key", str(key_dir / "cosign.pub"), "-o", "json"]
        if not transparency_log:
            args += ["--insecure-ignore-tlog=true", f"--trusted-root={key_dir / 'root.json'}"]
        return [*args, reference]

    def verify(self, reference: str, public_key: str, *, transparency_log: bool) -> Verdict:
        with tempfile.TemporaryDirectory(prefix="stackctl-cosign-") as tmp:
            key_file = Path(tmp) / "cosign.pub"
            key_file.write_text(public_key, encoding="utf-8")
            (Path(tmp) / "root.json").write_text(EMPTY_TRUSTED_ROOT, encoding="utf-8")
            try:
                proc = subprocess.run(
                    self.command(reference, Path(tmp), transparency_log=transparency_log),
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                return Verdict(False, f"cosign verify did not answer within {self.timeout:.0f} s")
            except OSError as exc:
                return Verdict(False, f"cannot run {self.executable}: {exc.strerror}")
        if proc.returncode == 0:
            return Verdict(True)
        return Verdict(False, _last_error(proc.stderr) or f"cosign exited {proc.returncode}")


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or [""])[-1][:400]


def stack_signing(project_dir: Path, stack: str) -> ImageSigning:
    """`appstack:imageSigning` of Pulumi.<stack>.yaml under its environment's defaults."""
    name = f"Pulumi.{stack_short_name(stack)}.yaml"
    path = project_dir / name
    try:
        values = stack_file_config(path.read_text(encoding="utf-8"), name)
    except FileNotFoundError:
        values = {}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {name}: {exc}") from None
    raw = {key.removeprefix("appstack:"): value for key, value in values.items()}
    environment = raw.get("environment") or stack_environment(stack)
    try:
        return load_image_signing(raw, str(environment))
    except ConfigError as exc:
        raise UserError(f"{name}: {exc}") from None


def require_signed_images(
    images: Mapping[str, str],
    settings: ImageSigning,
    *,
    stack: str,
    verifier: SignatureVerifier | None = None,
    console: Console,
) -> None:
    """Refuse (UnsignedImage) unless every image has a valid signature from the stack's key;
    nothing when the environment does not require signatures. Runs before any change. The
    verifier defaults to the cosign binary (`CosignVerifier.from_environment`)."""
    if not images:
        return
    if not settings.required:
        console.print(f"image signatures: not required for {stack} ({REQUIRED_KEY} is false)")
        return
    if settings.public_key is None:
        raise UnsignedImage(
            f"{stack} requires signed images ({REQUIRED_KEY}) but {PUBLIC_KEY} is not set: "
            f"nothing to verify {', '.join(sorted(images))} against; set it to the PEM public "
            "key of the CI's cosign key (`cosign public-key --key <key>`); nothing changed"
        )
    public_key = settings.public_key
    refused = _undigested(images, stack)
    if not refused:
        check = verifier or CosignVerifier.from_environment()
        for service, ref in sorted(images.items()):
            verdict = check.verify(ref, public_key, transparency_log=settings.transparency_log)
            if verdict.valid:
                console.print(f"image {service}: signature verified ({ref})")
            else:
                refused.append(
                    f"image {service}={ref} has no valid signature from the key in "
                    f"{PUBLIC_KEY}: {verdict.detail}"
                )
    if refused:
        raise UnsignedImage(
            f"{stack} requires signed images ({REQUIRED_KEY}); refused before any change: "
            + "; ".join(refused)
        )


def _undigested(images: Mapping[str, str], stack: str) -> list[str]:
    problems: list[str] = []
    for service, ref in sorted(images.items()):
        match = IMAGE_PATTERN.match(ref)
        if match is None or match.group("digest") is None:
            problems.append(
                f"image {service}={ref} has no digest: a signature is verified for a digest; "
                f"pass the pushed one, <repo>@sha256:<64 hex>"
            )
    return problems


def signed_images_only(
    project_dir: Path,
    stack: str,
    images: Mapping[str, str],
    *,
    console: Console,
    verifier: SignatureVerifier | None = None,
) -> None:
    """The gate as `stackctl deploy` runs it: read the stack's settings, then verify."""
    settings = stack_signing(project_dir, stack)
    require_signed_images(images, settings, stack=stack, verifier=verifier, console=console)

"""`make e2e-sign`: signed images only, against a real registry and the real cosign.

A real OCI registry (distribution v3, TLS with a per-run CA, basic auth: e2e/registry.py), cosign
v2.6.5 built from its Go module (e2e/tools/cosign), the real engine and control plane of
`make e2e`. Three images are pushed by the OCI distribution API; the CI script signs one with
the key whose public half the prod stack configures (scripts/ci/sign-images.sh, the key handed
over as CI secrets are: COSIGN_KEY / COSIGN_PASSWORD in the environment), another key signs a
second, the third stays unsigned. `stackctl deploy prod --image web=<repo>@sha256:<digest>`:

- the signed digest passes the gate and is deployed (the Deployment runs exactly that digest);
- the unsigned one and the one signed by another key are refused before anything changes: exit 1
  with the service, the digest and the config key named, no preview, no update in the stack's
  history, the stack file byte for byte as before.

No transparency log is reachable: signatures are made with --tlog-upload=false and verified with
--insecure-ignore-tlog=true (appstack:imageSigning.transparencyLog: false). Figures: the CI
script's signing time and cosign's verification time (out/e2e-figures.json).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.engine import Engine
from e2e.kube import Kube
from e2e.registry import Registry
from stackctl.ops.signatures import PUBLIC_KEY, CosignVerifier

pytestmark = pytest.mark.sign

REPO_ROOT = Path(__file__).resolve().parents[2]
PROD_NS = "appstack"
REPOSITORY = "appstack/web"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(registry: Registry, data: bytes) -> str:
    """Monolithic blob upload (OCI distribution spec: POST then PUT ?digest=)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = registry.api("POST", f"/v2/{REPOSITORY}/blobs/uploads/")
    assert start.status == 202, start
    location = start.headers["Location"]
    path = location.split(registry.host, 1)[-1] if "://" in location else location
    sep = "&" if "?" in path else "?"
    done = registry.api(
        "PUT",
        f"{path}{sep}digest={digest}",
        headers={"Content-Type": "application/octet-stream"},
        body=data,
    )
    assert done.status == 201, done
    return digest


def push_image(registry: Registry, tag: str, text: str) -> str:
    """A one-layer OCI image (one file holding `text`) tagged `tag`; returns its digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/appstack-e2e")
        data = text.encode()
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.appstack.e2e": text}},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _blob(registry, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _blob(registry, layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    put = registry.api(
        "PUT",
        f"/v2/{REPOSITORY}/manifests/{tag}",
        headers={"Content-Type": OCI_MANIFEST},
        body=manifest,
    )
    assert put.status == 201, put
    digest = put.headers["Docker-Content-Digest"]
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return digest


class World:
    """The registry, two cosign key pairs and what cosign needs to reach the registry."""

    def __init__(self, registry: Registry, root: Path, cosign: Path) -> None:
        self.registry = registry
        self.root = root
        self.cosign = cosign
        self.password = "e2e-key-password"
        self.docker_config = root / "docker"
        self.docker_config.mkdir(mode=0o700)
        (self.docker_config / "config.json").write_bytes(registry.auth_file.read_bytes())
        self.env = {
            "SSL_CERT_FILE": str(registry.ca_file),
            "DOCKER_CONFIG": str(self.docker_config),
            # cosign's sigstore cache (TUF metadata) inside the run's directory
            "TUF_ROOT": str(root / "tuf"),
        }
        # For the cosign runs of this test: anything not on loopback goes to a closed local
        # port instead of leaving the machine (Go never proxies loopback addresses).
        self.guard = {
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "",
        }

    def key_pair(self, name: str) -> tuple[str, str]:
        """`cosign generate-key-pair` (an encrypted private key, the PEM public key)."""
        keydir = self.root / name
        keydir.mkdir()
        subprocess.run(
            [str(self.cosign), "generate-key-pair"],
            cwd=keydir,
            env={**os.environ, **self.env, "COSIGN_PASSWORD": self.password},
            check=True,
            capture_output=True,
        )
        return (keydir / "cosign.key").read_text(), (keydir / "cosign.pub").read_text()

    def ref(self, digest: str) -> str:
        return f"{self.registry.host}/{REPOSITORY}@{digest}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[World]:
    cosign = engine.binaries / "cosign"
    if not os.access(cosign, os.X_OK):
        pytest.fail(f"missing {cosign}: run `make e2e-sign-tools`")
    with Registry() as registry:
        yield World(registry, tmp_path_factory.mktemp("signing"), cosign)


def sign_with_ci_script(
    world: World, ref: str, private_key: str, figures: dict[str, float]
) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ci" / "sign-images.sh")],
        env={
            **os.environ,
            **world.env,
            **world.guard,
            "DEPLOY_IMAGES": f"web={ref}",
            "COSIGN": str(world.cosign),
            "COSIGN_KEY": private_key,
            "COSIGN_PASSWORD": world.password,
            "REGISTRY_USERNAME": world.registry.user,
            "REGISTRY_PASSWORD": world.registry.password,
            "CI_COMMIT_SHA": "0" * 40,
            "CI_STATE_DIR": str(world.root / "ci"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    figures["cosign sign (scripts/ci/sign-images.sh, one digest)"] = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    for secret in (private_key.splitlines()[1], world.password, world.registry.password):
        assert secret not in proc.stdout + proc.stderr, "a secret reached the log"


def configure_prod(engine: Engine, public_key: str) -> None:
    """The prod stack as an operator sets it up: its key in appstack:imageSigning.publicKey."""
    engine.init_stack("prod")
    doc = engine.read_config("prod")
    doc["config"]["appstack:jenkins"].setdefault("admin", {})["existingSecret"] = "jenkins-admin"
    doc["config"]["appstack:imageSigning"] = {"publicKey": public_key}
    engine.write_config("prod", doc)
    engine.commit("e2e: prod stack with its signing key")


def history_length(engine: Engine) -> int:
    res = engine.pulumi("stack", "history", "--json", "--stack", "prod")
    return len(json.loads(res.stdout or "[]") or [])


def deploy(engine: Engine, world: World, ref: str, **kw: Any) -> Any:
    return engine.stackctl(
        "deploy", "prod", "--yes", "--image", f"web={ref}",
        policy_cli=True, extra_env={**world.env, **engine.policy_env}, **kw,
    )  # fmt: skip


def test_prod_deploys_only_the_digest_its_key_signed(
    engine: Engine, kube: Kube, world: World, figures: dict[str, float]
) -> None:
    key, public = world.key_pair("ci-key")
    other_key, _ = world.key_pair("other-key")
    signed = world.ref(push_image(world.registry, "signed", "signed by the CI key"))
    unsigned = world.ref(push_image(world.registry, "unsigned", "not signed"))
    foreign = world.ref(push_image(world.registry, "foreign", "signed by another key"))
    sign_with_ci_script(world, signed, key, figures)
    sign_with_ci_script(world, foreign, other_key, {})
    # The signature is an OCI artifact beside the image: <repo>:sha256-<digest>.sig
    tags = world.registry.tags(REPOSITORY)
    assert f"sha256-{signed.rsplit(':', 1)[1]}.sig" in tags, tags

    # cosign's own verdicts, through the gate's verifier, are the oracle for the deploys below.
    verifier = CosignVerifier(str(world.cosign))
    env_before = dict(os.environ)
    os.environ.update({**world.env, **world.guard})
    try:
        started = time.monotonic()
        assert verifier.verify(signed, public, transparency_log=False).valid
        figures["cosign verify (signed digest, no tlog)"] = time.monotonic() - started
        assert not verifier.verify(unsigned, public, transparency_log=False).valid
        assert not verifier.verify(foreign, public, transparency_log=False).valid
    finally:
        os.environ.clear()
        os.environ.update(env_before)

    configure_prod(engine, public)
    stack_file = engine.stack_file("prod").read_bytes()
    versions = history_length(engine)
    for ref, what in ((unsigned, "unsigned"), (foreign, "another key")):
        res = deploy(
            engine, world, ref, check=False, timing=f"stackctl deploy prod refused ({what})"
        )
        assert res.returncode == 1, res.tail()
        err = res.stderr
        assert f"image web={ref} has no valid signature" in err and PUBLIC_KEY in err, err
        assert "refused before any change" in err and "Traceback" not in err
        assert "== preview" not in res.stdout, "the engine ran for a refused image"
        assert engine.stack_file("prod").read_bytes() == stack_file, "the stack file changed"
        assert history_length(engine) == versions, "an update ran for a refused image"

    res = deploy(engine, world, signed, timing="stackctl deploy prod (signed digest)")
    assert f"image web: signature verified ({signed})" in res.stdout
    deployment = kube.get("Deployment", "web", PROD_NS)
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert signed in images, images
    assert history_length(engine) == versions + 1


def test_the_sbom_of_a_pushed_image_is_attested_to_its_digest(
    world: World, figures: dict[str, float]
) -> None:
    """scripts/ci/sbom.sh with the real syft and cosign: an SPDX SBOM read from the registry,
    attached to the digest as a signed attestation that `cosign verify-attestation` returns."""
    syft = world.cosign.parent / "syft"
    if not os.access(syft, os.X_OK):
        pytest.fail(f"missing {syft}: run `make e2e-sign-tools`")
    key, public = world.key_pair("sbom-key")
    ref = world.ref(push_image(world.registry, "sbom", "an image with an SBOM"))
    state = world.root / "sbom-ci"
    started = time.monotonic()
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ci" / "sbom.sh")],
        env={
            **os.environ, **world.env, **world.guard,
            "DEPLOY_IMAGES": f"web={ref}", "SYFT": str(syft), "COSIGN": str(world.cosign),
            "COSIGN_KEY": key, "COSIGN_PASSWORD": world.password,
            "REGISTRY_USERNAME": world.registry.user,
            "REGISTRY_PASSWORD": world.registry.password, "CI_STATE_DIR": str(state),
        },
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    figures["syft sbom + cosign attest (scripts/ci/sbom.sh, one digest)"] = (
        time.monotonic() - started
    )
    assert proc.returncode == 0, proc.stderr
    sbom = json.loads((state / "sbom" / "web.spdx.json").read_text())
    assert sbom["spdxVersion"].startswith("SPDX-")
    assert REPOSITORY in json.dumps(sbom), "the SBOM does not name the image it describes"
    (world.root / "sbom.pub").write_text(public)
    root = world.root / "empty-root.json"
    root.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
    verified = subprocess.run(
        [
            str(world.cosign), "verify-attestation", "--type", "spdxjson",
            "--key", str(world.root / "sbom.pub"), "--insecure-ignore-tlog=true",
            f"--trusted-root={root}", ref,
        ],
        env={**os.environ, **world.env, **world.guard},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    envelope = json.loads(verified.stdout.splitlines()[0])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://spdx.dev/Document"
    assert statement["subject"][0]["digest"]["sha256"] == ref.rsplit(":", 1)[1]

"""A missing or empty pipeline credential stops Jenkins at start-up, naming it, instead of
becoming an empty credential (configuration-as-code 2037.v8e5349845172
SecretSourceResolver.FileStringLookup: a file it cannot read "Will default to empty string");
the image build refuses empty registry credentials at the stage's start."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from stackctl.render import RenderResult
from tests.conftest import one
from tests.jenkins.helpers import casc
from tests.renders import Renders

ROOT = Path(__file__).resolve().parents[2]
CI_DIR = "/run/secrets/jenkins-ci"


def _pod(result: RenderResult) -> dict[str, Any]:
    spec: dict[str, Any] = one(result.objects, "StatefulSet", "jenkins")["spec"]["template"]["spec"]
    return spec


def _read_keys(result: RenderResult) -> set[str]:
    """Keys of the CI Secret the rendered JCasC reads (`${readFile:}`/`${readFileBase64:}`)."""
    text = str(casc(result))
    return set(re.findall(rf"\$\{{readFile(?:Base64)?:{CI_DIR}/([a-z0-9-]+)\}}", text))


def test_every_key_jcasc_reads_is_projected_and_checked(renders: Renders) -> None:
    result = renders.stack("prod")
    keys = _read_keys(result)
    assert {"registry-username", "registry-password", "pulumi-passphrase"} <= keys
    spec = _pod(result)
    volume = next(v for v in spec["volumes"] if v["name"] == "ci-credentials")["secret"]
    # Listed keys: the kubelet refuses to set up the volume when one is missing from the
    # Secret (core/v1 SecretVolumeSource.items), so the pod never starts and its events name it.
    assert {i["key"] for i in volume["items"]} == keys
    assert "optional" not in volume
    (check,) = [c for c in spec["initContainers"] if c["name"] == "check-credentials"]
    assert spec["initContainers"][0] is check  # before the plugins are downloaded
    assert {a.rsplit("/", 1)[1] for a in check["args"]} == keys


def _run_check(
    result: RenderResult, files: dict[str, str], tmp: Path
) -> subprocess.CompletedProcess[str]:
    (check,) = [c for c in _pod(result)["initContainers"] if c["name"] == "check-credentials"]
    for name, value in files.items():
        (tmp / name).write_text(value)
    args = [str(tmp / a.rsplit("/", 1)[1]) for a in check["args"]]
    env = {"PATH": os.environ["PATH"], **{e["name"]: e["value"] for e in check["env"]}}
    return subprocess.run(
        [*check["command"], *args], env=env, capture_output=True, text=True, check=False
    )


def test_the_check_fails_on_an_empty_credential_naming_it(renders: Renders, tmp_path: Path) -> None:
    result = renders.stack("prod")
    keys = sorted(_read_keys(result))
    ok = _run_check(result, dict.fromkeys(keys, "value"), tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = _run_check(result, {**dict.fromkeys(keys, "value"), "registry-password": ""}, tmp_path)
    assert bad.returncode == 1
    assert "registry-password is empty in Secret jenkins-ci-credentials" in bad.stderr


def test_the_documented_secret_command_creates_every_key(renders: Renders) -> None:
    docs = (ROOT / "docs/ci.md").read_text()
    block = docs[docs.index("kubectl -n jenkins create secret generic jenkins-ci-credentials") :]
    block = block[: block.index("```")]
    documented = set(re.findall(r"--from-(?:literal|file)=([a-z0-9-]+)=", block))
    assert _read_keys(renders.stack("prod")) <= documented


def test_build_image_refuses_empty_registry_credentials(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "IMAGE_REPOSITORY": "registry.example.com/appstack/web",
        "GIT_COMMIT": "0" * 40,
        "CI_STATE_DIR": str(tmp_path),
        "REGISTRY_USERNAME": "ci-bot",
        "REGISTRY_PASSWORD": "",
    }
    run = subprocess.run(
        ["sh", str(ROOT / "scripts/ci/build-image.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "REGISTRY_PASSWORD is empty" in run.stderr and "registry-push" in run.stderr

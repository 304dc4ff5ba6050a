"""scripts/ci/sign-images.sh: what it hands cosign, and what it refuses before calling it.

cosign here is a stand-in that records its arguments and environment (named as such): these
tests hold the script's contract (the key reaches cosign only through the environment, only a
digest is signed, the registry login is private and removed). The real cosign signing against
a real registry, verified by the deploy gate, is `make e2e-sign` (tests/e2e/test_signing.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.ci.pipelines import CI_SCRIPTS

KEY = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nsentinel-key-body-3b1f\n-----END ..."
PASSWORD = "sentinel-cosign-password-77aa"
REGISTRY_PASSWORD = "sentinel-registry-password-1c9e"
REF = "registry.example.com/appstack/web@sha256:" + "c" * 64

STAND_IN = """#!{python}
import json, os, sys
from pathlib import Path
docker = os.environ.get("DOCKER_CONFIG", "")
config = Path(docker, "config.json")
with open({record!r}, "a") as out:
    out.write(json.dumps({{
        "argv": sys.argv[1:],
        "key_in_env": os.environ.get("COSIGN_KEY") == {key!r},
        "password_in_env": os.environ.get("COSIGN_PASSWORD") == {password!r},
        "docker_config": docker,
        "auths": sorted(json.loads(config.read_text())["auths"]) if config.is_file() else [],
        "config_mode": oct(config.stat().st_mode & 0o777) if config.is_file() else "",
    }}) + "\\n")
"""


def run(tmp_path: Path, **env: str) -> tuple[Any, list[dict[str, Any]]]:
    record = tmp_path / "calls.jsonl"
    cosign = tmp_path / "cosign"
    cosign.write_text(
        STAND_IN.format(python=sys.executable, record=str(record), key=KEY, password=PASSWORD)
    )
    cosign.chmod(cosign.stat().st_mode | stat.S_IXUSR)
    base = {
        "PATH": os.environ["PATH"],
        "COSIGN": str(cosign),
        "CI_COMMIT_SHA": "a" * 40,
        "CI_STATE_DIR": str(tmp_path / "state"),
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.run(
        ["bash", "-x", str(CI_SCRIPTS / "sign-images.sh")],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    calls = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return proc, calls


def test_the_key_reaches_cosign_only_through_the_environment(tmp_path: Path) -> None:
    proc, calls = run(
        tmp_path,
        DEPLOY_IMAGES=f"web={REF}",
        COSIGN_KEY=KEY,
        COSIGN_PASSWORD=PASSWORD,
        REGISTRY_USERNAME="ci",
        REGISTRY_PASSWORD=REGISTRY_PASSWORD,
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = calls
    assert call["argv"] == [
        "sign", "--yes", "-a", f"commit={'a' * 40}", "--key", "env://COSIGN_KEY",
        "--tlog-upload=false", REF,
    ]  # fmt: skip
    assert call["key_in_env"] and call["password_in_env"]
    assert call["auths"] == ["registry.example.com"] and call["config_mode"] == "0o600"
    assert not Path(call["docker_config"]).exists(), "the registry login was left behind"
    for secret in ("sentinel-key-body-3b1f", PASSWORD, REGISTRY_PASSWORD):
        assert secret not in proc.stdout + proc.stderr, "a secret reached the log under bash -x"


def test_a_tag_is_refused_before_cosign_runs(tmp_path: Path) -> None:
    proc, calls = run(
        tmp_path,
        DEPLOY_IMAGES="web=registry.example.com/appstack/web:1.0.0",
        COSIGN_KEY=KEY,
        COSIGN_PASSWORD=PASSWORD,
    )
    assert proc.returncode == 2 and calls == []
    assert "is not pinned by digest; only a pushed digest is signed" in proc.stderr


def test_no_key_and_no_keyless_is_refused_naming_the_secret(tmp_path: Path) -> None:
    proc, calls = run(tmp_path, DEPLOY_IMAGES=f"web={REF}")
    assert proc.returncode == 2 and calls == []
    assert "COSIGN_KEY is empty" in proc.stderr


def test_keyless_signs_without_a_key_and_with_the_transparency_log(tmp_path: Path) -> None:
    proc, calls = run(tmp_path, DEPLOY_IMAGES=f"web={REF}", COSIGN_KEYLESS="true")
    assert proc.returncode == 0, proc.stderr
    (call,) = calls
    assert call["argv"] == ["sign", "--yes", "-a", f"commit={'a' * 40}", REF]

"""The deploy gate's decisions (stackctl/ops/signatures.py): where signatures are required, a
refused image stops the deploy before anything changes (no config written, no engine call).

Whether a signature is valid is cosign's own verification; here a stand-in verifier answers
per reference (named as such), so these tests hold the gate's wiring and messages. The real
cosign against a real registry (signed, unsigned, signed by another key) is the e2e tier
`make e2e-sign` (tests/e2e/test_signing.py). The public keys below are made by openssl, the
format cosign reads (`cosign public-key` writes the same PKIX PEM block).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, key_algorithm, load_image_signing
from stackctl.cli import main
from stackctl.errors import UserError
from stackctl.ops import deploy as ops
from stackctl.ops.deploy import run_deploy
from stackctl.ops.images import APPS_KEY, parse_image_overrides
from stackctl.ops.signatures import PUBLIC_KEY, REQUIRED_KEY, UnsignedImage, Verdict
from tests.ops.conftest import make_project
from tests.ops.fake_backend import FakeBackend

REPO = "registry.example.com/appstack/web"
SIGNED = f"{REPO}@sha256:{'a' * 64}"
UNSIGNED = f"{REPO}@sha256:{'b' * 64}"


def openssl_public_key(tmp: Path, *genpkey: str) -> str:
    key = tmp / "key.pem"
    subprocess.run(["openssl", "genpkey", *genpkey, "-out", str(key)], check=True)
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True, text=True
    )
    key.unlink()
    return out.stdout


@pytest.fixture(scope="module")
def ec_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    return openssl_public_key(
        tmp_path_factory.mktemp("key"), "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"
    )


def prod_stack(key: str | None, *, extra: str = "") -> str:
    signing = ""
    if key is not None:
        body = "".join(f"      {line}\n" for line in key.strip().splitlines())
        signing = f"  appstack:imageSigning:\n    publicKey: |\n{body}{extra}"
    return (
        "config:\n  appstack:environment: prod\n  appstack:apps:\n    web:\n"
        f"      image: {REPO}:1.0.0\n{signing}"
    )


@dataclass
class StandInVerifier:
    """Stands in for cosign: answers valid for the references in `signed`; records calls."""

    signed: set[str]
    calls: list[tuple[str, str, bool]] = field(default_factory=list)

    def verify(self, reference: str, public_key: str, *, transparency_log: bool) -> Verdict:
        self.calls.append((reference, public_key, transparency_log))
        if reference in self.signed:
            return Verdict(True)
        return Verdict(False, "Error: no matching signatures")


def deploy(
    project: Path, recorder: Any, verifier: StandInVerifier, stack: str, *images: str
) -> Any:
    backend = FakeBackend(stack)
    rec = recorder()
    run_deploy(
        backend,
        project_dir=project,
        assume_yes=True,
        console=rec.console,
        images=parse_image_overrides(list(images)),
        verifier=verifier,
    )
    return backend, rec


def test_prod_refuses_an_unsigned_digest_before_anything_changes(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    before = (project / "Pulumi.prod.yaml").read_bytes()
    verifier = StandInVerifier(signed={SIGNED})
    backend = FakeBackend("prod")
    with pytest.raises(UnsignedImage) as refused:
        run_deploy(
            backend,
            project_dir=project,
            assume_yes=True,
            console=recorder().console,
            images={"web": UNSIGNED},
            verifier=verifier,
        )
    message = str(refused.value)
    assert f"image web={UNSIGNED}" in message and PUBLIC_KEY in message, message
    assert REQUIRED_KEY in message and "refused before any change" in message
    assert backend.calls == [] and backend.set_config_calls == []
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


def test_prod_deploys_a_digest_the_configured_key_signed(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    verifier = StandInVerifier(signed={SIGNED})
    backend, rec = deploy(project, recorder, verifier, "prod", f"web={SIGNED}")
    # The configured key, as the stack file holds it, without a transparency log (the default).
    assert verifier.calls == [(SIGNED, ec_key, False)]
    assert backend.calls[-1] == "up"
    assert backend.config[APPS_KEY].object_value["web"]["image"] == SIGNED
    assert f"image web: signature verified ({SIGNED})" in rec.text


def test_one_refused_image_refuses_the_whole_deploy(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    verifier = StandInVerifier(signed={SIGNED})
    with pytest.raises(UnsignedImage, match=r"image api=.*bbbb"):
        deploy(project, recorder, verifier, "prod", f"web={SIGNED}", f"api={UNSIGNED}")


def test_transparency_log_setting_reaches_the_verifier(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    stack = prod_stack(ec_key, extra="    transparencyLog: true\n")
    project = make_project(tmp_path / "repo", stack_yaml=stack, stack="prod")
    verifier = StandInVerifier(signed={SIGNED})
    deploy(project, recorder, verifier, "prod", f"web={SIGNED}")
    assert verifier.calls == [(SIGNED, ec_key, True)]


def test_a_tag_cannot_be_verified_and_is_refused_without_calling_cosign(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    verifier = StandInVerifier(signed=set())
    with pytest.raises(UnsignedImage, match=r"image web=.*:1\.0\.1 has no digest"):
        deploy(project, recorder, verifier, "prod", f"web={REPO}:1.0.1")
    assert verifier.calls == []


def test_prod_without_a_configured_key_refuses(tmp_path: Path, recorder: Any) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(None), stack="prod")
    verifier = StandInVerifier(signed={SIGNED})
    with pytest.raises(UnsignedImage, match=rf"{PUBLIC_KEY} is not set"):
        deploy(project, recorder, verifier, "prod", f"web={SIGNED}")
    assert verifier.calls == []


def test_dev_does_not_require_signatures(project: Path, recorder: Any) -> None:
    verifier = StandInVerifier(signed=set())
    backend, rec = deploy(project, recorder, verifier, "dev", f"web={UNSIGNED}")
    assert verifier.calls == [] and backend.calls[-1] == "up"
    assert f"not required for dev ({REQUIRED_KEY} is false)" in rec.text


def test_the_requirement_is_data_any_environment_can_opt_in(
    tmp_path: Path, recorder: Any, ec_key: str
) -> None:
    stack = prod_stack(ec_key, extra="    required: true\n").replace(
        "environment: prod", "environment: dev"
    )
    project = make_project(tmp_path / "repo", stack_yaml=stack, stack="dev")
    with pytest.raises(UnsignedImage):
        deploy(project, recorder, StandInVerifier(signed=set()), "dev", f"web={UNSIGNED}")


def test_the_cli_refuses_with_exit_1_and_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any, ec_key: str
) -> None:
    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    backend = FakeBackend("prod")
    monkeypatch.setattr(ops, "BACKEND_FACTORY", lambda *_a: backend)
    # No cosign anywhere on PATH: the gate says so instead of deploying unverified.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("STACKCTL_COSIGN", raising=False)
    args = ["deploy", "prod", "--project-dir", str(project), "--yes", "--image", f"web={SIGNED}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cosign not found" in err and REQUIRED_KEY in err and "Traceback" not in err
    assert backend.calls == []


# ---------------------------------------------------------------- the config keys


@pytest.mark.parametrize(
    ("genpkey", "algorithm"),
    [
        (("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"), "ECDSA"),
        (("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"), "ECDSA"),
        (("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"), "RSA"),
        (("-algorithm", "ED25519"), "Ed25519"),
    ],
)
def test_public_keys_of_every_type_cosign_verifies_with_are_accepted(
    tmp_path: Path, genpkey: tuple[str, ...], algorithm: str
) -> None:
    key = openssl_public_key(tmp_path, *genpkey)
    assert key_algorithm(key) == algorithm
    settings = load_image_signing({"imageSigning": {"publicKey": key}}, "prod")
    assert settings.required and settings.public_key == key


def test_a_key_agreement_key_is_refused(tmp_path: Path) -> None:
    # X25519 parses as PKIX but signs nothing: sigstore's LoadVerifier has no verifier for it.
    key = openssl_public_key(tmp_path, "-algorithm", "X25519")
    with pytest.raises(ConfigError, match=r"appstack:imageSigning\.publicKey: a key type cosign"):
        load_image_signing({"imageSigning": {"publicKey": key}}, "prod")


@pytest.mark.parametrize(
    "value",
    [
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    ],
)
def test_a_malformed_public_key_names_the_key_and_what_is_allowed(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_image_signing({"imageSigning": {"publicKey": value}}, "prod")
    (line,) = err.value.problems
    assert line.startswith("appstack:imageSigning.publicKey: ")
    assert "expected a PEM public key ('-----BEGIN PUBLIC KEY-----'" in line


def test_an_unknown_signing_key_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_image_signing({"imageSigning": {"requierd": True}}, "prod")
    assert err.value.problems == [
        "appstack:imageSigning.requierd: unknown key (did you mean 'required'?); "
        "allowed: publicKey, required, transparencyLog"
    ]


def test_the_environment_defaults_say_which_environments_require_signatures() -> None:
    required = {env: load_image_signing({}, env).required for env in ("dev", "staging", "prod")}
    assert required == {"dev": False, "staging": False, "prod": True}


def test_a_stack_file_with_a_bad_key_is_a_user_error(tmp_path: Path, recorder: Any) -> None:
    stack = prod_stack("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----")
    project = make_project(tmp_path / "repo", stack_yaml=stack, stack="prod")
    with pytest.raises(
        UserError, match=r"(?s)Pulumi\.prod\.yaml: .*imageSigning\.publicKey: its body is not a DER"
    ):
        deploy(project, recorder, StandInVerifier(signed=set()), "prod", f"web={SIGNED}")


def test_the_gitops_path_refuses_before_writing_the_stack_file(
    tmp_path: Path, capsys: Any, ec_key: str
) -> None:
    # publish-manifests.sh writes the digests into the stack file with stackctl.ops.images; in
    # a stack that requires signatures the same gate runs first.
    from stackctl.ops import images

    project = make_project(tmp_path / "repo", stack_yaml=prod_stack(ec_key), stack="prod")
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code = images.main(["prod", f"web={REPO}:1.0.1", "--project-dir", str(project)])
    assert code == 1
    assert "image web=registry.example.com/appstack/web:1.0.1 has no digest" in (
        capsys.readouterr().err
    )
    assert (project / "Pulumi.prod.yaml").read_bytes() == before

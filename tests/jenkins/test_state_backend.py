"""Every state backend the docs offer has its credential passed to the pipeline (item 3): for
each `pipeline.stateBackend`, the rendered JCasC defines the credential from the CI Secret, the
controller checks its keys at start-up, and both Jenkinsfiles bind it to the variables the
backend's client reads (components/jenkins/names.py BACKEND_CREDENTIALS cites them)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.jenkins.names import BACKEND_CREDENTIALS
from tests.conftest import Render, one
from tests.jenkins.helpers import casc, jenkins_raw
from tests.tooling import REPO

FILES = {
    name: (REPO / name).read_text() for name in ("Jenkinsfile", "jenkins/prod-deploy.Jenkinsfile")
}
DOCS = (REPO / "docs/ci.md").read_text()


def _bindings(text: str) -> dict[str, str]:
    """backendCredentials()'s map: kind -> its binding source text."""
    body = text[text.index("List backendCredentials()") :]
    body = body[: body.index("    ]\n")]
    return dict(re.findall(r"^\s+(\w+): \[(.*?)\],?$", body, re.M | re.S))


def _credential(doc: dict[str, Any], cred_id: str) -> tuple[str, dict[str, Any]]:
    (domain,) = doc["credentials"]["system"]["domainCredentials"]
    for item in domain["credentials"]:
        kind, body = next(iter(item.items()))
        if body["id"] == cred_id:
            return kind, body
    raise AssertionError(f"no credential {cred_id}")


@pytest.mark.parametrize("backend", sorted(BACKEND_CREDENTIALS))
def test_each_backend_credential_is_defined_checked_and_bound(render: Render, backend: str) -> None:
    cred = BACKEND_CREDENTIALS[backend]
    result = render(jenkins_raw("prod", pipeline={"stateBackend": backend}))
    doc = casc(result)
    kind, body = _credential(doc, cred.id)
    assert kind == cred.kind
    values = " ".join(str(v) for v in body.values())
    for key in cred.keys:
        assert f"/run/secrets/jenkins-ci/{key}}}" in values
    others = {c.id for k, c in BACKEND_CREDENTIALS.items() if k != backend}
    (domain,) = doc["credentials"]["system"]["domainCredentials"]
    assert not others & {next(iter(c.values()))["id"] for c in domain["credentials"]}
    env = doc["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    assert {"key": "APPSTACK_STATE_BACKEND", "value": backend} in env
    spec = one(result.objects, "StatefulSet", "jenkins")["spec"]["template"]["spec"]
    (check,) = [c for c in spec["initContainers"] if c["name"] == "check-credentials"]
    assert {a.rsplit("/", 1)[1] for a in check["args"]} >= set(cred.keys)
    for name, text in FILES.items():
        binding = _bindings(text)[backend]
        assert f"credentialsId: '{cred.id}'" in binding, name
        bound = re.findall(r"[vV]ariable: '([A-Z0-9_]+)'", binding)
        assert bound == list(cred.variables), (name, bound)
        assert "+ backendCredentials()" in text, name
    for key in cred.keys:
        assert f"`{key}`" in DOCS


def test_every_kind_of_the_config_has_a_binding() -> None:
    from typing import get_args

    from components.config.jenkins import JenkinsPipeline

    kinds = set(get_args(JenkinsPipeline.model_fields["state_backend"].annotation))
    assert kinds == set(BACKEND_CREDENTIALS)
    for name, text in FILES.items():
        assert set(_bindings(text)) == kinds, name

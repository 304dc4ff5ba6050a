"""imagePullSecrets: an app's own Secret names, and the dockerconfigjson Secret created from
`appstack:registry` when `pullSecret` is on; nothing is created when it is off."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from components.registry import PULL_SECRET_NAME, dockerconfigjson
from tests.conftest import Render, base_raw, find, load_error, one, pod_spec, with_app
from tests.jenkins.helpers import jenkins_raw, templates

REGISTRY = {
    "username": "ci-bot",
    "password": "s3cr3t-token",
    "server": "registry.example.com",
    "pullSecret": True,
}


def pulled_with(result: Any, app: str) -> list[str]:
    spec = pod_spec(one(result.objects, "Deployment", app))
    return [ref["name"] for ref in spec.get("imagePullSecrets", [])]


def test_no_pull_secret_unless_configured(render: Render) -> None:
    result = render(base_raw("prod"))
    assert "imagePullSecrets" not in pod_spec(one(result.objects, "Deployment", "web"))
    assert not [s for s in find(result.objects, "Secret") if s.get("type", "").endswith("json")]
    # registry credentials for pushing only: still no pull Secret
    push_only = {**REGISTRY, "pullSecret": False}
    assert (
        find(
            render({**base_raw("prod"), "registry": push_only}).objects, "Secret", PULL_SECRET_NAME
        )
        == []
    )


def test_app_names_an_existing_secret(render: Render) -> None:
    result = render(base_raw("dev", imagePullSecrets=["corp-registry"]))
    assert pulled_with(result, "web") == ["corp-registry"]


def test_secret_from_registry_credentials_is_used_by_every_app(render: Render) -> None:
    api = {"imagePullSecrets": ["extra"], "service": {"type": "ClusterIP"}}
    raw = {**with_app(base_raw("prod"), "api", **api), "registry": REGISTRY}
    result = render(raw)
    secret = one(result.objects, "Secret", PULL_SECRET_NAME)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert (
        secret["metadata"]["namespace"]
        == one(result.objects, "Deployment", "web")["metadata"]["namespace"]
    )
    assert list(secret.get("stringData") or secret.get("data")) == [".dockerconfigjson"]
    assert "s3cr3t-token" not in json.dumps(result.objects)  # redacted in the render
    assert pulled_with(result, "web") == [PULL_SECRET_NAME]
    assert pulled_with(result, "api") == ["extra", PULL_SECRET_NAME]


def test_dockerconfigjson_is_what_the_kubelet_reads() -> None:
    doc = json.loads(dockerconfigjson("registry.example.com:5000", "u", "p@ss"))
    entry = doc["auths"]["registry.example.com:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "u:p@ss"
    assert (entry["username"], entry["password"]) == ("u", "p@ss")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({**base_raw("dev"), "registry": {**REGISTRY, "server": ""}}, "needs 'server'"),
        (base_raw("dev", imagePullSecrets=["Bad_Name"]), "imagePullSecrets"),
    ],
)
def test_bad_pull_secret_config_is_refused(raw: dict[str, Any], fragment: str) -> None:
    assert fragment in load_error(raw)


def test_jenkins_controller_and_every_agent_pull_with_the_named_secret(render: Render) -> None:
    result = render(jenkins_raw("prod", imagePullSecrets=["ci-registry"], imageBuilder=True))
    controller = pod_spec(one(result.objects, "StatefulSet", "jenkins"))
    assert controller["imagePullSecrets"] == [{"name": "ci-registry"}]
    pods = {name: yaml.safe_load(t["yaml"]) for name, t in templates(result).items()}
    assert set(pods) == {"default", "pulumi", "builder"}
    for name, pod in pods.items():
        assert pod["spec"]["imagePullSecrets"] == [{"name": "ci-registry"}], name
    plain = render(jenkins_raw("prod"))
    assert "imagePullSecrets" not in pod_spec(one(plain.objects, "StatefulSet", "jenkins"))

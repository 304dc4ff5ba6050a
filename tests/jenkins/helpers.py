"""Shared helpers of the Jenkins tests: configs with Jenkins on, and the JCasC document and agent
pods parsed back out of a render."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from components import config as config_model
from stackctl.render.stack import RenderResult
from tests.conftest import base_raw, find, one
from tests.tooling import load_yaml

NAMESPACE = "jenkins"
KUBE_API = "10.0.0.10/32"
DEPLOYER = "alice"
REPOSITORY = "https://github.com/example/appstack.git"
IMAGE_REPOSITORY = "registry.example.com/appstack/web"
AGENT_IMAGE_REPOSITORY = "registry.example.com/appstack/ci-agent"
# The mock runtime's RandomPassword result (stackctl.mockruntime.engine._mock_outputs).
MOCK_PASSWORD = "mock-random-password"


def jenkins_raw(environment: str = "dev", **jenkins: Any) -> dict[str, Any]:
    """base_raw(environment) with Jenkins enabled (an environment with prod's rules gets the
    required kubeApiCidrs and job repository)."""
    raw = base_raw(environment)
    settings: dict[str, Any] = {"enabled": True}
    if config_model.production_rules(environment):
        settings["kubeApiCidrs"] = [KUBE_API]
        settings["job"] = {"repository": REPOSITORY}
        settings["authorization"] = {"deployers": [DEPLOYER]}  # prod needs an approver
    if jenkins.get("imageBuilder"):  # `Build image` pushes to both repositories (required)
        settings["pipeline"] = {
            "imageRepository": IMAGE_REPOSITORY,
            "agentImageRepository": AGENT_IMAGE_REPOSITORY,
        }
    raw["jenkins"] = config_model.deep_merge(settings, jenkins)
    return raw


def with_monitoring(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    out["monitoring"] = {"enabled": True}
    return out


def jenkins_objects(result: RenderResult) -> list[dict[str, Any]]:
    """Every rendered object in the Jenkins namespace, plus the Namespace itself."""
    return [
        o
        for o in result.objects
        if o["metadata"].get("namespace") == NAMESPACE
        or (o["kind"] == "Namespace" and o["metadata"]["name"] == NAMESPACE)
    ]


def casc(result: RenderResult) -> dict[str, Any]:
    """The JCasC document of the rendered ConfigMap, parsed."""
    maps = [
        o
        for o in find(result.objects, "ConfigMap")
        if o["metadata"]["name"].startswith("jenkins-casc-")
    ]
    assert len(maps) == 1, [m["metadata"]["name"] for m in maps]
    doc: dict[str, Any] = load_yaml(maps[0]["data"]["jenkins.yaml"])
    return doc


def cloud(result: RenderResult) -> dict[str, Any]:
    clouds = casc(result)["jenkins"]["clouds"]
    assert len(clouds) == 1
    kubernetes: dict[str, Any] = clouds[0]["kubernetes"]
    return kubernetes


def templates(result: RenderResult) -> dict[str, dict[str, Any]]:
    """Pod templates of the cloud by name."""
    return {t["name"]: t for t in cloud(result)["templates"]}


def agent_pods(result: RenderResult) -> dict[str, dict[str, Any]]:
    """The raw pod (`yaml`) of each agent template, parsed, by template name."""
    return {name: load_yaml(t["yaml"]) for name, t in templates(result).items()}


def statefulset(result: RenderResult) -> dict[str, Any]:
    return one(result.objects, "StatefulSet", "jenkins")

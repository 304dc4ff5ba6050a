"""Config validation of `appstack:jenkins`: defaults per environment, every cross-field rule
(key path + what is allowed), and unknown keys with a suggestion."""

from __future__ import annotations

from typing import Any

import pytest

from components import config as config_model
from tests.conftest import base_raw, load_error
from tests.jenkins.helpers import KUBE_API, jenkins_raw


def test_disabled_by_default_in_every_environment() -> None:
    for env in config_model.environments():
        assert config_model.load(base_raw(env)).jenkins.enabled is False


def test_environment_defaults() -> None:
    dev = config_model.load(jenkins_raw("dev")).jenkins
    prod = config_model.load(jenkins_raw("prod")).jenkins
    staging = config_model.load(jenkins_raw("staging")).jenkins
    assert (dev.home.size, dev.home.protect, dev.service.type) == ("8Gi", False, "ClusterIP")
    assert (prod.home.size, prod.home.protect, prod.service.type) == ("50Gi", True, "ClusterIP")
    # staging keeps prod's rules (a protected home) at a smaller size
    assert (staging.home.size, staging.home.protect) == ("20Gi", True)
    for settings in (dev, staging, prod):
        assert settings.namespace == "jenkins"
        assert settings.agent_connection == "websocket"
        assert settings.cloud.pod_retention == "never"
        assert (settings.cloud.container_cap, settings.cloud.idle_minutes) == (10, 5)
        assert settings.security.run_as_user >= 10000
        assert settings.java_max_ram_percentage == 75


def test_empty_cidr_lists_stand_for_anywhere_only_on_their_ports() -> None:
    dev = config_model.load(jenkins_raw("dev")).jenkins
    assert dev.effective_kube_api_cidrs == ["0.0.0.0/0"]
    assert dev.effective_plugin_site_cidrs == ["0.0.0.0/0"]
    assert dev.effective_agent_egress_cidrs == ["0.0.0.0/0"]
    prod = config_model.load(jenkins_raw("prod", agentEgressCidrs=["198.51.100.0/24"])).jenkins
    assert prod.effective_kube_api_cidrs == [KUBE_API]
    assert prod.effective_agent_egress_cidrs == ["198.51.100.0/24"]


def test_a_partial_resources_override_keeps_the_jenkins_defaults() -> None:
    settings = config_model.load(jenkins_raw("dev", resources={"limits": {"memory": "6Gi"}}))
    res = settings.jenkins.resources
    assert (res.requests.cpu, res.requests.memory) == ("500m", "2Gi")
    assert (res.limits.cpu, res.limits.memory) == ("2", "6Gi")


def test_prod_rules_do_not_apply_while_disabled() -> None:
    raw = base_raw("prod")
    raw["jenkins"] = {"enabled": False, "home": {"protect": False}}
    assert config_model.load(raw).jenkins.home.protect is False


@pytest.mark.parametrize(
    ("raw", "key", "detail"),
    [
        pytest.param(
            {**jenkins_raw("prod"), "jenkins": {"enabled": True}},
            "appstack:jenkins.kubeApiCidrs:",
            "prod requires the Kubernetes API server CIDRs",
            id="prod-needs-kube-api-cidrs",
        ),
        pytest.param(
            jenkins_raw("prod", home={"protect": False}),
            "appstack:jenkins.home.protect:",
            "prod requires home.protect: true",
            id="prod-home-protected",
        ),
        pytest.param(
            jenkins_raw("dev", service={"type": "LoadBalancer"}),
            "appstack:jenkins.service.loadBalancerSourceRanges:",
            "needs loadBalancerSourceRanges",
            id="loadbalancer-without-ranges",
        ),
        pytest.param(
            jenkins_raw("dev", service={"loadBalancerSourceRanges": ["203.0.113.0/24"]}),
            "appstack:jenkins.service.loadBalancerSourceRanges:",
            "only apply to type LoadBalancer (type is ClusterIP)",
            id="ranges-without-loadbalancer",
        ),
        pytest.param(
            jenkins_raw("dev", ingress={"enabled": True}),
            "appstack:jenkins.ingress.host:",
            "host is required",
            id="ingress-without-host",
        ),
        pytest.param(
            jenkins_raw(
                "dev", resources={"requests": {"memory": "256Mi"}, "limits": {"memory": "512Mi"}}
            ),
            "appstack:jenkins.resources.limits.memory:",
            "below 1Gi",
            id="controller-memory-too-small",
        ),
        pytest.param(
            jenkins_raw("dev", resources={"requests": {"cpu": "4"}}),
            "appstack:jenkins.resources.requests.cpu:",
            "request (4) must be <= limit limits.cpu (2)",
            id="request-above-limit",
        ),
        pytest.param(
            jenkins_raw("dev", pulumiAgentResources={"requests": {"memory": "8Gi"}}),
            "appstack:jenkins.pulumiAgentResources.requests.memory:",
            "must be <= limit",
            id="agent-request-above-limit",
        ),
        pytest.param(
            jenkins_raw("dev", javaMaxRamPercentage=95),
            "appstack:jenkins.javaMaxRamPercentage:",
            "less than or equal to 90",
            id="java-ram-percentage",
        ),
        pytest.param(
            jenkins_raw("dev", security={"runAsUser": 1000}),
            "appstack:jenkins.security.runAsUser:",
            "greater than or equal to 10000",
            id="uid-below-10000",
        ),
        pytest.param(
            jenkins_raw("dev", image="jenkins/jenkins:latest"),
            "appstack:jenkins.image:",
            "is not pinned",
            id="controller-image-latest",
        ),
        pytest.param(
            jenkins_raw("dev", agentImage="jenkins/inbound-agent"),
            "appstack:jenkins.agentImage:",
            "is not pinned",
            id="agent-image-untagged",
        ),
        pytest.param(
            jenkins_raw("dev", pulumiAgentImage="Python:3.11"),
            "appstack:jenkins.pulumiAgentImage:",
            "is not an image reference",
            id="tools-image-invalid",
        ),
        pytest.param(
            jenkins_raw("dev", namespace="Jenkins"),
            "appstack:jenkins.namespace:",
            "DNS-1123",
            id="namespace-not-dns",
        ),
        pytest.param(
            jenkins_raw("dev", namespace="shop"),
            "appstack:jenkins.namespace:",
            "must differ from the apps' namespace",
            id="namespace-shared-with-apps",
        ),
        pytest.param(
            jenkins_raw("dev", home={"size": "lots"}),
            "appstack:jenkins.home.size:",
            "is not a Kubernetes quantity",
            id="home-size-quantity",
        ),
        pytest.param(
            jenkins_raw("dev", kubeApiCidrs=["10.0.0.1"]),
            "appstack:jenkins.kubeApiCidrs[0]:",
            "is not a CIDR block",
            id="kube-api-cidr",
        ),
        pytest.param(
            jenkins_raw("dev", agentEgressCidrs=["10.0.0.0/33"]),
            "appstack:jenkins.agentEgressCidrs[0]:",
            "is not a CIDR block",
            id="agent-egress-cidr",
        ),
        pytest.param(
            jenkins_raw("dev", cloud={"containerCap": 0}),
            "appstack:jenkins.cloud.containerCap:",
            "greater than or equal to 1",
            id="container-cap",
        ),
        pytest.param(
            jenkins_raw("dev", cloud={"podRetention": "always"}),
            "appstack:jenkins.cloud.podRetention:",
            "'always' is not allowed",
            id="pod-retention-fixed",
        ),
        pytest.param(
            jenkins_raw("dev", agentConnection="jnlp"),
            "appstack:jenkins.agentConnection:",
            "'jnlp' is not allowed",
            id="agent-connection-websocket-only",
        ),
        pytest.param(
            jenkins_raw("dev", admin={"existingSecret": "Admin_Secret"}),
            "appstack:jenkins.admin.existingSecret:",
            "DNS-1123 subdomain",
            id="existing-secret-name",
        ),
        pytest.param(
            # configuration-as-code's pom.xml baseline is 2.541 (plugins-metadata.yaml)
            jenkins_raw("dev", image="jenkins/jenkins:2.528.2-lts-jdk21"),
            "appstack:jenkins.image:",
            "requires Jenkins >= 2.541",
            id="image-core-older-than-the-plugins-need",
        ),
        pytest.param(
            jenkins_raw("prod", job={"repository": ""}),
            "appstack:jenkins.job.repository:",
            "prod requires the repository",
            id="prod-needs-the-job-repository",
        ),
        pytest.param(
            jenkins_raw("dev", job={"repository": "git@github.com:acme/appstack.git"}),
            "appstack:jenkins.job.repository:",
            "is not an https clone URL",
            id="job-repository-https",
        ),
        pytest.param(
            jenkins_raw("dev", job={"repository": "https://github.com/appstack.git"}),
            "appstack:jenkins.job.repository:",
            "needs an owner and a repository",
            id="github-owner-and-repository",
        ),
        pytest.param(
            jenkins_raw("dev", kubeApiPorts=[0]),
            "appstack:jenkins.kubeApiPorts[0]:",
            "greater than or equal to 1",
            id="kube-api-port",
        ),
        pytest.param(
            jenkins_raw("dev", authorization={"deployers": ["bad user"]}),
            "appstack:jenkins.authorization.deployers[0]:",
            "should match pattern",
            id="deployer-user-id",
        ),
        pytest.param(
            jenkins_raw("dev", service={"type": "NodePort"}),
            "appstack:jenkins.service.type:",
            "'NodePort' is not allowed",
            id="service-type",
        ),
    ],
)
def test_invalid_jenkins_config_is_reported_at_its_key(
    raw: dict[str, Any], key: str, detail: str
) -> None:
    message = load_error(raw)
    line = next((ln for ln in message.splitlines() if key in ln), None)
    assert line is not None, message
    assert detail in line, message


def test_several_problems_are_reported_together() -> None:
    message = load_error(
        jenkins_raw("prod", kubeApiCidrs=[], home={"protect": False}, ingress={"enabled": True})
    )
    assert "appstack:jenkins.kubeApiCidrs:" in message
    assert "appstack:jenkins.home.protect:" in message
    assert "appstack:jenkins.ingress.host:" in message


@pytest.mark.parametrize(
    ("path", "bad", "hint"),
    [
        pytest.param((), "hmoe", "home", id="top"),
        pytest.param(("home",), "sise", "size", id="home"),
        pytest.param(("cloud",), "idleMinute", "idleMinutes", id="cloud"),
        pytest.param(("admin",), "existingSecrets", "existingSecret", id="admin"),
    ],
)
def test_unknown_keys_are_named_with_a_suggestion(
    path: tuple[str, ...], bad: str, hint: str
) -> None:
    raw = jenkins_raw("dev")
    node: dict[str, Any] = raw["jenkins"]
    for part in path:
        node = node.setdefault(part, {})
    node[bad] = 1
    message = load_error(raw)
    where = ".".join(("jenkins", *path, bad))
    assert f"appstack:{where}: unknown key (did you mean {hint!r}?)" in message, message

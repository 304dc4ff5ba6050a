"""Config validation: every rejection names its key path, the bad value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from components import config as config_model
from components.config.loading import _unwrap as unwrap_annotation
from tests.conftest import PROD_IMAGE, base_raw, load_error, with_app


@pytest.mark.parametrize(
    ("raw", "key", "detail"),
    [
        pytest.param(
            with_app(base_raw(), "Web_1"), "appstack:apps.Web_1:", "DNS-1035", id="app-name-not-dns"
        ),
        pytest.param(
            {**base_raw(), "namespace": "Shop"}, "appstack:namespace:", "DNS-1123", id="namespace"
        ),
        pytest.param(
            base_raw(resources={"requests": {"cpu": "500x"}}),
            "appstack:apps.web.resources.requests.cpu:",
            "'500x' is not a Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(
            base_raw(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
            "appstack:apps.web.resources.requests.memory:",
            "request (1Gi) must be <= limit limits.memory (512Mi)",
            id="request-above-limit",
        ),
        pytest.param(
            base_raw(replicas=0),
            "appstack:apps.web.replicas:",
            "greater than or equal to 1",
            id="replicas-below-1",
        ),
        pytest.param(
            base_raw(autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 3}),
            "appstack:apps.web.autoscaling:",
            "minReplicas (5) must be <= maxReplicas (3)",
            id="hpa-min-above-max",
        ),
        pytest.param(
            base_raw(
                autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 4},
                pdb={"minAvailable": 2},
            ),
            "appstack:apps.web.pdb.minAvailable:",
            "minAvailable (2) must be < autoscaling.minReplicas (2)",
            id="hpa-min-below-pdb-need",
        ),
        pytest.param(
            base_raw(replicas=2, pdb={"minAvailable": 2}),
            "appstack:apps.web.pdb.minAvailable:",
            "no pod can ever be evicted",
            id="pdb-blocks-evictions",
        ),
        pytest.param(
            base_raw(pdb={"maxUnavailable": 0}),
            "appstack:apps.web.pdb.maxUnavailable:",
            "blocks every voluntary eviction",
            id="pdb-max-unavailable-0",
        ),
        pytest.param(
            base_raw(pdb={"minAvailable": "100%"}),
            "appstack:apps.web.pdb.minAvailable:",
            "blocks every voluntary eviction",
            id="pdb-100-percent",
        ),
        pytest.param(
            base_raw(pdb={"minAvailable": 1, "maxUnavailable": 1}),
            "appstack:apps.web.pdb:",
            "not both",
            id="pdb-both-bounds",
        ),
        pytest.param(
            {**base_raw(), "environment": "qa"},
            "appstack:environment:",
            "allowed: dev, staging, prod",
            id="unknown-environment",
        ),
        pytest.param(
            base_raw(replicaz=3),
            "appstack:apps.web.replicaz:",
            "unknown key (did you mean 'replicas'?)",
            id="unknown-app-key",
        ),
        pytest.param(
            {**base_raw(), "namespce": "x"},
            "appstack:namespce:",
            "unknown key (did you mean 'namespace'?)",
            id="unknown-top-key",
        ),
        pytest.param(
            base_raw(autoscaling={"enabeld": True}),
            "appstack:apps.web.autoscaling.enabeld:",
            "allowed: cpuUtilization, enabled",
            id="unknown-nested-key",
        ),
        pytest.param(
            base_raw("prod", image="registry.example.com/web:latest"),
            "appstack:apps.web.image:",
            "is not pinned",
            id="latest-image-prod",
        ),
        pytest.param(
            base_raw("prod", image="registry.example.com/web"),
            "appstack:apps.web.image:",
            "is not pinned",
            id="untagged-image-prod",
        ),
        pytest.param(
            base_raw("prod", autoscaling={"enabled": False}, replicas=1),
            "appstack:apps.web.replicas:",
            "prod needs >= 2 replicas",
            id="prod-one-replica",
        ),
        pytest.param(
            base_raw("prod", autoscaling={"minReplicas": 1}),
            "appstack:apps.web.autoscaling.minReplicas:",
            "prod needs >= 2 replicas",
            id="prod-hpa-min-1",
        ),
        pytest.param(
            base_raw(port=70000),
            "appstack:apps.web.port:",
            "less than or equal to 65535",
            id="port-too-high",
        ),
        pytest.param(
            base_raw(metricsPort=0),
            "appstack:apps.web.metricsPort:",
            "greater than or equal to 1",
            id="port-zero",
        ),
        pytest.param(
            base_raw(probes={"readiness": {"path": "ready"}}),
            "appstack:apps.web.probes.readiness.path:",
            "must be absolute",
            id="probe-path-relative",
        ),
        pytest.param(
            {**base_raw("prod"), "apps": {"web": {"image": PROD_IMAGE}}},
            "appstack:apps.web.service.loadBalancerSourceRanges:",
            "openToInternet",
            id="prod-lb-without-ranges",
        ),
        pytest.param(
            base_raw("prod", pdb={"enabled": False}),
            "appstack:apps.web.pdb.enabled:",
            "prod requires a PodDisruptionBudget",
            id="prod-without-pdb",
        ),
        pytest.param(
            base_raw(rollout={"preStopSleepSeconds": 30, "terminationGracePeriodSeconds": 30}),
            "appstack:apps.web.rollout.preStopSleepSeconds:",
            "must be < terminationGracePeriodSeconds (30)",
            id="prestop-not-below-grace",
        ),
        pytest.param(
            base_raw(rollout={"maxSurge": 0}),
            "appstack:apps.web.rollout.maxSurge:",
            "must be > 0",
            id="surge-zero",
        ),
        pytest.param(
            base_raw(
                probes={
                    "liveness": {"path": "/health/ready", "periodSeconds": 5, "failureThreshold": 2}
                }
            ),
            "appstack:apps.web.probes:",
            "identical",
            id="liveness-equals-readiness",
        ),
        pytest.param(
            base_raw(ingress={"enabled": True}),
            "appstack:apps.web.ingress.host:",
            "host is required",
            id="ingress-without-host",
        ),
        pytest.param(
            base_raw(egress=[{"app": "nope", "ports": [{"port": 80}]}]),
            "appstack:apps.web.egress[0].app:",
            "no app named 'nope'",
            id="egress-to-unknown-app",
        ),
        pytest.param(
            base_raw(egress=[{"cidrs": ["10.0.0.1/8"], "ports": [{"port": 443}]}]),
            "appstack:apps.web.egress[0].cidrs[0]:",
            "not a CIDR",
            id="bad-cidr",
        ),
        pytest.param(
            base_raw(env={"PORT": "1"}),
            "appstack:apps.web.env.PORT:",
            "set from config",
            id="reserved-env",
        ),
        pytest.param(
            {**base_raw(), "secrets": {"api": {"TOKEN": "x"}}},
            "appstack:secrets.api:",
            "no app named 'api'",
            id="secret-for-unknown-app",
        ),
        pytest.param({**base_raw(), "apps": {}}, "appstack:apps:", "at least 1 item", id="no-apps"),
        pytest.param(
            base_raw(build={"extraTags": ["latest"]}),
            "appstack:apps.web.build.extraTags[0]:",
            "'latest' is not an allowed tag",
            id="build-moving-tag",
        ),
        pytest.param(
            base_raw(build={"platform": "windows/amd64"}),
            "appstack:apps.web.build.platform:",
            "'linux/amd64' or 'linux/arm64'",
            id="build-platform",
        ),
        pytest.param(
            base_raw(security={"runAsUser": 1000}),
            "appstack:apps.web.security.runAsUser:",
            "greater than or equal to 10000",
            id="low-uid",
        ),
    ],
)
def test_invalid_config_is_rejected_naming_its_key(
    raw: dict[str, Any], key: str, detail: str
) -> None:
    message = load_error(raw)
    lines = [line.strip() for line in message.splitlines()]
    matching = [line for line in lines if line.startswith(key)]
    assert matching, f"no problem reported at {key}:\n{message}"
    assert any(detail in line for line in matching), message


def test_every_problem_is_reported_at_once() -> None:
    raw = with_app(base_raw(port=0, replicas=0), "Api")
    raw["namespace"] = "Bad_NS"
    lines = load_error(raw).splitlines()[1:]
    keys = {line.strip().split(": ")[0] for line in lines}
    assert {
        "appstack:namespace",
        "appstack:apps.Api",
        "appstack:apps.web.port",
        "appstack:apps.web.replicas",
    } <= keys


def test_latest_image_is_rejected_in_dev_too() -> None:
    assert "is not pinned" in load_error(base_raw(image="nginx:latest"))


def test_digest_pinned_image_is_accepted_in_prod() -> None:
    cfg = config_model.load(base_raw("prod", image="registry.example.com/web@sha256:" + "b" * 64))
    assert cfg.apps["web"].image.endswith("b" * 64)


def test_prod_defaults_are_ha_and_dev_defaults_are_small() -> None:
    prod = config_model.load(base_raw("prod")).apps["web"]
    dev = config_model.load(base_raw("dev")).apps["web"]
    assert prod.autoscaling.enabled and prod.min_pods >= 2
    assert prod.service.type == "LoadBalancer" and dev.service.type == "ClusterIP"
    assert prod.topology.zones and prod.topology.when_unsatisfiable == "DoNotSchedule"
    assert dev.replicas == 1 and not dev.autoscaling.enabled


def test_user_values_override_environment_defaults() -> None:
    cfg = config_model.load(base_raw("prod", autoscaling={"maxReplicas": 20}))
    assert cfg.apps["web"].autoscaling.max_replicas == 20
    assert cfg.apps["web"].autoscaling.min_replicas == 3  # prod default kept


def test_open_to_internet_renders_an_explicit_any_range() -> None:
    raw = base_raw("prod")
    raw["apps"]["web"]["service"] = {"openToInternet": True}
    assert config_model.load(raw).apps["web"].service.effective_source_ranges == ["0.0.0.0/0"]


def test_pdb_without_bounds_means_max_unavailable_one() -> None:
    assert config_model.load(base_raw()).apps["web"].pdb.effective_max_unavailable == 1


def test_every_field_is_documented() -> None:
    undocumented: list[str] = []

    def walk(model: type[config_model.Model], path: str) -> None:
        for name, field in model.model_fields.items():
            if not field.description:
                undocumented.append(f"{path}.{name}")
            for sub in config_model.Model.__subclasses__():
                if sub is unwrap_annotation(field.annotation) and sub is not model:
                    walk(sub, f"{path}.{name}")

    walk(config_model.StackConfig, "appstack")
    assert undocumented == []

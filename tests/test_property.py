"""Property tests: generated valid configs always render to schema-valid, checkov-clean
manifests; generated invalid ones always fail with a clear error naming the key."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import config as config_model
from stackctl.render import stack as render_mod
from tests.validators import (
    CRD_GROUPS,
    KUBERNETES_VERSIONS,
    CheckovServer,
    schemas_parsed_once,
)

pytestmark = pytest.mark.slow

app_names = st.from_regex(r"\A[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6})?\Z")
tags = st.from_regex(r"\A[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}\Z")
digests = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"@sha256:{h}")
cidrs = st.sampled_from(["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/25", "2001:db8::/32"])
millicores = st.integers(min_value=10, max_value=2000)
mebibytes = st.integers(min_value=16, max_value=4096)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    cpu_req, mem_req = draw(millicores), draw(mebibytes)
    cpu_lim = cpu_req + draw(st.integers(0, 2000))
    mem_lim = mem_req + draw(st.integers(0, 4096))
    return {
        "requests": {"cpu": f"{cpu_req}m", "memory": f"{mem_req}Mi"},
        "limits": {"cpu": f"{cpu_lim}m", "memory": f"{mem_lim}Mi"},
    }


@st.composite
def app_settings(draw: st.DrawFn, env: str, others: list[str]) -> dict[str, Any]:
    image = "registry.example.com/team/" + draw(app_names)
    image += ":" + draw(tags) if draw(st.booleans()) else draw(digests)
    port = draw(st.integers(1024, 9000))
    app: dict[str, Any] = {
        "image": image,
        "port": port,
        "metricsPort": port + draw(st.integers(1, 500)),
        "resources": draw(resources()),
    }
    strict = config_model.production_rules(env)
    autoscale = True if strict else draw(st.booleans())
    low = 2 if strict else 1
    min_pods = draw(st.integers(low, 5))
    if autoscale:
        app["autoscaling"] = {
            "enabled": True,
            "minReplicas": min_pods,
            "maxReplicas": min_pods + draw(st.integers(0, 10)),
            "cpuUtilization": draw(st.integers(30, 95)),
        }
    else:
        app["autoscaling"] = {"enabled": False}
        app["replicas"] = min_pods
    if min_pods >= 2 and draw(st.booleans()):
        app["pdb"] = {"minAvailable": draw(st.integers(1, min_pods - 1))}
    else:
        app["pdb"] = {"maxUnavailable": draw(st.sampled_from([1, 2, "25%", "50%"]))}
    service_type = draw(st.sampled_from(["ClusterIP", "LoadBalancer", "NodePort"]))
    service: dict[str, Any] = {"type": service_type, "port": draw(st.integers(1, 65535))}
    if service_type == "LoadBalancer" and (strict or draw(st.booleans())):
        service["loadBalancerSourceRanges"] = draw(
            st.lists(cidrs, min_size=1, max_size=3, unique=True)
        )
    if draw(st.booleans()):
        service["sessionAffinity"] = {
            "enabled": True,
            "timeoutSeconds": draw(st.integers(1, 86400)),
        }
    app["service"] = service
    if draw(st.booleans()):
        app["ingress"] = {"enabled": True, "host": "app.example.com"}
        if draw(st.booleans()):
            app["ingress"]["tlsSecretName"] = "app-tls"
    grace = draw(st.integers(10, 120))
    app["rollout"] = {
        "maxSurge": draw(st.sampled_from([1, 2, "25%", "100%"])),
        "terminationGracePeriodSeconds": grace,
        "preStopSleepSeconds": draw(st.integers(0, grace - 1)),
        "minReadySeconds": draw(st.integers(1, 30)),
    }
    app["topology"] = {"zones": draw(st.booleans())}
    egress: list[dict[str, Any]] = []
    if others and draw(st.booleans()):
        egress.append({"app": draw(st.sampled_from(others)), "ports": [{"port": 8080}]})
    if draw(st.booleans()):
        egress.append(
            {
                "cidrs": draw(st.lists(cidrs, min_size=1, max_size=2, unique=True)),
                "ports": [{"port": 443}],
            }
        )
    app["egress"] = egress
    app["env"] = draw(
        st.dictionaries(
            st.from_regex(r"\A[A-Z][A-Z0-9_]{0,10}\Z"),
            st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=12),
            max_size=3,
        )
    )
    for reserved in config_model.RESERVED_ENV:
        app["env"].pop(reserved, None)
    return app


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    env = draw(st.sampled_from(config_model.environments()))
    names = draw(st.lists(app_names, min_size=1, max_size=3, unique=True))
    apps = {n: draw(app_settings(env, [o for o in names if o != n])) for n in names}
    return {
        "environment": env,
        "namespace": draw(app_names),
        "apps": apps,
        "monitoring": {"enabled": draw(st.booleans())},
        "secrets": {names[0]: {"TOKEN": "generated-secret-value"}},
    }


def test_generated_valid_configs_render_schema_valid_and_checkov_clean(
    tmp_path: Path, checkov_server: Callable[[], CheckovServer]
) -> None:
    rendered: list[Path] = []

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(valid_configs())
    def render_one(raw: dict[str, Any]) -> None:
        cfg = config_model.load(raw)
        result = render_mod.render_config(cfg, cfg.environment)
        assert "generated-secret-value" not in repr(result.objects)
        for obj in result.objects:
            if str(obj["apiVersion"]).startswith(CRD_GROUPS):
                continue
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
        out = tmp_path / f"example-{len(rendered):03d}"
        render_mod.write(result, out / "manifests")
        (out / "config.json").write_text(json.dumps(raw, indent=1))  # to reproduce a failure
        rendered.append(out)

    with schemas_parsed_once():
        render_one()
    assert len(rendered) >= 10
    report = checkov_server().scan(tmp_path).result()
    assert report.parsing_errors == []
    assert report.failed == [], "\n".join(f"{f.check_id} {f.file}" for f in report.failed)


# One mutation breaks one rule; the error must name this key path.
MUTATIONS: list[tuple[str, Any, str]] = [
    ("replicas", 0, "replicas"),
    ("port", 70000, "port"),
    ("metricsPort", -1, "metricsPort"),
    ("image", "registry.example.com/team/app:latest", "image"),
    ("image", "registry.example.com/team/app", "image"),
    ("image", "Not An Image", "image"),
    ("resources.requests.cpu", "500x", "resources.requests.cpu"),
    ("resources.limits.memory", "1Ki", "resources.requests.memory"),
    ("probes.liveness.path", "health", "probes.liveness.path"),
    ("autoscaling", {"enabled": True, "minReplicas": 6, "maxReplicas": 5}, "autoscaling"),
    ("pdb", {"maxUnavailable": 0}, "pdb.maxUnavailable"),
    ("pdb", {"minAvailable": "100%"}, "pdb.minAvailable"),
    ("rollout.maxSurge", 0, "rollout.maxSurge"),
    ("service.type", "ExternalName", "service.type"),
    ("replcas", 2, "replcas"),
]


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs(), st.sampled_from(MUTATIONS), st.data())
def test_generated_invalid_configs_fail_with_a_clear_error(
    raw: dict[str, Any], mutation: tuple[str, Any, str], data: st.DataObject
) -> None:
    path, value, expected_key = mutation
    broken = copy.deepcopy(raw)
    app = data.draw(st.sampled_from(sorted(broken["apps"])))
    set_path(broken["apps"][app], path, value)
    with pytest.raises(config_model.ConfigError) as info:
        config_model.load(broken)
    message = str(info.value)
    assert f"appstack:apps.{app}.{expected_key}" in message, message
    assert "Traceback" not in message

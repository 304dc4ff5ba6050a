"""Issue 32: environments are data. dev, staging and prod are entries of
`components.config.ENVIRONMENT_DEFAULTS` (+ the policy pack's `PRODUCTION_RULES`, a stack file and
a policy config file); staging keeps prod's rules at smaller sizes, read from the render; and an
environment registered purely through data renders, validates and is checked like the shipped
ones, with no code change."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from appstack_grammar import parse_quantity
from components import config as config_model
from components.config import stack as stack_config
from policy.enforcement import load_levels
from policy.rules import base as policy_base
from stackctl.check import check_objects
from stackctl.errors import UserError
from stackctl.ops.stacks import keeps_production_rules, policy_arguments, stack_environment
from stackctl.render import RenderResult, load_raw_config, render_stack
from tests.tooling import REPO, SHIPPED_STACKS

POLICY_CONFIG = REPO / "policy" / "config"


def _objects(result: RenderResult, kind: str, name: str = "web") -> dict[str, Any]:
    [found] = [o for o in result.objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# --------------------------------------------------------------------------------------------
# One list of environments, everything else follows it


def test_every_environment_ships_a_stack_file_and_a_policy_config() -> None:
    environments = config_model.environments()
    assert environments == ("dev", "staging", "prod")  # promotion order
    stack_files = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO.glob("Pulumi.*.yaml"))
    assert stack_files == sorted(environments)
    assert environments == SHIPPED_STACKS
    assert sorted(p.stem for p in POLICY_CONFIG.glob("*.json")) == sorted(environments)


def test_the_policy_pack_reads_each_environment_as_the_config_model_does() -> None:
    # the pack's venv has no `components`, so it keeps its own table; the two must agree
    assert {
        env: config_model.production_rules(env) for env in config_model.environments()
    } == policy_base.PRODUCTION_RULES
    assert list(policy_base.PRODUCTION_RULES) == list(config_model.environments())


@pytest.mark.parametrize("env", config_model.environments())
def test_an_environment_with_prods_rules_is_enforced_as_prod(env: str) -> None:
    levels = set(load_levels(env).values())
    assert levels == ({"mandatory"} if config_model.production_rules(env) else {"advisory"})


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_each_stack_file_names_its_own_environment(stack: str) -> None:
    doc = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    assert doc["config"]["appstack:environment"] == stack == stack_environment(stack)


def test_staging_and_prod_keep_prods_rules_dev_does_not() -> None:
    assert [keeps_production_rules(s) for s in ("dev", "staging", "acme/staging", "prod")] == [
        False,
        True,
        True,
        True,
    ]


# --------------------------------------------------------------------------------------------
# staging: prod's rules, smaller sizes (the render is the oracle)


def _cpu_memory(container: Mapping[str, Any], which: str) -> tuple[Any, Any]:
    values = container["resources"][which]
    return parse_quantity(str(values["cpu"])), parse_quantity(str(values["memory"]))


def test_staging_renders_prods_shape_at_a_smaller_size(renders: Any) -> None:
    staging, prod, dev = (renders.stack(s) for s in ("staging", "prod", "dev"))
    shapes = {}
    for name, result in (("staging", staging), ("prod", prod), ("dev", dev)):
        deployment = _objects(result, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        shapes[name] = {
            "container": pod["containers"][0],
            "spread": {
                c["topologyKey"]: c["whenUnsatisfiable"]
                for c in pod.get("topologySpreadConstraints", [])
            },
            "minReady": deployment["spec"].get("minReadySeconds"),
            "service": _objects(result, "Service")["spec"],
        }
    # prod's rules: autoscaled (>= 2 pods), a PDB that selects the pods, zone spread enforced,
    # minReadySeconds > 0, a LoadBalancer limited to source ranges, monitoring on
    hpa = _objects(staging, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in _objects(staging, "Deployment")["spec"]  # the HPA owns them
    pdb = _objects(staging, "PodDisruptionBudget")
    pod_labels = _objects(staging, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert shapes["staging"]["spread"] == shapes["prod"]["spread"]
    assert shapes["staging"]["spread"]["topology.kubernetes.io/zone"] == "DoNotSchedule"
    assert shapes["staging"]["minReady"] > 0
    assert shapes["staging"]["service"]["type"] == "LoadBalancer"
    assert shapes["staging"]["service"]["loadBalancerSourceRanges"]
    assert {o["kind"] for o in staging.objects} >= {"ServiceMonitor", "PrometheusRule"}
    # smaller than prod, not smaller than dev
    for which in ("requests", "limits"):
        cpu, memory = _cpu_memory(shapes["staging"]["container"], which)
        prod_cpu, prod_memory = _cpu_memory(shapes["prod"]["container"], which)
        dev_cpu, dev_memory = _cpu_memory(shapes["dev"]["container"], which)
        assert dev_cpu <= cpu < prod_cpu and dev_memory <= memory < prod_memory, which
    assert (
        hpa["spec"]["maxReplicas"]
        < _objects(prod, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    )


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        (
            {"autoscaling": {"enabled": False}, "replicas": 1},
            "appstack:apps.web.replicas",
            "staging needs >= 2 replicas",
        ),
        ({"pdb": {"enabled": False}}, "appstack:apps.web.pdb.enabled", "staging requires a Pod"),
        (
            {"service": {"loadBalancerSourceRanges": []}},
            "appstack:apps.web.service.loadBalancerSourceRanges",
            "a staging LoadBalancer needs loadBalancerSourceRanges",
        ),
    ],
)
def test_staging_rejects_what_prod_rejects(
    override: dict[str, Any], key: str, message: str
) -> None:
    raw = _stack_raw("staging")
    raw["apps"]["web"] = config_model.deep_merge(raw["apps"]["web"], override)
    with pytest.raises(config_model.ConfigError) as caught:
        config_model.load(raw)
    assert any(p.startswith(f"{key}: {message}") for p in caught.value.problems), caught.value
    prod = _stack_raw("prod")
    prod["apps"]["web"] = config_model.deep_merge(prod["apps"]["web"], override)
    with pytest.raises(config_model.ConfigError):
        config_model.load(prod)


def _stack_raw(stack: str) -> dict[str, Any]:
    return load_raw_config(REPO, stack)


# --------------------------------------------------------------------------------------------
# A new environment needs only data


QA_DEFAULTS: dict[str, Any] = {
    "productionRules": True,
    "app": {
        **copy.deepcopy(stack_config.ENVIRONMENT_DEFAULTS["staging"]["app"]),
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 3},
        "resources": {
            "requests": {"cpu": "75m", "memory": "96Mi", "ephemeralStorage": "48Mi"},
            "limits": {"cpu": "300m", "memory": "192Mi", "ephemeralStorage": "192Mi"},
        },
    },
    "stack": {"monitoring": {"alerts": {"errorRatio": 0.1, "p95LatencySeconds": 0.75}}},
}
QA_STACK = """\
config:
  appstack:environment: qa
  appstack:namespace: appstack-qa
  appstack:apps:
    web:
      image: registry.example.com/appstack/web:0.1.0
      service:
        loadBalancerSourceRanges:
          - 203.0.113.0/24
"""


@pytest.fixture
def qa_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment `qa` registered by data alone: its defaults, its policy reading, a stack
    file and a policy config file (no module of the program is edited)."""
    monkeypatch.setitem(stack_config.ENVIRONMENT_DEFAULTS, "qa", copy.deepcopy(QA_DEFAULTS))
    monkeypatch.setitem(policy_base.PRODUCTION_RULES, "qa", True)
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.qa.yaml").write_text(QA_STACK)
    config_dir = tmp_path / "policy" / "config"
    config_dir.mkdir(parents=True)
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (config_dir / "qa.json").write_text(json.dumps({"all": "mandatory"}))
    return tmp_path


def test_an_environment_registered_by_data_renders_and_passes_its_checks(
    qa_project: Path,
) -> None:
    assert config_model.environments()[-1] == "qa"
    assert stack_environment("acme/qa") == "qa" and keeps_production_rules("qa")
    result = render_stack("qa", qa_project)
    assert result.environment == "qa"
    container = _objects(result, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    # its defaults reached the render
    assert container["resources"]["requests"]["cpu"] == "75m"
    assert container["resources"]["limits"]["memory"] == "192Mi"
    hpa = _objects(result, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 3)
    # the policy pack judges it with its own config file, as prod's rules (mandatory, strict)
    levels = load_levels("qa", qa_project / "policy" / "config")
    assert set(levels.values()) == {"mandatory"}
    report = check_objects(result.objects, "qa", levels)
    assert report.findings == () and not report.failed
    moved = copy.deepcopy(result.objects)
    for obj in moved:
        if obj["kind"] == "Deployment":
            obj["spec"]["minReadySeconds"] = 0
    strict = check_objects(moved, "qa", levels)
    assert [f.violation.rule for f in strict.findings] == ["zero-downtime-rollout"]
    assert "in qa it must be > 0" in strict.findings[0].violation.message
    assert policy_arguments(qa_project, "qa")[1] == [str(qa_project / "policy/config/qa.json")]


def test_an_environment_registered_by_data_gets_prods_rules_only_if_its_data_says_so(
    qa_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_pod = {
        **_qa_raw(qa_project),
        "apps": {
            "web": {
                "image": "registry.example.com/appstack/web:0.1.0",
                "autoscaling": {"enabled": False},
                "replicas": 1,
                "service": {"type": "ClusterIP"},
            }
        },
    }
    with pytest.raises(config_model.ConfigError, match="qa needs >= 2 replicas"):
        config_model.load(one_pod)
    monkeypatch.setitem(stack_config.ENVIRONMENT_DEFAULTS["qa"], "productionRules", False)
    assert config_model.load(one_pod).apps["web"].replicas == 1


def _qa_raw(project: Path) -> dict[str, Any]:
    return load_raw_config(project, "qa")


def test_an_unregistered_environment_is_one_clear_error(tmp_path: Path) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.qa.yaml").write_text(QA_STACK)
    with pytest.raises(UserError) as caught:
        render_stack("qa", tmp_path)
    assert str(caught.value).splitlines()[1].strip() == (
        "appstack:environment: 'qa' is not an environment; allowed: dev, staging, prod"
    )

"""Issue 29, scenario 1: the detection time of a bad version is a per-environment setting
(`rollout.progressDeadlineSeconds`, data in ENVIRONMENT_DEFAULTS), at most 2 minutes in prod,
never shorter than a good but slow pod may take, and bounding what the provider waits for.

Oracles: the rendered Deployment and HPA (what the Deployment controller reads), the kubelet's
probe rules (readiness runs only once the startup probe has passed) and the controller's
progress rule (a pod becoming ready or available is progress; apps/v1 maxSurge percentages
round up)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from components import config as config_model
from components.config import stack as stack_config
from stackctl.render import RenderResult, load_raw_config, render_stack
from tests.tooling import REPO

KEY = "appstack:apps.web.rollout.progressDeadlineSeconds"


def _deployment(result: RenderResult) -> dict[str, Any]:
    [found] = [o for o in result.objects if o["kind"] == "Deployment"]
    return found


def _good_pod_seconds(deployment: dict[str, Any]) -> int:
    """From the render: the longest a good pod takes from container start to available."""
    spec = deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]
    startup, readiness = container["startupProbe"], container["readinessProbe"]
    return int(
        startup.get("initialDelaySeconds", 0)
        + startup["periodSeconds"] * startup["failureThreshold"]
        + readiness["periodSeconds"]
        + spec.get("minReadySeconds", 0)
    )


@pytest.mark.parametrize(("stack", "limit"), [("dev", 600), ("staging", 300), ("prod", 120)])
def test_each_environment_detects_a_bad_version_within_its_limit(stack: str, limit: int) -> None:
    deployment = _deployment(render_stack(stack, REPO))
    deadline = deployment["spec"]["progressDeadlineSeconds"]
    assert deadline <= limit, f"{stack}: {deadline}s to detect a bad version"
    assert deadline > _good_pod_seconds(deployment), "a slow but good pod would fail"


def test_prod_refuses_a_detection_time_above_two_minutes() -> None:
    raw = load_raw_config(REPO, "prod")
    raw["apps"]["web"]["rollout"] = {"progressDeadlineSeconds": 300}
    with pytest.raises(config_model.ConfigError) as caught:
        config_model.load(raw)
    assert any(p.startswith(f"{KEY}: progressDeadlineSeconds (300) must be <= 120") for p in
               caught.value.problems), caught.value.problems  # fmt: skip


def test_dev_has_no_environment_limit() -> None:
    raw = load_raw_config(REPO, "dev")
    raw["apps"]["web"]["rollout"] = {"progressDeadlineSeconds": 900}
    assert config_model.load(raw).apps["web"].rollout.progress_deadline_seconds == 900


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_deadline_a_good_but_slow_pod_could_miss_is_refused(stack: str) -> None:
    raw = load_raw_config(REPO, stack)
    # a startup budget of 40 x 3 s = 120 s: a good pod may take longer than 100 s
    raw["apps"]["web"]["probes"] = {"startup": {"periodSeconds": 3, "failureThreshold": 40}}
    raw["apps"]["web"]["rollout"] = {"progressDeadlineSeconds": 100}
    with pytest.raises(config_model.ConfigError) as caught:
        config_model.load(raw)
    found = [p for p in caught.value.problems if "slow but good" in p]
    assert [p.startswith(f"{KEY}: progressDeadlineSeconds (100) must be > ") for p in found] == [
        True
    ], caught.value.problems


def test_the_limit_is_data_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stack_config.ENVIRONMENT_DEFAULTS["dev"], "maxProgressDeadlineSeconds", 90)
    raw = load_raw_config(REPO, "dev")  # dev's default is 300
    with pytest.raises(config_model.ConfigError, match=r"\(300\) must be <= 90"):
        config_model.load(raw)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_provider_waits_long_enough_for_a_good_rollout(stack: str) -> None:
    """The Deployment's customTimeouts (what pulumi-kubernetes v4.25.0 waits for: it does not
    stop at ProgressDeadlineExceeded) cover every round of surge pods, each allowed one
    deadline by the controller, plus one."""
    result = render_stack(stack, REPO)
    deployment = _deployment(result)
    spec = deployment["spec"]
    hpas = [o for o in result.objects if o["kind"] == "HorizontalPodAutoscaler"]
    pods = hpas[0]["spec"]["maxReplicas"] if hpas else spec["replicas"]
    surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
    surge_pods = math.ceil(pods * int(surge[:-1]) / 100) if isinstance(surge, str) else surge
    rounds = math.ceil(pods / surge_pods)
    meta = deployment["metadata"]
    timeouts = result.options[f"Deployment/{meta['namespace']}/{meta['name']}"]["custom_timeouts"]
    expected = f"{spec['progressDeadlineSeconds'] * (rounds + 1)}s"
    assert timeouts == {"create": expected, "update": expected}

"""What the real engine promises on every update, kept by every performance lever (issue 31,
docs/performance.md): each Deployment awaited to a finished rollout, a rollout that does not
finish fails the update, and the state written after every step.

The provider awaits a Deployment's rollout unless the object carries `pulumi.com/skipAwait`
(pulumi-kubernetes v4.25.0 provider/pkg/metadata/annotations.go `AnnotationSkipAwait`,
`SkipAwaitLogic`), and gives up after `pulumi.com/timeoutSeconds` or the resource's
`customTimeouts` instead of its 10 minutes (provider/pkg/metadata/overrides.go
`TimeoutDuration`, provider/pkg/await/deployment.go `DefaultDeploymentTimeoutMins`): failing the
update then. The engine writes a checkpoint after each step unless `PULUMI_SKIP_CHECKPOINTS` is
set (pulumi pkg/v3 v3.274.0 backend/snapshot.go `NewSnapshotManager`: `unsafeServiceLoop`).
The e2e side (`make bench-e2e`, e2e/bench.py): `unfinished_rollouts` reads the API server right
after each `pulumi up` returns, and `failed_rollout` checks that an update whose rollout cannot
finish fails.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from e2e.bench import ENGINE_ENV
from stackctl.bench import synthetic
from stackctl.ops.automation import workspace_settings
from stackctl.render.stack import RenderResult, object_ref, render_config, render_stack

SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT = "pulumi.com/timeoutSeconds"
AWAITED_KINDS = ("Deployment", "StatefulSet", "Service", "Ingress")


def renders() -> list[tuple[str, RenderResult]]:
    found = [(stack, render_stack(stack)) for stack in ("dev", "staging", "prod")]
    found.append(("synthetic-10", render_config(config_model.load(synthetic(10)), "prod")))
    return found


@pytest.fixture(scope="module")
def rendered() -> list[tuple[str, RenderResult]]:
    return renders()


def test_no_object_skips_the_providers_await(rendered: list[tuple[str, RenderResult]]) -> None:
    for stack, result in rendered:
        skipping = [
            object_ref(o)
            for o in result.objects
            if SKIP_AWAIT in ((o.get("metadata") or {}).get("annotations") or {})
        ]
        assert skipping == [], f"{stack}: {skipping}"


def _seconds(duration: str) -> float:
    """A Pulumi customTimeouts duration (Go's time.ParseDuration units the SDK passes on)."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


def _pods_in_rollout(obj: dict[str, Any], objects: list[dict[str, Any]]) -> int:
    """The most pods a rollout of this Deployment replaces: spec.replicas, or the maxReplicas
    of the HorizontalPodAutoscaler that owns its replicas (then spec.replicas is unset)."""
    replicas = obj["spec"].get("replicas")
    if replicas is not None:
        return int(replicas)
    name = obj["metadata"]["name"]
    for hpa in objects:
        if (
            hpa["kind"] == "HorizontalPodAutoscaler"
            and hpa["spec"]["scaleTargetRef"]["name"] == name
        ):
            return int(hpa["spec"]["maxReplicas"])
    return 1  # apps/v1 DeploymentSpec.replicas defaults to 1


def _good_rollout_bound(obj: dict[str, Any], objects: list[dict[str, Any]]) -> float:
    """How long a rollout that keeps making progress may take: Kubernetes fails a Deployment
    only when no progress is made for progressDeadlineSeconds (apps/v1 DeploymentSpec), and a
    rolling update replaces at most maxSurge pods per round (a percentage rounds up,
    RollingUpdateDeployment.maxSurge), so one deadline per round."""
    spec = obj["spec"]
    pods = _pods_in_rollout(obj, objects)
    surge = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str):
        surge = math.ceil(pods * int(surge.rstrip("%")) / 100)
    rounds = math.ceil(pods / max(1, int(surge)))
    return float(rounds * int(spec.get("progressDeadlineSeconds", 600)))


def test_no_awaited_object_gives_up_before_a_good_rollout_could_finish(
    rendered: list[tuple[str, RenderResult]],
) -> None:
    # customTimeouts may lengthen the provider's await (a backstop for a plain `pulumi up`;
    # stackctl's rollout watch fails a bad version at its progress deadline, issue 29), never
    # shorten it below what a rollout that keeps making progress needs, nor below the
    # provider's own 10 minutes for the other awaited kinds.
    for stack, result in rendered:
        for obj in result.objects:
            if obj["kind"] not in AWAITED_KINDS:
                continue
            ref = object_ref(obj)
            assert TIMEOUT not in ((obj.get("metadata") or {}).get("annotations") or {}), ref
            timeouts = result.options.get(ref, {}).get("custom_timeouts")
            if timeouts is None:
                continue
            floor = (
                _good_rollout_bound(obj, result.objects) if obj["kind"] == "Deployment" else 600.0
            )
            for op in ("create", "update"):
                assert op in timeouts, f"{stack}: {ref} has no {op} timeout"
                assert _seconds(timeouts[op]) >= floor, f"{stack}: {ref} {op} {timeouts[op]}"


def test_the_engines_settings_never_skip_a_checkpoint(tmp_path: Path) -> None:
    # the recommended `pulumi up` settings (docs/performance.md) and what stackctl passes
    settings = workspace_settings(tmp_path, environ={})
    assert "PULUMI_SKIP_CHECKPOINTS" not in ENGINE_ENV
    assert "PULUMI_SKIP_CHECKPOINTS" not in settings.env_vars


def test_the_recommended_parallelism_covers_every_await_of_a_50_service_stack() -> None:
    # the kinds the provider awaits beyond their creation (pulumi-kubernetes v4.25.0
    # provider/pkg/await/awaiters.go); the CLI's own default on 2 cores is 8
    kinds = render_config(config_model.load(synthetic(50)), "prod").kinds()
    awaited = kinds["Deployment"] + kinds["Service"] + kinds["Ingress"]
    assert int(ENGINE_ENV["PULUMI_PARALLEL"]) >= awaited

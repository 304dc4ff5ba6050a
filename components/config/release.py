"""Release strategy of an app (components/app/release.py): rolling, blue-green, canary, optional
Argo Rollouts (`ReleaseSettings`, part of `AppConfig`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from components.config.base import (
    ImageRef,
    Model,
    Problems,
)

# --------------------------------------------------------------------------------------------
# Release (components/app/release.py): rolling, blue-green, canary, optional Argo Rollouts
# --------------------------------------------------------------------------------------------

ReleaseStrategy = Literal["rolling", "blueGreen", "canary"]
Colour = Literal["blue", "green"]
CanaryWeight = Annotated[int, Field(ge=1, le=100)]


def _round_half_up(value: float) -> int:
    return int(value + 0.5)


def canary_pods(total: int, weight: int) -> int:
    """Pods of the canary track for `weight` percent of `total` pods: rounded half up, at least
    one when weight > 0, at most `total`."""
    if weight <= 0:
        return 0
    return min(total, max(1, _round_half_up(total * weight / 100)))


class ReleaseSettings(Model):
    """How a new version reaches the users (components/app/release.py).

    - rolling: one Deployment, zero-downtime rolling update (maxUnavailable 0).
    - blueGreen: Deployments `<app>-blue` and `<app>-green`; the Service `<app>` selects the
      `active` colour, the ClusterIP Service `<app>-preview` the idle one. A release sets the
      idle colour's image (`blueImage`/`greenImage`), tests it through `<app>-preview`, then
      flips `active`: only Service selectors change (no pod restarts), and flipping back is the
      rollback.
    - canary: the stable Deployment `<app>` runs `image`, `<app>-canary` runs `canaryImage` and
      gets `weight` percent of the traffic (by replica ratio, or by ingress-nginx canary weight
      when the app has an Ingress). Promotion: set `image` to the canary image and `weight` to 0
      (weight 0 removes every canary object).
    """

    strategy: ReleaseStrategy = "rolling"
    """rolling (default), blueGreen or canary."""
    active: Colour = "blue"
    """blueGreen: the colour the Service `<app>` sends traffic to; flip it to switch versions
    (and back to roll back) without restarting a pod."""
    blue_image: ImageRef | None = None
    """blueGreen: image of the blue Deployment; default: the app's `image`."""
    green_image: ImageRef | None = None
    """blueGreen: image of the green Deployment; default: the app's `image`. A release deploys
    the new image to the idle colour, tests it through `<app>-preview`, then flips `active`."""
    scale_down_idle: bool = False
    """blueGreen: false keeps the idle colour running (instant switch back); true scales it to 0
    after promotion (set it false again before the next release so the idle colour runs and can
    be previewed). Not with autoscaling (see the validation message)."""
    canary_image: ImageRef | None = None
    """canary: image of the canary Deployment `<app>-canary` (required for strategy canary
    unless argoRollouts)."""
    weight: int = Field(default=0, ge=0, le=100)
    """canary: percent of the traffic the canary gets now; 0 or one of `steps`. 0 renders no
    canary object. Promotion: set `image` to the canary image and weight back to 0."""
    steps: list[CanaryWeight] = Field(default_factory=lambda: [10, 25, 50, 100])
    """canary: the planned weights, strictly increasing, each 1..100 (with argoRollouts: the
    Rollout's setWeight steps, each followed by a pause and the error-ratio analysis)."""
    argo_rollouts: bool = False
    """Emit an Argo Rollouts `Rollout` (argoproj.io/v1alpha1) instead of Deployments, plus an
    `AnalysisTemplate` on the error-ratio recording rule. Needs the Argo Rollouts controller and
    CRDs in the cluster and `appstack:monitoring.enabled` (the recording rule). The controller
    then drives the release from `image`: colour and canary fields stay unset."""
    step_pause_seconds: int = Field(default=300, ge=0, le=86400)
    """argoRollouts canary: pause after each setWeight step before its analysis runs."""
    analysis_interval_seconds: int = Field(default=60, ge=1, le=3600)
    """argoRollouts: seconds between two measurements of the error-ratio analysis (the
    AnalysisTemplate metric's `interval`; whole minutes render as `<n>m`)."""
    analysis_count: int = Field(default=5, ge=1, le=100)
    """argoRollouts: measurements of one analysis run (the metric's `count`); every one must
    pass (`failureLimit: 0`), so one run lasts (count - 1) x interval."""
    prometheus_address: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090", pattern=r"^https?://[^\s]+$"
    )
    """argoRollouts: Prometheus the AnalysisTemplate queries (http(s) URL)."""

    @property
    def idle(self) -> Colour:
        """blueGreen: the colour that gets no production traffic."""
        return "green" if self.active == "blue" else "blue"

    @model_validator(mode="after")
    def _rules(self) -> ReleaseSettings:
        problems = Problems()
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            problems.add(
                "steps", f"steps {self.steps} must be strictly increasing, e.g. [10, 25, 50, 100]"
            )
        if self.weight != 0 and self.weight not in self.steps:
            problems.add("weight", f"weight ({self.weight}) must be 0 or one of steps {self.steps}")
        if self.argo_rollouts:
            if self.strategy == "rolling":
                problems.add(
                    "argoRollouts",
                    "argoRollouts needs strategy blueGreen or canary (strategy is rolling)",
                )
            for key, value in (
                ("blueImage", self.blue_image),
                ("greenImage", self.green_image),
                ("canaryImage", self.canary_image),
            ):
                if value is not None:
                    problems.add(
                        key,
                        f"{key} is not used with argoRollouts: the Argo Rollouts controller "
                        "rolls out a change of the app's `image` itself; remove it",
                    )
            if self.weight != 0:
                problems.add(
                    "weight",
                    f"weight ({self.weight}) is not used with argoRollouts: the controller walks "
                    "through `steps`; set it to 0",
                )
        elif self.strategy == "canary" and self.canary_image is None:
            problems.add("canaryImage", "strategy canary needs canaryImage (the new version)")
        problems.raise_if_any()
        return self

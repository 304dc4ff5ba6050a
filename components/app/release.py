"""Release strategies: which workloads run an app's pods and which of them get traffic.

`plan(app_name, app)` turns `appstack:apps.<app>.release` into a `ReleasePlan` (plain data:
workloads, Services, PodDisruptionBudgets, the HPAs and their targets, an optional canary Ingress);
`create_workloads` (components/app/workloads.py) registers the workloads of a plan, with the
Argo Rollouts specs from components/app/argo_rollouts.py. `AppService`
(components/app/component.py) creates the Services, PDBs, HPAs and Ingresses from the same plan,
so every release decision is here.

- rolling (default): one Deployment `<app>`; zero-downtime rolling update (`rolling_strategy`:
  maxUnavailable 0, surge > 0) with minReadySeconds, progress deadline and the pod's preStop
  sleep shorter than its grace period (`components.app.pod.pod_template`).
- blueGreen: Deployments `<app>-blue` and `<app>-green`, pods labelled `appstack.io/colour`,
  each selecting the stable labels plus its colour. The Service `<app>` selects the `active`
  colour, the ClusterIP Service `<app>-preview` the idle one. With autoscaling each colour has
  its own HPA and neither Deployment sets spec.replicas (the idle colour idles at the HPA
  minimum); without, the idle colour keeps the replicas, or 0 with scaleDownIdle. Flipping
  `active` changes only the Services' and PDBs' selectors (and, with scaleDownIdle, the
  replicas Pulumi owns): never a field an HPA owns, no pod template change, no pod restart.
  The Deployment becoming active is updated first, then the Services, then the Deployment
  becoming idle (`depends_on`), so traffic only moves to running pods.
- canary: the stable Deployment `<app>` (the app's `image`, track `stable`) and, when
  `weight` > 0, `<app>-canary` (`canaryImage`, track `canary`). Both carry the stable
  selector labels. Without an Ingress the Service `<app>` selects both tracks and the traffic
  share is the replica ratio: canary = round(replicas x weight / 100), at least 1, and
  stable = replicas - canary. With an HPA the HPA keeps owning the stable Deployment and the
  canary gets a fixed count computed from the HPA minimum, so its real share shrinks as the
  HPA scales the stable track up (an approximation). With an Ingress the split is exact:
  a second Ingress `<app>-canary` with the ingress-nginx canary annotations and
  `canary-weight: <weight>` routes to the Service `<app>-canary` (canary track only), the
  Service and Ingress `<app>` select the stable track only, and the stable track keeps all
  its replicas. Weight 0 renders no canary object. PDB and HPA target the stable track.
- argoRollouts (blueGreen or canary): one Argo Rollouts `Rollout` `<app>` replaces the
  Deployments (same pod template, spread by `rollouts-pod-template-hash`), plus an
  `AnalysisTemplate` `<app>-error-ratio`: the 5xx ratio of the newest ReplicaSet's pods
  (`podTemplateHashValue: Latest`; the ServiceMonitor copies the pods' hash label onto their
  series) against `appstack:monitoring.alerts.errorRatio`, before and after a blue-green
  promotion and after every canary step. The Services Argo Rollouts re-points
  (`rollouts-pod-template-hash` in their selector) carry no selector from the program: the
  controller owns it (components/app/component.py `_route_selector`). Needs the Argo
  Rollouts controller and CRDs.

Replicas and autoscaling: a workload under an HPA never sets spec.replicas (ignore_changes on
it); a workload that sets them carries `pulumi.com/patchForce`, so turning autoscaling off takes
the field back from the scale-subresource owner the HPA leaves behind. Procedure: pin the HPA
(minReplicas = maxReplicas = N), `pulumi up`; then `enabled: false`, `replicas: N`, `pulumi up`
(the HPA, deleted at the end of that update, cannot move the count in between).

Every Deployment of every strategy uses the same pod template (restricted security, probes,
resources, graceful shutdown) and the same zero-downtime rolling update.

Procedures (each step is a config change and `pulumi up`):
- blue-green release: set the idle colour's image (`greenImage` while `active: blue`), with
  `scaleDownIdle: false`; test it through the `<app>-preview` Service; set `active: green`
  (traffic switches, no pod restarts). Roll back: `active: blue`. Optionally set
  `scaleDownIdle: true` once the release is good (blue scales to 0), and back to false before
  the next release.
- canary release: set `canaryImage` and `weight` to the first of `steps`; raise `weight` step
  by step while the error ratio stays low. Promote: set `image` to the canary image and
  `weight: 0` (the stable track rolls to it, the canary objects are deleted after that).
  Abort: `weight: 0` alone.
- argoRollouts: change `image`; the controller runs the strategy (blue-green: promote with
  `kubectl argo rollouts promote <app>`; canary: the steps with pauses and analyses).
- Switching an existing app to canary replaces its `<app>` Deployment (its selector gains the
  track label and selectors are immutable): do it in a quiet period, or go through blueGreen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi_kubernetes as k8s

from components.config import AppConfig, image_parts
from components.kube import labels

ARGO_API_VERSION = "argoproj.io/v1alpha1"
DEPLOYMENT_REVISION_LABEL = "pod-template-hash"
"""Label the Deployment controller puts on its ReplicaSets' pods (apps/v1
DefaultDeploymentUniqueLabelKey)."""
ARGO_REVISION_LABEL = "rollouts-pod-template-hash"
"""Label Argo Rollouts puts on its ReplicaSets' pods and writes into the selectors of the
Services it manages (v1alpha1.DefaultRolloutUniqueLabelKey)."""
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
STABLE, CANARY = "stable", "canary"
ARGO_SCALE_DOWN_DELAY_SECONDS = {True: 30, False: 3600}
"""argoRollouts blueGreen: seconds the previous version keeps running after promotion, by
`scaleDownIdle` (Argo Rollouts cannot keep it forever; an hour leaves time to switch back)."""

Order = Literal["free", "before-routes", "after-routes"]


def rolling_strategy(app: AppConfig) -> k8s.apps.v1.DeploymentStrategyArgs:
    """Zero-downtime rolling update: never below the desired count, surge > 0. The exception:
    a ReadWriteOnce/ReadWriteOncePod volume (config allows it only outside prod's rules, with one
    replica and the rolling strategy): a surge pod could not mount the claim (another node, or
    another pod for RWOP) and the rollout would hang, so the old pod goes first (Recreate)."""
    if app.volume is not None and app.volume.single_writer:
        return k8s.apps.v1.DeploymentStrategyArgs(type="Recreate")
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
            max_unavailable=0, max_surge=app.rollout.max_surge
        ),
    )


def scanner_skips(app_name: str, image: str, key: str = "image") -> dict[str, str]:
    """checkov skips with their reason, as annotations on the workload. Only one exists: an
    image pinned by tag rather than digest (CKV_K8S_43). tests/test_validators lists it."""
    _, _, digest = image_parts(image)
    if digest is not None:
        return {}
    return {
        "checkov.io/skip1": (
            "CKV_K8S_43=image pinned by an immutable tag from config; "
            f"set a digest in appstack:apps.{app_name}.{key} to pin by digest"
        )
    }


# --------------------------------------------------------------------------------------------
# The plan: plain data, no Pulumi


@dataclass(frozen=True)
class Workload:
    """A Deployment (or the Argo Rollout) of a release."""

    key: str
    """"" for the primary workload, else the colour or "canary" (suffix of names)."""
    name: str
    """Kubernetes name."""
    pod_labels: Mapping[str, str]
    """Labels added to the pods and to the workload's selector (colour or track)."""
    image: str | None
    """Image of the pods; None: the app's image (which a built image may replace)."""
    image_key: str
    """Config key the image comes from (for the scanner-skip reason)."""
    replicas: int | None
    """Explicit replicas; None when the HPA owns them."""
    hpa_owned: bool
    """The HPA scales this workload (replicas unset, drift on them ignored)."""
    order: Order = "free"
    """blueGreen: the active colour is updated before the Services switch, the idle after."""
    kind: str = "Deployment"
    """"Deployment", or "Rollout" (argoRollouts)."""

    @property
    def revision_label(self) -> str:
        """The label its controller adds to every pod with the pod template's hash:
        `pod-template-hash` (Deployment), `rollouts-pod-template-hash` (Argo Rollouts
        v1alpha1.DefaultRolloutUniqueLabelKey, pkg/apis/rollouts/v1alpha1/types.go)."""
        return ARGO_REVISION_LABEL if self.kind == "Rollout" else DEPLOYMENT_REVISION_LABEL


@dataclass(frozen=True)
class Route:
    """A Service in front of (some of) the app's pods."""

    key: str
    """"" for the Service `<app>`, "preview" (blueGreen) or "canary"."""
    name: str
    selector: Mapping[str, str]
    """Labels selected on top of the stable selector labels."""
    argo_managed: bool = False
    """Argo Rollouts switches this Service's selector itself (`rollouts-pod-template-hash`):
    the program sets no `spec.selector` on it."""


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget."""

    key: str
    name: str
    selector: Mapping[str, str]
    """Labels selected on top of the stable selector labels."""
    from_config: bool
    """Use appstack:apps.<app>.pdb; else maxUnavailable 1 (a canary never blocks a drain)."""


@dataclass(frozen=True)
class ScaleTarget:
    """What an HPA scales."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Autoscaler:
    """A HorizontalPodAutoscaler and the workload it owns the replicas of."""

    key: str
    """"" for the HPA `<app>`, else the colour (blueGreen: one HPA per colour)."""
    name: str
    target: ScaleTarget


@dataclass(frozen=True)
class CanaryIngress:
    """ingress-nginx canary: a second Ingress for the same host and path."""

    name: str
    service: str
    weight: int

    @property
    def annotations(self) -> dict[str, str]:
        return {CANARY_ANNOTATION: "true", CANARY_WEIGHT_ANNOTATION: str(self.weight)}


@dataclass(frozen=True)
class ReleasePlan:
    """Everything the release strategy decides for one app."""

    strategy: str
    argo: bool
    workloads: tuple[Workload, ...]
    routes: tuple[Route, ...]
    """The Service `<app>` first."""
    budgets: tuple[Budget, ...]
    autoscalers: tuple[Autoscaler, ...]
    """Empty without autoscaling."""
    canary_ingress: CanaryIngress | None = None

    @property
    def primary(self) -> Workload:
        """The workload behind the Service `<app>`: the active colour, the stable track."""
        return next(w for w in self.workloads if w.order != "after-routes" and w.key != CANARY)

    def route(self, key: str) -> Route:
        return next(r for r in self.routes if r.key == key)


@dataclass(frozen=True)
class _PlanScope:
    """What every strategy's plan starts from: the app, its names, and who owns replicas."""

    app_name: str
    app: AppConfig

    @property
    def name(self) -> str:
        return labels.resource_name(self.app_name)

    @property
    def autoscaled(self) -> bool:
        return self.app.autoscaling.enabled

    @property
    def pdb(self) -> bool:
        return self.app.pdb.enabled

    @property
    def replicas(self) -> int | None:
        """Under an HPA the workload never carries spec.replicas: the HPA's scale subresource
        owns it."""
        return None if self.autoscaled else self.app.replicas

    def named(self, *suffix: str) -> str:
        return labels.resource_name(self.app_name, *suffix)

    def hpa(
        self, key: str, workload: Workload, api_version: str = "apps/v1"
    ) -> tuple[Autoscaler, ...]:
        """The HPA of `workload` (none without autoscaling)."""
        if not self.autoscaled:
            return ()
        target = ScaleTarget(api_version, workload.kind, workload.name)
        return (Autoscaler(key, self.named(key) if key else self.name, target),)


def plan(app_name: str, app: AppConfig) -> ReleasePlan:
    """The release plan of one app (see the module docstring for the semantics)."""
    scope = _PlanScope(app_name, app)
    if app.release.argo_rollouts:
        return _argo_plan(scope)
    if app.release.strategy == "blueGreen":
        return _blue_green_plan(scope)
    if app.release.strategy == "canary":
        return _canary_plan(scope)
    return _rolling_plan(scope)


def _argo_plan(scope: _PlanScope) -> ReleasePlan:
    """argoRollouts: one Rollout; the Services it re-points are Argo-managed."""
    app, release, name, named = scope.app, scope.app.release, scope.name, scope.named
    rollout = Workload(
        "", name, {}, None, "image", scope.replicas, scope.autoscaled, kind="Rollout"
    )
    # The Services Argo Rollouts points at a ReplicaSet by writing
    # `rollouts-pod-template-hash` into their selectors (rollout/service.go
    # switchServiceSelector): blueGreen activeService/previewService, canary
    # stableService/canaryService (only set with traffic routing, i.e. an Ingress).
    routes = [
        Route("", name, {}, argo_managed=release.strategy == "blueGreen" or app.ingress.enabled)
    ]
    if release.strategy == "blueGreen":
        routes.append(Route("preview", named("preview"), {}, argo_managed=True))
    elif app.ingress.enabled:
        routes.append(Route(CANARY, named(CANARY), {}, argo_managed=True))
    return ReleasePlan(
        strategy=release.strategy,
        argo=True,
        workloads=(rollout,),
        routes=tuple(routes),
        budgets=(Budget("", name, {}, True),) if scope.pdb else (),
        autoscalers=scope.hpa("", rollout, ARGO_API_VERSION),
    )


def _blue_green_plan(scope: _PlanScope) -> ReleasePlan:
    """blueGreen: a Deployment per colour; the Service selects the active one, preview the idle."""
    app, release, name, named = scope.app, scope.app.release, scope.name, scope.named
    active, idle = release.active, release.idle
    images = {"blue": release.blue_image, "green": release.green_image}

    def colour(c: str) -> Workload:
        is_active = c == active
        return Workload(
            key=c,
            name=named(c),
            pod_labels={labels.COLOUR: c},
            image=images[c],
            image_key=f"release.{c}Image" if images[c] else "image",
            # With autoscaling each colour has its own HPA (below), so a flip never moves
            # a replica field the HPA owns; without, the idle colour may scale to 0.
            replicas=scope.replicas if is_active or scope.autoscaled else app.idle_replicas,
            hpa_owned=scope.autoscaled,
            order="before-routes" if is_active else "after-routes",
        )

    colours = (colour("blue"), colour("green"))
    budgets = [Budget("", name, {labels.COLOUR: active}, True)] if scope.pdb else []
    if scope.pdb and app.idle_replicas > 0:
        budgets.append(Budget("preview", named("preview"), {labels.COLOUR: idle}, True))
    return ReleasePlan(
        strategy="blueGreen",
        argo=False,
        workloads=colours,
        routes=(
            Route("", name, {labels.COLOUR: active}),
            Route("preview", named("preview"), {labels.COLOUR: idle}),
        ),
        budgets=tuple(budgets),
        autoscalers=tuple(a for w in colours for a in scope.hpa(w.key, w)),
    )


def _canary_plan(scope: _PlanScope) -> ReleasePlan:
    """canary: the stable track, and the canary track while `weight` > 0 (by replica ratio, or
    by the ingress-nginx canary Ingress when the app has an Ingress)."""
    app, release, name, named = scope.app, scope.app.release, scope.name, scope.named
    stable = Workload(
        "", name, {labels.TRACK: STABLE}, None, "image", app.stable_replicas, scope.autoscaled
    )
    workloads = [stable]
    budgets = [Budget("", name, {labels.TRACK: STABLE}, True)] if scope.pdb else []
    routes = [Route("", name, {labels.TRACK: STABLE} if app.ingress.enabled else {})]
    canary_ingress = None
    if app.canary_active:
        workloads.append(
            Workload(
                CANARY,
                named(CANARY),
                {labels.TRACK: CANARY},
                release.canary_image,
                "release.canaryImage",
                app.canary_replicas,
                False,
            )
        )
        if scope.pdb:
            budgets.append(Budget(CANARY, named(CANARY), {labels.TRACK: CANARY}, False))
        if app.canary_by_ingress:
            routes.append(Route(CANARY, named(CANARY), {labels.TRACK: CANARY}))
            canary_ingress = CanaryIngress(named(CANARY), named(CANARY), release.weight)
    return ReleasePlan(
        strategy="canary",
        argo=False,
        workloads=tuple(workloads),
        routes=tuple(routes),
        budgets=tuple(budgets),
        autoscalers=scope.hpa("", stable),
        canary_ingress=canary_ingress,
    )


def _rolling_plan(scope: _PlanScope) -> ReleasePlan:
    """rolling: one Deployment behind the Service."""
    name = scope.name
    workload = Workload("", name, {}, None, "image", scope.replicas, scope.autoscaled)
    return ReleasePlan(
        strategy="rolling",
        argo=False,
        workloads=(workload,),
        routes=(Route("", name, {}),),
        budgets=(Budget("", name, {}, True),) if scope.pdb else (),
        autoscalers=scope.hpa("", workload),
    )


def _surge(surge: int | str, replicas: int) -> int:
    """maxSurge as a pod count: a percentage of the replicas, rounded up (apps/v1 and Argo
    Rollouts both resolve it with intstr.GetScaledValueFromIntOrPercent(..., roundUp=true))."""
    if isinstance(surge, int):
        return surge
    return math.ceil(replicas * int(surge.rstrip("%")) / 100)


def peak_pods_by_workload(plan_: ReleasePlan, app: AppConfig) -> dict[str, int]:
    """The most pods each of the app's workloads can run at once, for the namespace quota, keyed
    by `<kind>/<name>`.

    Every workload counts at its most replicas (the HPA maximum when an HPA owns them), plus:
    - a Deployment: its rolling-update surge (all of them may roll at once: a config change
      rolls both colours, or stable and canary, in the same update);
    - an Argo blueGreen Rollout: a second full set (the preview ReplicaSet runs at full size
      until promotion, previewReplicaCount unset);
    - an Argo canary Rollout with traffic routing: a second full set (the stable ReplicaSet stays
      at 100 % while the canary grows to `setWeight` %, so weight 100 needs twice the replicas:
      utils/replicaset/canary.go CalculateReplicaCountsForTrafficRoutedCanary);
    - an Argo canary Rollout without traffic routing: its surge (stable + canary never exceed
      replicas + maxSurge: CalculateReplicaCountsForBasicCanary).
    """
    most = app.autoscaling.max_replicas if app.autoscaling.enabled else app.replicas
    peaks: dict[str, int] = {}
    for workload in plan_.workloads:
        count = most if workload.hpa_owned else (workload.replicas or 0)
        if not plan_.argo:
            peak = count + _surge(app.rollout.max_surge, count)
        elif plan_.strategy == "blueGreen" or any(r.key == CANARY for r in plan_.routes):
            peak = 2 * count  # a canary Service exists only with traffic routing
        else:
            peak = count + _surge(app.rollout.max_surge, count)
        peaks[f"{workload.kind}/{workload.name}"] = peak
    return peaks


def peak_pods(plan_: ReleasePlan, app: AppConfig) -> int:
    """The most pods the app's workloads can run at once (`peak_pods_by_workload`, summed)."""
    return sum(peak_pods_by_workload(plan_, app).values())

"""Release strategies: which workloads run an app's pods and which of them get traffic.

`plan(app_name, app)` turns `appstack:apps.<app>.release` into a `ReleasePlan` (plain data:
workloads, Services, PodDisruptionBudgets, the HPA target, an optional canary Ingress);
`create_workloads` registers the workloads of a plan. `AppService` (components/app.py) creates
the Services, PDBs, HPA and Ingresses from the same plan, so the whole release logic lives here.

- rolling (default): one Deployment `<app>`; zero-downtime rolling update (`rolling_strategy`:
  maxUnavailable 0, surge > 0) with minReadySeconds, progress deadline and the pod's preStop
  sleep shorter than its grace period (`components.app.pod_template`).
- blueGreen: Deployments `<app>-blue` and `<app>-green`, pods labelled `appstack.io/colour`,
  each selecting the stable labels plus its colour. The Service `<app>` selects the `active`
  colour, the ClusterIP Service `<app>-preview` the idle one. Flipping `active` changes only
  the Services' and PDBs' selectors, the HPA target and the replica fields (the HPA owns the
  active colour's replicas; the idle colour keeps the HPA minimum, or 0 with scaleDownIdle):
  no pod template changes, so no pod restarts. The Deployment becoming active is updated
  first, then the Services, then the Deployment becoming idle (`depends_on`), so traffic only
  moves to running pods.
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
  Deployments (same pod template), plus an `AnalysisTemplate` `<app>-error-ratio` querying
  the recording rule `job:http_request_errors:ratio_rate5m` against
  `appstack:monitoring.alerts.errorRatio`. Needs the Argo Rollouts controller and CRDs.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components import labels
from components.config import AppConfig, Monitoring, image_parts

ARGO_API_VERSION = "argoproj.io/v1alpha1"
ERROR_RATIO_RECORD = "job:http_request_errors:ratio_rate5m"
"""Recording rule of components/alert_rules.py: 5xx / all requests over 5m, by job, namespace."""
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
STABLE, CANARY = "stable", "canary"
ANALYSIS_INTERVAL = "1m"
ANALYSIS_COUNT = 5
"""Measurements of one analysis run (one a minute): a step's analysis takes five minutes."""
ARGO_SCALE_DOWN_DELAY_SECONDS = {True: 30, False: 3600}
"""argoRollouts blueGreen: seconds the previous version keeps running after promotion, by
`scaleDownIdle` (Argo Rollouts cannot keep it forever; an hour leaves time to switch back)."""

Order = Literal["free", "before-routes", "after-routes"]


def rolling_strategy(app: AppConfig) -> k8s.apps.v1.DeploymentStrategyArgs:
    """Zero-downtime rolling update: never below the desired count, surge > 0."""
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


@dataclass(frozen=True)
class Route:
    """A Service in front of (some of) the app's pods."""

    key: str
    """"" for the Service `<app>`, "preview" (blueGreen) or "canary"."""
    name: str
    selector: Mapping[str, str]
    """Labels selected on top of the stable selector labels."""


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
    """What the HPA scales."""

    api_version: str
    kind: str
    name: str


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
    scale_target: ScaleTarget
    canary_ingress: CanaryIngress | None = None

    @property
    def primary(self) -> Workload:
        """The workload behind the Service `<app>`: the active colour, the stable track."""
        return next(w for w in self.workloads if w.order != "after-routes" and w.key != CANARY)

    def route(self, key: str) -> Route:
        return next(r for r in self.routes if r.key == key)


def plan(app_name: str, app: AppConfig) -> ReleasePlan:
    """The release plan of one app (see the module docstring for the semantics)."""
    release = app.release
    name = labels.resource_name(app_name)
    autoscaled = app.autoscaling.enabled
    pdb = app.pdb.enabled

    def named(*suffix: str) -> str:
        return labels.resource_name(app_name, *suffix)

    if release.argo_rollouts:
        routes = [Route("", name, {})]
        if release.strategy == "blueGreen":
            routes.append(Route("preview", named("preview"), {}))
        elif app.ingress.enabled:
            routes.append(Route(CANARY, named(CANARY), {}))
        return ReleasePlan(
            strategy=release.strategy,
            argo=True,
            workloads=(
                Workload(
                    "", name, {}, None, "image", None if autoscaled else app.replicas, autoscaled
                ),
            ),
            routes=tuple(routes),
            budgets=(Budget("", name, {}, True),) if pdb else (),
            scale_target=ScaleTarget(ARGO_API_VERSION, "Rollout", name),
        )

    if release.strategy == "blueGreen":
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
                replicas=(None if autoscaled else app.replicas) if is_active else app.idle_replicas,
                hpa_owned=is_active and autoscaled,
                order="before-routes" if is_active else "after-routes",
            )

        budgets = [Budget("", name, {labels.COLOUR: active}, True)] if pdb else []
        if pdb and app.idle_replicas > 0:
            budgets.append(Budget("preview", named("preview"), {labels.COLOUR: idle}, True))
        return ReleasePlan(
            strategy="blueGreen",
            argo=False,
            workloads=(colour("blue"), colour("green")),
            routes=(
                Route("", name, {labels.COLOUR: active}),
                Route("preview", named("preview"), {labels.COLOUR: idle}),
            ),
            budgets=tuple(budgets),
            scale_target=ScaleTarget("apps/v1", "Deployment", named(active)),
        )

    if release.strategy == "canary":
        stable = Workload(
            "", name, {labels.TRACK: STABLE}, None, "image", app.stable_replicas, autoscaled
        )
        workloads = [stable]
        budgets = [Budget("", name, {labels.TRACK: STABLE}, True)] if pdb else []
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
            if pdb:
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
            scale_target=ScaleTarget("apps/v1", "Deployment", name),
            canary_ingress=canary_ingress,
        )

    return ReleasePlan(
        strategy="rolling",
        argo=False,
        workloads=(
            Workload("", name, {}, None, "image", None if autoscaled else app.replicas, autoscaled),
        ),
        routes=(Route("", name, {}),),
        budgets=(Budget("", name, {}, True),) if pdb else (),
        scale_target=ScaleTarget("apps/v1", "Deployment", name),
    )


# --------------------------------------------------------------------------------------------
# Argo Rollouts specs (plain dicts: CRDs have no typed Args)


def error_ratio_query(job: str, namespace: str) -> str:
    """The app's 5xx ratio from the recording rule; no traffic (no series or NaN) reads as 0."""
    series = f'{ERROR_RATIO_RECORD}{{job="{job}",namespace="{namespace}"}}'
    return f"({series} >= 0) or on() vector(0)"


def analysis_spec(
    app_name: str, namespace: str, monitoring: Monitoring, address: str
) -> dict[str, Any]:
    """AnalysisTemplate spec: the error ratio must stay at or below the alert threshold
    (appstack:monitoring.alerts.errorRatio) in every measurement; one failure aborts."""
    return {
        "metrics": [
            {
                "name": "error-ratio",
                "interval": ANALYSIS_INTERVAL,
                "count": ANALYSIS_COUNT,
                "failureLimit": 0,
                "successCondition": f"result[0] <= {monitoring.alerts.error_ratio:g}",
                "provider": {
                    "prometheus": {
                        "address": address,
                        "query": error_ratio_query(app_name, namespace),
                    }
                },
            }
        ]
    }


def argo_strategy(plan_: ReleasePlan, app: AppConfig, analysis_name: str) -> dict[str, Any]:
    """Rollout `spec.strategy`: blueGreen with a manual promotion gate and a post-promotion
    analysis, or canary through the configured steps, each followed by a pause and the
    analysis."""
    release = app.release
    analysis = {"templates": [{"templateName": analysis_name}]}
    if release.strategy == "blueGreen":
        return {
            "blueGreen": {
                "activeService": plan_.route("").name,
                "previewService": plan_.route("preview").name,
                "autoPromotionEnabled": False,
                "scaleDownDelaySeconds": ARGO_SCALE_DOWN_DELAY_SECONDS[release.scale_down_idle],
                "postPromotionAnalysis": analysis,
            }
        }
    steps: list[dict[str, Any]] = []
    for weight in release.steps:
        steps.append({"setWeight": weight})
        if release.step_pause_seconds > 0:
            steps.append({"pause": {"duration": f"{release.step_pause_seconds}s"}})
        steps.append({"analysis": analysis})
    canary: dict[str, Any] = {
        "maxSurge": app.rollout.max_surge,
        "maxUnavailable": 0,
        "steps": steps,
    }
    if app.ingress.enabled:  # Argo Rollouts writes the ingress-nginx canary Ingress itself
        canary["stableService"] = plan_.route("").name
        canary["canaryService"] = plan_.route(CANARY).name
        canary["trafficRouting"] = {"nginx": {"stableIngress": plan_.route("").name}}
    return {"canary": canary}


# --------------------------------------------------------------------------------------------
# Registering the workloads


class MetaFactory(Protocol):
    """`AppService`'s metadata builder (namespace, standard labels, annotations)."""

    def __call__(
        self,
        component: str,
        obj_name: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> k8s.meta.v1.ObjectMetaArgs: ...


TemplateFactory = Callable[[pulumi.Input[str], Mapping[str, str]], k8s.core.v1.PodTemplateSpecArgs]
"""(image, extra pod labels) -> the app's pod template (components.app.pod_template)."""


@dataclass(frozen=True)
class WorkloadContext:
    """What `create_workloads` needs from the AppService."""

    resource_name: str
    """Pulumi name of the AppService (prefix of the children's names)."""
    app_name: str
    app: AppConfig
    namespace: pulumi.Input[str]
    selector: Mapping[str, str]
    """The app's stable selector labels."""
    image: pulumi.Input[str]
    """The app's image: config `image`, or a built image's digest."""
    built: bool
    """`image` is a built image pinned by digest (no scanner skip needed)."""
    template: TemplateFactory
    meta: MetaFactory
    parent: pulumi.Resource
    monitoring: Monitoring | None = None
    """Needed by argoRollouts (AnalysisTemplate threshold)."""


@dataclass(frozen=True)
class CreatedWorkload:
    workload: Workload
    resource: pulumi.CustomResource
    name: pulumi.Output[str]


def _workload_labels(app: AppConfig, workload: Workload) -> dict[str, str]:
    extra = dict(workload.pod_labels)
    if workload.image is not None and workload.image != app.image:
        extra[labels.VERSION] = labels.label_value(app.image_version(workload.image))
    return extra


def _annotations(ctx: WorkloadContext, workload: Workload) -> dict[str, str]:
    if workload.image is None:
        return {} if ctx.built else scanner_skips(ctx.app_name, ctx.app.image)
    return scanner_skips(ctx.app_name, workload.image, workload.image_key)


# The program owns the replicas of a workload without an HPA. After autoscaling is switched off,
# the HPA's manager (kube-controller-manager, subresource scale) still owns .spec.replicas and a
# non-forced server-side apply of the program's value fails with a field conflict (found by
# `make e2e`). Force, documented by pulumi-kubernetes for exactly this ("Handle field conflicts on
# existing resources"; provider/pkg/await/await.go patchForce), takes back only the fields the
# program sets. With an HPA the annotation is absent and replicas are left to the HPA.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}


def _owner_annotations(workload: Workload) -> dict[str, str]:
    return {} if workload.hpa_owned else dict(PATCH_FORCE)


def _deployment(
    ctx: WorkloadContext, workload: Workload, depends_on: Sequence[pulumi.Resource]
) -> CreatedWorkload:
    app = ctx.app
    suffix = f"-{workload.key}" if workload.key else ""
    annotations = {**_annotations(ctx, workload), **_owner_annotations(workload)}
    deployment = k8s.apps.v1.Deployment(
        f"{ctx.resource_name}-deployment{suffix}",
        metadata=ctx.meta("server", workload.name, annotations or None),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=workload.replicas,
            selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels={**ctx.selector, **workload.pod_labels}
            ),
            strategy=rolling_strategy(app),
            min_ready_seconds=app.rollout.min_ready_seconds,
            progress_deadline_seconds=app.rollout.progress_deadline_seconds,
            revision_history_limit=app.rollout.revision_history_limit,
            template=ctx.template(
                ctx.image if workload.image is None else workload.image,
                _workload_labels(app, workload),
            ),
        ),
        # When the HPA owns replicas, drift on them is the HPA working, not a change.
        opts=pulumi.ResourceOptions(
            parent=ctx.parent,
            ignore_changes=["spec.replicas"] if workload.hpa_owned else None,
            depends_on=list(depends_on) or None,
        ),
    )
    return CreatedWorkload(workload, deployment, deployment.metadata.name)


def _rollout(ctx: WorkloadContext, plan_: ReleasePlan, workload: Workload) -> CreatedWorkload:
    app = ctx.app
    if ctx.monitoring is None:  # pragma: no cover - config validation requires monitoring
        raise ValueError("argoRollouts needs the monitoring settings")
    analysis_name = labels.resource_name(ctx.app_name, "error-ratio")
    monitoring, address = ctx.monitoring, app.release.prometheus_address
    analysis = k8s.apiextensions.CustomResource(
        f"{ctx.resource_name}-analysis",
        api_version=ARGO_API_VERSION,
        kind="AnalysisTemplate",
        metadata=ctx.meta("analysis", analysis_name),
        spec=pulumi.Output.from_input(ctx.namespace).apply(
            lambda ns: analysis_spec(ctx.app_name, ns, monitoring, address)
        ),
        opts=pulumi.ResourceOptions(parent=ctx.parent),
    )
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(ctx.selector)},
        # Typed pod template: serialized with the same camelCase names as a Deployment's.
        "template": ctx.template(ctx.image, _workload_labels(app, workload)),
        "minReadySeconds": app.rollout.min_ready_seconds,
        "progressDeadlineSeconds": app.rollout.progress_deadline_seconds,
        "revisionHistoryLimit": app.rollout.revision_history_limit,
        "strategy": argo_strategy(plan_, app, analysis_name),
    }
    if workload.replicas is not None:
        spec["replicas"] = workload.replicas
    rollout = k8s.apiextensions.CustomResource(
        f"{ctx.resource_name}-rollout",
        api_version=ARGO_API_VERSION,
        kind="Rollout",
        metadata=ctx.meta(
            "server",
            workload.name,
            {**_annotations(ctx, workload), **_owner_annotations(workload)} or None,
        ),
        spec=spec,
        opts=pulumi.ResourceOptions(
            parent=ctx.parent,
            depends_on=[analysis],
            ignore_changes=["spec.replicas"] if workload.hpa_owned else None,
        ),
    )
    name = workload.name
    return CreatedWorkload(workload, rollout, rollout.urn.apply(lambda _: name))


def create_workloads(
    ctx: WorkloadContext,
    plan_: ReleasePlan,
    orders: Sequence[Order],
    depends_on: Sequence[pulumi.Resource] = (),
) -> list[CreatedWorkload]:
    """Register the plan's workloads whose `order` is in `orders` (Deployments, or the Argo
    Rollout with its AnalysisTemplate)."""
    created = []
    for workload in plan_.workloads:
        if workload.order not in orders:
            continue
        if plan_.argo:
            created.append(_rollout(ctx, plan_, workload))
        else:
            created.append(_deployment(ctx, workload, depends_on))
    return created

"""Registering a release plan's workloads (components/app/release.py): the Deployments, or the
Argo Rollout with its AnalysisTemplate, each with `parent` the AppService."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.app.argo_rollouts import analysis_spec, argo_strategy
from components.app.release import (
    ARGO_API_VERSION,
    Order,
    ReleasePlan,
    Workload,
    rolling_strategy,
    scanner_skips,
)
from components.config import AppConfig, Monitoring
from components.kube import labels


class MetaFactory(Protocol):
    """`AppService`'s metadata builder (namespace, standard labels, annotations)."""

    def __call__(
        self,
        component: str,
        obj_name: str | None = None,
        annotations: Mapping[str, str] | None = None,
        version: str = "",
    ) -> k8s.meta.v1.ObjectMetaArgs: ...


TemplateFactory = Callable[
    [pulumi.Input[str], Mapping[str, str], str], k8s.core.v1.PodTemplateSpecArgs
]
"""(image, extra pod labels, revision label) -> the app's pod template
(components.app.pod.pod_template)."""


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


def _workload_version(app: AppConfig, workload: Workload) -> str:
    """The version a workload runs: its own image's (a colour, the canary) or the app's."""
    return app.label_version if workload.image is None else app.image_version(workload.image)


def _workload_labels(app: AppConfig, workload: Workload) -> dict[str, str]:
    extra = dict(workload.pod_labels)
    if workload.image is not None and workload.image != app.image:
        extra[labels.VERSION] = labels.label_value(app.image_version(workload.image))
    return extra


PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
"""pulumi-kubernetes: force this object's Server-Side Apply (provider/pkg/await/await.go
`patchForce`), taking over the fields it sends from whichever manager wrote them last."""


def _annotations(ctx: WorkloadContext, workload: Workload) -> dict[str, str]:
    if workload.image is None:
        found = {} if ctx.built else scanner_skips(ctx.app_name, ctx.app.image)
    else:
        found = scanner_skips(ctx.app_name, workload.image, workload.image_key)
    if workload.replicas is not None:
        # The program sets spec.replicas: take it back from a scale-subresource owner that an
        # earlier HPA (autoscaling turned off since) or a `kubectl scale` left in managedFields;
        # without force, SSA reports a conflict with "kube-controller-manager" on .spec.replicas
        # (pulumi-kubernetes issues #2491, #2569). See the module docstring.
        found = {**found, PATCH_FORCE_ANNOTATION: "true"}
    return found


WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
"""pulumi-kubernetes: await a resource until a JSONPath matches (provider/pkg/metadata/overrides.go
`ReadyCondition`; a path without a value matches once it selects something)."""

ACTIVE_SELECTOR_SWITCHED = "jsonpath={.status.blueGreen.activeSelector}"
"""Argo Rollouts writes the active Service's `rollouts-pod-template-hash` into
`status.blueGreen.activeSelector` (rollout/bluegreen.go; `omitempty`: absent until then) once it
has switched that Service to a fully available ReplicaSet (rollout/service.go
`reconcileActiveService`)."""


DELETION_PROPAGATION_ANNOTATION = "pulumi.com/deletionPropagationPolicy"
"""pulumi-kubernetes: the propagation policy of the resource's delete, read from the inputs the
state holds (provider/pkg/metadata/overrides.go `DeletionPropagation`: "orphan", "background",
anything else foreground, the default; provider/pkg/await/await.go `Deletion`)."""


def _rollout_annotations(ctx: WorkloadContext, workload: Workload) -> dict[str, str]:
    """A Rollout is deleted in the background; a blue-green one is awaited until the
    controller has switched its active Service.

    The await: its Services carry no selector (docs/releases.md), and the endpoint controllers
    leave a selectorless Service's endpoints as they were: the old workload's pods. Without it
    the provider returns as soon as the Rollout exists (no awaiter for the kind), the update
    deletes the old Deployments at its end, and users meet refused connections until the
    controller switches (`make e2e-rollouts-node` measured 27 of 923 requests failed entering
    blue-green from rolling). Once switched the field stays, so later updates return at once:
    the await never waits for a promotion.

    Background deletion: the update that leaves Argo Rollouts takes the Services' selectors
    back (forced, without the hash) and deletes the Rollout at its end. Until the Rollout is
    gone the controller still reconciles it and writes its `rollouts-pod-template-hash` back
    into the active Service (rollout/service.go `reconcileActiveService`); it removes the hash
    only once the Rollout is deleted (rollout/controller.go enqueues the Rollout's Services on
    its delete event; service/service.go `syncService`). A foreground delete (the provider's
    default) keeps the Rollout, marked for deletion and no longer reconciled
    (rollout/controller.go), until its ReplicaSets and pods are gone: meanwhile the Service
    selects only those terminating pods and then none. In the background the Rollout goes at
    once, the hash is cleared, and the garbage collector removes its pods after it while the
    new workload's pods serve."""
    found = {**_annotations(ctx, workload), DELETION_PROPAGATION_ANNOTATION: "background"}
    if ctx.app.release.strategy == "blueGreen":
        found[WAIT_FOR_ANNOTATION] = ACTIVE_SELECTOR_SWITCHED
    return found


def _replica_options(workload: Workload) -> list[str] | None:
    """ignore_changes of a workload: spec.replicas when an HPA owns it. Under SSA the provider
    then drops the field from its request while another manager owns it, and sends the live
    value while it still owns it (the moment autoscaling is turned on), so the count is never
    reset (pulumi-kubernetes provider/pkg/await/await.go handleSSAIgnoreFields)."""
    return ["spec.replicas"] if workload.hpa_owned else None


def rollout_await_seconds(app: AppConfig, workload: Workload) -> int:
    """How long the provider waits for this Deployment's rollout (its customTimeouts).

    pulumi-kubernetes v4.25.0 (provider/pkg/await/deployment.go `deploymentInitAwaiter.await`)
    ends its wait only on success, cancellation or its timeout (`DefaultDeploymentTimeoutMins`
    = 10, or the resource's customTimeouts): a `Progressing=False` condition with reason
    `ProgressDeadlineExceeded` is logged as a warning and kept for the error, not acted on.
    `stackctl deploy` stops the update when the Deployment controller reports that condition
    (stackctl/ops/rollout_watch.py), so detection is progressDeadlineSeconds; this timeout is
    the bound for a plain `pulumi up`, long enough for a good rollout: every round of surge
    pods must progress within the deadline, so a good rollout takes at most
    rounds x deadline, plus one deadline for the controller's first reconcile."""
    deadline = app.rollout.progress_deadline_seconds
    pods = app.autoscaling.max_replicas if workload.hpa_owned else (workload.replicas or 1)
    surge = app.rollout.max_surge
    # a percentage is rounded up (apps/v1 RollingUpdateDeployment.maxSurge)
    surge_pods = math.ceil(pods * int(surge.rstrip("%")) / 100) if isinstance(surge, str) else surge
    rounds = math.ceil(pods / max(1, surge_pods))
    return deadline * (rounds + 1)


def _deployment(
    ctx: WorkloadContext, workload: Workload, depends_on: Sequence[pulumi.Resource]
) -> CreatedWorkload:
    app = ctx.app
    suffix = f"-{workload.key}" if workload.key else ""
    timeout = f"{rollout_await_seconds(app, workload)}s"
    deployment = k8s.apps.v1.Deployment(
        f"{ctx.resource_name}-deployment{suffix}",
        metadata=ctx.meta(
            "server",
            workload.name,
            _annotations(ctx, workload) or None,
            _workload_version(app, workload),
        ),
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
                workload.revision_label,
            ),
        ),
        # When the HPA owns replicas, drift on them is the HPA working, not a change.
        opts=pulumi.ResourceOptions(
            parent=ctx.parent,
            ignore_changes=_replica_options(workload),
            depends_on=list(depends_on) or None,
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
        ),
    )
    return CreatedWorkload(workload, deployment, deployment.metadata.name)


def _rollout(ctx: WorkloadContext, plan_: ReleasePlan, workload: Workload) -> CreatedWorkload:
    app = ctx.app
    if ctx.monitoring is None:  # pragma: no cover - config validation requires monitoring
        raise ValueError("argoRollouts needs the monitoring settings")
    analysis_name = labels.resource_name(ctx.app_name, "error-ratio")
    timeout = f"{rollout_await_seconds(app, workload)}s"
    monitoring, address = ctx.monitoring, app.release.prometheus_address
    analysis = k8s.apiextensions.CustomResource(
        f"{ctx.resource_name}-analysis",
        api_version=ARGO_API_VERSION,
        kind="AnalysisTemplate",
        metadata=ctx.meta("analysis", analysis_name),
        spec=pulumi.Output.from_input(ctx.namespace).apply(
            lambda ns: analysis_spec(ctx.app_name, ns, monitoring, address, app)
        ),
        opts=pulumi.ResourceOptions(parent=ctx.parent),
    )
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(ctx.selector)},
        # Typed pod template: serialized with the same camelCase names as a Deployment's.
        "template": ctx.template(
            ctx.image, _workload_labels(app, workload), workload.revision_label
        ),
        "progressDeadlineSeconds": app.rollout.progress_deadline_seconds,
        "revisionHistoryLimit": app.rollout.revision_history_limit,
        "strategy": argo_strategy(plan_, app, analysis_name),
    }
    if app.rollout.min_ready_seconds:  # a 0 is the default, and dropped by a whole write
        spec["minReadySeconds"] = app.rollout.min_ready_seconds
    if workload.replicas is not None:
        spec["replicas"] = workload.replicas
    rollout = k8s.apiextensions.CustomResource(
        f"{ctx.resource_name}-rollout",
        api_version=ARGO_API_VERSION,
        kind="Rollout",
        metadata=ctx.meta(
            "server",
            workload.name,
            _rollout_annotations(ctx, workload) or None,
            _workload_version(app, workload),
        ),
        spec=spec,
        opts=pulumi.ResourceOptions(
            parent=ctx.parent,
            depends_on=[analysis],
            ignore_changes=_replica_options(workload),
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
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

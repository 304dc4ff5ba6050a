"""AppService: one service of the stack and everything it needs to run without downtime.

ServiceAccount (no token), content-named immutable ConfigMap (a config change rolls the pods),
Secret (from Pulumi secrets, mounted as files), Deployment (restricted pod security, probes,
zero-downtime rolling update, topology spread), Service (+ a ClusterIP metrics Service),
HPA, PDB, optional Ingress, the optional data PersistentVolumeClaim and the app's NetworkPolicy.
Which Deployments (or Argo Rollout), Services, PDBs and Ingresses exist, and what they select,
follows the app's release strategy (components/app/release.py).

The constructor reads as its parts, each a builder below with `parent=self` (so a child's URN
is the same whichever builder creates it): identity, configuration, workloads of the release
plan, services, autoscaling and disruption budgets, ingress, network policy. The pod itself is
components/app/pod.py, the HPA's metrics and behaviour components/app/autoscaling.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.app import release, workloads
from components.app.autoscaling import hpa_behavior, hpa_metrics
from components.app.configuration import config_data, config_map_name, secret_data
from components.app.network_policy import AppNetworkPolicy, AppNetworkPolicyArgs
from components.app.pod import CONTAINER as CONTAINER
from components.app.pod import SECRETS_MOUNT as SECRETS_MOUNT
from components.app.pod import pod_template
from components.app.pod import topology_spread as topology_spread
from components.config import AppConfig, Monitoring, NetworkSettings
from components.kube import labels
from components.kube.network import ingress_spec as network_ingress_spec


@dataclass(frozen=True)
class AppServiceArgs:
    """Inputs of one AppService."""

    app: str
    """Service name (validated DNS-1035)."""
    config: AppConfig
    """Validated settings of the service."""
    namespace: pulumi.Input[str]
    """Namespace the objects go into."""
    instance: str
    """app.kubernetes.io/instance label value (the stack name)."""
    network: NetworkSettings
    """Ingress controller and monitoring namespaces."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret values by key (Pulumi secrets); mounted as files under /var/run/secrets/appstack."""
    client_apps: Sequence[str] = field(default_factory=tuple)
    """Apps of the stack allowed to call this one (derived from their declared egress)."""
    image: pulumi.Input[str] | None = None
    """Image to run instead of config.image (e.g. a digest from an image build)."""
    monitoring: Monitoring | None = None
    """Stack monitoring settings; the Argo Rollouts analysis (release.argoRollouts) uses its
    error-ratio threshold."""
    image_pull_secrets: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Secrets the kubelet pulls the image with: the app's `imagePullSecrets` plus the one
    created from `appstack:registry` (components/registry.py)."""


def _address(service: k8s.core.v1.Service, fallback: str) -> pulumi.Output[str]:
    """The LoadBalancer's IP/hostname once assigned, else the in-cluster DNS name."""

    def pick(status: object) -> str:
        lb = getattr(status, "load_balancer", None)
        for ingress in getattr(lb, "ingress", None) or []:
            found = getattr(ingress, "ip", None) or getattr(ingress, "hostname", None)
            if found:
                return str(found)
        return fallback

    return service.status.apply(pick)


def ingress_spec(
    app: AppConfig, service_name: pulumi.Input[str]
) -> k8s.networking.v1.IngressSpecArgs:
    """The app's host and path routed to `service_name` (TLS when a secret is configured)."""
    return network_ingress_spec(app.ingress, service_name)


@dataclass(frozen=True)
class _Scope:
    """What every part of one AppService shares: its Pulumi name, its inputs, and `parent=self`
    for each child (a child's URN is its parent's type chain + its own type and name)."""

    name: str
    args: AppServiceArgs
    parent: pulumi.Resource

    @property
    def child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent)

    def meta(
        self,
        component: str,
        obj_name: str | None = None,
        annotations: Mapping[str, str] | None = None,
        version: str = "",
    ) -> k8s.meta.v1.ObjectMetaArgs:
        """Metadata of a child object: its name (default: the app's), namespace and labels;
        `version` only for a workload (labels.standard_labels says why)."""
        return k8s.meta.v1.ObjectMetaArgs(
            name=obj_name or labels.resource_name(self.args.app),
            namespace=self.args.namespace,
            labels=labels.standard_labels(self.args.app, self.args.instance, component, version),
            annotations=dict(annotations) if annotations else None,
        )

    @property
    def selector(self) -> dict[str, str]:
        return labels.selector_labels(self.args.app, self.args.instance)


def _service_account(scope: _Scope) -> k8s.core.v1.ServiceAccount:
    """Identity: the pods' ServiceAccount, with no API token mounted."""
    return k8s.core.v1.ServiceAccount(
        f"{scope.name}-sa",
        metadata=scope.meta("server"),
        automount_service_account_token=False,
        opts=scope.child,
    )


def _configuration(scope: _Scope) -> tuple[k8s.core.v1.ConfigMap, k8s.core.v1.Secret]:
    """Configuration: the content-named immutable ConfigMap and the Secret mounted as files."""
    app_name, app = scope.args.app, scope.args.config
    data = config_data(app)
    name = config_map_name(app_name, data)
    # argoRollouts: every ReplicaSet an abort, a rollback or scaleDownDelaySeconds keeps or scales
    # up again mounts the ConfigMap of its own revision after the update that renamed it, and
    # the Rollout is not awaited before Pulumi deletes the old one: without this an aborted
    # canary's stable pods fail with `configmap "<app>-config-<old>" not found` (found by make
    # e2e-rollouts-node). Kept in the cluster, out of the state, never pruned by Argo CD.
    keep = app.release.argo_rollouts
    config_map = k8s.core.v1.ConfigMap(
        labels.content_logical_name(f"{scope.name}-config", name),
        metadata=scope.meta("config", name, dict(NO_PRUNE) if keep else None),
        data=data,
        immutable=True,
        opts=pulumi.ResourceOptions.merge(
            scope.child,
            pulumi.ResourceOptions(
                aliases=[pulumi.Alias(name=f"{scope.name}-config")],
                retain_on_delete=True if keep else None,
            ),
        ),
    )
    secret = k8s.core.v1.Secret(
        f"{scope.name}-secret",
        metadata=scope.meta("config", labels.resource_name(app_name, "secrets")),
        type="Opaque",
        data=secret_data(scope.args.secrets) or None,
        opts=scope.child,
    )
    return config_map, secret


#: Argo CD sync option on the app's claim: never pruned (as the JENKINS_HOME claim).
NO_PRUNE = {"argocd.argoproj.io/sync-options": "Prune=false"}


def _data_claim(scope: _Scope) -> pulumi.Output[str] | None:
    """Storage: the app's PersistentVolumeClaim (apps.<name>.volume), None when off. As the
    JENKINS_HOME claim (components/jenkins/storage.py): standalone, never pruned by Argo CD, and
    with `volume.protect` (required where prod's rules apply) protected and retained on delete."""
    volume = scope.args.config.volume
    if volume is None:
        return None
    claim = k8s.core.v1.PersistentVolumeClaim(
        f"{scope.name}-data",
        metadata=scope.meta("storage", labels.resource_name(scope.args.app, "data"), NO_PRUNE),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=[volume.access_mode],
            storage_class_name=volume.storage_class_name,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": volume.size}),
        ),
        opts=pulumi.ResourceOptions(
            parent=scope.parent, protect=volume.protect, retain_on_delete=volume.protect
        ),
    )
    return claim.metadata.name


def _workload_context(
    scope: _Scope,
    account: k8s.core.v1.ServiceAccount,
    config_map: k8s.core.v1.ConfigMap,
    secret: k8s.core.v1.Secret,
    claim: pulumi.Output[str] | None = None,
) -> workloads.WorkloadContext:
    """What the release plan's workloads are built from: the pod template and the image."""
    args = scope.args
    app_name, instance, app = args.app, args.instance, args.config

    def template(
        image: pulumi.Input[str], extra_labels: Mapping[str, str], revision_label: str
    ) -> k8s.core.v1.PodTemplateSpecArgs:
        return pod_template(
            app_name,
            instance,
            app,
            image=image,
            service_account=account.metadata.name,
            config_map=config_map.metadata.name,
            secret=secret.metadata.name,
            extra_labels=extra_labels,
            revision_label=revision_label,
            image_pull_secrets=args.image_pull_secrets,
            claim=claim,
        )

    return workloads.WorkloadContext(
        resource_name=scope.name,
        app_name=app_name,
        app=app,
        namespace=args.namespace,
        selector=scope.selector,
        image=args.image if args.image is not None else app.image,
        # A built image runs by its pushed digest, so the digest skip is not needed then.
        built=args.image is not None,
        template=template,
        meta=scope.meta,
        parent=scope.parent,
        monitoring=args.monitoring,
    )


def _route_annotations(
    argo_managed: bool, annotations: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """Annotations of a traffic Service. One the program applies the selector of (not managed
    by Argo Rollouts) carries `pulumi.com/patchForce`: after leaving argoRollouts the
    controller still owns the whole atomic `spec.selector` (its strategic merge patch of
    `rollouts-pod-template-hash` made it the owner), so an unforced apply of the program's
    selector is a Server-Side Apply conflict with "rollouts-controller"; forced, the apply
    takes the field back and replaces the selector, dropping the stale hash (pulumi-kubernetes
    v4.25.0 provider/pkg/await/await.go: `ssaUpdate` sends `Force: patchForce(...)`,
    `patchForce` is true for this annotation, `handleSSAErr` wraps the conflict otherwise).
    The annotation also differs between the two modes, so switching Argo on or off always
    updates the Service: its selector is reapplied in the same update."""
    found = dict(annotations or {})
    if not argo_managed:
        found[workloads.PATCH_FORCE_ANNOTATION] = "true"
    return found or None


def _route_options(
    scope: _Scope, before_routes: Sequence[pulumi.Resource]
) -> pulumi.ResourceOptions:
    """Options of the traffic Services. No `ignore_changes`: a Service Argo Rollouts manages
    carries no selector at all (`_route_selector`), so the program never applies the field
    the controller owns, and no update resets it to an earlier input."""
    return pulumi.ResourceOptions(parent=scope.parent, depends_on=list(before_routes) or None)


def _route_selector(scope: _Scope, route: release.Route) -> dict[str, str] | None:
    """The selector of a traffic Service; none when Argo Rollouts manages it.

    Argo Rollouts writes `rollouts-pod-template-hash` into the selector of the Services it
    manages (argo-rollouts rollout/service.go `switchServiceSelector`, a strategic merge patch
    that creates the map when the Service has none) and refuses a Rollout whose Service
    selects a label its pod template lacks (pkg/apis/rollouts/validation/
    validation_references.go `ValidateService`). spec.selector is an atomic map, so that
    patch makes the controller its sole owner: the program sets none, and the hash alone
    selects the Rollout's pods. Why not the stable labels under `ignore_changes` (the design
    until issue 27), with the engine and provider source lines: docs/releases.md, "Why the
    Services Argo manages carry no selector". Without a selector in the inputs, the update
    that turns Argo on drops the field the program's manager owned, whatever strategy the
    Service came from: one update from any strategy."""
    if route.argo_managed:
        return None
    return {**scope.selector, **route.selector}


def _http_port(port: int) -> list[k8s.core.v1.ServicePortArgs]:
    return [k8s.core.v1.ServicePortArgs(name="http", port=port, target_port="http", protocol="TCP")]


def _main_service(
    scope: _Scope, plan: release.ReleasePlan, route_opts: pulumi.ResourceOptions
) -> k8s.core.v1.Service:
    """The app's Service: its type, session affinity and source ranges come from config."""
    svc_settings = scope.args.config.service
    affinity = svc_settings.session_affinity
    argo_managed = plan.route("").argo_managed
    return k8s.core.v1.Service(
        f"{scope.name}-service",
        metadata=scope.meta(
            "server", annotations=_route_annotations(argo_managed, svc_settings.annotations)
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            type=svc_settings.type,
            selector=_route_selector(scope, plan.route("")),
            ports=_http_port(svc_settings.port),
            session_affinity="ClientIP" if affinity.enabled else "None",
            session_affinity_config=k8s.core.v1.SessionAffinityConfigArgs(
                client_ip=k8s.core.v1.ClientIPConfigArgs(timeout_seconds=affinity.timeout_seconds)
            )
            if affinity.enabled
            else None,
            load_balancer_source_ranges=svc_settings.effective_source_ranges or None
            if svc_settings.type == "LoadBalancer"
            else None,
        ),
        opts=route_opts,
    )


def _services(
    scope: _Scope, plan: release.ReleasePlan, before_routes: Sequence[pulumi.Resource]
) -> dict[str, k8s.core.v1.Service]:
    """Traffic Services by route key: "" the app's Service, then the plan's extra routes
    (blueGreen preview, ingress canary: ClusterIP only)."""
    route_opts = _route_options(scope, before_routes)
    routes = {"": _main_service(scope, plan, route_opts)}
    for route in plan.routes[1:]:
        routes[route.key] = k8s.core.v1.Service(
            f"{scope.name}-{route.key}-service",
            metadata=scope.meta(
                "server", route.name, annotations=_route_annotations(route.argo_managed)
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=_route_selector(scope, route),
                ports=_http_port(scope.args.config.service.port),
            ),
            opts=route_opts,
        )
    return routes


def _metrics_service(scope: _Scope) -> k8s.core.v1.Service:
    """The ClusterIP Service Prometheus scrapes (every pod of the app, whatever the release)."""
    port = scope.args.config.metrics_port
    return k8s.core.v1.Service(
        f"{scope.name}-metrics-service",
        metadata=scope.meta("metrics", labels.resource_name(scope.args.app, "metrics")),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=scope.selector,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="metrics", port=port, target_port="metrics", protocol="TCP"
                )
            ],
        ),
        opts=scope.child,
    )


def _autoscalers(scope: _Scope, plan: release.ReleasePlan) -> None:
    """The plan's HPAs (blueGreen: one per colour)."""
    app = scope.args.config
    for autoscaler in plan.autoscalers:
        target = autoscaler.target
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{scope.name}-{autoscaler.key}-hpa" if autoscaler.key else f"{scope.name}-hpa",
            metadata=scope.meta("autoscaler", autoscaler.name),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version=target.api_version, kind=target.kind, name=target.name
                ),
                min_replicas=app.autoscaling.min_replicas,
                max_replicas=app.autoscaling.max_replicas,
                metrics=hpa_metrics(app),
                behavior=hpa_behavior(app),
            ),
            opts=scope.child,
        )


def _disruption_budgets(scope: _Scope, plan: release.ReleasePlan) -> None:
    """The plan's PDBs: the app's PDB settings, or maxUnavailable 1 for a canary (never blocks
    a drain)."""
    pdb = scope.args.config.pdb
    for budget in plan.budgets:
        k8s.policy.v1.PodDisruptionBudget(
            f"{scope.name}-{budget.key}-pdb" if budget.key else f"{scope.name}-pdb",
            metadata=scope.meta("disruption-budget", budget.name),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={**scope.selector, **budget.selector}
                ),
                max_unavailable=pdb.effective_max_unavailable if budget.from_config else 1,
                min_available=pdb.min_available if budget.from_config else None,
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=scope.child,
        )


def _ingresses(
    scope: _Scope, plan: release.ReleasePlan, routes: Mapping[str, k8s.core.v1.Service]
) -> None:
    """The app's Ingress when enabled, and the ingress-nginx canary Ingress (same host and
    path, weighted) of an ingress canary release."""
    app = scope.args.config
    if app.ingress.enabled:
        k8s.networking.v1.Ingress(
            f"{scope.name}-ingress",
            metadata=scope.meta("ingress"),
            spec=ingress_spec(app, routes[""].metadata.name),
            opts=scope.child,
        )
    canary = plan.canary_ingress
    if canary is not None:
        k8s.networking.v1.Ingress(
            f"{scope.name}-canary-ingress",
            metadata=scope.meta("ingress", canary.name, canary.annotations),
            spec=ingress_spec(app, routes["canary"].metadata.name),
            opts=scope.child,
        )


def _network_policy(scope: _Scope) -> AppNetworkPolicy:
    """Who may reach the app (ingress controller, monitoring, client apps) and where it may go."""
    args, app = scope.args, scope.args.config
    return AppNetworkPolicy(
        f"{scope.name}-network",
        AppNetworkPolicyArgs(
            app=args.app,
            namespace=args.namespace,
            instance=args.instance,
            port=app.port,
            metrics_port=app.metrics_port,
            public=app.service.type in ("LoadBalancer", "NodePort"),
            network=args.network,
            client_apps=tuple(args.client_apps),
            egress=tuple(app.egress),
            internal=app.service.type == "ClusterIP" and not app.ingress.enabled,
        ),
        opts=scope.child,
    )


def _service_address(scope: _Scope, service: k8s.core.v1.Service) -> pulumi.Output[str]:
    """Where clients reach the app: the LoadBalancer's address, else the in-cluster DNS name."""
    settings = scope.args.config.service
    if settings.type == "LoadBalancer":
        return _address(service, "pending")
    port = settings.port
    return service.metadata.apply(
        lambda meta: f"{meta.name}.{meta.namespace}.svc.cluster.local:{port}"
    )


class AppService(pulumi.ComponentResource):
    """One service: identity, config, workload, exposure, scaling, disruption budget, policy."""

    def __init__(
        self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:app:AppService", name, None, opts)
        scope = _Scope(name, args, parent=self)

        account = _service_account(scope)
        config_map, secret = _configuration(scope)
        claim = _data_claim(scope)

        # Workloads, Services, PDBs and the HPAs follow the release strategy. blueGreen: the
        # colour becoming active is updated before the Services switch to it, the colour
        # becoming idle after (so traffic only ever moves to running pods).
        plan = release.plan(args.app, args.config)
        context = _workload_context(scope, account, config_map, secret, claim)
        created = workloads.create_workloads(context, plan, ("free", "before-routes"))
        before_routes = [c.resource for c in created if c.workload.order == "before-routes"]
        routes = _services(scope, plan, before_routes)
        workloads.create_workloads(context, plan, ("after-routes",), list(routes.values()))
        metrics_service = _metrics_service(scope)

        _autoscalers(scope, plan)
        _disruption_budgets(scope, plan)
        _ingresses(scope, plan, routes)
        _network_policy(scope)

        primary = next(c for c in created if c.workload == plan.primary)
        self.deployment_name: pulumi.Output[str] = primary.name
        self.service_name: pulumi.Output[str] = routes[""].metadata.name
        self.metrics_service_name: pulumi.Output[str] = metrics_service.metadata.name
        self.config_map_name: pulumi.Output[str] = config_map.metadata.name
        self.secret_name: pulumi.Output[str] = secret.metadata.name
        self.address: pulumi.Output[str] = _service_address(scope, routes[""])
        self.register_outputs(
            {
                "deployment_name": self.deployment_name,
                "service_name": self.service_name,
                "metrics_service_name": self.metrics_service_name,
                "config_map_name": self.config_map_name,
                "secret_name": self.secret_name,
                "address": self.address,
            }
        )

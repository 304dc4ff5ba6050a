"""AppService: one service of the stack and everything it needs to run without downtime.

ServiceAccount (no token), content-named immutable ConfigMap (a config change rolls the pods),
Secret (from Pulumi secrets, mounted as files), Deployment (restricted pod security, probes,
zero-downtime rolling update, topology spread), Service (+ a ClusterIP metrics Service),
HPA, PDB, optional Ingress and the app's NetworkPolicy. Which Deployments (or Argo Rollout),
Services, PDBs and Ingresses exist, and what they select, follows the app's release strategy
(components/release.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import labels, release
from components.config import AppConfig, Monitoring, NetworkSettings, Probe
from components.network import AppNetworkPolicy, AppNetworkPolicyArgs
from components.network import ingress_spec as network_ingress_spec
from components.security import container_security_context, pod_security_context

SECRETS_MOUNT = "/var/run/secrets/appstack"
CONTAINER = "app"


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


def config_data(app: AppConfig) -> dict[str, str]:
    """ConfigMap data: the user's env plus the values derived from config."""
    return {
        **app.env,
        "PORT": str(app.port),
        "METRICS_PORT": str(app.metrics_port),
        "APP_VERSION": app.label_version,
    }


def config_map_name(app_name: str, data: Mapping[str, str]) -> str:
    """Content-addressed name: any change of data gives a new name, which rolls the pods."""
    digest = labels.content_hash(json.dumps(dict(data), sort_keys=True))
    return labels.resource_name(app_name, "config", digest)


def _http_probe(probe: Probe) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=probe.path, port="http"),
        initial_delay_seconds=probe.initial_delay_seconds,
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
        success_threshold=1,
    )


def _resources(app: AppConfig) -> k8s.core.v1.ResourceRequirementsArgs:
    req, lim = app.resources.requests, app.resources.limits
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": req.cpu, "memory": req.memory, "ephemeral-storage": req.ephemeral_storage},
        limits={"cpu": lim.cpu, "memory": lim.memory, "ephemeral-storage": lim.ephemeral_storage},
    )


def topology_spread(
    app_name: str, instance: str, app: AppConfig, revision_label: str
) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas across nodes, and zones when configured; per revision so a rollout's new
    pods spread too. `revision_label` is the pod-template-hash label the workload's controller
    gives its pods (components.release.Workload.revision_label): `pod-template-hash` for a
    Deployment, `rollouts-pod-template-hash` for an Argo Rollout. A key the pods lack would
    make the scheduler ignore it and spread old and new pods together."""
    keys = ["kubernetes.io/hostname"] + (
        ["topology.kubernetes.io/zone"] if app.topology.zones else []
    )
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=app.topology.max_skew,
            topology_key=key,
            when_unsatisfiable=app.topology.when_unsatisfiable,
            label_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels=labels.selector_labels(app_name, instance)
            ),
            match_label_keys=[revision_label],
        )
        for key in keys
    ]


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_data(values: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Output[str]]:
    """Secret `data` (base64), each value a Pulumi secret.

    Not `stringData`: the API server merges stringData into data and never stores it
    (k8s.io/api core/v1 Secret), so a Server-Side Apply of stringData owns `stringData.<key>`,
    never `data.<key>`, and a key removed from the config stays in the Secret (and mounted).
    pulumi-kubernetes rewrites stringData into data only when no input is computed
    (provider/pkg/provider/provider.go `normalizeInputs`, clients/unstructured.go
    `normalizeSecret`, pulumi-kubernetes v4.32.0-27 94977969); with `data` the applied fields
    are the stored ones, so SSA deletes the fields of a removed key.
    """
    return {
        key: pulumi.Output.secret(pulumi.Output.from_input(value).apply(_base64))
        for key, value in sorted(values.items())
    }


def pod_template(
    app_name: str,
    instance: str,
    app: AppConfig,
    *,
    image: pulumi.Input[str],
    service_account: pulumi.Input[str],
    config_map: pulumi.Input[str],
    secret: pulumi.Input[str],
    extra_labels: Mapping[str, str] | None = None,
    revision_label: str = release.DEPLOYMENT_REVISION_LABEL,
) -> k8s.core.v1.PodTemplateSpecArgs:
    """The pod of an app: restricted security, probes, resources, graceful shutdown."""
    sec = app.security
    annotations = {"kubectl.kubernetes.io/default-container": CONTAINER}
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels={
                **labels.standard_labels(app_name, instance, "server", app.label_version),
                **(extra_labels or {}),
            },
            annotations=annotations,
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security_context(sec.run_as_user, sec.run_as_group, sec.fs_group),
            termination_grace_period_seconds=app.rollout.termination_grace_period_seconds,
            topology_spread_constraints=topology_spread(app_name, instance, app, revision_label),
            containers=[
                k8s.core.v1.ContainerArgs(
                    name=CONTAINER,
                    image=image,
                    image_pull_policy="Always",
                    ports=[
                        k8s.core.v1.ContainerPortArgs(
                            name="http", container_port=app.port, protocol="TCP"
                        ),
                        k8s.core.v1.ContainerPortArgs(
                            name="metrics", container_port=app.metrics_port, protocol="TCP"
                        ),
                    ],
                    env_from=[
                        k8s.core.v1.EnvFromSourceArgs(
                            config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config_map)
                        )
                    ],
                    resources=_resources(app),
                    security_context=container_security_context(sec.run_as_user, sec.run_as_group),
                    startup_probe=_http_probe(app.probes.startup),
                    liveness_probe=_http_probe(app.probes.liveness),
                    readiness_probe=_http_probe(app.probes.readiness),
                    lifecycle=k8s.core.v1.LifecycleArgs(
                        pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                            sleep=k8s.core.v1.SleepActionArgs(
                                seconds=app.rollout.pre_stop_sleep_seconds
                            )
                        )
                    )
                    if app.rollout.pre_stop_sleep_seconds > 0
                    else None,
                    volume_mounts=[
                        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                        k8s.core.v1.VolumeMountArgs(
                            name="secrets", mount_path=SECRETS_MOUNT, read_only=True
                        ),
                    ],
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="tmp",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=app.tmp_size_limit),
                ),
                k8s.core.v1.VolumeArgs(
                    name="secrets",
                    secret=k8s.core.v1.SecretVolumeSourceArgs(
                        secret_name=secret, default_mode=0o440
                    ),
                ),
            ],
        ),
    )


def hpa_behavior() -> k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs:
    """Scale up fast (double, or +4 pods, every 15 s); scale down slowly (300 s window,
    at most 10 % a minute)."""
    return k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
        scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=0,
            select_policy="Max",
            policies=[
                k8s.autoscaling.v2.HPAScalingPolicyArgs(
                    type="Percent", value=100, period_seconds=15
                ),
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=4, period_seconds=15),
            ],
        ),
        scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=300,
            select_policy="Min",
            policies=[
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=10, period_seconds=60)
            ],
        ),
    )


def hpa_metrics(app: AppConfig) -> list[k8s.autoscaling.v2.MetricSpecArgs]:
    """CPU and memory utilisation, and optionally requests per second per pod."""
    metrics = [
        k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource",
            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name=resource,
                target=k8s.autoscaling.v2.MetricTargetArgs(
                    type="Utilization", average_utilization=target
                ),
            ),
        )
        for resource, target in (
            ("cpu", app.autoscaling.cpu_utilization),
            ("memory", app.autoscaling.memory_utilization),
        )
    ]
    rps = app.autoscaling.requests_per_second
    if rps is not None:
        metrics.append(
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Pods",
                pods=k8s.autoscaling.v2.PodsMetricSourceArgs(
                    metric=k8s.autoscaling.v2.MetricIdentifierArgs(name="http_requests_per_second"),
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="AverageValue", average_value=f"{rps:g}"
                    ),
                ),
            )
        )
    return metrics


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


class AppService(pulumi.ComponentResource):
    """One service: identity, config, workload, exposure, scaling, disruption budget, policy."""

    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    metrics_service_name: pulumi.Output[str]
    config_map_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:app:AppService", name, None, opts)
        app, app_name, instance = args.config, args.app, args.instance
        child = pulumi.ResourceOptions(parent=self)

        def meta(
            component: str,
            obj_name: str | None = None,
            annotations: Mapping[str, str] | None = None,
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=obj_name or labels.resource_name(app_name),
                namespace=args.namespace,
                labels=labels.standard_labels(app_name, instance, component, app.label_version),
                annotations=dict(annotations) if annotations else None,
            )

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta("server"),
            automount_service_account_token=False,
            opts=child,
        )
        data = config_data(app)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta("config", config_map_name(app_name, data)),
            data=data,
            immutable=True,
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=meta("config", labels.resource_name(app_name, "secrets")),
            type="Opaque",
            data=secret_data(args.secrets) or None,
            opts=child,
        )
        selector = labels.selector_labels(app_name, instance)
        # Workloads, Services, PDBs and the HPAs follow the release strategy.
        plan = release.plan(app_name, app)

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
            )

        workloads = release.WorkloadContext(
            resource_name=name,
            app_name=app_name,
            app=app,
            namespace=args.namespace,
            selector=selector,
            image=args.image if args.image is not None else app.image,
            # A built image runs by its pushed digest, so the digest skip is not needed then.
            built=args.image is not None,
            template=template,
            meta=meta,
            parent=self,
            monitoring=args.monitoring,
        )
        # blueGreen: the colour becoming active is updated before the Services switch to it,
        # the colour becoming idle after (so traffic only ever moves to running pods).
        created = release.create_workloads(workloads, plan, ("free", "before-routes"))
        before_routes = [c.resource for c in created if c.workload.order == "before-routes"]
        route_opts = {
            argo_managed: pulumi.ResourceOptions(
                parent=self,
                depends_on=before_routes or None,
                # Argo Rollouts writes `rollouts-pod-template-hash` into these Services'
                # selectors (argo-rollouts rollout/service.go switchServiceSelector, a strategic
                # merge patch). spec.selector is an atomic map (x-kubernetes-map-type: atomic),
                # so that patch makes the controller its sole owner, and any later apply of the
                # Service carrying a selector (every image bump changes the version label) would
                # be a Server-Side Apply conflict. With ignore_changes the provider drops the
                # field from its request while another manager owns it (pulumi-kubernetes
                # provider/pkg/await/await.go handleSSAIgnoreFields).
                ignore_changes=["spec.selector"] if argo_managed else None,
            )
            for argo_managed in (False, True)
        }
        primary = next(c for c in created if c.workload == plan.primary)
        svc_settings = app.service
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta("server", annotations=dict(svc_settings.annotations) or None),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=svc_settings.type,
                selector={**selector, **plan.route("").selector},
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=svc_settings.port, target_port="http", protocol="TCP"
                    )
                ],
                session_affinity="ClientIP" if svc_settings.session_affinity.enabled else "None",
                session_affinity_config=k8s.core.v1.SessionAffinityConfigArgs(
                    client_ip=k8s.core.v1.ClientIPConfigArgs(
                        timeout_seconds=svc_settings.session_affinity.timeout_seconds
                    )
                )
                if svc_settings.session_affinity.enabled
                else None,
                load_balancer_source_ranges=svc_settings.effective_source_ranges or None
                if svc_settings.type == "LoadBalancer"
                else None,
            ),
            opts=route_opts[plan.route("").argo_managed],
        )
        routes = {"": service}
        for route in plan.routes[1:]:  # blueGreen preview / ingress canary: ClusterIP only
            routes[route.key] = k8s.core.v1.Service(
                f"{name}-{route.key}-service",
                metadata=meta("server", route.name),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    selector={**selector, **route.selector},
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name="http", port=svc_settings.port, target_port="http", protocol="TCP"
                        )
                    ],
                ),
                opts=route_opts[route.argo_managed],
            )
        release.create_workloads(workloads, plan, ("after-routes",), list(routes.values()))
        metrics_service = k8s.core.v1.Service(
            f"{name}-metrics-service",
            metadata=meta("metrics", labels.resource_name(app_name, "metrics")),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="metrics", port=app.metrics_port, target_port="metrics", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )
        for autoscaler in plan.autoscalers:  # blueGreen: one per colour
            target = autoscaler.target
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-{autoscaler.key}-hpa" if autoscaler.key else f"{name}-hpa",
                metadata=meta("autoscaler", autoscaler.name),
                spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                    scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                        api_version=target.api_version, kind=target.kind, name=target.name
                    ),
                    min_replicas=app.autoscaling.min_replicas,
                    max_replicas=app.autoscaling.max_replicas,
                    metrics=hpa_metrics(app),
                    behavior=hpa_behavior(),
                ),
                opts=child,
            )
        for budget in plan.budgets:
            # The app's PDB settings, or maxUnavailable 1 for a canary (never blocks a drain).
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{budget.key}-pdb" if budget.key else f"{name}-pdb",
                metadata=meta("disruption-budget", budget.name),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={**selector, **budget.selector}
                    ),
                    max_unavailable=app.pdb.effective_max_unavailable if budget.from_config else 1,
                    min_available=app.pdb.min_available if budget.from_config else None,
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=child,
            )
        if app.ingress.enabled:
            k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=meta("ingress"),
                spec=ingress_spec(app, service.metadata.name),
                opts=child,
            )
        canary = plan.canary_ingress
        if canary is not None:  # ingress-nginx canary: same host and path, weighted
            k8s.networking.v1.Ingress(
                f"{name}-canary-ingress",
                metadata=meta("ingress", canary.name, canary.annotations),
                spec=ingress_spec(app, routes["canary"].metadata.name),
                opts=child,
            )
        AppNetworkPolicy(
            f"{name}-network",
            AppNetworkPolicyArgs(
                app=app_name,
                namespace=args.namespace,
                instance=instance,
                port=app.port,
                metrics_port=app.metrics_port,
                public=svc_settings.type in ("LoadBalancer", "NodePort"),
                network=args.network,
                client_apps=tuple(args.client_apps),
                egress=tuple(app.egress),
            ),
            opts=child,
        )

        self.deployment_name = primary.name
        self.service_name = service.metadata.name
        self.metrics_service_name = metrics_service.metadata.name
        self.config_map_name = config_map.metadata.name
        self.secret_name = secret.metadata.name
        fallback = pulumi.Output.concat(
            service.metadata.name,
            ".",
            pulumi.Output.from_input(args.namespace),
            f".svc.cluster.local:{svc_settings.port}",
        )
        self.address = (
            _address(service, "pending") if svc_settings.type == "LoadBalancer" else fallback
        )
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

"""Services and ingress: the headless governing Service, the UI Service (agents use it too,
over WebSocket) and the optional Ingress for people and SCM webhooks."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.jenkins.context import Ctx
from components.jenkins.names import APP, HTTP_PORT, METRICS_PATH
from components.jenkins.workload import ROLLOUT_TIMEOUT
from components.kube import labels
from components.kube.network import ingress_spec

#: The UI Service waits for the controller's first endpoint, i.e. for the first boot: the
#: provider's Service await takes its timeout from the resource's customTimeouts first, then the
#: `pulumi.com/timeoutSeconds` annotation, else DefaultServiceTimeoutMins (10)
#: (pulumi-kubernetes provider/pkg/metadata/overrides.go TimeoutDuration, called from
#: provider/pkg/await/await.go Creation/Update; provider/pkg/await/service.go). So it gets the
#: StatefulSet's 20 minutes as custom timeouts.
SERVICE_TIMEOUTS = pulumi.CustomTimeouts(create=ROLLOUT_TIMEOUT, update=ROLLOUT_TIMEOUT)


@dataclass(frozen=True)
class Services:
    headless: pulumi.Output[str]
    ui: pulumi.Output[str]
    ui_resource: k8s.core.v1.Service


def services(ctx: Ctx, ui_service_name: str) -> Services:
    s = ctx.settings
    headless = k8s.core.v1.Service(
        f"{ctx.name}-headless",
        metadata=ctx.meta("headless", labels.resource_name(APP, "headless")),
        spec=k8s.core.v1.ServiceSpecArgs(
            cluster_ip="None",
            publish_not_ready_addresses=True,
            selector=ctx.selector,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http", port=HTTP_PORT, target_port="http", protocol="TCP"
                )
            ],
        ),
        opts=ctx.opts(),
    )
    lb = s.service.type == "LoadBalancer"
    ui = k8s.core.v1.Service(
        f"{ctx.name}-service",
        metadata=ctx.meta("controller", ui_service_name),
        spec=k8s.core.v1.ServiceSpecArgs(
            type=s.service.type,
            selector=ctx.selector,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http", port=s.service.port, target_port="http", protocol="TCP"
                )
            ],
            load_balancer_source_ranges=list(s.service.load_balancer_source_ranges) if lb else None,
        ),
        opts=ctx.opts(custom_timeouts=SERVICE_TIMEOUTS),
    )
    return Services(headless=headless.metadata.name, ui=ui.metadata.name, ui_resource=ui)


CLOSED_SERVICE = labels.resource_name(APP, "closed")


def _metrics_closed_service(ctx: Ctx) -> pulumi.Output[str]:
    """A headless Service without a selector: no endpoints, so the ingress controller answers
    503 for what is routed to it. The provider does not wait for endpoints of an empty
    headless Service (pulumi-kubernetes provider/pkg/await/service.go
    emptyHeadlessOrExternalName)."""
    svc = k8s.core.v1.Service(
        f"{ctx.name}-metrics-closed",
        metadata=ctx.meta("ingress", CLOSED_SERVICE),
        spec=k8s.core.v1.ServiceSpecArgs(
            cluster_ip="None",
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, protocol="TCP")],
        ),
        opts=ctx.opts(),
    )
    return svc.metadata.name


def ingress(ctx: Ctx, ui_service: pulumi.Input[str]) -> None:
    """The optional Ingress (its host is JCasC's location.url: links, webhooks). Its metrics
    path goes to a Service with no endpoints: the longest matching path wins (networking/v1
    HTTPIngressPath), so `/prometheus` and below never reach the controller through it."""
    settings = ctx.settings.ingress
    if not settings.enabled:
        return
    closed = k8s.networking.v1.HTTPIngressPathArgs(
        path=f"{settings.path.rstrip('/')}/{METRICS_PATH}",
        path_type="Prefix",
        backend=k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=_metrics_closed_service(ctx),
                port=k8s.networking.v1.ServiceBackendPortArgs(name="http"),
            )
        ),
    )
    k8s.networking.v1.Ingress(
        f"{ctx.name}-ingress",
        metadata=ctx.meta("ingress", labels.resource_name(APP)),
        spec=ingress_spec(settings, ui_service, extra_paths=[closed]),
        opts=ctx.opts(),
    )

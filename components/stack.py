"""deploy(cfg): the whole stack, wired. Called by __main__.py under the real engine and by
`stackctl render` / the tests under Pulumi's mock runtime."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.app.component import AppService, AppServiceArgs
from components.app.endpoints import health_url
from components.config import StackConfig
from components.gitops import GitOpsApplication, GitOpsApplicationArgs
from components.image.component import PROJECT_DIR, ServiceImage, ServiceImageArgs, git_commit
from components.jenkins import JenkinsController, JenkinsControllerArgs, VerifiedApp
from components.kube import labels
from components.monitoring.component import (
    AppMonitoring,
    AppMonitoringArgs,
    StackDashboard,
    StackDashboardArgs,
)
from components.monitoring.routing import StackAlertRouting, StackAlertRoutingArgs
from components.namespace import AppNamespace, AppNamespaceArgs
from components.registry import RegistryPullSecret, RegistryPullSecretArgs


@dataclass(frozen=True)
class StackOutputs:
    """What the stack exports."""

    namespace: pulumi.Output[str]
    """Namespace of the apps."""
    services: dict[str, pulumi.Output[str]]
    """Service name per app."""
    addresses: dict[str, pulumi.Output[str]]
    """LoadBalancer address (or in-cluster DNS name) per app."""
    jenkins_url: pulumi.Output[str]
    """URL of the Jenkins UI; "" when Jenkins is disabled (the output always exists)."""
    health_urls: dict[str, pulumi.Output[str]]
    """Readiness URL per app from outside (components/app/endpoints.py; `stackctl verify`)."""

    def as_dict(self) -> dict[str, object]:
        """Every output under its stable export key."""
        return {
            "namespace": self.namespace,
            "services": self.services,
            "addresses": self.addresses,
            "jenkins_url": self.jenkins_url,
            "health_urls": self.health_urls,
        }

    def export(self) -> None:
        """pulumi.export every output under its stable key."""
        for key, value in self.as_dict().items():
            pulumi.export(key, value)


def client_apps(cfg: StackConfig) -> dict[str, tuple[str, ...]]:
    """Per app, the apps that declared egress to it (sorted): they get ingress to it."""
    clients: dict[str, set[str]] = {}
    for name, app in cfg.apps.items():
        for rule in app.egress:
            if rule.app is not None:  # a rule by CIDR or namespace names no app
                clients.setdefault(rule.app, set()).add(name)
    return {target: tuple(sorted(names)) for target, names in clients.items()}


def _built_image(cfg: StackConfig, name: str) -> pulumi.Input[str] | None:
    """The pushed digest of the app's image when config builds it (`build`), else None."""
    build = cfg.apps[name].build
    if build is None:
        return None
    return ServiceImage(
        f"{name}-build",
        ServiceImageArgs(
            image=cfg.apps[name].image,
            build=build,
            project_dir=PROJECT_DIR,
            commit=git_commit(PROJECT_DIR),
            credentials=cfg.registry,
            password=cfg.registry.password.get_secret_value() if cfg.registry else None,
        ),
    ).repo_digest


def _jenkins(cfg: StackConfig, instance: str) -> pulumi.Output[str]:
    """Jenkins (issue 4), in its own namespace, only when enabled: its UI URL, else ""."""
    if not cfg.jenkins.enabled:
        return pulumi.Output.from_input("")
    jenkins = JenkinsController(
        "jenkins",
        JenkinsControllerArgs(
            settings=cfg.jenkins,
            instance=instance,
            network=cfg.network,
            monitoring=cfg.monitoring,
            verified_apps=_verified_apps(cfg, instance),
        ),
    )
    return jenkins.url


def _verified_apps(cfg: StackConfig, instance: str) -> tuple[VerifiedApp, ...]:
    """Where the pipeline's verify step reaches each app (components/app/endpoints.py's URL): its
    pods on the container port, and the outside port of its Ingress or LoadBalancer."""
    out = []
    for name, app in sorted(cfg.apps.items()):
        external: int | None = None
        if app.ingress.enabled:
            external = 443 if app.ingress.tls_secret_name else 80
        elif app.service.type == "LoadBalancer":
            external = app.service.port
        out.append(
            VerifiedApp(cfg.namespace, labels.selector_labels(name, instance), app.port, external)
        )
    return tuple(out)


def _monitoring(cfg: StackConfig, namespace: pulumi.Output[str], instance: str) -> None:
    """Per app a ServiceMonitor, PrometheusRule and dashboard, the stack's dashboard and its
    alert routing (AlertmanagerConfig, when `alertRouting.enabled`), when monitoring is on
    (CRD-backed objects; the dashboards are for the Grafana beside them)."""
    if not cfg.monitoring.enabled:
        return
    for name in sorted(cfg.apps):
        AppMonitoring(
            f"{name}-monitoring",
            AppMonitoringArgs(
                app=name,
                config=cfg.apps[name],
                namespace=cfg.namespace,
                namespace_input=namespace,
                instance=instance,
                settings=cfg.monitoring,
                environment=cfg.environment,
            ),
        )
    if cfg.monitoring.alert_routing.enabled:
        StackAlertRouting(
            "alert-routing",
            StackAlertRoutingArgs(
                routing=cfg.monitoring.alert_routing,
                selector_labels=dict(cfg.monitoring.prometheus_selector_labels),
                namespace_input=namespace,
                instance=instance,
            ),
        )
    if cfg.monitoring.dashboards.enabled:
        StackDashboard(
            "stack-dashboard",
            StackDashboardArgs(
                apps=dict(cfg.apps),
                namespace=cfg.namespace,
                namespace_input=namespace,
                instance=instance,
                settings=cfg.monitoring,
            ),
        )


def deploy(cfg: StackConfig) -> StackOutputs:
    """Register every resource of the stack and return its outputs."""
    instance = pulumi.get_stack()
    namespace = AppNamespace(
        cfg.namespace,
        AppNamespaceArgs(
            name=cfg.namespace,
            instance=instance,
            apps=cfg.apps,
            quota=cfg.namespace_quota,
            limit_range=cfg.limit_range,
            network=cfg.network,
            argo_allowed=cfg.monitoring.enabled,  # argoRollouts needs monitoring (config)
        ),
    )
    pull_secrets: list[pulumi.Input[str]] = []
    if cfg.registry is not None and cfg.registry.pull_secret:
        pull_secrets.append(
            RegistryPullSecret(
                "registry",
                RegistryPullSecretArgs(
                    namespace=namespace.name,
                    instance=instance,
                    server=cfg.registry.server,
                    username=cfg.registry.username,
                    password=pulumi.Output.secret(cfg.registry.password.get_secret_value()),
                ),
            ).secret_name
        )
    services: dict[str, AppService] = {}
    clients = client_apps(cfg)
    for name in sorted(cfg.apps):
        secrets = {
            key: pulumi.Output.secret(value.get_secret_value())
            for key, value in cfg.secrets.get(name, {}).items()
        }
        image = _built_image(cfg, name)
        services[name] = AppService(
            name,
            AppServiceArgs(
                app=name,
                config=cfg.apps[name],
                namespace=namespace.name,
                instance=instance,
                network=cfg.network,
                secrets=secrets,
                client_apps=clients.get(name, ()),
                image=image,
                monitoring=cfg.monitoring,  # release.argoRollouts analysis threshold
                image_pull_secrets=[*cfg.apps[name].image_pull_secrets, *pull_secrets],
            ),
        )
    _monitoring(cfg, namespace.name, instance)
    jenkins_url = _jenkins(cfg, instance)
    if cfg.gitops.enabled:
        # Argo CD's Application of these manifests (off by default), in Argo CD's namespace.
        GitOpsApplication("gitops", GitOpsApplicationArgs(settings=cfg.gitops, instance=instance))
    return StackOutputs(
        namespace=namespace.name,
        services={name: svc.service_name for name, svc in services.items()},
        addresses={name: svc.address for name, svc in services.items()},
        jenkins_url=jenkins_url,
        health_urls={
            name: health_url(cfg.apps[name], svc.address) for name, svc in services.items()
        },
    )

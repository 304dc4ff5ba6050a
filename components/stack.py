"""deploy(cfg): the whole stack, wired. Called by __main__.py under the real engine and by
`stackctl render` / the tests under Pulumi's mock runtime."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.app import AppService, AppServiceArgs
from components.config import StackConfig
from components.monitoring import AppMonitoring, AppMonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs


@dataclass(frozen=True)
class StackOutputs:
    """What the stack exports."""

    namespace: pulumi.Output[str]
    """Namespace of the apps."""
    services: dict[str, pulumi.Output[str]]
    """Service name per app."""
    addresses: dict[str, pulumi.Output[str]]
    """LoadBalancer address (or in-cluster DNS name) per app."""

    def export(self) -> None:
        """pulumi.export every output under a stable key."""
        pulumi.export("namespace", self.namespace)
        pulumi.export("services", self.services)
        pulumi.export("addresses", self.addresses)


def client_apps(cfg: StackConfig, target: str) -> tuple[str, ...]:
    """Apps that declared egress to `target`: they get ingress to it."""
    return tuple(
        sorted(name for name, app in cfg.apps.items() if any(r.app == target for r in app.egress))
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
        ),
    )
    services: dict[str, AppService] = {}
    for name in sorted(cfg.apps):
        secrets = {
            key: pulumi.Output.secret(value.get_secret_value())
            for key, value in cfg.secrets.get(name, {}).items()
        }
        services[name] = AppService(
            name,
            AppServiceArgs(
                app=name,
                config=cfg.apps[name],
                namespace=namespace.name,
                instance=instance,
                network=cfg.network,
                secrets=secrets,
                client_apps=client_apps(cfg, name),
            ),
        )
        if cfg.monitoring.enabled:
            AppMonitoring(
                f"{name}-monitoring",
                AppMonitoringArgs(
                    app=name,
                    config=cfg.apps[name],
                    namespace=cfg.namespace,
                    namespace_input=namespace.name,
                    instance=instance,
                    settings=cfg.monitoring,
                ),
            )
    return StackOutputs(
        namespace=namespace.name,
        services={name: svc.service_name for name, svc in services.items()},
        addresses={name: svc.address for name, svc in services.items()},
    )

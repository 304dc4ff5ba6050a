"""What every part of the Jenkins component shares: its parent, settings, namespace and the
metadata/labels helpers. Parts register their resources with `parent=ctx.parent` (the
JenkinsController), never under an intermediate component, so URNs stay as they were."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import JenkinsSettings, Monitoring, NetworkSettings
from components.jenkins.names import AGENT_APP, APP
from components.kube import labels


@dataclass(frozen=True)
class VerifiedApp:
    """An app of this stack that the pipeline's `stackctl verify` reaches from an agent: its
    pods (namespace, selector, container port) and, for a LoadBalancer or an Ingress, the port
    of the outside address its health URL names (components/endpoints.py)."""

    namespace: str
    selector: Mapping[str, str]
    port: int
    external_port: int | None = None


@dataclass(frozen=True)
class Ctx:
    """Shared inputs of the builder functions."""

    parent: pulumi.ComponentResource
    name: str
    settings: JenkinsSettings
    instance: str
    namespace: pulumi.Output[str]
    network: NetworkSettings
    monitoring: Monitoring
    version: str
    verified_apps: tuple[VerifiedApp, ...] = ()

    def opts(self, **kwargs: object) -> pulumi.ResourceOptions:
        """Resource options with the component as parent (plus any given option)."""
        return pulumi.ResourceOptions(parent=self.parent, **kwargs)  # type: ignore[arg-type]

    @property
    def selector(self) -> dict[str, str]:
        return labels.selector_labels(APP, self.instance)

    @property
    def agent_selector(self) -> dict[str, str]:
        return labels.selector_labels(AGENT_APP, self.instance)

    def meta(
        self,
        component: str,
        obj_name: str,
        annotations: Mapping[str, str] | None = None,
        app: str = APP,
        versioned: bool = False,
    ) -> k8s.meta.v1.ObjectMetaArgs:
        """Metadata of a Jenkins object; the version label only on the controller's workload
        (`versioned`, labels.standard_labels says why)."""
        version = self.version if versioned else ""
        return k8s.meta.v1.ObjectMetaArgs(
            name=obj_name,
            namespace=self.namespace,
            labels=labels.standard_labels(app, self.instance, component, version),
            annotations=dict(annotations) if annotations else None,
        )

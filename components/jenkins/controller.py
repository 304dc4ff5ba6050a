"""JenkinsController: the component. Its constructor is the table of contents; each named part
lives in its own module of this package (identity, storage, configuration, workload, exposure,
policies, monitoring) and registers its resources with `parent=self`, so every URN is the one
the single-module component had (tests/jenkins/test_urns.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import JenkinsSettings, Monitoring, NetworkSettings, image_parts
from components.jenkins import configuration, exposure, identity, policies, storage, workload
from components.jenkins.builder import JenkinsBuilder, JenkinsBuilderArgs
from components.jenkins.casc import public_url
from components.jenkins.context import Ctx, VerifiedApp
from components.jenkins.monitoring import monitoring
from components.jenkins.names import APP
from components.kube import labels


@dataclass(frozen=True)
class JenkinsControllerArgs:
    """Inputs of the Jenkins component."""

    settings: JenkinsSettings
    """Validated `appstack:jenkins` settings (enabled)."""
    instance: str
    """app.kubernetes.io/instance label value (the stack name)."""
    network: NetworkSettings
    """DNS, ingress controller and monitoring namespaces."""
    monitoring: Monitoring
    """ServiceMonitor/PrometheusRule settings; objects only when enabled."""
    verified_apps: tuple[VerifiedApp, ...] = ()
    """This stack's apps, as the pipeline's verify step reaches them (agent egress)."""


#: The component's outputs: its typed attributes, registered under the same keys.
OUTPUTS = (
    "namespace",
    "url",
    "service_name",
    "statefulset_name",
    "home_claim_name",
    "admin_secret_name",
)


class JenkinsController(pulumi.ComponentResource):
    """Jenkins controller (StatefulSet, protected home) and its Kubernetes-cloud agents."""

    def __init__(
        self, name: str, args: JenkinsControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:jenkins:JenkinsController", name, None, opts)
        s = args.settings
        _, tag, _ = image_parts(s.image)
        ns = identity.namespace(self, name, s, args.instance)
        ctx = Ctx(
            parent=self,
            name=name,
            settings=s,
            instance=args.instance,
            namespace=ns.metadata.name,
            network=args.network,
            monitoring=args.monitoring,
            version=tag or "",
            verified_apps=args.verified_apps,
        )
        ui_service_name = labels.resource_name(APP)

        # identity and RBAC
        ids = identity.service_accounts_and_rbac(ctx)
        if s.image_builder:  # image builds (Jenkinsfile `Build image`): builder.py
            JenkinsBuilder(
                f"{name}-builder",
                JenkinsBuilderArgs(
                    s,
                    args.instance,
                    args.network,
                    ids.controller_sa,
                    ctx.selector,
                    identity.AGENT_RBAC_RULES,
                    [ns],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        admin_secret = identity.admin_secret(ctx)
        # configuration (JCasC and plugins)
        maps = configuration.config_maps(
            ctx, ui_service=ui_service_name, agent_service_account=ids.agent_sa
        )
        # home storage
        home = storage.home_claim(ctx)
        # services and ingress
        svc = exposure.services(ctx, ui_service_name)
        exposure.ingress(ctx, svc.ui)
        # controller workload
        sts = workload.statefulset(
            ctx,
            workload.WorkloadRefs(
                controller_sa=ids.controller_sa,
                headless_service=svc.headless,
                home_claim=home,
                casc_map=maps.casc,
                plugins_map=maps.plugins,
                admin_secret=admin_secret,
            ),
        )
        # network policies
        policies.baseline(ctx)
        policies.controller_and_agents(ctx)
        # monitoring
        monitoring(ctx, svc.ui_resource)

        url = public_url(s, s.namespace, ui_service_name)
        self.namespace: pulumi.Output[str] = ctx.namespace
        self.url: pulumi.Output[str] = svc.ui.apply(lambda _: url)
        self.service_name: pulumi.Output[str] = svc.ui
        self.statefulset_name: pulumi.Output[str] = sts
        self.home_claim_name: pulumi.Output[str] = home
        self.admin_secret_name: pulumi.Output[str] = admin_secret
        self.register_outputs({key: getattr(self, key) for key in OUTPUTS})

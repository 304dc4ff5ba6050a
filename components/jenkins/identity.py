"""Identity and RBAC: the Namespace, the ServiceAccounts, the kubernetes plugin's Role and
RoleBinding, and the admin Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import JenkinsSettings
from components.jenkins.context import Ctx
from components.jenkins.names import AGENT_APP, APP
from components.jenkins.storage import NO_PRUNE
from components.kube import labels

#: The Role's rules: exactly what the kubernetes plugin needs in the agents' namespace.
AGENT_RBAC_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pods", ("create", "delete", "get", "list", "patch", "update", "watch")),
    ("pods/exec", ("create", "get")),
    ("pods/log", ("get", "list", "watch")),
    ("events", ("get", "list", "watch")),
)

PODS_EXEC_EXCEPTION = (
    "pods/exec create/get is required by the Jenkins kubernetes plugin to run pipeline steps in "
    "agent containers (container('...') { sh ... }); it trips Polaris rolePodExecAttach and "
    "checkov's pods/exec check. Accepted: the Role is namespaced to the Jenkins namespace, which "
    "holds only the controller and its ephemeral agent pods, and is bound only to the "
    "controller's ServiceAccount."
)


def namespace(
    parent: pulumi.ComponentResource, name: str, settings: JenkinsSettings, instance: str
) -> k8s.core.v1.Namespace:
    """The Jenkins namespace. Deleting a Namespace deletes every claim in it, JENKINS_HOME
    included, so whatever guards the home volume (`home.protect`) guards the Namespace too; and,
    like the claim, Argo CD never prunes it (a publish without Jenkins would otherwise delete
    the namespace and the claim with it, whatever the claim's own Prune=false says)."""
    keep = settings.home.protect
    return k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=settings.namespace,
            labels=labels.namespace_labels(settings.namespace, instance),
            annotations=NO_PRUNE,
        ),
        opts=pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep),
    )


@dataclass(frozen=True)
class Identities:
    """Names the other parts refer to."""

    controller_sa: pulumi.Output[str]
    agent_sa: str


def service_accounts_and_rbac(ctx: Ctx) -> Identities:
    """Controller SA (token: it calls the API), agent SA (no token), the namespaced Role with
    exactly the kubernetes plugin's verbs, bound to the controller."""
    controller_sa = k8s.core.v1.ServiceAccount(
        f"{ctx.name}-controller-sa",
        metadata=ctx.meta(
            "controller",
            labels.resource_name(APP, "controller"),
            {
                f"{labels.ANNOTATION_PREFIX}/token-automount": (
                    "true: the controller's kubernetes plugin calls the API to manage agent pods"
                )
            },
        ),
        automount_service_account_token=True,
        opts=ctx.opts(),
    )
    agent_sa_name = labels.resource_name(AGENT_APP)
    k8s.core.v1.ServiceAccount(
        f"{ctx.name}-agent-sa",
        metadata=ctx.meta("agent", agent_sa_name, app=AGENT_APP),
        automount_service_account_token=False,
        opts=ctx.opts(),
    )
    role = k8s.rbac.v1.Role(
        f"{ctx.name}-agents-role",
        metadata=ctx.meta(
            "rbac",
            labels.resource_name(APP, "agents"),
            {f"{labels.ANNOTATION_PREFIX}/rbac-exception": PODS_EXEC_EXCEPTION},
        ),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=[resource], verbs=list(verbs))
            for resource, verbs in AGENT_RBAC_RULES
        ],
        opts=ctx.opts(),
    )
    k8s.rbac.v1.RoleBinding(
        f"{ctx.name}-agents-rolebinding",
        metadata=ctx.meta("rbac", labels.resource_name(APP, "agents")),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=controller_sa.metadata.name, namespace=ctx.namespace
            )
        ],
        opts=ctx.opts(),
    )
    return Identities(controller_sa=controller_sa.metadata.name, agent_sa=agent_sa_name)


def admin_secret(ctx: Ctx) -> pulumi.Output[str]:
    """Name of the admin Secret: the existing one, or one generated with a random password."""
    admin = ctx.settings.admin
    if admin.existing_secret:
        existing = admin.existing_secret
        return ctx.namespace.apply(lambda _: existing)
    password = random.RandomPassword(
        f"{ctx.name}-admin-password",
        length=32,
        special=False,
        # `result` is a secret already; said again so it can never leak in clear.
        opts=ctx.opts(additional_secret_outputs=["result"]),
    )
    secret = k8s.core.v1.Secret(
        f"{ctx.name}-admin-secret",
        metadata=ctx.meta("controller", labels.resource_name(APP, "admin")),
        type="Opaque",
        string_data={"username": admin.username, "password": password.result},
        opts=ctx.opts(),
    )
    return secret.metadata.name

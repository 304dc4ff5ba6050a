"""The Jenkins `builder` agent: builds and pushes container images without a Docker daemon
(rootless BuildKit, `buildctl-daemonless.sh`), in its own namespace.

Why its own namespace, at Pod Security level `privileged`:

* Rootless BuildKit runs as a normal user (uid 1000, no `privileged: true`, no added
  capability), but it creates user and mount namespaces and mounts filesystems for every RUN
  step. BuildKit's documentation (moby/buildkit docs/rootless.md, examples/kubernetes/
  job.rootless.yaml) requires `seccompProfile: Unconfined` ("for allowing several syscalls such
  as unshare and mount") and `appArmorProfile: Unconfined` ("for allowing mounting filesystems")
  on that container, and `newuidmap`/`newgidmap` (file capabilities) must work, so
  `allowPrivilegeEscalation` stays true and capabilities are not dropped.
* Pod Security `baseline` forbids both unconfined profiles (kubernetes/pod-security-admission
  policy/check_seccompProfile_baseline.go: allowed RuntimeDefault, Localhost, unset;
  check_appArmorProfile.go: allowed RuntimeDefault, Localhost, unset). So the least level this pod
  passes is `privileged`. (A Localhost seccomp profile and AppArmor profile installed on every
  node would make `baseline` possible; they are node setup this program cannot do.) Kaniko would
  pass `baseline`, but only by running as root in the container.
* Hence a dedicated namespace `<jenkins namespace>-builder`, enforce `privileged`, with `warn`
  and `audit` at `baseline` so the exception stays visible; nothing else runs there. The
  `--oci-worker-no-process-sandbox` flag follows BuildKit's Kubernetes example (Kubernetes has
  no `systempaths=unconfined`); its cost: a RUN step could signal the build daemon of its own
  short-lived pod.

The namespace gets default-deny NetworkPolicies plus DNS, egress to the Jenkins controller on its
HTTP port (WebSocket agent) and to `agentEgressCidrs` on 443 (git, registry); a policy in the
Jenkins namespace lets these agents reach the controller. The controller's ServiceAccount gets
the kubernetes plugin's Role there (the same verbs as in its own namespace). The agent pod has
no ServiceAccount token.

Both containers run as uid/gid 1000 (the image's user; its /etc/subuid is set up for it) so they
share the workspace; the `jnlp` container keeps every restricted setting otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import JenkinsSettings, NetworkSettings
from components.jenkins.agent_containers import (
    AGENT_WORKDIR,
    PodTemplate,
    agent_container,
    pull_secrets_dict,
    resource_requirements,
)
from components.kube import labels
from components.kube.baseline import BaselineNetworkPolicies, BaselineNetworkPoliciesArgs
from components.kube.network import (
    cidr_peers,
)

TEMPLATE = "builder"
BUILDER_APP = "jenkins-builder"
CONTAINER = "buildkit"
IMAGE = "moby/buildkit:v0.29.0-rootless"
#: The moby/buildkit:rootless image's user; another UID needs a rebuilt image (rootless.md).
BUILDKIT_UID = 1000
HTTP_PORT = 8080
PSA_ENFORCE = "privileged"
#: Rendered as the namespace's annotation: the reason names this module.
PSA_REASON = (
    "rootless BuildKit needs seccompProfile Unconfined and appArmorProfile Unconfined "
    "(moby/buildkit docs/rootless.md); Pod Security baseline forbids both, so this namespace, "
    "which holds only the Jenkins image-builder agents, enforces privileged "
    "(components/jenkins/builder.py)"
)
BUILDKIT_STATE = "/home/user/.local/share/buildkit"


def pull_secret_refs(names: list[str]) -> list[k8s.core.v1.LocalObjectReferenceArgs] | None:
    """`image_pull_secrets` of a typed pod spec (the controller); None when there are none."""
    return [k8s.core.v1.LocalObjectReferenceArgs(name=n) for n in names] or None


#: Jenkins credential the Jenkinsfile's Build image stage binds, and its keys in the operator's
#: CI Secret (appstack:jenkins.credentials.secretName), mounted as files.
REGISTRY_CREDENTIAL = "registry-push"
REGISTRY_USERNAME_KEY = "registry-username"
REGISTRY_PASSWORD_KEY = "registry-password"
#: The `Sign and SBOM` stage's credentials (with `imageBuilder`), id -> JCasC kind; each reads
#: the operator's Secret key of the same name: the encrypted cosign private key
#: (`cosign generate-key-pair`) and its password.
SIGNING_CREDENTIALS = {"cosign-key": "file", "cosign-password": "string"}


def registry_push_credential(secrets_dir: str) -> dict[str, Any]:
    """JCasC `usernamePassword` credential `registry-push`, read from the mounted Secret."""
    return {
        "usernamePassword": {
            "scope": "GLOBAL",
            "id": REGISTRY_CREDENTIAL,
            "description": "Image registry: push from the Build image stage",
            "username": f"${{readFile:{secrets_dir}/{REGISTRY_USERNAME_KEY}}}",
            "password": f"${{readFile:{secrets_dir}/{REGISTRY_PASSWORD_KEY}}}",
        }
    }


def signing_credentials(secrets_dir: str) -> list[dict[str, Any]]:
    """JCasC credentials of the Sign and SBOM stage (names.SIGNING_CREDENTIALS): the cosign key
    as a Secret file, its password as Secret text, read from the mounted Secret."""
    items: list[dict[str, Any]] = []
    for cred_id, kind in SIGNING_CREDENTIALS.items():
        head = {"scope": "GLOBAL", "id": cred_id, "description": f"image signing: {cred_id}"}
        path = f"{secrets_dir}/{cred_id}"
        if kind == "file":
            body = {"fileName": "cosign.key", "secretBytes": f"${{readFileBase64:{path}}}"}
        else:
            body = {"secret": f"${{readFile:{path}}}"}
        items.append({kind: {**head, **body}})
    return items


def builder_namespace(settings: JenkinsSettings) -> str:
    return labels.resource_name(settings.namespace, TEMPLATE)


def builder_pod_labels(instance: str) -> dict[str, str]:
    return labels.standard_labels(BUILDER_APP, instance, "agent")


def _jnlp_container(settings: JenkinsSettings) -> dict[str, Any]:
    """The agent (`jnlp`) container of every agent pod, under the BuildKit user."""
    return agent_container(
        "jnlp", settings.agent_image, settings.agent_resources, BUILDKIT_UID, BUILDKIT_UID
    )


def _buildkit_container(settings: JenkinsSettings) -> dict[str, Any]:
    """The rootless BuildKit container: unconfined seccomp and AppArmor (module docstring)."""
    return {
        "name": CONTAINER,
        "image": IMAGE,
        "imagePullPolicy": "Always",
        # Kept alive for `sh` steps (pods/exec); each build starts its own rootless buildkitd
        # through buildctl-daemonless.sh (scripts/ci/build-image.sh).
        "command": ["tail", "-f", "/dev/null"],
        "workingDir": AGENT_WORKDIR,
        "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"}],
        "resources": resource_requirements(settings.pulumi_agent_resources),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": BUILDKIT_UID,
            "runAsGroup": BUILDKIT_UID,
            "privileged": False,
            # newuidmap/newgidmap gain their capabilities from file caps: no_new_privs off.
            "allowPrivilegeEscalation": True,
            "seccompProfile": {"type": "Unconfined"},
            "appArmorProfile": {"type": "Unconfined"},
        },
        "volumeMounts": [
            {"name": "workspace-volume", "mountPath": AGENT_WORKDIR},
            {"name": "buildkit-state", "mountPath": BUILDKIT_STATE},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def builder_pod(settings: JenkinsSettings, instance: str) -> dict[str, Any]:
    """The raw pod of the `builder` template (kubernetes plugin `yaml`, merge `override`)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": builder_pod_labels(instance)},
        "spec": {
            "serviceAccountName": labels.resource_name(BUILDER_APP),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            **pull_secrets_dict(settings.image_pull_secrets),
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": BUILDKIT_UID,
                "runAsGroup": BUILDKIT_UID,
                "fsGroup": BUILDKIT_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_jnlp_container(settings), _buildkit_container(settings)],
            "volumes": [
                {"name": "home", "emptyDir": {"sizeLimit": "256Mi"}},
                {"name": "workspace-volume", "emptyDir": {"sizeLimit": "4Gi"}},
                # BuildKit's layer store; an emptyDir (the image's VOLUME is nosuid/nodev on
                # some nodes, see examples/kubernetes/job.rootless.yaml)
                {"name": "buildkit-state", "emptyDir": {"sizeLimit": "20Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
        },
    }


def builder_pod_template(settings: JenkinsSettings, instance: str) -> PodTemplate:
    """The `builder` pod template (the Jenkinsfile's Build image stage), in its own namespace."""
    return PodTemplate(
        TEMPLATE,
        TEMPLATE,
        builder_namespace(settings),
        exclusive=True,
        idle_minutes=0,  # a builder pod holds registry credentials in its workspace: no reuse
        pod=builder_pod(settings, instance),
    )


@dataclass(frozen=True)
class JenkinsBuilderArgs:
    """Inputs of the builder namespace."""

    settings: JenkinsSettings
    """Jenkins settings (namespace, images, agent egress CIDRs)."""
    instance: str
    """app.kubernetes.io/instance label value."""
    network: NetworkSettings
    """Cluster DNS."""
    controller_service_account: pulumi.Input[str]
    """The controller's ServiceAccount (in the Jenkins namespace): it creates the agent pods."""
    controller_selector: dict[str, str]
    """Labels of the controller pod."""
    rbac_rules: tuple[tuple[str, tuple[str, ...]], ...]
    """The kubernetes plugin's Role rules (the same as in the Jenkins namespace)."""
    depends_on: list[pulumi.Resource] | None = None
    """The Jenkins namespace (the policy allowing builder agents to the controller lives there)."""


class JenkinsBuilder(pulumi.ComponentResource):
    """Namespace (Pod Security privileged, documented), network policy and RBAC of the builder."""

    def __init__(
        self, name: str, args: JenkinsBuilderArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:jenkins:JenkinsBuilder", name, None, opts)
        ns = _namespace(self, name, args)
        namespace = ns.metadata.name
        # network: default deny + DNS, then the builder agents' own allowances
        BaselineNetworkPolicies(
            f"{name}-baseline",
            BaselineNetworkPoliciesArgs(
                namespace=namespace, instance=args.instance, dns=args.network
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # identity and RBAC: the agents' ServiceAccount, the controller's Role there
        _agent_service_account(self, name, args, namespace)
        _controller_rbac(self, name, args, namespace)
        # network policies: agents out to the controller and the egress CIDRs, controller in
        _agents_network_policy(self, name, args, namespace)
        _controller_network_policy(self, name, args)
        self.namespace: pulumi.Output[str] = namespace
        self.register_outputs({"namespace": self.namespace})


# Builder functions of JenkinsBuilder: each registers its resources with `parent=` the component
# (never an intermediate one), so the URNs stay those of the single constructor they came from.


def _meta(
    args: JenkinsBuilderArgs, component: str, obj_name: str, in_ns: pulumi.Input[str]
) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=obj_name,
        namespace=in_ns,
        labels=labels.standard_labels(BUILDER_APP, args.instance, component),
    )


def _builder_pods(args: JenkinsBuilderArgs) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(
        match_labels=labels.selector_labels(BUILDER_APP, args.instance)
    )


def _http() -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(port=HTTP_PORT, protocol="TCP")]


def _namespace(
    parent: JenkinsBuilder, name: str, args: JenkinsBuilderArgs
) -> k8s.core.v1.Namespace:
    """`<jenkins namespace>-builder`: enforce privileged, warn and audit baseline, the reason."""
    ns_name = builder_namespace(args.settings)
    return k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=ns_name,
            labels={
                **labels.namespace_labels(ns_name, args.instance),
                "pod-security.kubernetes.io/enforce": PSA_ENFORCE,
                "pod-security.kubernetes.io/audit": "baseline",
                "pod-security.kubernetes.io/warn": "baseline",
            },
            annotations={f"{labels.ANNOTATION_PREFIX}/pod-security-exception": PSA_REASON},
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _agent_service_account(
    parent: JenkinsBuilder, name: str, args: JenkinsBuilderArgs, namespace: pulumi.Output[str]
) -> None:
    """The builder pods' ServiceAccount: no token (they talk to the controller only)."""
    k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=_meta(args, "agent", labels.resource_name(BUILDER_APP), namespace),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _controller_rbac(
    parent: JenkinsBuilder, name: str, args: JenkinsBuilderArgs, namespace: pulumi.Output[str]
) -> None:
    """The kubernetes plugin's Role in the builder namespace, bound to the controller's SA."""
    role = k8s.rbac.v1.Role(
        f"{name}-role",
        metadata=_meta(args, "rbac", labels.resource_name(BUILDER_APP, "agents"), namespace),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=[resource], verbs=list(verbs))
            for resource, verbs in args.rbac_rules
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    k8s.rbac.v1.RoleBinding(
        f"{name}-rolebinding",
        metadata=_meta(args, "rbac", labels.resource_name(BUILDER_APP, "agents"), namespace),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount",
                name=args.controller_service_account,
                namespace=args.settings.namespace,
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _agents_network_policy(
    parent: JenkinsBuilder, name: str, args: JenkinsBuilderArgs, namespace: pulumi.Output[str]
) -> None:
    """Builder pods: nothing in; out to the controller's HTTP port and to the egress CIDRs
    on 443 (git, registry)."""
    s = args.settings
    controller = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": s.namespace}
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.controller_selector),
    )
    k8s.networking.v1.NetworkPolicy(
        f"{name}-agents-netpol",
        metadata=_meta(args, "network-policy", labels.resource_name(BUILDER_APP), namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=_builder_pods(args),
            policy_types=["Ingress", "Egress"],  # nothing connects to a builder
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[controller], ports=_http()),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=cidr_peers(s.effective_agent_egress_cidrs),
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=443, protocol="TCP")],
                ),
            ],
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _controller_network_policy(parent: JenkinsBuilder, name: str, args: JenkinsBuilderArgs) -> None:
    """In the Jenkins namespace: the controller accepts the builder agents' WebSocket."""
    s = args.settings
    k8s.networking.v1.NetworkPolicy(
        f"{name}-controller-netpol",
        metadata=_meta(args, "network-policy", labels.resource_name(BUILDER_APP), s.namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.controller_selector),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels={"kubernetes.io/metadata.name": builder_namespace(s)}
                            ),
                            pod_selector=_builder_pods(args),
                        )
                    ],
                    ports=_http(),
                )
            ],
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=args.depends_on),
    )

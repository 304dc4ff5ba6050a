"""JenkinsController: a Jenkins controller with dynamic Kubernetes agents, in its own namespace.

Children (all `parent=self`): Namespace (Pod Security "restricted"), default-deny + DNS
NetworkPolicies and the Jenkins allowances, controller and agent ServiceAccounts, the Role and
RoleBinding of the kubernetes plugin, the admin Secret (generated), the JCasC and plugins
ConfigMaps (content-named: a change rolls the controller), the JENKINS_HOME PersistentVolumeClaim,
a headless governing Service and the UI Service, the controller StatefulSet, an optional Ingress,
and with monitoring on a ServiceMonitor and a PrometheusRule (components/jenkins_alerts.py).

Design decisions:

* **Agents connect over WebSocket** (`webSocket: true` in the cloud, `slaveAgentPort: -1`: the
  TCP agent listener is off, so no JNLP protocol is reachable at all). Agents reach the
  controller on its HTTP port 8080 only, through the same Service as the UI: no agent listener
  on 50000, hence no second Service, no second NetworkPolicy port and no protocol to harden.
  The cost (HTTP framing) is negligible for build traffic.
* **JENKINS_HOME is a standalone PersistentVolumeClaim**, mounted by the StatefulSet, not a
  `volumeClaimTemplates` entry: claims from a template are created by the StatefulSet controller,
  outside Pulumi's state, so Pulumi could neither `protect` them nor `retain_on_delete` them.
  With `home.protect` (required in prod) the claim carries both options: `pulumi destroy` or a
  replace of the component cannot delete the build history. The StatefulSet (1 replica, headless
  governing Service) still gives the controller a stable identity and stop-before-start updates,
  which a ReadWriteOnce volume needs (a Deployment surge would deadlock on the volume).
* **UID/GID 10000** (config `security`, >= 10000): the jenkins/jenkins and inbound-agent images
  run as uid 1000; both work under an arbitrary UID as long as what they write is writable, so the
  pods run as 10000 with `fsGroup` 10000 (JENKINS_HOME becomes group-writable, `OnRootMismatch`)
  and emptyDirs for every other path the processes write: /tmp, the WAR extraction directory
  (`--webroot=/var/jenkins_cache/war`), and on agents /home/jenkins and the workspace.
* **Only the controller mounts a service-account token**: it calls the Kubernetes API to create,
  watch and delete agent pods (kubernetes plugin, in-cluster config). Agent pods run under their
  own ServiceAccount without a token; they talk to the controller only. The StatefulSet carries a
  documented checkov skip for CKV_K8S_38 for that reason.
* **RBAC** is one namespaced Role with exactly the verbs the kubernetes plugin needs (SECURITY.md),
  bound to the controller's ServiceAccount; no secrets, no wildcards. `pods/exec` (used by
  `container('...') { sh ... }` steps) is an accepted exception, documented on the Role: agents run
  in the Jenkins namespace, where nothing but Jenkins' own pods live.
* **Admin password** comes from a Secret (generated with pulumi_random, or `admin.existingSecret`)
  mounted as files under /run/secrets/jenkins; JCasC reads it with `${readFile:...}`. It is never
  an environment variable (CKV_K8S_35) and never rendered in clear.
* **Egress**: DNS (baseline), the Kubernetes API on 443/6443 (`kubeApiCidrs`, required in prod)
  and the plugin update site and SCM on 443 (`pluginSiteCidrs`) for the controller pod only;
  agents reach the controller on 8080 and `agentEgressCidrs` on 443 (git, pip, registries). An
  empty CIDR list stands for 0.0.0.0/0 on those ports only (config.JENKINS_DEFAULT_CIDR).
* **No PodDisruptionBudget**: with one replica a PDB either blocks every node drain
  (minAvailable 1) or allows everything; a drain restarts the controller, which is acceptable for
  CI (durable pipelines resume; connected agents reconnect over WebSocket).
* **Rollout wait**: the StatefulSet gets 20 minute create/update timeouts, because the first boot
  downloads the plugins before Jenkins starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import jenkins_alerts, labels
from components.config import (
    JenkinsSettings,
    Monitoring,
    NetworkSettings,
    Resources,
    image_parts,
)
from components.jenkins_builder import (
    JenkinsBuilder,
    JenkinsBuilderArgs,
    builder_pod_template,
    pull_secret_refs,
    pull_secrets_dict,
)
from components.network import (
    BaselineNetworkPolicies,
    BaselineNetworkPoliciesArgs,
    cidr_peers,
    ingress_spec,
    namespace_peer,
)
from components.security import (
    container_security_context,
    pod_security_context,
    restricted_container_security_dict,
    restricted_pod_security_dict,
)

APP = "jenkins"
AGENT_APP = "jenkins-agent"
HTTP_PORT = 8080
PLUGINS_FILE = Path(__file__).resolve().parent.parent / "jenkins" / "plugins.txt"

JENKINS_HOME = "/var/jenkins_home"
CASC_DIR = "/var/jenkins_config"
CASC_FILE = "jenkins.yaml"
PLUGINS_DIR = "/plugins"
SECRETS_DIR = "/run/secrets/jenkins"
ADMIN_USER_FILE = f"{SECRETS_DIR}/admin-username"
ADMIN_PASSWORD_FILE = f"{SECRETS_DIR}/admin-password"
CACHE_DIR = "/var/jenkins_cache"
AGENT_HOME = "/home/jenkins"
AGENT_WORKDIR = "/home/jenkins/agent"
TOOLS_CONTAINER = "pulumi"

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

_PLUGIN_LINE = re.compile(r"^[a-z0-9][a-z0-9_.-]*:[0-9][A-Za-z0-9_.-]*$")


def plugin_lines(text: str | None = None) -> list[str]:
    """The `name:version` lines of jenkins/plugins.txt (comments and blanks dropped).

    Every line must pin an exact version: `name:latest`, `name` alone or an URL are rejected.
    """
    source = PLUGINS_FILE.read_text(encoding="utf-8") if text is None else text
    lines = [
        line.strip()
        for line in source.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    bad = [line for line in lines if not _PLUGIN_LINE.match(line)]
    if bad:
        raise ValueError(f"jenkins/plugins.txt: not an exact 'name:version' pin: {bad}")
    return lines


def _resource_map(resources: Resources, side: str) -> dict[str, str]:
    values = resources.requests if side == "requests" else resources.limits
    return {
        "cpu": values.cpu,
        "memory": values.memory,
        "ephemeral-storage": values.ephemeral_storage,
    }


def _resources_args(resources: Resources) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests=_resource_map(resources, "requests"), limits=_resource_map(resources, "limits")
    )


def service_url(namespace: str, service: str, port: int) -> str:
    """The in-cluster URL of the UI Service (cluster-domain independent: `<svc>.<ns>.svc`)."""
    return f"http://{service}.{namespace}.svc:{port}/"


def public_url(settings: JenkinsSettings, namespace: str, service: str) -> str:
    """The URL users reach Jenkins at: the Ingress host when there is one, else in-cluster."""
    ing = settings.ingress
    if ing.enabled:
        scheme = "https" if ing.tls_secret_name else "http"
        path = ing.path if ing.path.endswith("/") else ing.path + "/"
        return f"{scheme}://{ing.host}{path}"
    return service_url(namespace, service, settings.service.port)


# ---------------------------------------------------------------------------------------------
# JCasC (plain data; tests parse it back out of the rendered ConfigMap)
# ---------------------------------------------------------------------------------------------


def agent_pod_labels(instance: str) -> dict[str, str]:
    """Labels of every agent pod (the NetworkPolicies select agents by the stable ones)."""
    return labels.standard_labels(AGENT_APP, instance, "agent")


def _agent_container(
    name: str, image: str, resources: Resources, settings: JenkinsSettings
) -> dict[str, Any]:
    sec = settings.security
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        "workingDir": AGENT_WORKDIR,
        "env": [
            {"name": "HOME", "value": AGENT_HOME},
            {"name": "JENKINS_AGENT_WORKDIR", "value": AGENT_WORKDIR},
        ],
        "resources": {
            "requests": _resource_map(resources, "requests"),
            "limits": _resource_map(resources, "limits"),
        },
        "securityContext": restricted_container_security_dict(sec.run_as_user, sec.run_as_group),
        "volumeMounts": [
            {"name": "home", "mountPath": AGENT_HOME},
            {"name": "workspace-volume", "mountPath": AGENT_WORKDIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def agent_pod(
    settings: JenkinsSettings, instance: str, service_account: str, *, tools: bool
) -> dict[str, Any]:
    """The raw pod of an agent template (the kubernetes plugin's `yaml`, merge `override`):
    restricted security on every container, no token, emptyDirs for every writable path."""
    sec = settings.security
    containers = [
        _agent_container("jnlp", settings.agent_image, settings.agent_resources, settings)
    ]
    if tools:
        tools_container = _agent_container(
            TOOLS_CONTAINER,
            settings.pulumi_agent_image,
            settings.pulumi_agent_resources,
            settings,
        )
        # Kept alive for `container('pulumi') { sh ... }` steps, which run through pods/exec.
        tools_container["command"] = ["sleep"]
        tools_container["args"] = ["infinity"]
        containers.append(tools_container)
    workspace_limit = "4Gi" if tools else "2Gi"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": agent_pod_labels(instance)},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            **pull_secrets_dict(settings.image_pull_secrets),  # private registry (issue 11)
            "restartPolicy": "Never",
            "securityContext": restricted_pod_security_dict(
                sec.run_as_user, sec.run_as_group, sec.fs_group
            ),
            "containers": containers,
            "volumes": [
                {"name": "home", "emptyDir": {"sizeLimit": "256Mi"}},
                {"name": "workspace-volume", "emptyDir": {"sizeLimit": workspace_limit}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
        },
    }


def _pod_template(
    settings: JenkinsSettings,
    instance: str,
    namespace: str,
    service_account: str,
    *,
    name: str,
    label: str,
    tools: bool,
) -> dict[str, Any]:
    pod = agent_pod(settings, instance, service_account, tools=tools)
    return {
        "name": name,
        "label": label,
        "namespace": namespace,
        "serviceAccount": service_account,
        "nodeUsageMode": "EXCLUSIVE" if tools else "NORMAL",
        "idleMinutes": settings.cloud.idle_minutes,
        "podRetention": settings.cloud.pod_retention,
        "showRawYaml": False,
        "yamlMergeStrategy": "override",
        "yaml": yaml.safe_dump(pod, sort_keys=False, width=1000),
    }


def casc_document(
    settings: JenkinsSettings,
    *,
    instance: str,
    namespace: str,
    service: str,
    agent_service_account: str,
) -> dict[str, Any]:
    """The JCasC document (jenkins.yaml): hardened security, the Kubernetes cloud and its two
    pod templates (`default`: inbound agent; `pulumi`: inbound agent + tools container)."""
    in_cluster = service_url(namespace, service, settings.service.port)
    templates = [
        _pod_template(
            settings,
            instance,
            namespace,
            agent_service_account,
            name="default",
            label=AGENT_APP,
            tools=False,
        ),
        _pod_template(
            settings,
            instance,
            namespace,
            agent_service_account,
            name="pulumi",
            label="pulumi",
            tools=True,
        ),
        # image builds: own namespace (components/jenkins_builder.py)
        *([builder_pod_template(settings, instance)] if settings.image_builder else []),
    ]
    return {
        "jenkins": {
            "systemMessage": (
                "Managed by appstack (Pulumi, JCasC): changes made in the UI are lost on restart."
            ),
            "numExecutors": 0,
            "mode": "EXCLUSIVE",
            # No TCP agent listener: agents use WebSocket. Deliberately absent: `agentProtocols`
            # (no longer configurable since Jenkins 2.483; JCasC rejects it as deprecated and the
            # controller would not start) and `remotingSecurity` (agent-to-controller security is
            # always on since 2.326; the setter is deprecated too).
            "slaveAgentPort": -1,
            "disableRememberMe": True,
            "crumbIssuer": {"standard": {"excludeClientIPFromCrumb": False}},
            "securityRealm": {
                "local": {
                    "allowsSignup": False,
                    "users": [
                        {
                            "id": f"${{readFile:{ADMIN_USER_FILE}}}",
                            "name": "Jenkins Admin",
                            "password": f"${{readFile:{ADMIN_PASSWORD_FILE}}}",
                        }
                    ],
                }
            },
            "authorizationStrategy": {"loggedInUsersCanDoAnything": {"allowAnonymousRead": False}},
            "clouds": [
                {
                    "kubernetes": {
                        "name": "kubernetes",
                        "namespace": namespace,
                        "jenkinsUrl": in_cluster,
                        "webSocket": True,
                        "containerCapStr": str(settings.cloud.container_cap),
                        "podRetention": settings.cloud.pod_retention,
                        "skipTlsVerify": False,
                        "templates": templates,
                    }
                }
            ],
        },
        "security": {
            "apiToken": {
                "creationOfLegacyTokenEnabled": False,
                "tokenGenerationOnCreationEnabled": False,
                "usageStatisticsEnabled": False,
            }
        },
        "unclassified": {
            "location": {"url": public_url(settings, namespace, service)},
            "prometheusConfiguration": {"path": "prometheus", "useAuthenticatedEndpoint": False},
        },
    }


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (the agent pod YAML) as literal `|` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def casc_yaml(document: Mapping[str, Any]) -> str:
    """The JCasC file's text; agent pod templates appear as readable literal blocks."""
    return yaml.dump(dict(document), Dumper=_BlockDumper, sort_keys=False, width=1000)


def java_opts(settings: JenkinsSettings) -> str:
    """JAVA_OPTS of the controller: heap from the memory limit, no setup wizard."""
    return " ".join(
        [
            f"-XX:MaxRAMPercentage={settings.java_max_ram_percentage}",
            "-Djenkins.install.runSetupWizard=false",
            f"-Duser.home={JENKINS_HOME}",
            "-Djava.io.tmpdir=/tmp",
        ]
    )


def scanner_skips(settings: JenkinsSettings) -> dict[str, str]:
    """checkov skips of the controller StatefulSet, each with its reason (tests list them)."""
    skips = {
        "checkov.io/skip1": (
            "CKV_K8S_38=the controller calls the Kubernetes API (kubernetes plugin creates, "
            "watches and deletes agent pods), so its pod mounts its ServiceAccount token; "
            "agent pods do not"
        )
    }
    _, _, digest = image_parts(settings.image)
    if digest is None:
        skips["checkov.io/skip2"] = (
            "CKV_K8S_43=image pinned by an immutable LTS tag from config; set a digest in "
            "appstack:jenkins.image to pin by digest"
        )
    return skips


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------


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


def _port(port: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")]


class JenkinsController(pulumi.ComponentResource):
    """Jenkins controller (StatefulSet, protected home) and its Kubernetes-cloud agents."""

    namespace: pulumi.Output[str]
    url: pulumi.Output[str]
    service_name: pulumi.Output[str]
    statefulset_name: pulumi.Output[str]
    home_claim_name: pulumi.Output[str]
    admin_secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: JenkinsControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:jenkins:JenkinsController", name, None, opts)
        s, instance = args.settings, args.instance
        ns_name = s.namespace
        child = pulumi.ResourceOptions(parent=self)
        _, tag, _ = image_parts(s.image)
        version = tag or ""
        selector = labels.selector_labels(APP, instance)
        agent_selector = labels.selector_labels(AGENT_APP, instance)

        def meta(
            component: str,
            obj_name: str,
            annotations: Mapping[str, str] | None = None,
            app: str = APP,
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=obj_name,
                namespace=namespace,
                labels=labels.standard_labels(app, instance, component, version),
                annotations=dict(annotations) if annotations else None,
            )

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns_name, labels=labels.namespace_labels(ns_name, instance)
            ),
            opts=child,
        )
        namespace: pulumi.Output[str] = ns.metadata.name
        BaselineNetworkPolicies(
            f"{name}-baseline",
            BaselineNetworkPoliciesArgs(
                namespace=namespace, instance=instance, network=args.network
            ),
            opts=child,
        )

        # --- identities and RBAC -------------------------------------------------------------
        controller_sa = k8s.core.v1.ServiceAccount(
            f"{name}-controller-sa",
            metadata=meta(
                "controller",
                labels.resource_name(APP, "controller"),
                {
                    f"{labels.ANNOTATION_PREFIX}/token-automount": (
                        "true: the controller's kubernetes plugin calls the API to manage agent "
                        "pods"
                    )
                },
            ),
            automount_service_account_token=True,
            opts=child,
        )
        agent_sa_name = labels.resource_name(AGENT_APP)
        k8s.core.v1.ServiceAccount(
            f"{name}-agent-sa",
            metadata=meta("agent", agent_sa_name, app=AGENT_APP),
            automount_service_account_token=False,
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-agents-role",
            metadata=meta(
                "rbac",
                labels.resource_name(APP, "agents"),
                {f"{labels.ANNOTATION_PREFIX}/rbac-exception": PODS_EXEC_EXCEPTION},
            ),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=[resource], verbs=list(verbs))
                for resource, verbs in AGENT_RBAC_RULES
            ],
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-agents-rolebinding",
            metadata=meta("rbac", labels.resource_name(APP, "agents")),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount",
                    name=controller_sa.metadata.name,
                    namespace=namespace,
                )
            ],
            opts=child,
        )

        if s.image_builder:  # image builds (Jenkinsfile `Build image`): jenkins_builder.py
            JenkinsBuilder(
                f"{name}-builder",
                JenkinsBuilderArgs(
                    s,
                    instance,
                    args.network,
                    controller_sa.metadata.name,
                    selector,
                    AGENT_RBAC_RULES,
                    [ns],
                ),
                opts=child,
            )

        # --- admin credentials ---------------------------------------------------------------
        if s.admin.existing_secret:
            admin_secret_name: pulumi.Output[str] = namespace.apply(
                lambda _: s.admin.existing_secret
            )
        else:
            password = random.RandomPassword(
                f"{name}-admin-password",
                length=32,
                special=False,
                # `result` is a secret already; said again so it can never leak in clear.
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
            )
            admin_secret = k8s.core.v1.Secret(
                f"{name}-admin-secret",
                metadata=meta("controller", labels.resource_name(APP, "admin")),
                type="Opaque",
                string_data={
                    "username": s.admin.username,
                    "password": password.result,
                },
                opts=child,
            )
            admin_secret_name = admin_secret.metadata.name

        # --- configuration -------------------------------------------------------------------
        ui_service_name = labels.resource_name(APP)
        casc = casc_yaml(
            casc_document(
                s,
                instance=instance,
                namespace=ns_name,
                service=ui_service_name,
                agent_service_account=agent_sa_name,
            )
        )
        casc_map = k8s.core.v1.ConfigMap(
            f"{name}-casc",
            metadata=meta("config", labels.resource_name(APP, "casc", labels.content_hash(casc))),
            data={CASC_FILE: casc},
            immutable=True,
            opts=child,
        )
        plugins = "\n".join(plugin_lines()) + "\n"
        plugins_map = k8s.core.v1.ConfigMap(
            f"{name}-plugins",
            metadata=meta(
                "config", labels.resource_name(APP, "plugins", labels.content_hash(plugins))
            ),
            data={"plugins.txt": plugins},
            immutable=True,
            opts=child,
        )

        # --- JENKINS_HOME --------------------------------------------------------------------
        keep = s.home.protect
        home = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-home",
            metadata=meta("storage", labels.resource_name(APP, "home")),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=s.home.storage_class_name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                    requests={"storage": s.home.size}
                ),
            ),
            # The build history: never deleted by Pulumi when protected (prod).
            opts=pulumi.ResourceOptions(parent=self, protect=keep, retain_on_delete=keep),
        )

        # --- Services ------------------------------------------------------------------------
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata=meta("headless", labels.resource_name(APP, "headless")),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                publish_not_ready_addresses=True,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=HTTP_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )
        lb = s.service.type == "LoadBalancer"
        ui = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta("controller", ui_service_name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=s.service.type,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=s.service.port, target_port="http", protocol="TCP"
                    )
                ],
                load_balancer_source_ranges=list(s.service.load_balancer_source_ranges)
                if lb
                else None,
            ),
            opts=child,
        )

        # --- controller ----------------------------------------------------------------------
        sec = s.security
        restricted = container_security_context(sec.run_as_user, sec.run_as_group)

        def http_probe(period: int, timeout: int, failures: int) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/login", port="http"),
                period_seconds=period,
                timeout_seconds=timeout,
                failure_threshold=failures,
                success_threshold=1,
            )

        mounts = {
            "home": k8s.core.v1.VolumeMountArgs(name="jenkins-home", mount_path=JENKINS_HOME),
            "tmp": k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        }
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=meta("controller", labels.resource_name(APP), scanner_skips(s)),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                replicas=1,
                service_name=headless.metadata.name,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                pod_management_policy="OrderedReady",
                update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
                revision_history_limit=5,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels.standard_labels(APP, instance, "controller", version),
                        annotations={"kubectl.kubernetes.io/default-container": APP},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=controller_sa.metadata.name,
                        automount_service_account_token=True,
                        enable_service_links=False,
                        image_pull_secrets=pull_secret_refs(s.image_pull_secrets),  # issue 11
                        security_context=pod_security_context(
                            sec.run_as_user, sec.run_as_group, sec.fs_group
                        ),
                        termination_grace_period_seconds=60,
                        init_containers=[
                            k8s.core.v1.ContainerArgs(
                                name="install-plugins",
                                image=s.image,
                                image_pull_policy="Always",
                                command=["jenkins-plugin-cli"],
                                args=[
                                    "--plugin-file",
                                    f"{PLUGINS_DIR}/plugins.txt",
                                    "--plugin-download-directory",
                                    f"{JENKINS_HOME}/plugins",
                                ],
                                working_dir="/tmp",
                                # The UID has no passwd entry: point HOME, user.home and the
                                # plugin manager's cache at the /tmp emptyDir.
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
                                    k8s.core.v1.EnvVarArgs(
                                        name="JAVA_OPTS",
                                        value="-Duser.home=/tmp -Djava.io.tmpdir=/tmp",
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="CACHE_DIR", value="/tmp/jenkins-plugin-cli"
                                    ),
                                ],
                                resources=_resources_args(s.plugin_installer_resources),
                                security_context=restricted,
                                volume_mounts=[
                                    mounts["home"],
                                    mounts["tmp"],
                                    k8s.core.v1.VolumeMountArgs(
                                        name="plugins", mount_path=PLUGINS_DIR, read_only=True
                                    ),
                                ],
                            )
                        ],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=APP,
                                image=s.image,
                                image_pull_policy="Always",
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="http", container_port=HTTP_PORT, protocol="TCP"
                                    )
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="JAVA_OPTS", value=java_opts(s)),
                                    k8s.core.v1.EnvVarArgs(
                                        name="JENKINS_OPTS",
                                        value=f"--webroot={CACHE_DIR}/war",
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="CASC_JENKINS_CONFIG",
                                        value=f"{CASC_DIR}/{CASC_FILE}",
                                    ),
                                    k8s.core.v1.EnvVarArgs(name="HOME", value=JENKINS_HOME),
                                ],
                                resources=_resources_args(s.resources),
                                security_context=restricted,
                                # Startup: up to 10 min for first boot; liveness restarts a hung
                                # controller after 5 x 10 s; readiness drops it from the Service
                                # after 3 x 10 s.
                                startup_probe=http_probe(10, 5, 60),
                                liveness_probe=http_probe(10, 5, 5),
                                readiness_probe=http_probe(10, 5, 3),
                                volume_mounts=[
                                    mounts["home"],
                                    mounts["tmp"],
                                    k8s.core.v1.VolumeMountArgs(name="cache", mount_path=CACHE_DIR),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="casc", mount_path=CASC_DIR, read_only=True
                                    ),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="admin", mount_path=SECRETS_DIR, read_only=True
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="jenkins-home",
                                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=home.metadata.name
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tmp",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi"),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="cache",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi"),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="casc",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                    name=casc_map.metadata.name
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="plugins",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                    name=plugins_map.metadata.name
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="admin",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=admin_secret_name,
                                    default_mode=0o440,
                                    items=[
                                        k8s.core.v1.KeyToPathArgs(
                                            key="username", path="admin-username"
                                        ),
                                        k8s.core.v1.KeyToPathArgs(
                                            key="password", path="admin-password"
                                        ),
                                    ],
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            # First boot downloads the plugins and starts Jenkins (startup probe allows 10 min):
            # more than the provider's default 10 minute wait for a StatefulSet rollout.
            opts=pulumi.ResourceOptions(
                parent=self, custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m")
            ),
        )

        # --- exposure ------------------------------------------------------------------------
        ing = s.ingress
        if ing.enabled:
            k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=meta("ingress", labels.resource_name(APP)),
                spec=ingress_spec(ing, ui.metadata.name),
                opts=child,
            )

        # --- network policies ----------------------------------------------------------------
        agent_peer = k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=agent_selector)
        )
        ui_ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] = [
            # Agents (WebSocket) and the monitoring namespace (/prometheus/) on the HTTP port.
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[agent_peer, namespace_peer(args.network.monitoring_namespace)],
                ports=_port(HTTP_PORT),
            )
        ]
        if lb:
            # From anywhere, as for a public app: with externalTrafficPolicy Cluster the client
            # address is SNATed, so the client filter is the LoadBalancer's source ranges.
            ui_ingress.append(
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=_port(HTTP_PORT))
            )
        if ing.enabled:
            ui_ingress.append(
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[namespace_peer(args.network.ingress_controller_namespace)],
                    ports=_port(HTTP_PORT),
                )
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-controller-netpol",
            metadata=meta("network-policy", labels.resource_name(APP, "controller")),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress", "Egress"],
                ingress=ui_ingress,
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=cidr_peers(s.effective_kube_api_cidrs),
                        ports=_port(443) + _port(6443),
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=cidr_peers(s.effective_plugin_site_cidrs), ports=_port(443)
                    ),
                ],
            ),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-agents-netpol",
            metadata=meta("network-policy", labels.resource_name(AGENT_APP), app=AGENT_APP),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=agent_selector),
                # No ingress rule: nothing connects to an agent (exec goes through the API).
                policy_types=["Ingress", "Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
                            )
                        ],
                        ports=_port(HTTP_PORT),
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=cidr_peers(s.effective_agent_egress_cidrs), ports=_port(443)
                    ),
                ],
            ),
            opts=child,
        )

        # --- monitoring ----------------------------------------------------------------------
        if args.monitoring.enabled:
            mon_labels = {
                **labels.standard_labels(APP, instance, "monitoring", version),
                **args.monitoring.prometheus_selector_labels,
            }
            k8s.apiextensions.CustomResource(
                f"{name}-servicemonitor",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=labels.resource_name(APP), namespace=namespace, labels=mon_labels
                ),
                spec={
                    "jobLabel": labels.NAME,
                    "selector": {"matchLabels": {**selector, labels.COMPONENT: "controller"}},
                    "namespaceSelector": {"matchNames": [ns_name]},
                    "endpoints": [
                        {
                            "port": "http",
                            "path": "/prometheus/",
                            "scheme": "http",
                            "interval": args.monitoring.scrape_interval,
                        }
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[ui]),
            )
            k8s.apiextensions.CustomResource(
                f"{name}-prometheusrule",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=labels.resource_name(APP), namespace=namespace, labels=mon_labels
                ),
                spec={
                    "groups": jenkins_alerts.jenkins_rule_groups(
                        jenkins_alerts.JenkinsAlertTarget(
                            namespace=ns_name,
                            job=APP,
                            runbook_base_url=args.monitoring.runbook_base_url,
                        )
                    )
                },
                opts=child,
            )

        self.namespace = namespace
        url = public_url(s, ns_name, ui_service_name)
        self.url = ui.metadata.name.apply(lambda _: url)
        self.service_name = ui.metadata.name
        self.statefulset_name = statefulset.metadata.name
        self.home_claim_name = home.metadata.name
        self.admin_secret_name = admin_secret_name
        self.register_outputs(
            {
                "namespace": self.namespace,
                "url": self.url,
                "service_name": self.service_name,
                "statefulset_name": self.statefulset_name,
                "home_claim_name": self.home_claim_name,
                "admin_secret_name": self.admin_secret_name,
            }
        )

"""Jenkins settings (components/jenkins/): controller StatefulSet + Kubernetes-cloud agents."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationInfo,
    model_validator,
)

from appstack_grammar import parse_quantity
from components.config.app import (
    Ingress,
    Resources,
    SecretName,
)
from components.config.base import (
    DNS1123,
    Cidr,
    FreeText,
    ImageRef,
    Model,
    ObjectName,
    Port,
    PositiveQuantity,
    Problems,
    _environment,
    _production_rules,
    deep_merge,
    image_parts,
)

# --------------------------------------------------------------------------------------------
# Jenkins (components/jenkins/): controller StatefulSet + Kubernetes-cloud agents
# --------------------------------------------------------------------------------------------

JENKINS_DEFAULT_CIDR = "0.0.0.0/0"
"""What an empty egress CIDR list of the Jenkins settings stands for (see each field)."""


class JenkinsHome(Model):
    """The PersistentVolumeClaim holding JENKINS_HOME (jobs, build history, credentials)."""

    size: PositiveQuantity = "8Gi"
    """Requested volume size; dev defaults to 8Gi, prod to 50Gi."""
    storage_class_name: ObjectName | None = None
    """StorageClass of the claim; unset means the cluster's default StorageClass."""
    protect: bool = False
    """Pulumi `protect` + `retainOnDelete` on the claim (prod: true, required)."""


class JenkinsServiceSettings(Model):
    """The Service in front of the Jenkins UI (agents use it too, over WebSocket)."""

    type: Literal["ClusterIP", "LoadBalancer"] = "ClusterIP"
    """ClusterIP (reach it through the Ingress or a port-forward) or LoadBalancer."""
    port: Port = 8080
    """Port the Service listens on; it targets the controller's HTTP port 8080."""
    load_balancer_source_ranges: list[Cidr] = Field(default_factory=list)
    """Client CIDRs allowed through a LoadBalancer (required for type LoadBalancer)."""


class JenkinsCloud(Model):
    """The Kubernetes cloud of the kubernetes plugin (dynamic agent pods)."""

    container_cap: int = Field(default=10, ge=1, le=1000)
    """Most agent pods running at once (`containerCapStr`)."""
    idle_minutes: int = Field(default=5, ge=0, le=1440)
    """Minutes an idle agent pod of the `default` template is kept for reuse; the templates the
    Jenkinsfile inherits from per build (`pulumi`, `builder`) keep no idle pods."""
    pod_retention: Literal["never"] = "never"
    """Agent pods are always deleted after use (`podRetention: never`); not configurable."""


class JenkinsAdmin(Model):
    """The initial admin user of the local security realm."""

    username: str = Field(default="admin", pattern=r"^[a-zA-Z0-9_.-]{1,64}$")
    """Admin user id, used when the Secret is generated (an existing Secret brings its own)."""
    existing_secret: ObjectName = ""
    """Name of an existing Secret with keys `username` and `password`; empty: generate one
    (pulumi_random.RandomPassword, stored encrypted in the stack state)."""


class JenkinsJob(Model):
    """The multibranch pipeline job of this repository, created by JCasC (job-dsl `jobs:`)."""

    name: DNS1123 = "appstack"
    """Job name (a folder of branch and pull-request jobs)."""
    scm: Literal["github", "git"] = "github"
    """Branch source: `github` (github-branch-source: branches and pull requests, so
    `changeRequest()` previews run; GitHub webhooks) or `git` (any git server, e.g. GitLab:
    branches only, polled or notified through the git plugin's /git/notifyCommit)."""
    repository: Annotated[
        str,
        FreeText("an https clone URL, checked by JenkinsSettings' rules; lands in JCasC only"),
    ] = ""
    """HTTPS clone URL, e.g. https://github.com/acme/appstack.git; empty: no job (required in
    prod)."""
    credentials_id: str = Field(default="scm-credentials", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """ID of the username/token credential used to scan and clone (JCasC defines it from the
    `scm-username` and `scm-token` keys of credentials.secretName)."""
    scan_interval: str = Field(default="5m", pattern=r"^[1-9][0-9]*[mhd]$")
    """Periodic branch indexing (`periodicFolderTrigger`): the fallback when no webhook reaches
    Jenkins."""

    @property
    def github_owner_repo(self) -> tuple[str, str]:
        """(owner, repository) of a GitHub URL."""
        parts = urlsplit(self.repository).path.strip("/").removesuffix(".git").split("/")
        return parts[-2], parts[-1]


_HTTPS_REPO = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)+$")


class JenkinsCredentials(Model):
    """The Secret (created by the operator, never by Pulumi or the repo) holding the pipeline's
    credentials; JCasC reads each key from the mounted file."""

    secret_name: ObjectName = "jenkins-ci-credentials"
    """Secret with keys pulumi-passphrase, pulumi-backend-url, kubeconfig-dev,
    kubeconfig-staging, kubeconfig-prod-preview, kubeconfig-prod, scm-username and scm-token
    (docs/ci.md)."""


class JenkinsAuthorization(Model):
    """Who may do what (role-strategy): admins, prod deployers, developers."""

    realm: Literal["local"] = "local"
    """Security realm: `local` (the Jenkins user database: users, no groups). An external realm
    (LDAP, OIDC) that supplies groups needs its plugin pinned (jenkins/plugins.txt) and
    `securityRealm` in components/jenkins/casc.py; until then deployersGroup approves nobody."""

    deployers_group: str = Field(
        default="appstack-prod-deployers", pattern=r"^[A-Za-z0-9_.@-]{1,128}$"
    )
    """Group allowed to approve prod (the Jenkinsfile's `input submitter`); it counts only
    under an external security realm (LDAP, OIDC) that supplies groups: with `realm: local` it
    is left out of the approvers and the prod-deployer role."""
    deployers: list[Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]] = Field(
        default_factory=list
    )
    """Local users allowed to approve prod (the local realm has no groups); each password is
    the key of that name in usersSecretName."""
    users_secret_name: ObjectName = "jenkins-users"
    """Secret holding one key per deployer (its password); mounted only when deployers is set."""


class JenkinsVerifyTarget(Model):
    """Apps of another stack in this cluster that the pipeline verifies at their cluster
    address (the dev seed: a ClusterIP Service): agents may reach their pods on `ports`."""

    namespace: DNS1123
    """Namespace of that stack's apps (its appstack:namespace)."""
    ports: list[Port] = Field(default_factory=lambda: [8080], min_length=1)
    """Container ports the Services target (each app's `port`; default 8080)."""


class JenkinsPipeline(Model):
    """What the Jenkinsfile's steps read besides credentials, set as global variables by JCasC
    (globalNodeProperties), and where they connect (agent egress)."""

    image_repository: str = Field(default="", pattern=r"^([a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+)?$")
    """IMAGE_REPOSITORY of `Build image`: `<registry>[:port]/<path>`, lowercase, no tag (the
    pattern scripts/ci/build-image.sh checks); required with
    imageBuilder. Its registry's port (default 443) is opened for the builder pods."""
    agent_image_repository: str = Field(
        default="", pattern=r"^([a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+)?$"
    )
    """AGENT_IMAGE_REPOSITORY of `Build image`: where the pipeline pushes the agent's tools
    image (jenkins/agent/Dockerfile), in the same form as imageRepository and a repository of
    its own; required with imageBuilder. The deploy then runs it by digest (`stackctl deploy
    --image jenkins-agent=<repo>@sha256:...` sets pulumiAgentImage)."""
    state_backend: Literal["s3", "azblob", "gs", "cloud"] = "s3"
    """Kind of the Pulumi state backend (PULUMI_BACKEND_URL): its own credentials come from the
    CI Secret and are bound with every stack operation (components/jenkins/names.py
    BACKEND_CREDENTIALS; docs/ci.md lists the keys). `cloud`: Pulumi Cloud (access token)."""
    verify_targets: list[JenkinsVerifyTarget] = Field(default_factory=list)
    """Other stacks' apps verified in-cluster (dev); their stack must list this Jenkins' agents
    in appstack:network.pipelineAgents, or its apps refuse the agents."""

    @property
    def registry_port(self) -> int:
        """The registry's port: the one in IMAGE_REPOSITORY, else 443 (https)."""
        host = self.image_repository.split("/", 1)[0]
        return int(host.rsplit(":", 1)[1]) if ":" in host else 443


class JenkinsPodSecurity(Model):
    """UID/GID of the controller and the agent pods (the images' uid 1000 is not used)."""

    run_as_user: int = Field(default=10000, ge=10000)
    """UID (>= 10000, checkov CKV_K8S_40)."""
    run_as_group: int = Field(default=10000, ge=10000)
    """GID (>= 10000)."""
    fs_group: int = Field(default=10000, ge=10000)
    """Group owning JENKINS_HOME and the agents' workspace volumes."""


def _resources_data(
    cpu: tuple[str, str], memory: tuple[str, str], storage: tuple[str, str]
) -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": cpu[0], "memory": memory[0], "ephemeralStorage": storage[0]},
        "limits": {"cpu": cpu[1], "memory": memory[1], "ephemeralStorage": storage[1]},
    }


#: Default requests/limits of the Jenkins containers, by field alias. A partial override in the
#: stack file (e.g. only `resources.limits.memory`) is merged over these, not over the generic
#: `Resources` defaults (see JenkinsSettings._merge_resource_defaults). Each number is sized for
#: what lands on the container:
JENKINS_RESOURCE_DEFAULTS: dict[str, dict[str, dict[str, str]]] = {
    # Controller: JVM heap 75% of the 4Gi limit holds ~80 plugins, the queue and a few hundred
    # runs in memory; 2Gi request is its steady state. Ephemeral storage: the pod's emptyDirs
    # (plugins 1Gi: ~300 MiB of .jpi exploded ~2x; the extracted WAR 1Gi; /tmp 1Gi) plus logs.
    "resources": _resources_data(("500m", "2"), ("2Gi", "4Gi"), ("1Gi", "4Gi")),
    # jenkins-plugin-cli: one JVM parsing the whole update-center and plugin-versions JSON
    # (tens of MiB, held as one object tree) and downloading ~80 plugins (~300 MiB, cached under
    # /tmp). Sized like the controller, with the same heap share (-XX:MaxRAMPercentage, set in
    # its JAVA_OPTS; the JVM default is 25% of the limit): as an init container it runs before
    # the controller, so its requests up to the controller's add nothing to the pod's effective
    # request (max of init containers vs sum of containers). Its own writes outside the
    # emptyDirs are logs only.
    "pluginInstallerResources": _resources_data(("500m", "2"), ("2Gi", "4Gi"), ("256Mi", "1Gi")),
    # `jnlp` (remoting): a small JVM streaming logs and workspace operations; its jar cache is
    # on the home emptyDir.
    "agentResources": _resources_data(("250m", "1"), ("512Mi", "1Gi"), ("512Mi", "2Gi")),
    # Tools container: `make test` (pytest over Pulumi mocks, checkov and kubernetes-validate on
    # every render: ~1.5 GiB peak) and `pulumi preview/up` (CLI + language host + the
    # kubernetes provider, ~600 MiB): 4Gi limit. Ephemeral storage: venvs and node_modules of
    # `make test` (~1.7 GiB) and Pulumi's downloaded provider plugins (~400 MiB) on the
    # workspace/home emptyDirs.
    "pulumiAgentResources": _resources_data(("500m", "2"), ("1Gi", "4Gi"), ("1Gi", "4Gi")),
}


def _jenkins_resources(alias: str) -> Resources:
    return Resources.model_validate(JENKINS_RESOURCE_DEFAULTS[alias])


_LTS_TAG = re.compile(r"^(\d+\.\d+(?:\.\d+)?)(?:-|$)")


#: Address ranges reserved for documentation (RFC 5737 TEST-NET-1/2/3, RFC 3849): what a
#: placeholder in a stack file looks like.
DOCUMENTATION_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")


def _documentation_range(cidr: str) -> str:
    """The documentation range `cidr` overlaps, or ""."""
    net = ipaddress.ip_network(cidr, strict=False)
    for doc in DOCUMENTATION_RANGES:
        other = ipaddress.ip_network(doc)
        if net.version == other.version and net.overlaps(other):
            return doc
    return ""


def _plugin_problems(image: str) -> list[str]:
    """Why the pinned plugin set (jenkins/plugins.txt) would not start on the image's core: the
    core is read from the tag (`2.541.3-lts-jdk21`); a digest-only image is not checked."""
    # Imported here: components.jenkins imports this module (a top-level import would cycle).
    from components.config.jenkins_plugins import pinned_set_problems

    _, tag, _ = image_parts(image)
    match = _LTS_TAG.match(tag or "")
    if match is None:
        return []
    found = pinned_set_problems(match.group(1))
    return [f"'{image}': {p} (jenkins/plugins.txt)" for p in found[:5]]


class JenkinsSettings(Model):
    """Jenkins controller with dynamic Kubernetes agents (off unless enabled)."""

    enabled: bool = False
    """Deploy Jenkins."""
    namespace: DNS1123 = "jenkins"
    """Namespace of the controller and its agent pods (must differ from the apps' namespace)."""
    image: ImageRef = "jenkins/jenkins:2.541.3-lts-jdk21"
    """Controller image, a pinned LTS tag (or a digest); its core must be >= every plugin's
    required core (jenkins/plugins-metadata.yaml)."""
    agent_image: ImageRef = "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21"
    """Inbound agent image (`jnlp` container of every agent pod), pinned."""
    pulumi_agent_image: ImageRef = "python:3.11.14-slim-bookworm"
    """Tools container of the `pulumi` agent template; it must carry python 3.11, make, git, the
    Pulumi CLI, promtool, Node.js and Java (this repo's pipeline runs `make test` and deploys):
    built from jenkins/agent/Dockerfile. The pipeline builds and pushes it to
    pipeline.agentImageRepository and deploys it by digest (`stackctl deploy --image
    jenkins-agent=<repo>@sha256:...`), like the service image; the stack file holds the
    reviewed default, pinned."""
    home: JenkinsHome = Field(default_factory=JenkinsHome)
    """JENKINS_HOME volume."""
    resources: Resources = Field(default_factory=lambda: _jenkins_resources("resources"))
    """Controller container requests and limits."""
    plugin_installer_resources: Resources = Field(
        default_factory=lambda: _jenkins_resources("pluginInstallerResources")
    )
    """Requests and limits of the init container that installs the pinned plugins."""
    agent_resources: Resources = Field(default_factory=lambda: _jenkins_resources("agentResources"))
    """Requests and limits of the `jnlp` container of every agent pod."""
    pulumi_agent_resources: Resources = Field(
        default_factory=lambda: _jenkins_resources("pulumiAgentResources")
    )
    """Requests and limits of the tools container of the `pulumi` agent template."""
    java_max_ram_percentage: int = Field(default=75, ge=1, le=90)
    """JVM heap as a percentage of the container memory limit (-XX:MaxRAMPercentage)."""
    service: JenkinsServiceSettings = Field(default_factory=JenkinsServiceSettings)
    """UI Service."""
    ingress: Ingress = Field(default_factory=Ingress)
    """Optional Ingress to the UI."""
    agent_connection: Literal["websocket"] = "websocket"
    """How agents connect: WebSocket over the HTTP port (no TCP agent port 50000)."""
    cloud: JenkinsCloud = Field(default_factory=JenkinsCloud)
    """Kubernetes cloud settings."""
    admin: JenkinsAdmin = Field(default_factory=JenkinsAdmin)
    """Admin user credentials."""
    job: JenkinsJob = Field(default_factory=JenkinsJob)
    """The multibranch pipeline job of this repository."""
    credentials: JenkinsCredentials = Field(default_factory=JenkinsCredentials)
    """Where the pipeline's credentials come from."""
    authorization: JenkinsAuthorization = Field(default_factory=JenkinsAuthorization)
    """Roles: admin, prod deployers, developers."""
    security: JenkinsPodSecurity = Field(default_factory=JenkinsPodSecurity)
    """UID/GID/fsGroup of the Jenkins pods."""
    kube_api_ports: list[Port] = Field(default_factory=lambda: [443, 6443], min_length=1)
    """Ports of the Kubernetes API server the controller may reach (443: managed clusters and
    the in-cluster Service; 6443: kubeadm, k3s and most on-prem endpoints)."""
    agent_api_ports: list[Port] = Field(default_factory=lambda: [443, 6443], min_length=1)
    """Ports agents may reach on agentEgressCidrs besides 443: the API servers they deploy to."""
    kube_api_cidrs: list[Cidr] = Field(default_factory=list)
    """Kubernetes API server endpoint CIDRs the controller may reach on 443/6443 (required in
    prod; empty in dev means 0.0.0.0/0 on those two ports only)."""
    plugin_site_cidrs: list[Cidr] = Field(default_factory=list)
    """CIDRs the controller pod may reach on 443: the plugin update site (init container) and the
    SCM it reads Jenkinsfiles from; empty means 0.0.0.0/0 on 443 (updates.jenkins.io is a CDN
    without stable addresses)."""
    image_pull_secrets: list[SecretName] = Field(default_factory=list)
    """Existing `kubernetes.io/dockerconfigjson` Secrets the controller and every agent pod pull
    their images with (private registry); each must exist in the Jenkins namespace (and in
    `<namespace>-builder` for the builder agent)."""
    image_builder: bool = False
    """Pod template `builder` (rootless BuildKit) for the Jenkinsfile's image build, in its own
    namespace `<namespace>-builder` at Pod Security `privileged` (components/jenkins/builder.py)."""
    agent_egress_cidrs: list[Cidr] = Field(default_factory=list)
    """CIDRs agent pods may reach on 443 (git, pip, registries); empty means 0.0.0.0/0 on 443."""
    pipeline: JenkinsPipeline = Field(default_factory=JenkinsPipeline)
    """Variables of the pipeline's steps and the apps it verifies (docs/ci.md)."""

    @model_validator(mode="before")
    @classmethod
    def _merge_resource_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for alias, defaults in JENKINS_RESOURCE_DEFAULTS.items():
            value = merged.get(alias)
            if isinstance(value, Mapping):
                merged[alias] = deep_merge(defaults, value)
        return merged

    @property
    def effective_kube_api_cidrs(self) -> list[str]:
        return list(self.kube_api_cidrs) or [JENKINS_DEFAULT_CIDR]

    @property
    def effective_plugin_site_cidrs(self) -> list[str]:
        return list(self.plugin_site_cidrs) or [JENKINS_DEFAULT_CIDR]

    @property
    def effective_agent_egress_cidrs(self) -> list[str]:
        return list(self.agent_egress_cidrs) or [JENKINS_DEFAULT_CIDR]

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> JenkinsSettings:
        if not self.enabled:
            return self
        problems = Problems()
        svc = self.service
        if svc.type == "LoadBalancer" and not svc.load_balancer_source_ranges:
            problems.add(
                "service.loadBalancerSourceRanges",
                "a Jenkins LoadBalancer needs loadBalancerSourceRanges (client CIDRs); "
                "the Jenkins UI is never opened to the whole internet",
            )
        if svc.type != "LoadBalancer" and svc.load_balancer_source_ranges:
            problems.add(
                "service.loadBalancerSourceRanges",
                f"loadBalancerSourceRanges only apply to type LoadBalancer (type is {svc.type})",
            )
        if self.job.repository and not _HTTPS_REPO.match(self.job.repository):
            problems.add(
                "job.repository",
                f"'{self.job.repository}' is not an https clone URL (https://host/owner/repo.git)",
            )
        elif (
            self.job.repository and self.job.scm == "github" and self.job.repository.count("/") < 4
        ):
            problems.add(
                "job.repository", "a GitHub repository URL needs an owner and a repository"
            )
        self._image_build_rules(problems)
        for problem in _plugin_problems(self.image):
            problems.add("image", problem)
        if self.ingress.enabled and not self.ingress.host:
            problems.add("ingress.host", "host is required when ingress.enabled is true")
        if parse_quantity(self.resources.limits.memory) < parse_quantity("1Gi"):
            problems.add(
                "resources.limits.memory",
                f"memory limit ({self.resources.limits.memory}) is below 1Gi; the Jenkins "
                "controller does not start reliably with less",
            )
        if _production_rules(info):
            env = _environment(info)
            self._production_rules(problems, env)
            if not self.kube_api_cidrs:
                problems.add(
                    "kubeApiCidrs",
                    f"{env} requires the Kubernetes API server CIDRs (controller egress on "
                    "443/6443); `kubectl get endpoints kubernetes -n default` lists them",
                )
            if not self.job.repository:
                problems.add(
                    "job.repository",
                    f"{env} requires the repository of the pipeline job (https clone URL)",
                )
            if not self.home.protect:
                problems.add(
                    "home.protect",
                    f"{env} requires home.protect: true (JENKINS_HOME is protected and retained "
                    "on delete)",
                )
        problems.raise_if_any()
        return self

    def _image_build_rules(self, problems: Problems) -> None:
        """`Build image` pushes the service image and the agent's tools image, each to its
        own repository (IMAGE_REPOSITORY, AGENT_IMAGE_REPOSITORY)."""
        pipeline = self.pipeline
        if self.image_builder and not pipeline.image_repository:
            problems.add(
                "pipeline.imageRepository",
                "imageBuilder is on: set the repository the Build image stage pushes to "
                "(IMAGE_REPOSITORY, e.g. registry.example.com/appstack/web)",
            )
        if self.image_builder and not pipeline.agent_image_repository:
            problems.add(
                "pipeline.agentImageRepository",
                "imageBuilder is on: set the repository the Build image stage pushes the "
                "agent image (jenkins/agent/Dockerfile) to (AGENT_IMAGE_REPOSITORY, e.g. "
                "registry.example.com/appstack/ci-agent)",
            )
        elif (
            pipeline.agent_image_repository
            and pipeline.agent_image_repository == pipeline.image_repository
        ):
            problems.add(
                "pipeline.agentImageRepository",
                f"'{pipeline.agent_image_repository}' is imageRepository too: the agent "
                "image needs a repository of its own (its tags and build cache would mix with "
                "the service image's)",
            )

    def _production_rules(self, problems: Problems, env: str) -> None:
        """An environment with prod's rules: someone besides the break-glass admin can approve;
        the API server CIDRs are real addresses."""
        auth = self.authorization
        if auth.realm == "local" and not auth.deployers:
            problems.add(
                "authorization.deployers",
                f"{env} needs at least one approver: with realm 'local' (no groups) list the users "
                "who may approve prod deploys (each password is the key of that name in Secret "
                f"'{auth.users_secret_name}'); deployersGroup needs an external realm",
            )
        for i, cidr in enumerate(self.kube_api_cidrs):
            doc = _documentation_range(cidr)
            if doc:
                problems.add(
                    f"kubeApiCidrs[{i}]",
                    f"'{cidr}' is inside the documentation range {doc} (RFC 5737/3849), a "
                    "placeholder no API server answers on; use the addresses of the "
                    "`default/kubernetes` EndpointSlice: kubectl get endpointslices -n default "
                    "-l kubernetes.io/service-name=kubernetes -o "
                    "jsonpath='{.items[*].endpoints[*].addresses[*]}'",
                )

"""Settings of one service: `AppConfig`, its image build and registry login. Its other parts
live by concern: `workload` (resources, probes, scaling, PDB, rollout, topology, pod security),
`traffic` (Service, Ingress, egress) and `release` (strategy); they are re-exported here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components.config.base import (
    EnvName,
    FreeText,
    ImageRef,
    ImageTag,
    LabelKey,
    LabelValue,
    Model,
    Port,
    PositiveQuantity,
    Problems,
    _environment,
    _production_rules,
    image_parts,
)
from components.config.release import CanaryWeight as CanaryWeight
from components.config.release import Colour as Colour
from components.config.release import ReleaseSettings as ReleaseSettings
from components.config.release import ReleaseStrategy as ReleaseStrategy
from components.config.release import canary_pods as canary_pods
from components.config.traffic import EgressPort as EgressPort
from components.config.traffic import EgressRule as EgressRule
from components.config.traffic import Ingress as Ingress
from components.config.traffic import ServiceSettings as ServiceSettings
from components.config.traffic import SessionAffinity as SessionAffinity
from components.config.workload import AppVolume as AppVolume
from components.config.workload import Autoscaling as Autoscaling
from components.config.workload import Pdb as Pdb
from components.config.workload import PodSecurity as PodSecurity
from components.config.workload import Probe as Probe
from components.config.workload import Probes as Probes
from components.config.workload import ResourceList as ResourceList
from components.config.workload import Resources as Resources
from components.config.workload import Rollout as Rollout
from components.config.workload import Toleration as Toleration
from components.config.workload import Topology as Topology

# --- Image build -----------------------------------------------------------------------------


_BUILD_PATH = "a path on the build machine, read by docker build; never a Kubernetes field"
_BUILD_TARGET = "a Dockerfile stage name, checked by docker build; never a Kubernetes field"


class ImageBuild(Model):
    """Build and push the image with pulumi-docker; the Deployment runs the pushed digest."""

    context: Annotated[str, FreeText(_BUILD_PATH)] = "app"
    """Build context, relative to the project directory."""
    dockerfile: Annotated[str, FreeText(_BUILD_PATH)] = "app/Dockerfile"
    """Dockerfile, relative to the project directory."""
    target: (
        Annotated[str, FreeText("a Dockerfile stage name; docker build rejects unknown")] | None
    ) = None
    """Multi-stage target to build; None builds the last stage."""
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    """Target platform: linux/amd64 or linux/arm64."""
    extra_tags: list[ImageTag] = Field(default_factory=list)
    """Tags pushed besides the git commit and the version tag of `image`."""


class RegistryCredentials(Model):
    """Login for pushing built images and, with `pullSecret`, for pulling private images."""

    username: Annotated[str, FreeText("a registry login, sent to the registry only")]
    """Registry user."""
    password: Annotated[SecretStr, FreeText("a registry token, sent to the registry only")]
    """Registry password or token (`pulumi config set --secret --path registry.password`)."""
    server: str = Field(default="", pattern=r"^$|^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
    """Registry host of the credentials, e.g. `registry.example.com` (required by pullSecret)."""
    pull_secret: bool = False
    """Create the `kubernetes.io/dockerconfigjson` Secret `registry-credentials` from these
    credentials in the apps' namespace and pull every app's image with it
    (components/registry.py)."""

    @model_validator(mode="after")
    def _pull_secret_needs_server(self) -> RegistryCredentials:
        if self.pull_secret and not self.server:
            raise PydanticCustomError(
                "registry_server", "pullSecret: true needs 'server' (the registry host)"
            )
        return self


# A Secret name (DNS-1123 subdomain), for imagePullSecrets.
SecretName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253
    ),
]


class Slo(Model):
    """Availability objective (components/monitoring/slo_rules.py, docs/slo.md); its rules need
    monitoring."""

    enabled: bool = True
    """Render the SLO recording rules and burn-rate alerts (when monitoring is enabled)."""
    availability: float = Field(default=99.9, gt=93.06, lt=100)
    """Percent of user requests (probes excluded) answered without a 5xx over 30 days; > 93.06
    so that a 14.4x burn (the fast page) stays below 100 % errors."""


class AppConfig(Model):
    """One service of the stack."""

    image: ImageRef
    """Container image, pinned: 'repo:tag' or 'repo@sha256:...' (never latest)."""
    version: LabelValue = ""
    """Version label (a label value); defaults to the image tag."""
    port: Port = 8080
    """Container port serving the app and its health endpoints."""
    metrics_port: Port = 9090
    """Container port serving /metrics."""
    replicas: int = Field(default=2, ge=1)
    """Replicas when autoscaling is off."""
    resources: Resources = Field(default_factory=Resources)
    """Requests and limits."""
    probes: Probes = Field(default_factory=Probes)
    """Health probes."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """HPA settings."""
    pdb: Pdb = Field(default_factory=Pdb)
    """PodDisruptionBudget settings."""
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    """Service settings."""
    ingress: Ingress = Field(default_factory=Ingress)
    """Ingress settings."""
    env: dict[
        EnvName, Annotated[str, FreeText("an environment variable value may hold any text")]
    ] = Field(default_factory=dict)
    """Plain (non-secret) environment variables, delivered through a ConfigMap."""
    rollout: Rollout = Field(default_factory=Rollout)
    """Rolling update and shutdown timing."""
    topology: Topology = Field(default_factory=Topology)
    """Topology spread."""
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Node labels every pod of the app requires (pod spec `nodeSelector`, in every workload of
    the app). Keys and values follow the label rules the API server applies to it
    (`ValidatePodSpec` -> apimachinery `ValidateLabels`: IsQualifiedName, IsValidLabelValue).
    Empty (default): any node."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Taints every pod of the app tolerates (pod spec `tolerations`, in every workload of the
    app). Empty (default): none."""
    security: PodSecurity = Field(default_factory=PodSecurity)
    """UID/GID the pod runs as."""
    tmp_size_limit: PositiveQuantity = "64Mi"
    """Size limit of the writable /tmp emptyDir."""
    egress: list[EgressRule] = Field(default_factory=list)
    """Outbound traffic allowed besides DNS; nothing else leaves the pod."""
    build: ImageBuild | None = None
    """Build and push `image` from source; None deploys `image` as it is."""
    volume: AppVolume | None = None
    """A PersistentVolumeClaim mounted in the app's container; None (default): no claim.
    ReadWriteOnce/ReadWriteOncePod need one replica, no HPA, the rolling strategy (then
    Recreate) and an environment without prod's rules (docs/releases.md)."""
    release: ReleaseSettings = Field(default_factory=ReleaseSettings)
    """Release strategy: rolling (default), blueGreen or canary, optionally with Argo Rollouts."""
    slo: Slo = Field(default_factory=Slo)
    """Availability SLO: objective and burn-rate alerts (default 99.9 %; dev 99 %)."""
    image_pull_secrets: list[SecretName] = Field(default_factory=list)
    """Existing `kubernetes.io/dockerconfigjson` Secrets in the apps' namespace to pull `image`
    with (private registry); `appstack:registry.pullSecret` adds the one it creates."""

    @property
    def min_pods(self) -> int:
        """The fewest replicas this service runs: HPA min when autoscaling, else replicas."""
        return self.autoscaling.min_replicas if self.autoscaling.enabled else self.replicas

    @property
    def max_pods(self) -> int:
        """The most replicas this service runs, before surge, counting every release workload
        (the idle blue-green colour, a canary beside an HPA or an Ingress split)."""
        base = self.autoscaling.max_replicas if self.autoscaling.enabled else self.replicas
        return base + self.release_extra_pods

    # Release (components/app/release.py): replica counts of the release workloads.

    @property
    def canary_active(self) -> bool:
        """A canary Deployment is rendered: strategy canary, weight > 0, no Argo Rollouts."""
        release = self.release
        return release.strategy == "canary" and release.weight > 0 and not release.argo_rollouts

    @property
    def canary_by_ingress(self) -> bool:
        """The canary's traffic share is set by ingress-nginx canary annotations (the app has an
        Ingress), not by the replica ratio."""
        return self.canary_active and self.ingress.enabled

    @property
    def canary_replicas(self) -> int:
        """Pods of the canary track: `weight` percent of the replicas (of the HPA minimum when
        autoscaling), rounded half up, at least 1; 0 without an active canary."""
        return canary_pods(self.min_pods, self.release.weight) if self.canary_active else 0

    @property
    def stable_replicas(self) -> int | None:
        """Pods of the stable track; None when the HPA owns them. With a replica-ratio canary
        the stable track gives up the canary's pods (stable + canary = replicas)."""
        if self.autoscaling.enabled:
            return None
        if self.canary_active and not self.canary_by_ingress:
            return self.replicas - self.canary_replicas
        return self.replicas

    @property
    def idle_replicas(self) -> int:
        """blueGreen: pods of the idle colour: the replicas (the HPA minimum when autoscaling,
        the HPA only owns the active colour), or 0 with scaleDownIdle."""
        return 0 if self.release.scale_down_idle else self.min_pods

    @property
    def release_extra_pods(self) -> int:
        """Pods a release runs beyond the app's own count (for the namespace quota)."""
        release = self.release
        if release.strategy == "blueGreen":
            if release.argo_rollouts:  # the preview ReplicaSet runs at full size
                return self.autoscaling.max_replicas if self.autoscaling.enabled else self.replicas
            return self.idle_replicas
        if self.canary_active and (self.autoscaling.enabled or self.canary_by_ingress):
            return self.canary_replicas
        return 0

    def image_version(self, image: str) -> str:
        """Version label of the pods running `image` (a colour's or the canary's image)."""
        if image == self.image:
            return self.label_version
        _, tag, digest = image_parts(image)
        return tag or (digest or "")[7:19]

    @property
    def label_version(self) -> str:
        if self.version:
            return self.version
        _, tag, digest = image_parts(self.image)
        return tag or (digest or "")[7:19]

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> AppConfig:
        env = _environment(info)
        problems = Problems()
        if self.port == self.metrics_port:
            problems.add("metricsPort", f"metricsPort ({self.metrics_port}) must differ from port")
        for name in self.env:
            if name in RESERVED_ENV:
                problems.add(f"env.{name}", f"{name} is set from config; remove it from env")
        self._pdb_rules(problems)
        if self.ingress.enabled and not self.ingress.host:
            problems.add("ingress.host", "host is required when ingress.enabled is true")
        self._release_rules(problems)
        self._detection_rules((info.context or {}).get("max_progress_deadline_seconds"), problems)
        production = _production_rules(info)
        self._volume_rules(env, production, problems)
        if production:
            self._production_rules(env, problems)
        problems.raise_if_any()
        return self

    def _pdb_rules(self, problems: Problems) -> None:
        pdb, pods = self.pdb, self.min_pods
        if not pdb.enabled:
            return
        if pdb.max_unavailable is not None and pdb.min_available is not None:
            problems.add("pdb", "set minAvailable or maxUnavailable, not both")
            return
        if pdb.max_unavailable in (0, "0%"):
            problems.add(
                "pdb.maxUnavailable",
                f"maxUnavailable ({pdb.max_unavailable}) blocks every voluntary eviction "
                "(node drains hang); use >= 1",
            )
        minimum = pdb.min_available
        if minimum == "100%":
            problems.add(
                "pdb.minAvailable", "minAvailable (100%) blocks every voluntary eviction; lower it"
            )
        elif isinstance(minimum, int) and minimum >= pods:
            source = "autoscaling.minReplicas" if self.autoscaling.enabled else "replicas"
            problems.add(
                "pdb.minAvailable",
                f"minAvailable ({minimum}) must be < {source} ({pods}): with minAvailable >= "
                f"{source} no pod can ever be evicted; the HPA minimum must be >= minAvailable + 1",
            )

    def _release_rules(self, problems: Problems) -> None:
        """Release rules that involve other settings of the app (components/app/release.py)."""
        release = self.release
        if (
            release.strategy == "blueGreen"
            and release.scale_down_idle
            and self.autoscaling.enabled
            and not release.argo_rollouts
        ):
            problems.add(
                "release.scaleDownIdle",
                "scaleDownIdle cannot be combined with autoscaling.enabled: each colour has its "
                "own HPA, which owns its replicas and never scales below minReplicas (>= 1); "
                "the idle colour idles at the HPA minimum (scaleDownIdle: false)",
            )
        pdb = self.pdb
        stable = self.stable_replicas
        if (
            self.canary_active
            and pdb.enabled
            and pdb.min_available is not None
            and pdb.max_unavailable is None
            and stable is not None
        ):
            minimum = pdb.min_available
            required = (
                minimum
                if isinstance(minimum, int)
                else -(-int(minimum.rstrip("%")) * stable // 100)
            )
            if required >= stable:
                problems.add(
                    "release.weight",
                    f"with weight {release.weight} the stable track runs {stable} of "
                    f"{self.replicas} pods ({self.canary_replicas} are the canary's) and "
                    f"pdb.minAvailable ({minimum}) would block every eviction of it; lower the "
                    "weight, raise replicas or use pdb.maxUnavailable",
                )

    def _volume_rules(self, env: str, production: bool, problems: Problems) -> None:
        """A ReadWriteOnce claim is attached to one node, a ReadWriteOncePod claim to one pod:
        no surge, second colour or canary pod on another node can mount it. Such an app runs
        one pod, replaced by a Recreate rollout (no zero downtime), so prod's rules refuse it."""
        volume = self.volume
        if volume is None or not volume.single_writer:
            return
        mode = volume.access_mode
        if production:
            problems.add(
                "volume.accessMode",
                f"{env} keeps zero-downtime rollouts, which a {mode} claim cannot serve "
                "(one node or pod holds it); allowed: ReadWriteMany",
            )
            return
        release = self.release
        if release.strategy != "rolling" or release.argo_rollouts:
            what = "argoRollouts" if release.argo_rollouts else release.strategy
            problems.add(
                "volume.accessMode",
                f"a {mode} claim cannot be shared by the pods of a {what} release; "
                "allowed with it: ReadWriteMany",
            )
        if self.autoscaling.enabled:
            problems.add(
                "autoscaling.enabled",
                f"a {mode} volume needs a single pod, so no HPA; allowed: false "
                "(or volume.accessMode: ReadWriteMany)",
            )
        elif self.replicas != 1:
            problems.add(
                "replicas",
                f"a {mode} volume needs a single pod (rolled out by Recreate); replicas is "
                f"{self.replicas}, allowed: 1 (or volume.accessMode: ReadWriteMany)",
            )

    @property
    def pod_start_budget_seconds(self) -> int:
        """The longest a good pod may take from container start to available: the startup
        probe's budget (the kubelet runs readiness only once startup has passed), one readiness
        period, then minReadySeconds."""
        startup, readiness = self.probes.startup, self.probes.readiness
        return (
            startup.initial_delay_seconds
            + startup.period_seconds * startup.failure_threshold
            + readiness.period_seconds
            + self.rollout.min_ready_seconds
        )

    def _detection_rules(self, limit: int | None, problems: Problems) -> None:
        """progressDeadlineSeconds is the detection time of a bad version (issue 29): within
        the environment's limit, and longer than a good but slow pod may take to become
        available (the Deployment controller counts a pod becoming ready or available as
        progress, kubernetes pkg/controller/deployment/util `DeploymentProgressing`)."""
        deadline = self.rollout.progress_deadline_seconds
        key = "rollout.progressDeadlineSeconds"
        if limit is not None and deadline > limit:
            problems.add(
                key,
                f"progressDeadlineSeconds ({deadline}) must be <= {limit} in this environment: "
                "it is how long a bad version runs before the deploy fails "
                "(ENVIRONMENT_DEFAULTS maxProgressDeadlineSeconds)",
            )
        budget = self.pod_start_budget_seconds
        if deadline <= budget:
            problems.add(
                key,
                f"progressDeadlineSeconds ({deadline}) must be > {budget}, the most a good pod "
                "may take to become available (startup probe initialDelaySeconds + periodSeconds "
                "x failureThreshold + readiness periodSeconds + rollout.minReadySeconds); "
                "a slow but good version would otherwise fail its rollout",
            )

    def _production_rules(self, env: str, problems: Problems) -> None:
        """Prod's rules, in every environment whose `productionRules` is true (prod, staging)."""
        if self.min_pods < 2:
            key = "autoscaling.minReplicas" if self.autoscaling.enabled else "replicas"
            problems.add(
                key, f"{env} needs >= 2 replicas for availability; {key} is {self.min_pods}"
            )
        if not self.pdb.enabled:
            problems.add("pdb.enabled", f"{env} requires a PodDisruptionBudget (pdb.enabled: true)")
        if self.service.type == "LoadBalancer" and not self.service.effective_source_ranges:
            problems.add(
                "service.loadBalancerSourceRanges",
                f"a {env} LoadBalancer needs loadBalancerSourceRanges (client CIDRs); "
                "set service.openToInternet: true to open it to everyone explicitly",
            )
        if self.volume is not None and not self.volume.protect:
            problems.add(
                "volume.protect",
                f"{env} requires volume.protect: true (the app's data is protected and "
                "retained on delete); allowed: true",
            )


RESERVED_ENV = frozenset({"PORT", "METRICS_PORT", "APP_VERSION"})

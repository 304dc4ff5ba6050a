"""Settings of one service: `AppConfig` and its parts (resources, probes, scaling, PDB,
service, ingress, rollout, topology, egress, image build, release)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from appstack_grammar import parse_quantity
from components.config.base import (
    DNS1123,
    AppName,
    Cidr,
    EnvName,
    FreeText,
    ImageRef,
    ImageTag,
    IngressHost,
    IntOrPercent,
    LabelKey,
    LabelValue,
    Model,
    ObjectName,
    Port,
    PositiveQuantity,
    ProbePath,
    Problems,
    Quantity,
    SubdomainName,
    _environment,
    image_parts,
)


class ResourceList(Model):
    """CPU, memory and ephemeral storage amounts."""

    cpu: Quantity = "100m"
    """CPU in cores or millicores."""
    memory: Quantity = "128Mi"
    """Memory in bytes (Mi, Gi)."""
    ephemeral_storage: Quantity = "64Mi"
    """Node-local scratch storage (the /tmp emptyDir counts against it)."""


class Resources(Model):
    """Container requests and limits."""

    requests: ResourceList = Field(default_factory=ResourceList)
    """What the scheduler reserves."""
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="500m", memory="256Mi", ephemeral_storage="256Mi")
    )
    """The most the container may use."""

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        problems = Problems()
        for field in ("cpu", "memory", "ephemeral_storage"):
            req, lim = getattr(self.requests, field), getattr(self.limits, field)
            if parse_quantity(req) > parse_quantity(lim):
                key = to_camel(field)
                problems.add(
                    f"requests.{key}", f"request ({req}) must be <= limit limits.{key} ({lim})"
                )
        problems.raise_if_any()
        return self


class Probe(Model):
    """An HTTP probe against the app port."""

    path: ProbePath = "/health"
    """Absolute HTTP path."""
    initial_delay_seconds: int = Field(default=0, ge=0)
    """Seconds before the first probe."""
    period_seconds: int = Field(default=10, ge=1)
    """Seconds between probes."""
    timeout_seconds: int = Field(default=2, ge=1)
    """Seconds before a probe times out."""
    failure_threshold: int = Field(default=3, ge=1)
    """Consecutive failures before the probe fails."""


class Probes(Model):
    """Liveness, readiness and startup probes; always on."""

    liveness: Probe = Field(default_factory=Probe)
    """Restarts the container when it fails; default GET /health."""
    readiness: Probe = Field(
        default_factory=lambda: Probe(path="/health/ready", period_seconds=5, failure_threshold=2)
    )
    """Gates traffic; default GET /health/ready."""
    startup: Probe = Field(
        default_factory=lambda: Probe(path="/health", period_seconds=2, failure_threshold=30)
    )
    """Holds liveness off until the app has started (period x threshold = startup budget)."""

    @model_validator(mode="after")
    def _liveness_differs_from_readiness(self) -> Probes:
        if self.liveness == self.readiness:
            raise PydanticCustomError(
                "probes_identical",
                "liveness and readiness probes are identical; a readiness failure would then "
                "also restart the pod. Use a different path or thresholds",
            )
        return self


class Autoscaling(Model):
    """HorizontalPodAutoscaler (autoscaling/v2)."""

    enabled: bool = False
    """Create an HPA; the Deployment then leaves `replicas` to it."""
    min_replicas: int = Field(default=2, ge=1)
    """Lower bound of replicas."""
    max_replicas: int = Field(default=5, ge=1)
    """Upper bound of replicas."""
    cpu_utilization: int = Field(default=70, ge=1, le=100)
    """Target average CPU utilisation, percent of requests."""
    memory_utilization: int = Field(default=80, ge=1, le=100)
    """Target average memory utilisation, percent of requests."""
    requests_per_second: float | None = Field(default=None, gt=0)
    """Optional target of `http_requests_per_second` per pod (needs a custom-metrics adapter)."""

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise PydanticCustomError(
                "hpa_range",
                "minReplicas ({min}) must be <= maxReplicas ({max})",
                {"min": self.min_replicas, "max": self.max_replicas},
            )
        return self


class Pdb(Model):
    """PodDisruptionBudget (policy/v1). Neither bound set means maxUnavailable 1."""

    enabled: bool = True
    """Create a PDB."""
    max_unavailable: IntOrPercent | None = None
    """Pods that may be down during a voluntary disruption (>= 1 or > 0%)."""
    min_available: IntOrPercent | None = None
    """Pods that must stay up; mutually exclusive with maxUnavailable."""

    @property
    def effective_max_unavailable(self) -> int | str | None:
        if self.max_unavailable is None and self.min_available is None:
            return 1
        return self.max_unavailable


class SessionAffinity(Model):
    """Client-IP session affinity on the Service."""

    enabled: bool = False
    """Route a client to the same pod."""
    timeout_seconds: int = Field(default=10800, ge=1, le=86400)
    """How long the affinity lasts."""


class ServiceSettings(Model):
    """The Service in front of the pods."""

    type: Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    """Service type; prod defaults to LoadBalancer."""
    port: Port = 80
    """Port the Service listens on (targets the container's http port)."""
    session_affinity: SessionAffinity = Field(default_factory=SessionAffinity)
    """Optional ClientIP affinity."""
    load_balancer_source_ranges: list[Cidr] = Field(default_factory=list)
    """Client CIDRs allowed through a LoadBalancer."""
    open_to_internet: bool = False
    """Explicitly allow a LoadBalancer from anywhere (renders 0.0.0.0/0)."""
    annotations: dict[
        LabelKey, Annotated[str, FreeText("an annotation value may hold any text")]
    ] = Field(default_factory=dict)
    """Extra Service annotations (e.g. cloud load-balancer settings)."""

    @property
    def effective_source_ranges(self) -> list[str]:
        if self.load_balancer_source_ranges:
            return list(self.load_balancer_source_ranges)
        return ["0.0.0.0/0"] if self.open_to_internet else []


class Ingress(Model):
    """Optional Ingress (networking.k8s.io/v1)."""

    enabled: bool = False
    """Create an Ingress."""
    host: IngressHost = ""
    """Host name served (a DNS name such as shop.example.com, no scheme); required when
    enabled."""
    class_name: SubdomainName = "nginx"
    """IngressClass name."""
    path: ProbePath = "/"
    """Path prefix routed to the service."""
    tls_secret_name: ObjectName = ""
    """Name of an existing kubernetes.io/tls Secret; empty means no TLS."""


class Rollout(Model):
    """Rolling-update and shutdown timing."""

    max_surge: IntOrPercent = "25%"
    """Extra pods during a rollout; must be > 0 because maxUnavailable is always 0."""
    min_ready_seconds: int = Field(default=5, ge=0)
    """A new pod must stay ready this long before it counts as available."""
    progress_deadline_seconds: int = Field(default=600, ge=1)
    """A rollout without progress for this long is marked failed."""
    revision_history_limit: int = Field(default=5, ge=1, le=50)
    """Old ReplicaSets kept for `kubectl rollout undo`."""
    termination_grace_period_seconds: int = Field(default=30, ge=1)
    """Time from the start of preStop to SIGKILL."""
    pre_stop_sleep_seconds: int = Field(default=5, ge=0)
    """Delay before SIGTERM so endpoints stop routing to the pod."""

    @model_validator(mode="after")
    def _timing(self) -> Rollout:
        problems = Problems()
        surge = self.max_surge
        if surge == 0 or surge == "0%":
            problems.add(
                "maxSurge", f"maxSurge ({surge}) must be > 0 because maxUnavailable is always 0"
            )
        if self.pre_stop_sleep_seconds >= self.termination_grace_period_seconds:
            problems.add(
                "preStopSleepSeconds",
                f"preStopSleepSeconds ({self.pre_stop_sleep_seconds}) must be < "
                f"terminationGracePeriodSeconds ({self.termination_grace_period_seconds}), "
                "leaving the app time to drain",
            )
        if self.progress_deadline_seconds <= self.min_ready_seconds:
            problems.add(
                "progressDeadlineSeconds",
                f"progressDeadlineSeconds ({self.progress_deadline_seconds}) must be > "
                f"minReadySeconds ({self.min_ready_seconds})",
            )
        problems.raise_if_any()
        return self


class Topology(Model):
    """Spread of replicas across nodes and zones."""

    zones: bool = False
    """Also spread across topology.kubernetes.io/zone."""
    max_skew: int = Field(default=1, ge=1)
    """Maximum difference in pod count between domains."""
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"
    """What the scheduler does when the spread cannot be met."""


class PodSecurity(Model):
    """Pod identity; the restricted profile itself is not configurable."""

    run_as_user: int = Field(default=10001, ge=10000)
    """UID (>= 10000, checkov CKV_K8S_40)."""
    run_as_group: int = Field(default=10001, ge=10000)
    """GID (>= 10000)."""
    fs_group: int = Field(default=10001, ge=10000)
    """Group owning mounted volumes."""


class EgressPort(Model):
    """A destination port."""

    port: Port
    """Port number."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """Protocol."""


class EgressRule(Model):
    """Traffic a service may send: to another app of this stack, a namespace, or CIDRs."""

    app: AppName | None = None
    """Another service of this stack (it gets the matching ingress allowance)."""
    namespace: DNS1123 | None = None
    """Every pod in this namespace."""
    cidrs: list[Cidr] = Field(default_factory=list)
    """IP blocks outside the cluster."""
    ports: list[EgressPort] = Field(min_length=1)
    """Destination ports (at least one)."""

    @model_validator(mode="after")
    def _one_target(self) -> EgressRule:
        targets = [t for t in (self.app, self.namespace, self.cidrs or None) if t]
        if len(targets) != 1:
            raise PydanticCustomError(
                "egress_target", "set exactly one of 'app', 'namespace' or 'cidrs'"
            )
        return self


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
    """Login for pushing built images."""

    username: Annotated[str, FreeText("a registry login, sent to the registry only")]
    """Registry user."""
    password: Annotated[SecretStr, FreeText("a registry token, sent to the registry only")]
    """Registry password or token (`pulumi config set --secret --path registry.password`)."""


# --------------------------------------------------------------------------------------------
# Release (components/release.py): rolling, blue-green, canary, optional Argo Rollouts
# --------------------------------------------------------------------------------------------

ReleaseStrategy = Literal["rolling", "blueGreen", "canary"]
Colour = Literal["blue", "green"]
CanaryWeight = Annotated[int, Field(ge=1, le=100)]


def _round_half_up(value: float) -> int:
    return int(value + 0.5)


def canary_pods(total: int, weight: int) -> int:
    """Pods of the canary track for `weight` percent of `total` pods: rounded half up, at least
    one when weight > 0, at most `total`."""
    if weight <= 0:
        return 0
    return min(total, max(1, _round_half_up(total * weight / 100)))


class ReleaseSettings(Model):
    """How a new version reaches the users (components/release.py).

    - rolling: one Deployment, zero-downtime rolling update (maxUnavailable 0).
    - blueGreen: Deployments `<app>-blue` and `<app>-green`; the Service `<app>` selects the
      `active` colour, the ClusterIP Service `<app>-preview` the idle one. A release sets the
      idle colour's image (`blueImage`/`greenImage`), tests it through `<app>-preview`, then
      flips `active`: only Service selectors change (no pod restarts), and flipping back is the
      rollback.
    - canary: the stable Deployment `<app>` runs `image`, `<app>-canary` runs `canaryImage` and
      gets `weight` percent of the traffic (by replica ratio, or by ingress-nginx canary weight
      when the app has an Ingress). Promotion: set `image` to the canary image and `weight` to 0
      (weight 0 removes every canary object).
    """

    strategy: ReleaseStrategy = "rolling"
    """rolling (default), blueGreen or canary."""
    active: Colour = "blue"
    """blueGreen: the colour the Service `<app>` sends traffic to; flip it to switch versions
    (and back to roll back) without restarting a pod."""
    blue_image: ImageRef | None = None
    """blueGreen: image of the blue Deployment; default: the app's `image`."""
    green_image: ImageRef | None = None
    """blueGreen: image of the green Deployment; default: the app's `image`. A release deploys
    the new image to the idle colour, tests it through `<app>-preview`, then flips `active`."""
    scale_down_idle: bool = False
    """blueGreen: false keeps the idle colour running (instant switch back); true scales it to 0
    after promotion (set it false again before the next release so the idle colour runs and can
    be previewed). Not with autoscaling (see the validation message)."""
    canary_image: ImageRef | None = None
    """canary: image of the canary Deployment `<app>-canary` (required for strategy canary
    unless argoRollouts)."""
    weight: int = Field(default=0, ge=0, le=100)
    """canary: percent of the traffic the canary gets now; 0 or one of `steps`. 0 renders no
    canary object. Promotion: set `image` to the canary image and weight back to 0."""
    steps: list[CanaryWeight] = Field(default_factory=lambda: [10, 25, 50, 100])
    """canary: the planned weights, strictly increasing, each 1..100 (with argoRollouts: the
    Rollout's setWeight steps, each followed by a pause and the error-ratio analysis)."""
    argo_rollouts: bool = False
    """Emit an Argo Rollouts `Rollout` (argoproj.io/v1alpha1) instead of Deployments, plus an
    `AnalysisTemplate` on the error-ratio recording rule. Needs the Argo Rollouts controller and
    CRDs in the cluster and `appstack:monitoring.enabled` (the recording rule). The controller
    then drives the release from `image`: colour and canary fields stay unset."""
    step_pause_seconds: int = Field(default=300, ge=0, le=86400)
    """argoRollouts canary: pause after each setWeight step before its analysis runs."""
    prometheus_address: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090", pattern=r"^https?://[^\s]+$"
    )
    """argoRollouts: Prometheus the AnalysisTemplate queries (http(s) URL)."""

    @property
    def idle(self) -> Colour:
        """blueGreen: the colour that gets no production traffic."""
        return "green" if self.active == "blue" else "blue"

    @model_validator(mode="after")
    def _rules(self) -> ReleaseSettings:
        problems = Problems()
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            problems.add(
                "steps", f"steps {self.steps} must be strictly increasing, e.g. [10, 25, 50, 100]"
            )
        if self.weight != 0 and self.weight not in self.steps:
            problems.add("weight", f"weight ({self.weight}) must be 0 or one of steps {self.steps}")
        if self.argo_rollouts:
            if self.strategy == "rolling":
                problems.add(
                    "argoRollouts",
                    "argoRollouts needs strategy blueGreen or canary (strategy is rolling)",
                )
            for key, value in (
                ("blueImage", self.blue_image),
                ("greenImage", self.green_image),
                ("canaryImage", self.canary_image),
            ):
                if value is not None:
                    problems.add(
                        key,
                        f"{key} is not used with argoRollouts: the Argo Rollouts controller "
                        "rolls out a change of the app's `image` itself; remove it",
                    )
            if self.weight != 0:
                problems.add(
                    "weight",
                    f"weight ({self.weight}) is not used with argoRollouts: the controller walks "
                    "through `steps`; set it to 0",
                )
        elif self.strategy == "canary" and self.canary_image is None:
            problems.add("canaryImage", "strategy canary needs canaryImage (the new version)")
        problems.raise_if_any()
        return self


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
    security: PodSecurity = Field(default_factory=PodSecurity)
    """UID/GID the pod runs as."""
    tmp_size_limit: PositiveQuantity = "64Mi"
    """Size limit of the writable /tmp emptyDir."""
    egress: list[EgressRule] = Field(default_factory=list)
    """Outbound traffic allowed besides DNS; nothing else leaves the pod."""
    build: ImageBuild | None = None
    """Build and push `image` from source; None deploys `image` as it is."""
    release: ReleaseSettings = Field(default_factory=ReleaseSettings)
    """Release strategy: rolling (default), blueGreen or canary, optionally with Argo Rollouts."""

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

    # Release (components/release.py): replica counts of the release workloads.

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
        if env == "prod":
            self._prod_rules(problems)
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
        """Release rules that involve other settings of the app (components/release.py)."""
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

    def _prod_rules(self, problems: Problems) -> None:
        if self.min_pods < 2:
            key = "autoscaling.minReplicas" if self.autoscaling.enabled else "replicas"
            problems.add(
                key, f"prod needs >= 2 replicas for availability; {key} is {self.min_pods}"
            )
        if not self.pdb.enabled:
            problems.add("pdb.enabled", "prod requires a PodDisruptionBudget (pdb.enabled: true)")
        if self.service.type == "LoadBalancer" and not self.service.effective_source_ranges:
            problems.add(
                "service.loadBalancerSourceRanges",
                "a prod LoadBalancer needs loadBalancerSourceRanges (client CIDRs); "
                "set service.openToInternet: true to open it to everyone explicitly",
            )


RESERVED_ENV = frozenset({"PORT", "METRICS_PORT", "APP_VERSION"})

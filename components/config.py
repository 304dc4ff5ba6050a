"""Typed, validated stack configuration (pydantic v2).

The stack files hold namespaced keys (`appstack:apps`, `appstack:namespace`, ...). Loading goes:

    raw keys  ->  environment defaults (data, `ENVIRONMENT_DEFAULTS`)  ->  field defaults
              ->  pydantic validation (types, ranges, unknown keys, cross-field rules)

Every problem is reported at once, one line each, naming the key path, the bad value and what is
allowed, e.g. `appstack:apps.web.autoscaling: minReplicas (5) must be <= maxReplicas (3)`.
Cross-field rules of one object run only once that object's own fields are valid.

Secret values live under `appstack:secrets` only (a map app -> key -> value) so that the rest of
the config stays plain and never has to be treated as secret.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import labels
from components.quantity import parse_quantity

PROJECT = "appstack"
Environment = Literal["dev", "prod"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)

# --------------------------------------------------------------------------------------------
# Field types with Kubernetes' own validation rules
# --------------------------------------------------------------------------------------------

MAX_APP_NAME = 40  # derived names add suffixes such as "-metrics" and "-config-<hash>"


def _dns1123(value: str) -> str:
    if len(value) > labels.MAX_NAME or not labels.DNS1123_LABEL.match(value):
        raise PydanticCustomError(
            "dns1123",
            "'{value}' is not a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters",
            {"value": value},
        )
    return value


def _app_name(value: str) -> str:
    if len(value) > MAX_APP_NAME or not labels.DNS1035_LABEL.match(value):
        raise PydanticCustomError(
            "app_name",
            "'{value}' is not a valid service name: a DNS-1035 label (lowercase letters, "
            "digits and '-', starting with a letter) of at most {max} characters",
            {"value": value, "max": MAX_APP_NAME},
        )
    return value


def _quantity(value: Any) -> str:
    text = str(value)
    try:
        parse_quantity(text)
    except ValueError:
        raise PydanticCustomError(
            "quantity",
            "'{value}' is not a Kubernetes quantity; use e.g. '250m', '0.5', '128Mi', '1Gi'",
            {"value": text},
        ) from None
    return text


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "abs_path", "probe path '{value}' must be absolute (start with '/')", {"value": value}
        )
    return value


_CIDR = re.compile(r"^[0-9a-fA-F:.]+/[0-9]{1,3}$")


def _cidr(value: str) -> str:
    import ipaddress

    try:
        if not _CIDR.match(value):
            raise ValueError
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise PydanticCustomError(
            "cidr", "'{value}' is not a CIDR block like '203.0.113.0/24'", {"value": value}
        ) from None
    return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _percent_or_int(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,3}%", value):
        raise PydanticCustomError(
            "int_or_percent",
            "'{value}' must be an integer or a percentage like '25%'",
            {"value": value},
        )
    return value


DNS1123 = Annotated[str, AfterValidator(_dns1123)]
AppName = Annotated[str, AfterValidator(_app_name)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
ProbePath = Annotated[str, AfterValidator(_abs_path)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
IntOrPercent = Annotated[int | str, AfterValidator(_percent_or_int)]

# image reference: [registry[:port]/]path[:tag][@sha256:digest], lowercase path
IMAGE_PATTERN = re.compile(
    r"^(?P<repo>(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly"})


def _image(value: str) -> str:
    match = IMAGE_PATTERN.match(value)
    if match is None:
        raise PydanticCustomError(
            "image",
            "'{value}' is not an image reference 'name[:tag][@sha256:digest]' "
            "(lowercase path, tag [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})",
            {"value": value},
        )
    tag, digest = match.group("tag"), match.group("digest")
    if digest is None and (tag is None or tag in MOVING_TAGS):
        raise PydanticCustomError(
            "image_unpinned",
            "'{value}' is not pinned: give an immutable tag (not {moving}) or a digest "
            "'@sha256:...'",
            {"value": value, "moving": "/".join(sorted(MOVING_TAGS))},
        )
    return value


ImageRef = Annotated[str, AfterValidator(_image)]


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of a validated image reference."""
    match = IMAGE_PATTERN.match(image)
    if match is None:  # pragma: no cover - validated before use
        raise ValueError(image)
    return match.group("repo"), match.group("tag"), match.group("digest")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys rejected, immutable, field docstrings."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class Problems:
    """Collects cross-field problems of one object; raised together as one validation error."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError("appstack_rules", "{problems}", {"problems": self.items})


def _environment(info: ValidationInfo) -> str:
    context = info.context or {}
    return str(context.get("environment", "dev"))


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
    annotations: dict[str, str] = Field(default_factory=dict)
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
    host: str = ""
    """Host name served; required when enabled."""
    class_name: str = "nginx"
    """IngressClass name."""
    path: ProbePath = "/"
    """Path prefix routed to the service."""
    tls_secret_name: str = ""
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

    app: str | None = None
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


class ImageBuild(Model):
    """Build and push the image with pulumi-docker; the Deployment runs the pushed digest."""

    context: str = "app"
    """Build context, relative to the project directory."""
    dockerfile: str = "app/Dockerfile"
    """Dockerfile, relative to the project directory."""
    target: str | None = None
    """Multi-stage target to build; None builds the last stage."""
    platform: str = "linux/amd64"
    """Target platform, e.g. linux/amd64 or linux/arm64."""
    extra_tags: list[str] = Field(default_factory=list)
    """Tags pushed besides the git commit and the version tag of `image`."""

    @model_validator(mode="after")
    def _tags(self) -> ImageBuild:
        problems = Problems()
        for i, tag in enumerate(self.extra_tags):
            if not re.fullmatch(r"[\w][\w.-]{0,127}", tag) or tag in MOVING_TAGS:
                problems.add(
                    f"extraTags[{i}]",
                    f"{tag!r} is not an allowed tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}, "
                    f"not {'/'.join(sorted(MOVING_TAGS))})",
                )
        if self.platform not in ("linux/amd64", "linux/arm64"):
            problems.add(
                "platform", f"{self.platform!r} is not allowed; use linux/amd64 or linux/arm64"
            )
        problems.raise_if_any()
        return self


class RegistryCredentials(Model):
    """Login for pushing built images."""

    username: str
    """Registry user."""
    password: SecretStr
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
    version: str = ""
    """Version label; defaults to the image tag."""
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
    env: dict[str, str] = Field(default_factory=dict)
    """Plain (non-secret) environment variables, delivered through a ConfigMap."""
    rollout: Rollout = Field(default_factory=Rollout)
    """Rolling update and shutdown timing."""
    topology: Topology = Field(default_factory=Topology)
    """Topology spread."""
    security: PodSecurity = Field(default_factory=PodSecurity)
    """UID/GID the pod runs as."""
    tmp_size_limit: Quantity = "64Mi"
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
            if not _ENV_NAME.match(name):
                problems.add(f"env.{name}", f"{name!r} is not an environment variable name")
            elif name in RESERVED_ENV:
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
                "scaleDownIdle cannot be combined with autoscaling.enabled: the HPA-owned active "
                "colour keeps the replica count Pulumi last applied (ignore_changes on "
                "spec.replicas), so after a flip the newly active colour would stay at 0 pods and "
                "an HPA never scales up from 0; keep the idle colour at the HPA minimum "
                "(scaleDownIdle: false)",
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


class NetworkSettings(Model):
    """Where traffic comes from and goes to, cluster-wide."""

    ingress_controller_namespace: DNS1123 = "ingress-nginx"
    """Namespace of the ingress controller allowed to reach ClusterIP services."""
    monitoring_namespace: DNS1123 = "monitoring"
    """Namespace of Prometheus, allowed to scrape the metrics port."""
    dns_namespace: DNS1123 = "kube-system"
    """Namespace of the cluster DNS."""
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    """Labels of the cluster DNS pods."""


class NamespaceQuota(Model):
    """ResourceQuota derived from the apps' worst case (max replicas + surge)."""

    enabled: bool = True
    """Create a ResourceQuota."""
    headroom_percent: int = Field(default=25, ge=0, le=500)
    """Extra room above the computed worst case."""


class LimitRangeSettings(Model):
    """LimitRange defaults for containers that declare nothing."""

    default_request: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="50m", memory="64Mi", ephemeral_storage="32Mi")
    )
    """Requests applied when a container sets none."""
    default_limit: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="500m", memory="256Mi", ephemeral_storage="256Mi")
    )
    """Limits applied when a container sets none."""


class AlertSettings(Model):
    """Alert thresholds (per environment through the environment defaults)."""

    error_ratio: float = Field(default=0.05, gt=0, le=1)
    """Alert when 5xx / all requests over 5m exceeds this."""
    p95_latency_seconds: float = Field(default=0.5, gt=0)
    """Alert when p95 latency over 5m exceeds this."""
    memory_limit_ratio: float = Field(default=0.9, gt=0, le=1)
    """Alert when working set / memory limit exceeds this."""
    cpu_throttle_ratio: float = Field(default=0.25, gt=0, le=1)
    """Alert when throttled / total CFS periods exceeds this."""
    restarts_per_hour: int = Field(default=3, ge=1)
    """Alert when a container restarts more often than this in an hour."""


class Monitoring(Model):
    """prometheus-operator objects; off by default because the CRDs may be missing."""

    enabled: bool = False
    """Create ServiceMonitor and PrometheusRule objects (needs the prometheus-operator CRDs)."""
    prometheus_selector_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"}
    )
    """Labels the cluster's Prometheus selects ServiceMonitors and rules by."""
    scrape_interval: str = "30s"
    """Scrape interval."""
    runbook_base_url: str = "https://runbooks.example.com/appstack"
    """Base of every alert's runbook_url."""
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    """Alert thresholds."""


# --------------------------------------------------------------------------------------------
# Jenkins (components/jenkins.py): controller StatefulSet + Kubernetes-cloud agents
# --------------------------------------------------------------------------------------------

JENKINS_DEFAULT_CIDR = "0.0.0.0/0"
"""What an empty egress CIDR list of the Jenkins settings stands for (see each field)."""


def _dns1123_subdomain_or_empty(value: str) -> str:
    if value and (
        len(value) > 253 or not all(labels.DNS1123_LABEL.match(p) for p in value.split("."))
    ):
        raise PydanticCustomError(
            "dns1123",
            "'{value}' is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
            "at most 253 characters",
            {"value": value},
        )
    return value


ObjectName = Annotated[str, AfterValidator(_dns1123_subdomain_or_empty)]


class JenkinsHome(Model):
    """The PersistentVolumeClaim holding JENKINS_HOME (jobs, build history, credentials)."""

    size: Quantity = "8Gi"
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
    """Minutes an idle agent pod is kept for reuse (`idleMinutes` of each pod template)."""
    pod_retention: Literal["never"] = "never"
    """Agent pods are always deleted after use (`podRetention: never`); not configurable."""


class JenkinsAdmin(Model):
    """The initial admin user of the local security realm."""

    username: str = Field(default="admin", pattern=r"^[a-zA-Z0-9_.-]{1,64}$")
    """Admin user id, used when the Secret is generated (an existing Secret brings its own)."""
    existing_secret: ObjectName = ""
    """Name of an existing Secret with keys `username` and `password`; empty: generate one
    (pulumi_random.RandomPassword, stored encrypted in the stack state)."""


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
#: `Resources` defaults (see JenkinsSettings._merge_resource_defaults).
JENKINS_RESOURCE_DEFAULTS: dict[str, dict[str, dict[str, str]]] = {
    "resources": _resources_data(("500m", "2"), ("2Gi", "4Gi"), ("1Gi", "4Gi")),
    "pluginInstallerResources": _resources_data(("250m", "1"), ("512Mi", "1Gi"), ("256Mi", "1Gi")),
    "agentResources": _resources_data(("250m", "1"), ("512Mi", "1Gi"), ("512Mi", "2Gi")),
    "pulumiAgentResources": _resources_data(("500m", "2"), ("1Gi", "2Gi"), ("1Gi", "4Gi")),
}


def _jenkins_resources(alias: str) -> Resources:
    return Resources.model_validate(JENKINS_RESOURCE_DEFAULTS[alias])


class JenkinsSettings(Model):
    """Jenkins controller with dynamic Kubernetes agents (off unless enabled)."""

    enabled: bool = False
    """Deploy Jenkins."""
    namespace: DNS1123 = "jenkins"
    """Namespace of the controller and its agent pods (must differ from the apps' namespace)."""
    image: ImageRef = "jenkins/jenkins:2.528.2-lts-jdk21"
    """Controller image, a pinned LTS tag (or a digest)."""
    agent_image: ImageRef = "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21"
    """Inbound agent image (`jnlp` container of every agent pod), pinned."""
    pulumi_agent_image: ImageRef = "python:3.11.14-slim-bookworm"
    """Tools container of the `pulumi` agent template; it must carry python 3.11, make, git, the
    Pulumi CLI, promtool, Node.js and Java (this repo's pipeline runs `make test` and deploys):
    build jenkins/agent/Dockerfile and set its pushed image here."""
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
    security: JenkinsPodSecurity = Field(default_factory=JenkinsPodSecurity)
    """UID/GID/fsGroup of the Jenkins pods."""
    kube_api_cidrs: list[Cidr] = Field(default_factory=list)
    """Kubernetes API server endpoint CIDRs the controller may reach on 443/6443 (required in
    prod; empty in dev means 0.0.0.0/0 on those two ports only)."""
    plugin_site_cidrs: list[Cidr] = Field(default_factory=list)
    """CIDRs the controller pod may reach on 443: the plugin update site (init container) and the
    SCM it reads Jenkinsfiles from; empty means 0.0.0.0/0 on 443 (updates.jenkins.io is a CDN
    without stable addresses)."""
    agent_egress_cidrs: list[Cidr] = Field(default_factory=list)
    """CIDRs agent pods may reach on 443 (git, pip, registries); empty means 0.0.0.0/0 on 443."""

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
        if self.ingress.enabled and not self.ingress.host:
            problems.add("ingress.host", "host is required when ingress.enabled is true")
        if parse_quantity(self.resources.limits.memory) < parse_quantity("1Gi"):
            problems.add(
                "resources.limits.memory",
                f"memory limit ({self.resources.limits.memory}) is below 1Gi; the Jenkins "
                "controller does not start reliably with less",
            )
        if _environment(info) == "prod":
            if not self.kube_api_cidrs:
                problems.add(
                    "kubeApiCidrs",
                    "prod requires the Kubernetes API server CIDRs (controller egress on "
                    "443/6443); `kubectl get endpoints kubernetes -n default` lists them",
                )
            if not self.home.protect:
                problems.add(
                    "home.protect",
                    "prod requires home.protect: true (JENKINS_HOME is protected and retained "
                    "on delete)",
                )
        problems.raise_if_any()
        return self


class StackConfig(Model):
    """The whole stack: `appstack:*` keys."""

    environment: Environment
    """dev or prod; selects the environment defaults and the prod invariants."""
    namespace: DNS1123 = "appstack"
    """Namespace of the apps."""
    apps: dict[AppName, AppConfig] = Field(min_length=1)
    """Services by name."""
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    """Cluster-wide network facts."""
    namespace_quota: NamespaceQuota = Field(default_factory=NamespaceQuota)
    """ResourceQuota of the namespace."""
    limit_range: LimitRangeSettings = Field(default_factory=LimitRangeSettings)
    """LimitRange of the namespace."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """ServiceMonitor / PrometheusRule."""
    secrets: dict[str, dict[str, SecretStr]] = Field(default_factory=dict)
    """Secret values per app (`pulumi config set --secret --path 'secrets.web.API_TOKEN'`)."""
    registry: RegistryCredentials | None = None
    """Login used to push images built from a `build` block; None uses Docker's own config."""
    # Jenkins (issue 4)
    jenkins: JenkinsSettings = Field(default_factory=JenkinsSettings)
    """Jenkins controller with Kubernetes agents in its own namespace (off unless enabled)."""

    @model_validator(mode="after")
    def _cross_app_rules(self) -> StackConfig:
        problems = Problems()
        for owner, values in self.secrets.items():
            if owner not in self.apps:
                problems.add(
                    f"secrets.{owner}", f"no app named {owner!r}; apps: {sorted(self.apps)}"
                )
            for key in values:
                if not _SECRET_KEY.match(key):
                    problems.add(
                        f"secrets.{owner}.{key}",
                        f"{key!r} is not a valid Secret key ([-._a-zA-Z0-9]+)",
                    )
        for name, app in self.apps.items():
            for i, rule in enumerate(app.egress):
                if rule.app is not None and rule.app not in self.apps:
                    problems.add(
                        f"apps.{name}.egress[{i}].app",
                        f"no app named {rule.app!r}; apps: {sorted(self.apps)}",
                    )
        problems.raise_if_any()
        return self

    @model_validator(mode="after")
    def _release_needs_monitoring(self) -> StackConfig:
        # Release (components/release.py): the Argo Rollouts analysis queries the error-ratio
        # recording rule, which only exists with monitoring on.
        problems = Problems()
        for name, app in self.apps.items():
            if app.release.argo_rollouts and not self.monitoring.enabled:
                problems.add(
                    f"apps.{name}.release.argoRollouts",
                    "argoRollouts needs appstack:monitoring.enabled: true (its AnalysisTemplate "
                    "queries the recording rule job:http_request_errors:ratio_rate5m)",
                )
        problems.raise_if_any()
        return self

    @model_validator(mode="after")
    def _jenkins_namespace(self) -> StackConfig:
        # Jenkins (issue 4): its own namespace, so its default deny, RBAC and agent pods never
        # mix with the apps'.
        if self.jenkins.enabled and self.jenkins.namespace == self.namespace:
            problems = Problems()
            problems.add(
                "jenkins.namespace",
                f"the Jenkins namespace ({self.jenkins.namespace}) must differ from the apps' "
                "namespace (appstack:namespace)",
            )
            problems.raise_if_any()
        return self

    def secret_keys(self, app: str) -> list[str]:
        """Names of the secret values configured for `app`, sorted."""
        return sorted(self.secrets.get(app, {}))


# --------------------------------------------------------------------------------------------
# Environment defaults: data, not `if env == "prod"` in components.
# --------------------------------------------------------------------------------------------

ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "app": {
            "replicas": 1,
            "service": {"type": "ClusterIP"},
            "autoscaling": {"enabled": False, "minReplicas": 1, "maxReplicas": 3},
            "pdb": {"enabled": True},
            "rollout": {"minReadySeconds": 5},
            "topology": {"zones": False, "whenUnsatisfiable": "ScheduleAnyway"},
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi", "ephemeralStorage": "32Mi"},
                "limits": {"cpu": "250m", "memory": "128Mi", "ephemeralStorage": "128Mi"},
            },
        },
        "stack": {
            "monitoring": {"alerts": {"errorRatio": 0.2, "p95LatencySeconds": 1.0}},
            # Jenkins (issue 4): small, unprotected home; ClusterIP UI.
            "jenkins": {
                "home": {"size": "8Gi", "protect": False},
                "service": {"type": "ClusterIP"},
            },
        },
    },
    "prod": {
        "app": {
            "replicas": 3,
            "service": {"type": "LoadBalancer"},
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 10},
            "pdb": {"enabled": True},
            "rollout": {
                "minReadySeconds": 10,
                "terminationGracePeriodSeconds": 45,
                "preStopSleepSeconds": 10,
            },
            "topology": {"zones": True, "whenUnsatisfiable": "DoNotSchedule"},
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi", "ephemeralStorage": "64Mi"},
                "limits": {"cpu": "1", "memory": "512Mi", "ephemeralStorage": "256Mi"},
            },
        },
        "stack": {
            "monitoring": {"alerts": {"errorRatio": 0.02, "p95LatencySeconds": 0.3}},
            # Jenkins (issue 4): larger home, protected and retained on delete.
            "jenkins": {
                "home": {"size": "50Gi", "protect": True},
                "service": {"type": "ClusterIP"},
            },
        },
    },
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, recursively for mappings; lists and scalars replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --------------------------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """Invalid stack config; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid stack config ({len(problems)} {noun}):\n  " + "\n  ".join(problems)
        )


def _top_key_names() -> list[str]:
    return sorted(f.alias or name for name, f in StackConfig.model_fields.items())


def with_defaults(raw: Mapping[str, Any], environment: str) -> dict[str, Any]:
    """Apply the environment defaults under the user's raw `appstack:*` values."""
    defaults = ENVIRONMENT_DEFAULTS[environment]
    merged = deep_merge(defaults["stack"], raw)
    apps = raw.get("apps")
    if isinstance(apps, Mapping):
        merged["apps"] = {
            name: deep_merge(defaults["app"], app) if isinstance(app, Mapping) else app
            for name, app in apps.items()
        }
    return merged


def load(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw `appstack:*` values (keys without the namespace) into a StackConfig.

    Raises ConfigError listing every problem found.
    """
    environment = raw.get("environment")
    if environment not in ENVIRONMENTS:
        # Without a valid environment no defaults apply; report it with the other problems.
        problems = [
            f"{PROJECT}:environment: {environment!r} is not an environment; "
            f"allowed: {', '.join(ENVIRONMENTS)}"
        ]
        try:
            StackConfig.model_validate({**raw, "environment": "dev"})
        except ValidationError as exc:
            problems += [
                p for p in format_errors(exc) if not p.startswith(f"{PROJECT}:environment")
            ]
        raise ConfigError(problems)
    merged = with_defaults(raw, str(environment))
    try:
        return StackConfig.model_validate(merged, context={"environment": environment})
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


def _key_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return f"{PROJECT}:{path}"


def format_errors(exc: ValidationError) -> list[str]:
    """One line per problem: `appstack:<key path>: <what is wrong and what is allowed>`."""
    lines: list[str] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        loc = [p for p in loc if p not in ("[key]",)]
        ctx = err.get("ctx") or {}
        if err["type"] == "appstack_rules":
            for sub, message in ctx["problems"]:
                lines.append(
                    f"{_key_path(loc)}: {message}"
                    if not sub
                    else f"{_key_path([*loc, *sub.split('.')])}: {message}"
                )
            continue
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            bad = str(loc[-1])
            hint = difflib.get_close_matches(bad, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(
                f"{_key_path(loc)}: unknown key{suggestion}; allowed: {', '.join(allowed)}"
            )
            continue
        message = err["msg"]
        if err["type"] == "literal_error":
            message = f"{err['input']!r} is not allowed; {message[0].lower()}{message[1:]}"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif "input" in err and err["type"] not in {
            "dns1123",
            "app_name",
            "quantity",
            "image",
            "image_unpinned",
            "cidr",
            "abs_path",
            "int_or_percent",
            "hpa_range",
            "probes_identical",
            "egress_target",
        }:
            message = (
                f"{err['input']!r}: {message}" if not isinstance(err["input"], dict) else message
            )
        lines.append(f"{_key_path(loc)}: {message}")
    return lines


def _unwrap(annotation: Any) -> Any:
    """The model class a (possibly Optional/list/dict/Annotated) annotation leads to."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _unwrap(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    if origin in (list, dict, typing.Mapping) or (origin is not None and get_args(annotation)):
        args = get_args(annotation)
        return _unwrap(args[-1]) if args else None
    return annotation


def _allowed_keys(loc: list[int | str]) -> list[str]:
    """The keys allowed at a location of the config tree (for unknown-key messages)."""
    model: Any = StackConfig
    expect_key = False  # next part is a dict key / list index (skip it)
    for part in loc:
        if expect_key:
            expect_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part),
            None,
        )
        if field is None:
            return []
        origin = get_origin(field.annotation)
        expect_key = origin in (dict, list) or (
            origin in (Union, types.UnionType)
            and any(get_origin(a) in (dict, list) for a in get_args(field.annotation))
        )
        model = _unwrap(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or n for n, f in model.model_fields.items())
    return []

"""Settings of an app's pods and their count: resources, probes, autoscaling, PDB, rollout,
topology spread, node placement (tolerations), pod security, the optional data volume (parts of
`AppConfig`)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from appstack_grammar import parse_quantity
from components.config.base import (
    IntOrPercent,
    LabelValue,
    Model,
    MountPath,
    ObjectName,
    OptionalLabelKey,
    PositiveQuantity,
    ProbePath,
    Problems,
    Quantity,
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
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    """Seconds of recommendations the HPA looks back over before it scales in (it keeps the
    highest): `behavior.scaleDown.stabilizationWindowSeconds`, 0..3600 as the autoscaling/v2
    API validates it. Shorter scales in sooner after a load and risks flapping."""

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


class Rollout(Model):
    """Rolling-update and shutdown timing."""

    max_surge: IntOrPercent = "25%"
    """Extra pods during a rollout; must be > 0 because maxUnavailable is always 0."""
    min_ready_seconds: int = Field(default=5, ge=0)
    """A new pod must stay ready this long before it counts as available."""
    progress_deadline_seconds: int = Field(default=600, ge=1)
    """Detection time of a bad version: a rollout without progress for this long is marked
    failed (Deployment condition Progressing=False, reason ProgressDeadlineExceeded) and
    `stackctl deploy` stops the update; per environment in ENVIRONMENT_DEFAULTS."""
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


class Toleration(Model):
    """A taint the app's pods tolerate (core/v1 Toleration), validated as the API server does:
    k8s.io/kubernetes pkg/apis/core/validation/validation.go `validateTolerations` (key a
    qualified name, or empty only with operator Exists; Exists with an empty value; Equal with a
    label value; effect empty or a taint effect; tolerationSeconds only with NoExecute). The
    operators Lt and Gt (feature gate TaintTolerationComparisonOperators, alpha) are not offered."""

    key: OptionalLabelKey = ""
    """Taint key (a label key); empty with operator Exists matches every taint."""
    operator: Literal["Equal", "Exists"] = "Equal"
    """Equal: the taint's value must be `value`; Exists: any value (then `value` stays empty)."""
    value: LabelValue = ""
    """Taint value for operator Equal (a label value)."""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    """Taint effect to tolerate; empty matches every effect."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """NoExecute only: how long a pod stays bound after the taint appears; None: forever."""

    @model_validator(mode="after")
    def _api_server_rules(self) -> Toleration:
        problems = Problems()
        if not self.key and self.operator != "Exists":
            problems.add(
                "operator",
                f"operator must be Exists when key is empty (which matches every taint key); "
                f"it is {self.operator}",
            )
        if self.operator == "Exists" and self.value:
            problems.add(
                "value", f"value must be empty when operator is Exists; it is {self.value!r}"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            problems.add(
                "tolerationSeconds",
                "tolerationSeconds needs effect: NoExecute (it bounds how long a NoExecute "
                f"taint leaves the pod running); effect is {self.effect or 'empty'}",
            )
        problems.raise_if_any()
        return self


class PodSecurity(Model):
    """Pod identity; the restricted profile itself is not configurable."""

    run_as_user: int = Field(default=10001, ge=10000)
    """UID (>= 10000, checkov CKV_K8S_40)."""
    run_as_group: int = Field(default=10001, ge=10000)
    """GID (>= 10000)."""
    fs_group: int = Field(default=10001, ge=10000)
    """Group owning mounted volumes."""


#: Paths the app's pod already mounts (components/app/pod.py): the writable /tmp emptyDir and the
#: app's Secret. The data volume may not be mounted at, above or below one of them.
TMP_MOUNT = "/tmp"
SECRETS_MOUNT = "/var/run/secrets/appstack"
POD_MOUNTS = (TMP_MOUNT, SECRETS_MOUNT)

AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]
#: Access modes one node (RWO) or one pod (RWOP) holds: no second pod elsewhere can mount them.
SINGLE_WRITER_MODES: tuple[AccessMode, ...] = ("ReadWriteOnce", "ReadWriteOncePod")


def _overlaps(path: str, other: str) -> bool:
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


class AppVolume(Model):
    """A PersistentVolumeClaim of the app, mounted in its container in every workload. A
    ReadWriteOnce claim is attached to one node and a ReadWriteOncePod claim to one pod, so no
    surge, second colour or canary pod elsewhere can mount it (AppConfig's volume rules)."""

    size: PositiveQuantity
    """Requested storage, a quantity (e.g. 1Gi)."""
    storage_class_name: ObjectName | None = None
    """StorageClass of the claim; unset means the cluster's default StorageClass."""
    mount_path: MountPath
    """Absolute path in the container; not /, not over /tmp or /var/run/secrets/appstack."""
    access_mode: AccessMode = "ReadWriteOnce"
    """ReadWriteOnce (default; one node), ReadWriteOncePod (one pod) or ReadWriteMany."""
    protect: bool = False
    """Pulumi `protect` + `retainOnDelete` on the claim, like JENKINS_HOME (required where
    prod's rules apply)."""

    @model_validator(mode="after")
    def _mount_path(self) -> AppVolume:
        path = self.mount_path
        problems = Problems()
        for taken in POD_MOUNTS:
            if _overlaps(path, taken):
                problems.add(
                    "mountPath",
                    f"mountPath ({path}) overlaps {taken}, which the pod already mounts; "
                    "allowed: a path neither under nor above " + " nor ".join(POD_MOUNTS),
                )
        problems.raise_if_any()
        return self

    @property
    def single_writer(self) -> bool:
        """ReadWriteOnce or ReadWriteOncePod: one node or one pod holds the claim."""
        return self.access_mode in SINGLE_WRITER_MODES

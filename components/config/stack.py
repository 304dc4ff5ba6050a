"""The whole stack (`StackConfig`) and the environment defaults, as data."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components.config.app import (
    AppConfig,
    RegistryCredentials,
)
from components.config.base import (
    CUSTOM_ERRORS,
    DNS1123,
    AppName,
    Environment,
    FreeText,
    Model,
    Problems,
    SecretKey,
)
from components.config.gitops import GitOps
from components.config.jenkins import (
    JenkinsSettings,
)
from components.config.retention import (
    RegistryRetention,
)
from components.config.settings import (
    LimitRangeSettings,
    Monitoring,
    NamespaceQuota,
    NetworkSettings,
)
from components.config.signing import ImageSigning
from components.kube import labels

CUSTOM_ERRORS.add("appstack_environment")

#: `--image <name>=...` of `stackctl deploy` names an app or, with this name, the Jenkins agent's
#: tools image (stackctl/ops/images.py), so no app may take it.
AGENT_IMAGE_NAME = "jenkins-agent"


class StackConfig(Model):
    """The whole stack: `appstack:*` keys."""

    environment: Environment
    """A key of ENVIRONMENT_DEFAULTS (dev, staging, prod); selects the environment defaults and
    whether prod's rules apply (`productionRules`)."""
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
    secrets: dict[
        AppName,
        dict[SecretKey, Annotated[SecretStr, FreeText("a secret value may hold any bytes")]],
    ] = Field(default_factory=dict)
    """Secret values per app (`pulumi config set --secret --path 'secrets.web.API_TOKEN'`)."""
    registry: RegistryCredentials | None = None
    """Login used to push images built from a `build` block; None uses Docker's own config."""
    registry_retention: RegistryRetention = Field(default_factory=RegistryRetention)
    """Commit-tag retention for `stackctl registry prune` (not rendered)."""
    # Jenkins (issue 4)
    jenkins: JenkinsSettings = Field(default_factory=JenkinsSettings)
    """Jenkins controller with Kubernetes agents in its own namespace (off unless enabled)."""
    image_signing: ImageSigning = Field(default_factory=ImageSigning)
    """Signatures `stackctl deploy --image` requires (never read by the program)."""
    gitops: GitOps = Field(default_factory=GitOps)
    """The Argo CD Application syncing the published manifests (off unless enabled)."""

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value not in ENVIRONMENT_DEFAULTS:
            raise PydanticCustomError(
                "appstack_environment",
                "'{value}' is not an environment; allowed: {allowed}",
                {"value": value, "allowed": ", ".join(environments())},
            )
        return value

    @model_validator(mode="after")
    def _cross_app_rules(self) -> StackConfig:
        problems = Problems()
        for owner, values in self.secrets.items():
            if owner not in self.apps:
                problems.add(
                    f"secrets.{owner}", f"no app named {owner!r}; apps: {sorted(self.apps)}"
                )
                continue
            # One variable, two definitions: a plain value in the ConfigMap (`env`) and a secret
            # (`secrets`, mounted under /var/run/secrets/appstack): which one the app reads
            # would be its own silent rule.
            for key in sorted(set(values) & set(self.apps[owner].env)):
                problems.add(
                    f"secrets.{owner}.{key}",
                    f"{key} is defined twice for app {owner!r}: as a plain value "
                    f"(appstack:apps.{owner}.env.{key}) and as a secret "
                    f"(appstack:secrets.{owner}.{key}); define it once: in secrets if the value "
                    "is secret, else in env",
                )
        if AGENT_IMAGE_NAME in self.apps:
            problems.add(
                f"apps.{AGENT_IMAGE_NAME}",
                f"the name {AGENT_IMAGE_NAME!r} is reserved for the Jenkins agent image "
                f"(`stackctl deploy --image {AGENT_IMAGE_NAME}=...` sets "
                "appstack:jenkins.pulumiAgentImage); rename the app",
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
    def _derived_names_unique(self) -> StackConfig:
        # Two apps must not derive the same object or resource name (components/kube/labels.py):
        # the API server would see one object twice, the engine a duplicate URN.
        problems = Problems()
        names = sorted(self.apps)
        for i, app in enumerate(names):
            for other in names[i + 1 :]:
                shared = labels.shared_derived_name(app, other)
                if shared is not None:
                    problems.add(
                        f"apps.{other}",
                        f"app names {app!r} and {other!r} collide: both derive the name "
                        f"{shared!r} (names derived from an app add suffixes such as -metrics, "
                        "-preview, -canary, -blue, -green); rename one of them",
                    )
        problems.raise_if_any()
        return self

    @model_validator(mode="after")
    def _release_needs_monitoring(self) -> StackConfig:
        # Release (components/app/release.py): the Argo Rollouts analysis queries the app's request
        # series, labelled per ReplicaSet by the ServiceMonitor, which only exists with
        # monitoring on.
        problems = Problems()
        if self.monitoring.alert_routing.enabled and not self.monitoring.enabled:
            problems.add(
                "monitoring.alertRouting.enabled",
                "alert routing needs appstack:monitoring.enabled: true (the AlertmanagerConfig "
                "routes the alerts of the stack's PrometheusRules)",
            )
        for name, app in self.apps.items():
            if app.release.argo_rollouts and not self.monitoring.enabled:
                problems.add(
                    f"apps.{name}.release.argoRollouts",
                    "argoRollouts needs appstack:monitoring.enabled: true (its AnalysisTemplate "
                    "queries the app's metrics, scraped by the ServiceMonitor per ReplicaSet)",
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

    @model_validator(mode="after")
    def _gitops_namespace(self) -> StackConfig:
        # The Application lives in Argo CD's namespace, outside the manifests it syncs: that
        # folder of the render is excluded from its own source (components/gitops.py).
        if not self.gitops.enabled:
            return self
        taken = {self.namespace: "appstack:namespace"}
        if self.jenkins.enabled:
            taken[self.jenkins.namespace] = "appstack:jenkins.namespace"
        if self.gitops.namespace in taken:
            problems = Problems()
            problems.add(
                "gitops.namespace",
                f"Argo CD's namespace ({self.gitops.namespace}) must differ from "
                f"{taken[self.gitops.namespace]}: the Application is kept out of the manifests "
                "it syncs by its namespace's folder",
            )
            problems.raise_if_any()
        return self

    def secret_keys(self, app: str) -> list[str]:
        """Names of the secret values configured for `app`, sorted."""
        return sorted(self.secrets.get(app, {}))


# --------------------------------------------------------------------------------------------
# Environments: data, not `if env == "prod"` in components.
#
# One entry per environment, in promotion order (dev -> staging -> prod); nothing else in the
# program lists them (stackctl's stack names, the pipelines' order and the tests read this).
# An entry is:
#   productionRules  whether prod's rules apply: the invariants of the config model (>= 2 pods,
#                    PDB, LoadBalancer source ranges, Jenkins API CIDRs / job / protected home)
#                    and, in the policy pack, the strict reading (policy/rules/base.py
#                    PRODUCTION_RULES says the same per environment; a test holds them equal);
#   app              defaults under every `appstack:apps.<name>` value;
#   stack            defaults under the stack-wide `appstack:*` values (among them
#                    `imageSigning.required`: whether `stackctl deploy --image` accepts only
#                    digests signed by the stack's key, components/config/signing.py);
#   maxProgressDeadlineSeconds (optional) the longest detection time of a bad version
#                    (`rollout.progressDeadlineSeconds`) an app may set (issue 29).
# --------------------------------------------------------------------------------------------

ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "productionRules": False,
        "app": {
            "replicas": 1,
            "service": {"type": "ClusterIP"},
            "autoscaling": {"enabled": False, "minReplicas": 1, "maxReplicas": 3},
            "pdb": {"enabled": True},
            # Detection time of a bad version (issue 29): 5 minutes in dev.
            "rollout": {"minReadySeconds": 5, "progressDeadlineSeconds": 300},
            "topology": {"zones": False, "whenUnsatisfiable": "ScheduleAnyway"},
            "slo": {"availability": 99.0},
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
    # staging: prod's rules and shape (autoscaled, PDB, zone spread, LoadBalancer with source
    # ranges, monitoring thresholds between dev's and prod's), at about half prod's size.
    "staging": {
        "productionRules": True,
        "maxProgressDeadlineSeconds": 300,
        "app": {
            "replicas": 2,
            "service": {"type": "LoadBalancer"},
            "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4},
            "pdb": {"enabled": True},
            "rollout": {
                "minReadySeconds": 10,
                "terminationGracePeriodSeconds": 45,
                "preStopSleepSeconds": 10,
                "progressDeadlineSeconds": 180,
            },
            "topology": {"zones": True, "whenUnsatisfiable": "DoNotSchedule"},
            "slo": {"availability": 99.5},
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi", "ephemeralStorage": "64Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi", "ephemeralStorage": "256Mi"},
            },
        },
        "stack": {
            "monitoring": {"alerts": {"errorRatio": 0.05, "p95LatencySeconds": 0.5}},
            # Jenkins runs once, in the prod stack; should a staging stack enable it, its home
            # is protected as prod's (prod's rules), at a smaller size.
            "jenkins": {
                "home": {"size": "20Gi", "protect": True},
                "service": {"type": "ClusterIP"},
            },
        },
    },
    "prod": {
        "productionRules": True,
        "maxProgressDeadlineSeconds": 120,
        "app": {
            "replicas": 3,
            "service": {"type": "LoadBalancer"},
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 10},
            "pdb": {"enabled": True},
            "rollout": {
                "minReadySeconds": 10,
                "terminationGracePeriodSeconds": 45,
                "preStopSleepSeconds": 10,
                # A bad version is caught within 2 minutes (issue 29); the startup budget
                # (probes.startup) plus minReadySeconds must stay below it (AppConfig).
                "progressDeadlineSeconds": 120,
            },
            "topology": {"zones": True, "whenUnsatisfiable": "DoNotSchedule"},
            "slo": {"availability": 99.9},
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi", "ephemeralStorage": "64Mi"},
                "limits": {"cpu": "1", "memory": "512Mi", "ephemeralStorage": "256Mi"},
            },
        },
        "stack": {
            "monitoring": {"alerts": {"errorRatio": 0.02, "p95LatencySeconds": 0.3}},
            # Signed images only (issue 32): a digest reaches prod only with a valid signature
            # from appstack:imageSigning.publicKey (stackctl/ops/signatures.py).
            "imageSigning": {"required": True},
            # Jenkins (issue 4): larger home, protected and retained on delete.
            "jenkins": {
                "home": {"size": "50Gi", "protect": True},
                "service": {"type": "ClusterIP"},
            },
        },
    },
}


def environments() -> tuple[str, ...]:
    """Every environment, in promotion order (the keys of ENVIRONMENT_DEFAULTS)."""
    return tuple(ENVIRONMENT_DEFAULTS)


def max_progress_deadline_seconds(environment: str) -> int | None:
    """The longest `rollout.progressDeadlineSeconds` an app of `environment` may set (None: no
    limit beyond the field's own)."""
    limit = ENVIRONMENT_DEFAULTS[environment].get("maxProgressDeadlineSeconds")
    return None if limit is None else int(limit)


def production_rules(environment: str) -> bool:
    """Whether prod's rules apply to `environment` (KeyError for an unknown one)."""
    return bool(ENVIRONMENT_DEFAULTS[environment]["productionRules"])

"""Typed, validated stack configuration (pydantic v2).

The stack files hold namespaced keys (`appstack:apps`, `appstack:namespace`, ...). Loading goes:

    raw keys  ->  environment defaults (data, `ENVIRONMENT_DEFAULTS`)  ->  field defaults
              ->  pydantic validation (types, ranges, unknown keys, cross-field rules)

Every problem is reported at once, one line each, naming the key path, the bad value and what is
allowed, e.g. `appstack:apps.web.autoscaling: minReplicas (5) must be <= maxReplicas (3)`.
Cross-field rules of one object run only once that object's own fields are valid.

Secret values live under `appstack:secrets` only (a map app -> key -> value) so that the rest of
the config stays plain and never has to be treated as secret.

One model tree, split by concern: `base` (field types, `Model`, `Problems`), `app` (one service;
its parts in `workload`, `traffic` and `release`),
`settings` (stack-wide facts, monitoring), `signing` (the signatures deploys require), `gitops`
(the Argo CD Application),
`jenkins`, `stack` (`StackConfig`, environment defaults), `loading` (`load`, error
formatting) and `reading` (the one reading of raw values that the engine path and the render
share). Import from `components.config`.
"""

from __future__ import annotations

from components.config.app import (
    RESERVED_ENV,
    AppConfig,
    AppVolume,
    Autoscaling,
    CanaryWeight,
    Colour,
    EgressPort,
    EgressRule,
    ImageBuild,
    Ingress,
    Pdb,
    PodSecurity,
    Probe,
    Probes,
    RegistryCredentials,
    ReleaseSettings,
    ReleaseStrategy,
    ResourceList,
    Resources,
    Rollout,
    ServiceSettings,
    SessionAffinity,
    Toleration,
    Topology,
    canary_pods,
)
from components.config.base import (
    DNS1123,
    MAX_APP_NAME,
    MOVING_TAGS,
    PROJECT,
    AppName,
    Cidr,
    Environment,
    ImageRef,
    IntOrPercent,
    Model,
    ObjectName,
    Port,
    ProbePath,
    Problems,
    Quantity,
    deep_merge,
    image_parts,
)
from components.config.gitops import GitOps
from components.config.jenkins import (
    JENKINS_DEFAULT_CIDR,
    JENKINS_RESOURCE_DEFAULTS,
    JenkinsAdmin,
    JenkinsCloud,
    JenkinsHome,
    JenkinsPodSecurity,
    JenkinsServiceSettings,
    JenkinsSettings,
)
from components.config.loading import (
    SECRET_KEYS,
    ConfigError,
    check_secret_keys,
    format_errors,
    load,
    load_image_signing,
    with_defaults,
)
from components.config.settings import (
    AlertRouting,
    AlertSettings,
    LimitRangeSettings,
    Monitoring,
    NamespaceQuota,
    NetworkSettings,
)
from components.config.signing import ImageSigning, key_algorithm
from components.config.stack import (
    ENVIRONMENT_DEFAULTS,
    StackConfig,
    environments,
    production_rules,
)

__all__ = [
    "DNS1123",
    "ENVIRONMENT_DEFAULTS",
    "JENKINS_DEFAULT_CIDR",
    "JENKINS_RESOURCE_DEFAULTS",
    "MAX_APP_NAME",
    "MOVING_TAGS",
    "PROJECT",
    "RESERVED_ENV",
    "SECRET_KEYS",
    "AlertRouting",
    "AlertSettings",
    "AppConfig",
    "AppName",
    "AppVolume",
    "Autoscaling",
    "CanaryWeight",
    "Cidr",
    "Colour",
    "ConfigError",
    "EgressPort",
    "EgressRule",
    "Environment",
    "GitOps",
    "ImageBuild",
    "ImageRef",
    "ImageSigning",
    "Ingress",
    "IntOrPercent",
    "JenkinsAdmin",
    "JenkinsCloud",
    "JenkinsHome",
    "JenkinsPodSecurity",
    "JenkinsServiceSettings",
    "JenkinsSettings",
    "LimitRangeSettings",
    "Model",
    "Monitoring",
    "NamespaceQuota",
    "NetworkSettings",
    "ObjectName",
    "Pdb",
    "PodSecurity",
    "Port",
    "Probe",
    "ProbePath",
    "Probes",
    "Problems",
    "Quantity",
    "RegistryCredentials",
    "ReleaseSettings",
    "ReleaseStrategy",
    "ResourceList",
    "Resources",
    "Rollout",
    "ServiceSettings",
    "SessionAffinity",
    "StackConfig",
    "Toleration",
    "Topology",
    "canary_pods",
    "check_secret_keys",
    "deep_merge",
    "environments",
    "format_errors",
    "image_parts",
    "key_algorithm",
    "load",
    "load_image_signing",
    "production_rules",
    "with_defaults",
]

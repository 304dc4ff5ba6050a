"""Names and labels, in one place.

Every Kubernetes name the program creates comes from `resource_name`, every label set from
`selector_labels` / `standard_labels`. Selectors use only the stable labels (name, instance),
never `version`, so a new release never orphans its own pods (cf. the Jenkins Helm chart's
`_helpers.tpl`).
"""

from __future__ import annotations

import hashlib
import re

# The syntax rules themselves live in the value grammar (appstack_grammar), re-exported here.
from appstack_grammar.names import DNS1035_LABEL as DNS1035_LABEL
from appstack_grammar.names import DNS1123_LABEL as DNS1123_LABEL
from appstack_grammar.names import LABEL_VALUE as LABEL_VALUE
from appstack_grammar.names import MAX_LABEL

MAX_NAME = MAX_LABEL
PART_OF = "appstack"
MANAGED_BY = "pulumi"


NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
VERSION = "app.kubernetes.io/version"
PART_OF_KEY = "app.kubernetes.io/part-of"
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"

# Annotation keys owned by appstack.
ANNOTATION_PREFIX = "appstack.io"
CONFIG_CHECKSUM = f"{ANNOTATION_PREFIX}/config-checksum"

# Release labels (components/app/release.py): on pods and in the selectors of their Deployment,
# never in the app's stable selector, so the NetworkPolicies and the metrics Service cover
# every colour and track.
COLOUR = f"{ANNOTATION_PREFIX}/colour"
"""blue | green: the blue-green colour of a pod."""
TRACK = f"{ANNOTATION_PREFIX}/track"
"""stable | canary: the canary track of a pod."""


# Names derived from an app's name `<app>`: Kubernetes object names `<app>` and `<app>-<suffix>`
# (one namespace holds every app), and the Pulumi logical names `<app>-<suffix>` of the
# resources the app's components register (a URN is type chain + logical name, so two apps
# must not derive the same one). `*` stands for a generated part (a content hash, a tag).
# tests/test_config.py renders every release strategy with every option on and checks that
# each derived name is covered here; config validation rejects apps whose names collide.
OBJECT_SUFFIXES: tuple[str, ...] = (
    "metrics",  # the metrics Service
    "secrets",  # the Secret
    "config-*",  # the content-named ConfigMap
    "preview",  # blue-green: the preview Service and its PDB
    "canary",  # canary: Deployment, Service, Ingress, PDB of the canary track
    "blue",  # blue-green Deployments
    "green",
    "error-ratio",  # Argo Rollouts AnalysisTemplate
    "dashboard",  # the Grafana dashboard ConfigMap (monitoring on)
)
RESOURCE_SUFFIXES: tuple[str, ...] = (
    "sa",
    "config-*",  # the content-named ConfigMap, one resource per content (content_logical_name)
    "secret",
    "service",
    "metrics-service",
    "preview-service",
    "canary-service",
    "hpa",
    "pdb",
    "preview-pdb",
    "canary-pdb",
    "ingress",
    "canary-ingress",
    "network",
    "network-netpol",
    "deployment",
    "deployment-blue",
    "deployment-green",
    "deployment-canary",
    "rollout",
    "analysis",
    "build",
    "build-image",
    "build-registry",
    "build-tag-*",
    "build-push-*",
    "monitoring",
    "monitoring-servicemonitor",
    "monitoring-prometheusrule",
    "monitoring-dashboard",
)


def _matches(name: str, app: str, suffix: str) -> bool:
    if suffix.endswith("*"):
        return name.startswith(f"{app}-{suffix[:-1]}")
    return name == f"{app}-{suffix}"


def shared_derived_name(app: str, other: str) -> str | None:
    """A name both apps would derive (an object name or a resource's logical name), or None.

    Judged per scope (objects, resources) across kinds and types, which errs on the safe side.
    """
    if not (app.startswith(other) or other.startswith(app)):
        # every name an app derives starts with the app's name, so a name both derive starts
        # with both names: one is a prefix of the other (a quick exit, else O(apps^2 suffixes^2))
        return None
    for scope_suffixes, bare in ((OBJECT_SUFFIXES, True), (RESOURCE_SUFFIXES, False)):
        for first, second in ((app, other), (other, app)):
            names = ([second] if bare else []) + [f"{second}-{s}" for s in scope_suffixes]
            for name in names:
                if any(_matches(name, first, s) for s in scope_suffixes):
                    return name
    return None


def resource_name(*parts: str) -> str:
    """Join parts into a DNS-1123 label of at most 63 characters.

    A name that would be longer is cut and given a short hash of the full name, so two long
    names that share a prefix never collide (Helm's `trunc 63 | trimSuffix "-"` loses that).
    """
    full = "-".join(p.strip("-") for p in parts if p).lower()
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_NAME - 9].rstrip('-')}-{digest}"


def label_value(value: str) -> str:
    """A string made safe as a label value: allowed characters only, at most 63, alnum ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:MAX_NAME]
    return cleaned.strip("-_.")


def selector_labels(app: str, instance: str) -> dict[str, str]:
    """The stable labels a selector may use: they never change for the life of a workload."""
    return {NAME: app, INSTANCE: instance}


def standard_labels(app: str, instance: str, component: str, version: str = "") -> dict[str, str]:
    """The recommended app.kubernetes.io/* labels for an object of `app`.

    `version` goes only on what runs a version: a workload (Deployment, Rollout, StatefulSet)
    and its pod template. On every other object (Services, HPA, PDB, NetworkPolicy, Ingress,
    ServiceAccount, monitoring objects) it would make an image bump an update of that object:
    under the real engine one more step, one more await (Services settle 10 s, pulumi-kubernetes
    provider/pkg/await/service.go) and two more full-state writes each (docs/performance.md).
    """
    labels = {
        **selector_labels(app, instance),
        COMPONENT: component,
        PART_OF_KEY: PART_OF,
        MANAGED_BY_KEY: MANAGED_BY,
    }
    if version:
        labels[VERSION] = label_value(version)
    return labels


def namespace_labels(namespace: str, instance: str) -> dict[str, str]:
    """Labels for a namespace: Pod Security admission 'restricted' plus the stack labels."""
    return {
        "kubernetes.io/metadata.name": namespace,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        INSTANCE: instance,
        PART_OF_KEY: PART_OF,
        MANAGED_BY_KEY: MANAGED_BY,
    }


def content_hash(text: str, length: int = 10) -> str:
    """A short, stable hash of some content, for content-named objects and checksums."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def content_logical_name(base: str, object_name: str) -> str:
    """The Pulumi logical name of a content-named object: `base` plus the name's last segment
    (its content hash, or for a name cut to 63 characters the hash of the full name).

    One Pulumi resource per content: a content change registers a new URN (a create) and leaves
    the old one unregistered, which the engine deletes only after the whole program succeeded
    (pulumi pkg/v3 resource/deploy: GenerateDeletes runs from performPostSteps, skipped when a
    step failed). Under one constant logical name a content change is a create-before-delete
    replacement, and a failed update leaves the old object as a pending delete (`delete: true`)
    that the next update (a rollback re-registering that very object) carries out."""
    return f"{base}-{object_name.rsplit('-', 1)[-1]}"

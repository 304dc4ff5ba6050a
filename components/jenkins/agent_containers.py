"""The containers every Jenkins agent pod is made of (the kubernetes cloud's templates in
components/jenkins/agents.py, the image builder's pod in components/jenkins/builder.py), and the
pod template that carries such a pod, with its JCasC entry: one definition, so the two kinds of
agent pod cannot drift apart. Plain data (raw pod dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from components.config import Resources
from components.kube.security import restricted_container_security_dict

#: The agent user's home (remoting's jar cache, tool caches) and the workspace beneath it.
AGENT_HOME = "/home/jenkins"
AGENT_WORKDIR = "/home/jenkins/agent"


def resource_map(resources: Resources, side: str) -> dict[str, str]:
    """requests or limits of a container as a Kubernetes resource map."""
    values = resources.requests if side == "requests" else resources.limits
    return {
        "cpu": values.cpu,
        "memory": values.memory,
        "ephemeral-storage": values.ephemeral_storage,
    }


def resource_requirements(resources: Resources) -> dict[str, dict[str, str]]:
    """`resources` of a raw container dict: its requests and limits."""
    return {side: resource_map(resources, side) for side in ("requests", "limits")}


def agent_container(
    name: str, image: str, resources: Resources, run_as_user: int, run_as_group: int
) -> dict[str, Any]:
    """A container of an agent pod (`jnlp`, the tools container, the image builder's `jnlp`):
    restricted security as `run_as_user`/`run_as_group`, the agent's home and workspace."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        "workingDir": AGENT_WORKDIR,
        "env": [
            {"name": "HOME", "value": AGENT_HOME},
            {"name": "JENKINS_AGENT_WORKDIR", "value": AGENT_WORKDIR},
        ],
        "resources": resource_requirements(resources),
        "securityContext": restricted_container_security_dict(run_as_user, run_as_group),
        "volumeMounts": [
            {"name": "home", "mountPath": AGENT_HOME},
            {"name": "workspace-volume", "mountPath": AGENT_WORKDIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def pull_secrets_dict(names: list[str]) -> dict[str, Any]:
    """`imagePullSecrets` of a raw pod dict (JCasC agent templates); {} when there are none."""
    return {"imagePullSecrets": [{"name": n} for n in names]} if names else {}


@dataclass(frozen=True)
class PodTemplate:
    """One pod template of the kubernetes cloud (`default`, `pulumi`, the image `builder`)."""

    name: str
    label: str
    """Jobs ask for the template by this label."""
    namespace: str
    """Where its pods run."""
    exclusive: bool
    """Only jobs that ask for `label` run there."""
    idle_minutes: int
    """How long an idle pod is kept for the next job (0: one job per pod)."""
    pod: Mapping[str, Any]
    """The raw pod (the kubernetes plugin's `yaml`); its ServiceAccount is the template's."""


def casc_pod_template(template: PodTemplate, pod_retention: str) -> dict[str, Any]:
    """The JCasC `templates` entry of a pod template of the cloud.

    The raw pod yaml overrides (`yamlMergeStrategy: override`) rather than merges with the
    plugin's defaults, so what runs is exactly what was rendered; `showRawYaml: false` keeps it
    out of build logs.
    """
    return {
        "name": template.name,
        "label": template.label,
        "namespace": template.namespace,
        "serviceAccount": template.pod["spec"]["serviceAccountName"],
        "nodeUsageMode": "EXCLUSIVE" if template.exclusive else "NORMAL",
        "idleMinutes": template.idle_minutes,
        "podRetention": pod_retention,
        "showRawYaml": False,
        "yamlMergeStrategy": "override",
        "yaml": yaml.safe_dump(dict(template.pod), sort_keys=False, width=1000),
    }

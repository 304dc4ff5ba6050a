"""The containers every Jenkins agent pod is made of (the kubernetes cloud's templates in
components/jenkins/agents.py, the image builder's pod in components/jenkins/builder.py), and the
JCasC pod-template entry that carries such a pod: one definition, so the two kinds of agent pod
cannot drift apart. Plain data (raw pod dicts)."""

from __future__ import annotations

from collections.abc import Mapping
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


def casc_pod_template(
    *,
    name: str,
    label: str,
    namespace: str,
    service_account: str,
    exclusive: bool,
    idle_minutes: int,
    pod_retention: str,
    pod: Mapping[str, Any],
) -> dict[str, Any]:
    """A pod template of the kubernetes cloud (JCasC `templates` entry).

    `exclusive`: only jobs that ask for `label` run there. The raw `pod` yaml overrides
    (`yamlMergeStrategy: override`) rather than merges with the plugin's defaults, so what runs
    is exactly what was rendered; `showRawYaml: false` keeps it out of build logs.
    """
    return {
        "name": name,
        "label": label,
        "namespace": namespace,
        "serviceAccount": service_account,
        "nodeUsageMode": "EXCLUSIVE" if exclusive else "NORMAL",
        "idleMinutes": idle_minutes,
        "podRetention": pod_retention,
        "showRawYaml": False,
        "yamlMergeStrategy": "override",
        "yaml": yaml.safe_dump(dict(pod), sort_keys=False, width=1000),
    }

"""Agent pods of the Kubernetes cloud (the kubernetes plugin's pod templates, plain data)."""

from __future__ import annotations

from typing import Any

import yaml

from components import labels
from components.config import JenkinsSettings, Resources
from components.jenkins.names import AGENT_APP, AGENT_HOME, AGENT_WORKDIR, TOOLS_CONTAINER
from components.jenkins_builder import pull_secrets_dict
from components.security import restricted_container_security_dict, restricted_pod_security_dict

# emptyDir sizes, each sized for what lands on it:
#: /home/jenkins: remoting's jar cache (~10 MiB) and the tools' dot-directories; the Pulumi CLI
#: downloads resource plugins to ~/.pulumi/plugins (kubernetes ~150 MiB, random, docker: ~400 MiB
#: for this repo's requirements.txt pins) and pip/npm caches land here too.
AGENT_HOME_SIZE = "1Gi"
#: Workspace of the `default` template: a checkout of this repository (a few MiB) and logs.
WORKSPACE_SIZE = "2Gi"
#: Workspace of the `pulumi` template: the checkout plus the venvs `make test` creates (Pulumi
#: SDKs, checkov: ~1.5 GiB), node_modules (~200 MiB) and the rendered stacks.
TOOLS_WORKSPACE_SIZE = "4Gi"
#: /tmp: pip build directories and the previews' scratch files.
TMP_SIZE = "1Gi"


def resource_map(resources: Resources, side: str) -> dict[str, str]:
    """requests or limits of a container as a Kubernetes resource map."""
    values = resources.requests if side == "requests" else resources.limits
    return {
        "cpu": values.cpu,
        "memory": values.memory,
        "ephemeral-storage": values.ephemeral_storage,
    }


def agent_pod_labels(instance: str) -> dict[str, str]:
    """Labels of every agent pod (the NetworkPolicies select agents by the stable ones)."""
    return labels.standard_labels(AGENT_APP, instance, "agent")


def _agent_container(
    name: str, image: str, resources: Resources, settings: JenkinsSettings
) -> dict[str, Any]:
    sec = settings.security
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        "workingDir": AGENT_WORKDIR,
        "env": [
            {"name": "HOME", "value": AGENT_HOME},
            {"name": "JENKINS_AGENT_WORKDIR", "value": AGENT_WORKDIR},
        ],
        "resources": {
            "requests": resource_map(resources, "requests"),
            "limits": resource_map(resources, "limits"),
        },
        "securityContext": restricted_container_security_dict(sec.run_as_user, sec.run_as_group),
        "volumeMounts": [
            {"name": "home", "mountPath": AGENT_HOME},
            {"name": "workspace-volume", "mountPath": AGENT_WORKDIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def agent_pod(
    settings: JenkinsSettings, instance: str, service_account: str, *, tools: bool
) -> dict[str, Any]:
    """The raw pod of an agent template (the kubernetes plugin's `yaml`, merge `override`):
    restricted security on every container, no token, emptyDirs for every writable path."""
    sec = settings.security
    containers = [
        _agent_container("jnlp", settings.agent_image, settings.agent_resources, settings)
    ]
    if tools:
        tools_container = _agent_container(
            TOOLS_CONTAINER,
            settings.pulumi_agent_image,
            settings.pulumi_agent_resources,
            settings,
        )
        # Kept alive for `container('pulumi') { sh ... }` steps, which run through pods/exec.
        tools_container["command"] = ["sleep"]
        tools_container["args"] = ["infinity"]
        containers.append(tools_container)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": agent_pod_labels(instance)},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            **pull_secrets_dict(settings.image_pull_secrets),  # private registry (issue 11)
            "restartPolicy": "Never",
            "securityContext": restricted_pod_security_dict(
                sec.run_as_user, sec.run_as_group, sec.fs_group
            ),
            "containers": containers,
            "volumes": [
                {"name": "home", "emptyDir": {"sizeLimit": AGENT_HOME_SIZE}},
                {
                    "name": "workspace-volume",
                    "emptyDir": {"sizeLimit": TOOLS_WORKSPACE_SIZE if tools else WORKSPACE_SIZE},
                },
                {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
            ],
        },
    }


def pod_template(
    settings: JenkinsSettings,
    instance: str,
    namespace: str,
    service_account: str,
    *,
    name: str,
    label: str,
    tools: bool,
) -> dict[str, Any]:
    """One pod template of the cloud (`default`: inbound agent; `pulumi`: + tools container)."""
    pod = agent_pod(settings, instance, service_account, tools=tools)
    return {
        "name": name,
        "label": label,
        "namespace": namespace,
        "serviceAccount": service_account,
        "nodeUsageMode": "EXCLUSIVE" if tools else "NORMAL",
        "idleMinutes": settings.cloud.idle_minutes,
        "podRetention": settings.cloud.pod_retention,
        "showRawYaml": False,
        "yamlMergeStrategy": "override",
        "yaml": yaml.safe_dump(pod, sort_keys=False, width=1000),
    }

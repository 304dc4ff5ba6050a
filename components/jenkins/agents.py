"""Agent pods of the Kubernetes cloud (the kubernetes plugin's pod templates, plain data)."""

from __future__ import annotations

from typing import Any

from components.config import JenkinsSettings
from components.jenkins.agent_containers import PodTemplate, agent_container, pull_secrets_dict
from components.jenkins.names import AGENT_APP, TOOLS_CONTAINER
from components.kube import labels
from components.kube.security import restricted_pod_security_dict

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


def agent_pod_labels(instance: str) -> dict[str, str]:
    """Labels of every agent pod (the NetworkPolicies select agents by the stable ones)."""
    return labels.standard_labels(AGENT_APP, instance, "agent")


def agent_pod(
    settings: JenkinsSettings, instance: str, service_account: str, *, tools: bool
) -> dict[str, Any]:
    """The raw pod of an agent template (the kubernetes plugin's `yaml`, merge `override`):
    restricted security on every container, no token, emptyDirs for every writable path."""
    sec = settings.security
    containers = [
        agent_container(
            "jnlp",
            settings.agent_image,
            settings.agent_resources,
            sec.run_as_user,
            sec.run_as_group,
        )
    ]
    if tools:
        tools_container = agent_container(
            TOOLS_CONTAINER,
            settings.pulumi_agent_image,
            settings.pulumi_agent_resources,
            sec.run_as_user,
            sec.run_as_group,
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


def pod_templates(
    settings: JenkinsSettings, instance: str, namespace: str, service_account: str
) -> list[PodTemplate]:
    """The cloud's templates in the Jenkins namespace: `default` (inbound agent) and `pulumi`
    (+ tools container, for its jobs only)."""
    return [
        PodTemplate(
            name,
            label,
            namespace,
            exclusive=tools,
            # The Jenkinsfile's agents are per-build templates (`inheritFrom`, a unique label each
            # build): kubernetes plugin PodTemplateUtils.combine takes the child's idleMinutes
            # only when non-zero, else the parent's, so an idle parent would keep every build's
            # pod for idleMinutes against containerCap. `pulumi` (tools) is such a parent: 0.
            idle_minutes=0 if tools else settings.cloud.idle_minutes,
            pod=agent_pod(settings, instance, service_account, tools=tools),
        )
        for name, label, tools in (("default", AGENT_APP, False), ("pulumi", "pulumi", True))
    ]

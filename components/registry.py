"""RegistryPullSecret: the `kubernetes.io/dockerconfigjson` Secret the kubelet pulls private
images with, built from `appstack:registry` (username, password, server) when `pullSecret` is on.

The Secret's only key is `.dockerconfigjson`, the Docker config file format the kubelet reads for
that type (`{"auths": {"<server>": {"username", "password", "auth": base64(user:password)}}}`,
k8s.io/kubernetes pkg/credentialprovider). The password arrives as a Pulumi secret and the whole
document stays one, so it is encrypted in the state and redacted in every render.

Pods name it in `imagePullSecrets` (components/app/component.py for the apps; the Jenkins
controller and agent templates in components/jenkins/builder.py), next to any Secret an app lists
itself.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kube import labels

PULL_SECRET_NAME = "registry-credentials"
COMPONENT = "registry"


def dockerconfigjson(server: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` document for one registry."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    entry = {"username": username, "password": password, "auth": auth}
    return json.dumps({"auths": {server: entry}}, sort_keys=True)


@dataclass(frozen=True)
class RegistryPullSecretArgs:
    """Inputs of one pull Secret."""

    namespace: pulumi.Input[str]
    """Namespace of the pods that pull with it (a Secret is only usable in its namespace)."""
    instance: str
    """app.kubernetes.io/instance label value."""
    server: str
    """Registry host, e.g. registry.example.com."""
    username: str
    """Registry user."""
    password: pulumi.Input[str]
    """Registry password or token (a Pulumi secret)."""


class RegistryPullSecret(pulumi.ComponentResource):
    """A dockerconfigjson Secret named `registry-credentials` in one namespace."""

    def __init__(
        self, name: str, args: RegistryPullSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:registry:RegistryPullSecret", name, None, opts)
        # apply() on a secret Output yields a secret Output: the document is never in clear.
        document: pulumi.Output[str] = pulumi.Output.secret(args.password).apply(
            lambda password: dockerconfigjson(args.server, args.username, password)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=PULL_SECRET_NAME,
                namespace=args.namespace,
                labels=labels.standard_labels(COMPONENT, args.instance, "credentials"),
            ),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": document},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_name: pulumi.Output[str] = secret.metadata.name
        self.register_outputs({"secret_name": self.secret_name})

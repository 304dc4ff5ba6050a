"""The app's configuration as Kubernetes data: the ConfigMap's values and content-addressed
name (a change of data rolls the pods) and the Secret's base64 values, each a Pulumi secret.
May import: components.config, components.kube."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import pulumi

from components.config import AppConfig
from components.kube import labels


def config_data(app: AppConfig) -> dict[str, str]:
    """ConfigMap data: the user's env plus the ports derived from config. Not the version:
    APP_VERSION comes from the pod's own version label (components.app.pod), so an image bump
    leaves the ConfigMap as it is (no new content-named ConfigMap, no replacement step)."""
    return {
        **app.env,
        "PORT": str(app.port),
        "METRICS_PORT": str(app.metrics_port),
    }


def config_map_name(app_name: str, data: Mapping[str, str]) -> str:
    """Content-addressed name: any change of data gives a new name, which rolls the pods."""
    digest = labels.content_hash(json.dumps(dict(data), sort_keys=True))
    return labels.resource_name(app_name, "config", digest)


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_data(values: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Output[str]]:
    """Secret `data` (base64), each value a Pulumi secret.

    Not `stringData`: the API server merges stringData into data and never stores it
    (k8s.io/api core/v1 Secret), so a Server-Side Apply of stringData owns `stringData.<key>`,
    never `data.<key>`, and a key removed from the config stays in the Secret (and mounted).
    pulumi-kubernetes rewrites stringData into data only when no input is computed
    (provider/pkg/provider/provider.go `normalizeInputs`, clients/unstructured.go
    `normalizeSecret`, pulumi-kubernetes v4.25.0); with `data` the applied fields
    are the stored ones, so SSA deletes the fields of a removed key.
    """
    return {
        key: pulumi.Output.secret(pulumi.Output.from_input(value).apply(_base64))
        for key, value in sorted(values.items())
    }

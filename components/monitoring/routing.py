"""Where the stack's alerts go: one prometheus-operator `AlertmanagerConfig`
(monitoring.coreos.com/v1alpha1) in the apps' namespace, when `appstack:monitoring.enabled` and
`appstack:monitoring.alertRouting.enabled` are both true.

The route sends `severity: critical` alerts (pages) to one webhook and everything else
(`severity: warning`, tickets) to another, grouped by alert and app; each URL is read by
Alertmanager from a key of a Secret that ops create in the apps' namespace
(`alertRouting.webhookSecret`), so no URL (often a credential) is in the stack files or the
render. The Alertmanager selects the object by the same `prometheusSelectorLabels` as the
ServiceMonitors; with its default matcher strategy (`OnNamespace`) the operator adds a
`namespace="<apps' namespace>"` matcher, so this stack's routes only ever see its own alerts.

Every alert of the stack carries what the receiver needs to act (component.py `alert_groups`):
labels `app`, `namespace` (from the series), `environment` and `severity`, and the annotations
`summary`, `description` and `runbook_url`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import AlertRouting
from components.kube import labels
from components.monitoring.alert_model import SEVERITIES

API_VERSION = "monitoring.coreos.com/v1alpha1"
NAME = "appstack-alerts"
#: Alerts are grouped per alert name and app (the namespace is fixed by the operator's matcher).
GROUP_BY = ("alertname", "app")


def receiver_name(severity: str) -> str:
    return f"webhook-{severity}"


def alertmanager_config_spec(routing: AlertRouting) -> dict[str, object]:
    """The AlertmanagerConfig spec: warning alerts (and any alert of an unknown severity) at the
    root receiver, critical ones on a child route."""
    keys = {"critical": routing.critical_key, "warning": routing.warning_key}
    assert set(keys) == SEVERITIES, "a key per severity the rules use (alert_model.SEVERITIES)"
    return {
        "route": {
            "receiver": receiver_name("warning"),
            "groupBy": list(GROUP_BY),
            "groupWait": routing.group_wait,
            "groupInterval": routing.group_interval,
            "repeatInterval": routing.repeat_interval,
            "routes": [
                {
                    "receiver": receiver_name("critical"),
                    "matchers": [{"name": "severity", "value": "critical", "matchType": "="}],
                }
            ],
        },
        "receivers": [
            {
                "name": receiver_name(severity),
                "webhookConfigs": [
                    {
                        "urlSecret": {"name": routing.webhook_secret, "key": keys[severity]},
                        "sendResolved": True,
                    }
                ],
            }
            for severity in sorted(keys)
        ],
    }


@dataclass(frozen=True)
class StackAlertRoutingArgs:
    """Inputs of the stack's alert routing."""

    routing: AlertRouting
    """Receivers, Secret and timings (appstack:monitoring.alertRouting)."""
    selector_labels: dict[str, str]
    """Labels the cluster's Alertmanager selects AlertmanagerConfigs by (the same
    appstack:monitoring.prometheusSelectorLabels as the ServiceMonitors)."""
    namespace_input: pulumi.Input[str]
    """The apps' namespace (an Output of the Namespace resource: orders creation after it)."""
    instance: str
    """app.kubernetes.io/instance label value."""


class StackAlertRouting(pulumi.ComponentResource):
    """The stack's AlertmanagerConfig."""

    def __init__(
        self, name: str, args: StackAlertRoutingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:monitoring:StackAlertRouting", name, None, opts)
        config = k8s.apiextensions.CustomResource(
            f"{name}-alertmanagerconfig",
            api_version=API_VERSION,
            kind="AlertmanagerConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAME,
                namespace=args.namespace_input,
                labels={
                    **labels.standard_labels(NAME, args.instance, "monitoring"),
                    **args.selector_labels,
                },
            ),
            spec=alertmanager_config_spec(args.routing),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # CustomResource has no typed metadata output; the name is ours, tied to the resource.
        self.alertmanager_config_name: pulumi.Output[str] = config.urn.apply(lambda _: NAME)
        self.register_outputs({"alertmanager_config_name": self.alertmanager_config_name})

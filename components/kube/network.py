"""Traffic builders every component uses: NetworkPolicy peers (a namespace, IP blocks) and the
spec of an Ingress to one Service port. Plain typed SDK args, no resources.

The policies themselves: the namespace baseline (default deny + DNS) in
components/kube/baseline.py, one app's allowances in components/app/network_policy.py, the
Jenkins controller's and agents' in components/jenkins/policies.py and builder.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_selector(namespace: str) -> k8s.meta.v1.LabelSelectorArgs:
    """Selects one namespace by its immutable kubernetes.io/metadata.name label."""
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NS_NAME_LABEL: namespace})


def namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Every pod of one namespace (by its immutable kubernetes.io/metadata.name label)."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=namespace_selector(namespace))


def cidr_peers(cidrs: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """One peer per IP block."""
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
        for cidr in cidrs
    ]


class IngressRoute(Protocol):
    """What an Ingress routes (components.config.Ingress, of an app or of Jenkins)."""

    @property
    def class_name(self) -> str | None: ...
    @property
    def host(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def tls_secret_name(self) -> str | None: ...


def ingress_spec(
    ingress: IngressRoute,
    service_name: pulumi.Input[str],
    port_name: str = "http",
    extra_paths: Sequence[k8s.networking.v1.HTTPIngressPathArgs] = (),
) -> k8s.networking.v1.IngressSpecArgs:
    """An Ingress routing `ingress.host` + path prefix to a Service port (TLS when a secret is
    configured), after `extra_paths` (more specific paths to other backends). Used by the apps
    and the Jenkins UI."""
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=ingress.class_name,
        tls=[
            k8s.networking.v1.IngressTLSArgs(
                hosts=[ingress.host], secret_name=ingress.tls_secret_name
            )
        ]
        if ingress.tls_secret_name
        else None,
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=ingress.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[
                        *extra_paths,
                        k8s.networking.v1.HTTPIngressPathArgs(
                            path=ingress.path,
                            path_type="Prefix",
                            backend=k8s.networking.v1.IngressBackendArgs(
                                service=k8s.networking.v1.IngressServiceBackendArgs(
                                    name=service_name,
                                    port=k8s.networking.v1.ServiceBackendPortArgs(name=port_name),
                                )
                            ),
                        ),
                    ]
                ),
            )
        ],
    )

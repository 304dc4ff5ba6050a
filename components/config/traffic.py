"""How an app is reached and what it may reach: Service, Ingress, egress (parts of `AppConfig`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components.config.base import (
    DNS1123,
    AppName,
    Cidr,
    FreeText,
    IngressHost,
    LabelKey,
    Model,
    ObjectName,
    Port,
    ProbePath,
    SubdomainName,
)


class SessionAffinity(Model):
    """Client-IP session affinity on the Service."""

    enabled: bool = False
    """Route a client to the same pod."""
    timeout_seconds: int = Field(default=10800, ge=1, le=86400)
    """How long the affinity lasts."""


class ServiceSettings(Model):
    """The Service in front of the pods."""

    type: Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    """Service type; prod defaults to LoadBalancer."""
    port: Port = 80
    """Port the Service listens on (targets the container's http port)."""
    session_affinity: SessionAffinity = Field(default_factory=SessionAffinity)
    """Optional ClientIP affinity."""
    load_balancer_source_ranges: list[Cidr] = Field(default_factory=list)
    """Client CIDRs allowed through a LoadBalancer."""
    open_to_internet: bool = False
    """Explicitly allow a LoadBalancer from anywhere (renders 0.0.0.0/0)."""
    annotations: dict[
        LabelKey, Annotated[str, FreeText("an annotation value may hold any text")]
    ] = Field(default_factory=dict)
    """Extra Service annotations (e.g. cloud load-balancer settings)."""

    @property
    def effective_source_ranges(self) -> list[str]:
        if self.load_balancer_source_ranges:
            return list(self.load_balancer_source_ranges)
        return ["0.0.0.0/0"] if self.open_to_internet else []


class Ingress(Model):
    """Optional Ingress (networking.k8s.io/v1)."""

    enabled: bool = False
    """Create an Ingress."""
    host: IngressHost = ""
    """Host name served (a DNS name such as shop.example.com, no scheme); required when
    enabled."""
    class_name: SubdomainName = "nginx"
    """IngressClass name."""
    path: ProbePath = "/"
    """Path prefix routed to the service."""
    tls_secret_name: ObjectName = ""
    """Name of an existing kubernetes.io/tls Secret; empty means no TLS."""


class EgressPort(Model):
    """A destination port."""

    port: Port
    """Port number."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """Protocol."""


class EgressRule(Model):
    """Traffic a service may send: to another app of this stack, a namespace, or CIDRs."""

    app: AppName | None = None
    """Another service of this stack (it gets the matching ingress allowance)."""
    namespace: DNS1123 | None = None
    """Every pod in this namespace."""
    cidrs: list[Cidr] = Field(default_factory=list)
    """IP blocks outside the cluster."""
    ports: list[EgressPort] = Field(min_length=1)
    """Destination ports (at least one)."""

    @model_validator(mode="after")
    def _one_target(self) -> EgressRule:
        targets = [t for t in (self.app, self.namespace, self.cidrs or None) if t]
        if len(targets) != 1:
            raise PydanticCustomError(
                "egress_target", "set exactly one of 'app', 'namespace' or 'cidrs'"
            )
        return self

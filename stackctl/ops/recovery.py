"""Pending operations left by an interrupted update, resolved the way Pulumi documents it
(issue 29, scenario 2).

A `pulumi up` killed mid-update leaves `deployment.pending_operations` in the checkpoint: one
`{"resource": {...}, "type": "creating" | "updating" | "deleting" | "reading" | "importing"}` per
step that had begun. The engine's own advice (pulumi pkg/v3
resource/deploy/deployment_executor.go `printPendingOperationsWarning`): confirm what happened
with the provider, then `pulumi refresh`, which refreshes the state and clears the pending
operations, except pending CREATEs, which need a decision: `--import-pending-creates <URN> <ID>`
(the create reached the provider: the resource is imported with that ID) or
`--clear-pending-creates` (it did not: dropped from the state); `pulumi refresh` applies the
imports first and clears what is left (cmd/pulumi/operations/refresh.go).

stackctl makes that decision from the API server: a pending create of a Kubernetes object whose
object exists is imported with the provider's ID (`<namespace>/<name>`, or `<name>` for a
cluster-scoped kind: pulumi-kubernetes `FqName`), one whose object does not exist is cleared;
a pending create of anything else (a provider, a component) never reached a cluster and is
cleared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

K8S_PREFIX = "kubernetes:"


@dataclass(frozen=True)
class PendingOperation:
    urn: str
    operation: str  # creating | updating | deleting | reading | importing
    type: str  # Pulumi type token, e.g. kubernetes:apps/v1:Deployment
    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def is_kubernetes_object(self) -> bool:
        return self.type.startswith(K8S_PREFIX) and bool(self.kind and self.name)

    @property
    def provider_id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def describe(self) -> str:
        what = f"{self.kind} {self.provider_id}" if self.is_kubernetes_object else self.type
        return f"{what} (interrupted while {self.operation}; {self.urn})"


def pending_operations(state: Mapping[str, Any]) -> list[PendingOperation]:
    """The pending operations of a `pulumi stack export` document."""
    deployment = state.get("deployment") or {}
    found = []
    for op in deployment.get("pending_operations") or []:
        resource = op.get("resource") or {}
        inputs = resource.get("inputs") or {}
        outputs = resource.get("outputs") or {}
        meta = inputs.get("metadata") or outputs.get("metadata") or {}
        found.append(
            PendingOperation(
                urn=str(resource.get("urn") or ""),
                operation=str(op.get("type") or ""),
                type=str(resource.get("type") or ""),
                api_version=str(inputs.get("apiVersion") or outputs.get("apiVersion") or ""),
                kind=str(inputs.get("kind") or outputs.get("kind") or ""),
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
            )
        )
    return found


@dataclass(frozen=True)
class Resolution:
    imports: list[tuple[str, str]]  # (URN, provider ID) of pending creates that reached the cluster
    cleared: list[str]  # URNs of pending creates that did not
    refreshed: list[str]  # URNs of other pending operations: `pulumi refresh` settles them

    @property
    def clear_pending_creates(self) -> bool:
        return bool(self.cleared)


def plan_resolution(
    pending: list[PendingOperation], exists: Callable[[PendingOperation], bool]
) -> Resolution:
    imports, cleared, refreshed = [], [], []
    for op in pending:
        if op.operation != "creating":
            refreshed.append(op.urn)
        elif op.is_kubernetes_object and exists(op):
            imports.append((op.urn, op.provider_id))
        else:
            cleared.append(op.urn)
    return Resolution(imports, cleared, refreshed)


def refresh_arguments(stack: str, resolution: Resolution) -> list[str]:
    """`pulumi refresh` that applies the resolution without a prompt."""
    args = ["refresh", "--yes", "--skip-preview", "--stack", stack]
    for urn, provider_id in resolution.imports:
        # a StringArray flag: one value per occurrence, URN then ID (refresh.go)
        args += ["--import-pending-creates", urn, "--import-pending-creates", provider_id]
    if resolution.clear_pending_creates:
        args.append("--clear-pending-creates")
    return args

"""Pending operations left by an interrupted update, resolved the way Pulumi documents it
(issue 29, scenario 2).

A `pulumi up` killed mid-update leaves `deployment.pending_operations` in the checkpoint: one
`{"resource": {...}, "type": "creating" | "updating" | "deleting" | "reading" | "importing"}` per
step that had begun. The engine's own advice (pulumi pkg/v3
resource/deploy/deployment_executor.go `printPendingOperationsWarning`): confirm what happened
with the provider, then `pulumi refresh`, which refreshes the state and clears the pending
operations, except pending CREATEs, which need a decision: import (the create reached the
provider: the resource is in the state with its ID) or clear (it did not: dropped from the
state).

stackctl makes that decision from the API server: a pending create of a Kubernetes object whose
object exists is adopted with the provider's ID (`<namespace>/<name>`, or `<name>` for a
cluster-scoped kind: pulumi-kubernetes `FqName`), one whose object does not exist is cleared;
a pending create of anything else (a provider, a component) never reached a cluster and is
cleared.

How the import is done. `pulumi refresh --import-pending-creates <URN> <ID>` only turns the
pending create into a pending "importing" operation (cmd/pulumi/operations/refresh.go
`pendingCreatesToImports`); no engine step reads that operation back, and the snapshot a
refresh writes keeps the base snapshot's pending CREATEs only (pkg/backend/snapshot.go and
journal.go, "Track pending create operations from the base snapshot"; v3.219.0, v3.274.0), so
the "imported" resource is dropped from the state and its object is left in the cluster,
managed by nothing (found by `make e2e-failure`: a `web-blue` Deployment outlived the deploy
that removed it from the program). So stackctl does what that import means, by the route
Pulumi documented before the flag existed (export, edit, `pulumi stack import`): each adopted
create becomes a resource of the state with its provider ID (`adopt_pending_creates`), the
state is imported (which drops the remaining pending operations, cmd/pulumi/stack/io.go), and
a plain `pulumi refresh` then reads every object back: the adopted ones get their live
outputs, the interrupted updates and deletes are settled as refresh settles them.
Without an adoption, one `pulumi refresh --clear-pending-creates` does it all."""

from __future__ import annotations

import copy
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
    """`pulumi refresh` without a prompt that settles the pending operations left in the state:
    it clears the pending creates that never reached the cluster (`--clear-pending-creates`);
    the adopted ones are already resources (`adopt_pending_creates`)."""
    args = ["refresh", "--yes", "--skip-preview", "--stack", stack]
    if resolution.clear_pending_creates and not resolution.imports:
        args.append("--clear-pending-creates")
    return args


def adopt_pending_creates(state: Mapping[str, Any], resolution: Resolution) -> dict[str, Any]:
    """The `pulumi stack export` document with each pending create of `resolution.imports`
    made a resource of the state with its provider ID, and every pending create (adopted or
    cleared) removed; other pending operations stay (`pulumi stack import` drops them, and the
    refresh that follows settles their resources, which the state still lists).

    The adopted resource keeps the inputs the interrupted create sent; its outputs are left
    empty for the refresh to fill from the live object (pulumi-kubernetes `Read` takes the
    object's kind from the inputs and its name from the ID). It goes after every resource the
    state lists, so its parent, provider and dependencies precede it as the checkpoint's
    integrity check requires (pkg/resource/deploy/snapshot.go `VerifyIntegrity`); a resource
    of the same URN (a replacement the interruption cut short) is replaced in place."""
    doc = copy.deepcopy(dict(state))
    deployment = doc.setdefault("deployment", {})
    resources: list[dict[str, Any]] = list(deployment.get("resources") or [])
    ids = dict(resolution.imports)
    kept = []
    for op in deployment.get("pending_operations") or []:
        resource = op.get("resource") or {}
        urn = str(resource.get("urn") or "")
        if op.get("type") != "creating":
            kept.append(op)
            continue
        if urn not in ids:
            continue  # cleared: it never reached the cluster
        adopted = {**resource, "id": ids[urn], "outputs": {}}
        same = [i for i, r in enumerate(resources) if r.get("urn") == urn and not r.get("delete")]
        if same:
            resources[same[0]] = adopted
        else:
            resources.append(adopted)
    deployment["resources"] = resources
    deployment["pending_operations"] = kept
    return doc

"""GitOpsApplication: the Argo CD `Application` (argoproj.io/v1alpha1) that syncs this stack's
published manifests, registered only when `appstack:gitops.enabled` (issue 32 item 6).

What it points at is what scripts/ci/publish-manifests.sh pushes: `stackctl render <stack>` in
`manifests/<stack>` of the manifests branch. The Application itself lives in Argo CD's namespace
(`appstack:gitops.namespace`), so the render writes it to that namespace's folder; its source
excludes that folder, so it stays outside the manifests it syncs (Argo CD never applies, changes
or prunes its own Application from the branch), and it excludes every rendered Secret
(`secret-*.yaml`): their values are redacted in the render, and the real ones reach the cluster
another way (docs/ci.md, "GitOps variant").

The spec is the upstream CRD's (argo-cd v3.6.2 manifests/crds/application-crd.yaml; the render
is validated against it): automated sync with prune and self-heal, `CreateNamespace=false` (the
namespaces are rendered objects), server-side apply, `PruneLast`, foreground prune, and the
Deployment replica count ignored (an HPA owns it; the render leaves it unset). No
resources-finalizer: deleting the Application leaves the workloads running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import GitOps
from components.kube import labels

API_VERSION = "argoproj.io/v1alpha1"
COMPONENT = "gitops"
#: The render's file name of a Secret (stackctl/render/stack.py file_name): `<ns>/secret-<name>`.
SECRET_FILES = "**/secret-*.yaml"
#: Sync options; CreateNamespace=false: the namespaces are rendered objects (`_cluster/`).
SYNC_OPTIONS = (
    "CreateNamespace=false",
    "PruneLast=true",
    "ServerSideApply=true",
    "PrunePropagationPolicy=foreground",
)


def manifests_path(stack: str) -> str:
    """Where publish-manifests.sh puts a stack's render (common.sh `manifests_target`)."""
    return "manifests/" + stack.replace("/", "_")


def application_name(settings: GitOps, stack: str) -> str:
    """`appstack:gitops.applicationName`, else appstack-<stack>."""
    return settings.application_name or labels.resource_name(labels.PART_OF, stack)


def source_exclude(settings: GitOps) -> str:
    """Argo CD's directory exclude (a gobwas glob over paths relative to `path`, as
    reposerver/repository getPotentiallyValidManifestFile matches it): the redacted Secrets and
    the Application's own namespace folder."""
    return "{" + f"{SECRET_FILES},{settings.namespace}/*" + "}"


def application_spec(settings: GitOps, stack: str) -> dict[str, Any]:
    """The Application's spec."""
    assert settings.repo_url is not None  # config: enabled needs repoUrl
    return {
        "project": settings.project,
        "source": {
            "repoURL": settings.repo_url,
            "targetRevision": settings.target_revision,
            "path": settings.path or manifests_path(stack),
            "directory": {"recurse": True, "exclude": source_exclude(settings)},
        },
        "destination": {"server": settings.destination_server},
        "syncPolicy": {
            "automated": {"prune": settings.prune, "selfHeal": settings.self_heal},
            "syncOptions": list(SYNC_OPTIONS),
            "retry": {
                "limit": settings.retry_limit,
                "backoff": {"duration": "30s", "factor": 2, "maxDuration": "5m"},
            },
        },
        "ignoreDifferences": [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
        ],
        "revisionHistoryLimit": 10,
    }


@dataclass(frozen=True)
class GitOpsApplicationArgs:
    """Inputs of the stack's Application."""

    settings: GitOps
    """`appstack:gitops` (enabled, with repoUrl)."""
    instance: str
    """The stack name (`app.kubernetes.io/instance`; the default path and name)."""


class GitOpsApplication(pulumi.ComponentResource):
    """The Argo CD Application of one stack."""

    def __init__(
        self,
        name: str,
        args: GitOpsApplicationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("appstack:gitops:GitOpsApplication", name, None, opts)
        self.application_name: pulumi.Output[str] = pulumi.Output.from_input(
            application_name(args.settings, args.instance)
        )
        meta = labels.standard_labels(labels.PART_OF, args.instance, COMPONENT)
        k8s.apiextensions.CustomResource(
            f"{name}-application",
            api_version=API_VERSION,
            kind="Application",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=application_name(args.settings, args.instance),
                namespace=args.settings.namespace,
                labels=meta,
            ),
            spec=application_spec(args.settings, args.instance),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"application_name": self.application_name})

"""Home storage: the JENKINS_HOME PersistentVolumeClaim (build history, credentials store)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.jenkins.context import Ctx
from components.jenkins.names import APP
from components.kube import labels

#: Argo CD sync option on the claim and the Jenkins namespace (identity.py): never pruned.
NO_PRUNE = {"argocd.argoproj.io/sync-options": "Prune=false"}


def home_claim(ctx: Ctx) -> pulumi.Output[str]:
    """A standalone claim (not a volumeClaimTemplate, which Pulumi could not protect). With
    `home.protect` (required in prod) it is protected and retained on delete; the Namespace
    carries the same options (identity.namespace), since deleting it would delete the claim."""
    home = ctx.settings.home
    claim = k8s.core.v1.PersistentVolumeClaim(
        f"{ctx.name}-home",
        # Argo CD (GitOps variant, docs/ci.md) never prunes the claim, even when it leaves the
        # rendered manifests (argo-cd docs/user-guide/sync-options.md, "No Prune Resources").
        metadata=ctx.meta("storage", labels.resource_name(APP, "home"), NO_PRUNE),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=home.storage_class_name,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": home.size}),
        ),
        opts=ctx.opts(protect=home.protect, retain_on_delete=home.protect),
    )
    return claim.metadata.name

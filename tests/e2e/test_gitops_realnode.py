"""`make e2e-gitops-node` (issue 32 item 6 on real nodes): the real Argo CD of `make e2e-gitops`
(e2e/argocd.py) syncs the dev stack onto the four real nodes of `make e2e-node`, pulling the
reference app's image (app/Dockerfile, built by buildah; e2e/realapp.py) from the run's
registry: Synced and Healthy with every pod Running and Ready on a real node, running the
published digest; the next publish (another digest of the app) rolls out; the revert commit
rolls it back. No `stackctl deploy`: Argo CD alone applies the stack.

The dev stack is the shipped file with the site's changes of e2e/realapp.py `site_config`
(node selector, the API server's source address) plus `appstack:gitops`, and the registry
login as a GitOps stack holds it: not in the stack file at all. The pods name the pull Secret
(`imagePullSecrets`), whose value comes from the cluster side (written here as a secret manager
would, with the run's registry password); neither the branch nor Argo CD ever carries it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from components.registry import PULL_SECRET_NAME, dockerconfigjson
from e2e.argocd import ArgoCD
from e2e.cluster import Cluster
from e2e.gitops import Checkout
from e2e.kube import Kube
from e2e.realapp import (
    REPOSITORY,
    RealApp,
    app_image_archive,
    pod_ready,
    push_archive,
    site_config,
    trust_registry,
)
from e2e.realnode.layout import NODE_LABEL

pytestmark = pytest.mark.gitopsnode

STACK = "dev"
NAMESPACE = "appstack-dev"
APPLICATION = "appstack-dev"
FIELD_MANAGER = "appstack-e2e-secret-manager"  # stands in for External Secrets / an operator


@pytest.fixture(scope="module")
def images(real_nodes: Any, app_registry: Any) -> dict[str, str]:
    """The app image pushed to the run's registry, and a second digest of it (one more config
    label, same layers: RealApp.variant's recipe, which needs only the registry and digest)."""
    archive = app_image_archive()
    first = push_archive(archive, app_registry, "gitops")
    trust_registry(real_nodes, app_registry)
    holder = cast(Any, SimpleNamespace(registry=app_registry, digest=first))
    second = RealApp.variant(holder, "gitops-v2")
    repo = f"{app_registry.host}/{REPOSITORY}"
    return {"v1": f"{repo}@{first}", "v2": f"{repo}@{second}"}


@pytest.fixture(scope="module")
def checkout(cluster: Cluster, app_registry: Any) -> Checkout:
    repo = Checkout(cluster.root / "gitops-node")
    repo.create()
    doc = site_config(repo.stack_config(STACK), STACK, app_registry)
    # No registry login in the stack: the pods name the pull Secret the cluster side writes
    # (appstack:apps.web.imagePullSecrets), so no password is in the stack file or the branch.
    del doc["config"]["appstack:registry"]
    doc["config"]["appstack:apps"]["web"]["imagePullSecrets"] = [PULL_SECRET_NAME]
    doc["config"]["appstack:gitops"] = {
        "enabled": True,
        "repoUrl": repo.url,
        "destinationServer": f"https://{cluster.address}:{cluster.apiserver_port}",
    }
    repo.write_stack_config(STACK, doc)
    repo.commit("e2e: dev on the real nodes through Argo CD")
    return repo


@pytest.fixture(scope="module")
def argocd(cluster: Cluster, real_nodes: Any, figures: dict[str, float]) -> Iterator[ArgoCD]:
    with ArgoCD(cluster, cluster.root / "argocd-node") as running:
        yield running
        figures.update(
            {k.replace("gitops.", "gitops.node.", 1): v for k, v in running.timings.items()}
        )


def rolled_out_on_real_nodes(kube: Kube, image: str) -> bool:
    """Every pod of web Ready on a real node, running `image` (the digest the kubelet pulled)."""
    dep = kube.get("Deployment", "web", NAMESPACE)
    status = dep.get("status") or {}
    want = dep["spec"].get("replicas", 1)
    if status.get("observedGeneration") != dep["metadata"]["generation"] or not (
        status.get("updatedReplicas")
        == status.get("readyReplicas")
        == status.get("replicas")
        == want
    ):
        return False
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    pods = [
        p
        for p in kube.list("Pod", NAMESPACE, selector)
        if not p["metadata"].get("deletionTimestamp")
    ]
    digest = image.split("@", 1)[1]
    key, value = NODE_LABEL
    for pod in pods:
        node = kube.get("Node", pod["spec"]["nodeName"])
        statuses = pod["status"].get("containerStatuses") or []
        if not (
            pod_ready(pod)
            and node["metadata"]["labels"].get(key) == value
            and [c["image"] for c in pod["spec"]["containers"]] == [image]
            and statuses
            and all(s.get("imageID", "").endswith(digest) for s in statuses)
        ):
            return False
    return bool(pods)


def test_argo_cd_syncs_dev_onto_the_real_nodes(
    checkout: Checkout,
    argocd: ArgoCD,
    kube: Kube,
    app_registry: Any,
    images: dict[str, str],
    figures: dict[str, float],
) -> None:
    pushed = checkout.publish(STACK, f"web={images['v1']}")
    application = checkout.read(pushed, f"manifests/{STACK}/argocd/application-{APPLICATION}.yaml")
    argocd.add_repository(checkout.url)
    assert application["spec"]["destination"]["server"] == argocd.add_cluster()
    # the pull Secret from the cluster side: the same document the stack renders (redacted)
    kube.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        field_manager=FIELD_MANAGER,
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": PULL_SECRET_NAME, "namespace": NAMESPACE},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {
                ".dockerconfigjson": dockerconfigjson(
                    app_registry.host, app_registry.user, app_registry.password
                )
            },
        },
        field_manager=FIELD_MANAGER,
    )
    # the app's own Secret (dev configures no value: the Secret exists, empty, as the render
    # has it); without it the kubelet cannot mount the pod's `secrets` volume and the pod waits
    # in ContainerCreating (what a first run of this test showed)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web-secrets", "namespace": NAMESPACE},
            "type": "Opaque",
        },
        field_manager=FIELD_MANAGER,
    )
    started = time.monotonic()
    kube.apply(application, field_manager="appstack-e2e-bootstrap")
    argocd.wait_synced(APPLICATION, pushed, timeout=600)
    kube.wait_for(
        "web Ready on the real nodes at v1",
        lambda: rolled_out_on_real_nodes(kube, images["v1"]),
        timeout=300,
    )
    figures["gitops.node.first_sync"] = time.monotonic() - started


def test_a_publish_rolls_out_on_the_real_nodes(
    checkout: Checkout,
    argocd: ArgoCD,
    kube: Kube,
    images: dict[str, str],
    figures: dict[str, float],
) -> None:
    pushed = checkout.publish(STACK, f"web={images['v2']}")
    started = time.monotonic()
    argocd.wait_synced(APPLICATION, pushed, timeout=600)
    kube.wait_for(
        "web Ready on the real nodes at v2",
        lambda: rolled_out_on_real_nodes(kube, images["v2"]),
        timeout=300,
    )
    figures["gitops.node.publish_to_synced_healthy"] = time.monotonic() - started


def test_the_revert_rolls_back_on_the_real_nodes(
    checkout: Checkout,
    argocd: ArgoCD,
    kube: Kube,
    images: dict[str, str],
    figures: dict[str, float],
) -> None:
    reverted = checkout.revert(STACK)
    started = time.monotonic()
    argocd.wait_synced(APPLICATION, reverted, timeout=600)
    kube.wait_for(
        "web Ready on the real nodes back at v1",
        lambda: rolled_out_on_real_nodes(kube, images["v1"]),
        timeout=300,
    )
    figures["gitops.node.revert_to_rolled_back"] = time.monotonic() - started

"""`make e2e-gitops` (issue 32 item 6): a real Argo CD (application-controller and repo-server
built from argo-cd v3 by `build.sh argocd`, e2e/argocd.py) syncs the dev stack that the real
scripts/ci/publish-manifests.sh pushes to a local manifests repository (e2e/gitops.py), on the
`make e2e` control plane (kwok nodes: pods Running proves the control-plane semantics of sync,
rollout, revert and prune; no pod address is ever contacted).

The dev stack here is the shipped Pulumi.dev.yaml plus Jenkins (its JENKINS_HOME claim) and
`appstack:gitops` pointing at the bare repository: the Application is the stack's own rendered
object, read from the branch and applied once (the bootstrap an operator does). Secrets come
from the cluster side: the test creates them as a secret manager would, and Argo CD must leave
them as they are (the branch holds them redacted and the Application excludes them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e.argocd import NAMESPACE as ARGOCD_NS
from e2e.argocd import ArgoCD
from e2e.cluster import Cluster
from e2e.gitops import Checkout
from e2e.kube import Kube
from tests.e2e.live import wait_workloads_available

pytestmark = pytest.mark.gitops

STACK = "dev"
APP_NS = "appstack-dev"
JENKINS_NS = "jenkins-dev"
APPLICATION = "appstack-dev"
REPOSITORY = "registry.example.com/appstack/web"
V1 = f"{REPOSITORY}@sha256:{'1' * 64}"
V2 = f"{REPOSITORY}@sha256:{'2' * 64}"
SECRET_VALUE = "from-the-secret-manager"
FIELD_MANAGER = "appstack-e2e-secret-manager"  # stands in for External Secrets / an operator


@pytest.fixture(scope="module")
def checkout(cluster: Cluster) -> Checkout:
    repo = Checkout(cluster.root / "gitops")
    repo.create()
    doc = repo.stack_config(STACK)
    doc["config"]["appstack:jenkins"] = {
        "enabled": True,
        "namespace": JENKINS_NS,
        "admin": {"existingSecret": "jenkins-admin"},
    }
    # destinationServer: the control plane's URL, registered in Argo CD by the argocd fixture
    doc["config"]["appstack:gitops"] = {
        "enabled": True,
        "repoUrl": repo.url,
        "destinationServer": f"https://{cluster.address}:{cluster.apiserver_port}",
    }
    repo.write_stack_config(STACK, doc)
    repo.commit("e2e: dev with Jenkins and the Argo CD Application")
    return repo


@pytest.fixture(scope="module")
def argocd(cluster: Cluster, figures: dict[str, float]) -> Iterator[ArgoCD]:
    with ArgoCD(cluster, cluster.root / "argocd") as running:
        yield running
        figures.update(running.timings)


def deployment_rolled_out(kube: Kube, image: str) -> bool:
    """web runs `image` in every pod: the rollout finished (observed, updated, available) and no
    pod of another template is left."""
    dep = kube.get("Deployment", "web", APP_NS)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    status = dep.get("status") or {}
    want = dep["spec"].get("replicas", 1)
    if (
        container["image"] != image
        or status.get("observedGeneration") != dep["metadata"]["generation"]
    ):
        return False
    if not (
        status.get("updatedReplicas") == want
        and status.get("availableReplicas") == want
        and status.get("replicas") == want
    ):
        return False
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    pods = [
        p for p in kube.list("Pod", APP_NS, selector) if not p["metadata"].get("deletionTimestamp")
    ]
    return bool(pods) and all(
        p["status"].get("phase") == "Running"
        and [c["image"] for c in p["spec"]["containers"]] == [image]
        for p in pods
    )


def secrets_from_the_cluster_side(kube: Kube) -> None:
    """What a secret manager does: the real Secrets, never from git."""
    for namespace in (APP_NS, JENKINS_NS):
        kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            field_manager=FIELD_MANAGER,
        )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web-secrets", "namespace": APP_NS},
            "type": "Opaque",
            "stringData": {"API_TOKEN": SECRET_VALUE},
        },
        field_manager=FIELD_MANAGER,
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "jenkins-admin", "namespace": JENKINS_NS},
            "type": "Opaque",
            "stringData": {"username": "admin", "password": SECRET_VALUE},
        },
        field_manager=FIELD_MANAGER,
    )


def test_first_publish_is_synced_by_the_stacks_application(
    checkout: Checkout, argocd: ArgoCD, kube: Kube, figures: dict[str, float]
) -> None:
    pushed = checkout.publish(STACK, f"web={V1}")
    assert checkout.subject(pushed).startswith(f"render {STACK} from ")
    files = checkout.files(pushed, f"manifests/{STACK}")
    app_file = f"manifests/{STACK}/{ARGOCD_NS}/application-{APPLICATION}.yaml"
    assert app_file in files
    # The stack's own Application object, from its render on the branch: applied once.
    application = checkout.read(pushed, app_file)
    assert application["spec"]["source"]["repoURL"] == checkout.url
    argocd.add_repository(checkout.url)
    assert application["spec"]["destination"]["server"] == argocd.add_cluster()
    secrets_from_the_cluster_side(kube)
    started = time.monotonic()
    kube.apply(application, field_manager="appstack-e2e-bootstrap")
    app = argocd.wait_synced(APPLICATION, pushed, timeout=300)
    kube.wait_for("web rolled out at v1", lambda: deployment_rolled_out(kube, V1), timeout=180)
    wait_workloads_available(kube, [APP_NS, JENKINS_NS], timeout=180)
    figures["gitops.first_sync"] = time.monotonic() - started
    synced = {(r["kind"], r.get("namespace", ""), r["name"]) for r in app["status"]["resources"]}
    assert ("StatefulSet", JENKINS_NS, "jenkins") in synced
    assert ("PersistentVolumeClaim", JENKINS_NS, "jenkins-home") in synced
    assert ("Namespace", "", APP_NS) in synced
    # outside what it syncs: no Secret, not the Application itself
    assert not [r for r in synced if r[0] in ("Secret", "Application")], synced
    assert kube.get("PersistentVolumeClaim", "jenkins-home", JENKINS_NS)["status"]["phase"] == (
        "Bound"
    )
    # Argo CD tracks what it applied by annotation, not by the selector labels of the render
    dep = kube.get("Deployment", "web", APP_NS)
    assert dep["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].startswith(
        f"{APPLICATION}:apps/Deployment:{APP_NS}/web"
    )
    assert dep["metadata"]["labels"]["app.kubernetes.io/instance"] == STACK


def test_secrets_keep_the_cluster_sides_values(argocd: ArgoCD, kube: Kube) -> None:
    import base64

    for name, namespace, key in (
        ("web-secrets", APP_NS, "API_TOKEN"),
        ("jenkins-admin", JENKINS_NS, "password"),
    ):
        secret = kube.get("Secret", name, namespace)
        assert base64.b64decode(secret["data"][key]).decode() == SECRET_VALUE
        tracking = (secret["metadata"].get("annotations") or {}).get(
            "argocd.argoproj.io/tracking-id"
        )
        assert tracking is None, f"Argo CD applied Secret {namespace}/{name}"


def test_a_publish_of_a_new_version_rolls_out(
    checkout: Checkout, argocd: ArgoCD, kube: Kube, figures: dict[str, float]
) -> None:
    pushed = checkout.publish(STACK, f"web={V2}")
    started = time.monotonic()
    argocd.wait_synced(APPLICATION, pushed, timeout=300)
    kube.wait_for("web rolled out at v2", lambda: deployment_rolled_out(kube, V2), timeout=180)
    figures["gitops.publish_to_synced_healthy"] = time.monotonic() - started


def test_the_revert_commit_rolls_it_back(
    checkout: Checkout, argocd: ArgoCD, kube: Kube, figures: dict[str, float]
) -> None:
    published = checkout.head()
    reverted = checkout.revert(STACK)
    assert reverted != published
    assert checkout.subject(reverted).startswith(f"revert {STACK} to ")
    started = time.monotonic()
    argocd.wait_synced(APPLICATION, reverted, timeout=300)
    kube.wait_for("web rolled back to v1", lambda: deployment_rolled_out(kube, V1), timeout=180)
    figures["gitops.revert_to_rolled_back"] = time.monotonic() - started


def test_prune_removes_what_left_but_never_the_jenkins_home_claim(
    checkout: Checkout, argocd: ArgoCD, kube: Kube
) -> None:
    claim = kube.get("PersistentVolumeClaim", "jenkins-home", JENKINS_NS)
    doc = checkout.stack_config(STACK)
    doc["config"]["appstack:jenkins"]["enabled"] = False
    checkout.write_stack_config(STACK, doc)
    checkout.commit("e2e: dev without Jenkins")
    pushed = checkout.publish(STACK, f"web={V1}")
    assert not checkout.files(pushed, f"manifests/{STACK}/{JENKINS_NS}")
    argocd.wait_operation(APPLICATION, pushed, timeout=300)

    def jenkins_pruned() -> bool:
        return (
            kube.get_or_none("StatefulSet", "jenkins", JENKINS_NS) is None
            and kube.get_or_none("Service", "jenkins", JENKINS_NS) is None
        )

    kube.wait_for("Jenkins' StatefulSet and Service pruned", jenkins_pruned, timeout=120)
    # the namespace stays too (Prune=false): deleting it would delete the claim
    assert not kube.get("Namespace", JENKINS_NS)["metadata"].get("deletionTimestamp")
    kept = kube.get("PersistentVolumeClaim", "jenkins-home", JENKINS_NS)
    assert kept["metadata"]["uid"] == claim["metadata"]["uid"]
    assert not kept["metadata"].get("deletionTimestamp")
    app = argocd.application(APPLICATION)
    left = {
        (r["kind"], r["name"]): r
        for r in app["status"]["resources"]
        if r.get("namespace") == JENKINS_NS
    }
    # Argo CD reports the kept claim as one that would need pruning, and leaves it.
    assert left[("PersistentVolumeClaim", "jenkins-home")].get("requiresPruning") is True
    assert deployment_rolled_out(kube, V1)

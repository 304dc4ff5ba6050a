"""Assertions on the API server's own state, and the change predictions the engine must match."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from e2e.engine import Engine, Step, changes
from e2e.kube import KINDS, ApiError, Kube

RESTRICTED = "restricted"


def live_object(kube: Kube, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    assert kind in KINDS, f"e2e.kube.KINDS does not know {kind}; add its REST path"
    return kube.get(kind, name, namespace)


def assert_state_matches_cluster(engine: Engine, kube: Kube, stack: str) -> list[dict[str, Any]]:
    """Every Kubernetes object in the stack's state exists in the API server, same uid."""
    objects = []
    for res in engine.kubernetes_resources(stack):
        outputs = res.get("outputs") or {}
        meta = outputs.get("metadata") or {}
        kind = str(res["type"]).rsplit(":", 1)[-1]
        try:
            obj = live_object(kube, kind, meta["name"], meta.get("namespace"))
        except ApiError as exc:
            raise AssertionError(f"{kind} {meta.get('namespace')}/{meta['name']}: {exc}") from None
        assert obj["metadata"]["uid"] == meta.get("uid"), (
            f"{kind} {meta['name']}: live uid differs from the state's"
        )
        objects.append(obj)
    assert objects, f"stack {stack} has no Kubernetes objects in its state"
    return objects


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {c["type"]: c["status"] for c in conditions}


def _conditions_list(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def workload_available(obj: dict[str, Any]) -> str | None:
    """None if the Deployment/StatefulSet is fully rolled out and available, else why not."""
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = spec.get("replicas", 1)
    name = f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return f"{name}: generation not observed yet"
    if obj["kind"] == "Deployment":
        if want and _conditions(obj).get("Available") != "True":
            return f"{name}: not Available ({status})"
        if status.get("updatedReplicas", 0) != want or status.get("availableReplicas", 0) != want:
            return f"{name}: {status.get('availableReplicas', 0)}/{want} available"
        if status.get("replicas", 0) != want:
            return f"{name}: {status.get('replicas', 0)} pods, want {want} (rollout in progress)"
    else:
        if status.get("readyReplicas", 0) != want or status.get("availableReplicas", 0) != want:
            return f"{name}: {status.get('readyReplicas', 0)}/{want} ready"
        if status.get("updateRevision") != status.get("currentRevision"):
            return f"{name}: rollout in progress"
    return None


def hpa_settled(kube: Kube, hpa: dict[str, Any]) -> str | None:
    """None if the HPA's target carries replicas within [minReplicas, maxReplicas], else why not.

    A workload under an HPA is created without spec.replicas (the HPA owns them), so the API
    server defaults it to 1; the HPA controller raises it to minReplicas at its next sync
    (every 15 s, `--horizontal-pod-autoscaler-sync-period`), before and whatever the metrics
    say: kubernetes pkg/controller/podautoscaler/horizontal.go, reconcileAutoscaler,
    "Current number of replicas below Spec.MinReplicas". Until then the workload is
    "available" at 1 replica: a check of spread or capacity made then sees one pod.
    """
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    ns = hpa["metadata"]["namespace"]
    name = f"HorizontalPodAutoscaler {ns}/{hpa['metadata']['name']}"
    if ref.get("kind") not in ("Deployment", "StatefulSet"):
        return None
    target = kube.get_or_none(ref["kind"], ref["name"], ns)
    if target is None:
        return f"{name}: target {ref['kind']} {ref['name']} missing"
    replicas = (target.get("spec") or {}).get("replicas", 1)
    low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
    if replicas == 0:  # scaling disabled by the user (horizontal.go: "scaling is disabled")
        return None
    if not low <= replicas <= high:
        return f"{name}: target has {replicas} replicas, not in [{low}, {high}]"
    return None


def wait_workloads_available(kube: Kube, namespaces: list[str], timeout: float = 180) -> None:
    """Every HPA has brought its target within its bounds, then every Deployment/StatefulSet
    is rolled out and available at its replicas."""

    def check() -> bool:
        problems = [
            p for ns in namespaces for hpa in kube.list("HorizontalPodAutoscaler", ns)
            if (p := hpa_settled(kube, hpa))
        ]  # fmt: skip
        problems += [
            p
            for ns in namespaces
            for kind in ("Deployment", "StatefulSet")
            for obj in kube.list(kind, ns)
            if (p := workload_available(obj))
        ]
        check.last = problems  # type: ignore[attr-defined]
        return not problems

    try:
        kube.wait_for("workloads available", check, timeout=timeout)
    except TimeoutError:
        raise AssertionError("; ".join(getattr(check, "last", ["timeout"]))) from None


def assert_pods_admitted_restricted(kube: Kube, namespace: str) -> int:
    """The namespace enforces `restricted`; its pods exist, run, and none was refused."""
    ns = kube.get("Namespace", namespace)
    labels = ns["metadata"].get("labels", {})
    assert labels.get("pod-security.kubernetes.io/enforce") == RESTRICTED, labels
    # The label is live: the real PodSecurity admission plugin refuses a non-compliant pod.
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "e2e-restricted-probe", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/probe:1"}]},
    }
    try:
        kube.create(probe, dry_run=True)
    except ApiError as exc:
        assert exc.status == 403 and "violates PodSecurity" in exc.message, exc
    else:
        raise AssertionError(f"namespace {namespace}: a non-restricted pod was admitted")
    for rs in kube.list("ReplicaSet", namespace):
        failure = [c for c in _conditions_list(rs) if c["type"] == "ReplicaFailure"]
        assert not failure, f"ReplicaSet {rs['metadata']['name']}: {failure}"
    pods = kube.list("Pod", namespace)
    for pod in pods:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            continue
        assert pod["status"].get("phase") == "Running", f"pod {name}: {pod['status']}"
        assert _conditions(pod).get("Ready") == "True", f"pod {name} not Ready"
    return len(pods)


# ---------------------------------------------------------------- predictions


def has_stackctl_diff(engine: Engine) -> bool:
    """`stackctl diff` (issue 10) exists in the program under test."""
    return any((engine.project / "stackctl").glob("diff*.py")) and (
        engine.stackctl("diff", "--help", check=False).returncode == 0
    )


def predict_with_stackctl_diff(
    engine: Engine, stack: str, base: str
) -> dict[tuple[str, str, str], str]:
    res = engine.stackctl("diff", stack, "--base", base, "--json", check=False)
    assert res.returncode in (0, 3), f"stackctl diff failed ({res.returncode}):\n{res.tail()}"
    items = json.loads(res.stdout)
    return {
        (str(i["kind"]), str(i.get("namespace") or ""), str(i["name"])): str(i["action"])
        for i in items
        if i.get("action") not in ("same", "unchanged", None)
    }


_RENDER_SNIPPET = """
import json, sys
from pathlib import Path
from stackctl.render.stack import object_ref, render_stack
result = render_stack(sys.argv[1], Path(sys.argv[2]))
print(json.dumps([
    {"obj": o, "ignore": (result.options.get(object_ref(o)) or {}).get("ignore_changes") or []}
    for o in result.objects
], default=str))
"""


def _render(engine: Engine, stack: str, project_dir: Path) -> dict[tuple[str, str, str], Any]:
    """(kind, namespace, name) -> (manifest, ignore_changes paths), rendered under mocks."""
    res = engine.run(
        [str(project_dir / ".venv" / "bin" / "python"), "-c", _RENDER_SNIPPET, stack,
         str(project_dir)],
        cwd=project_dir,
    )  # fmt: skip
    objects = {}
    for item in json.loads(res.stdout.strip().splitlines()[-1]):
        obj = item["obj"]
        meta = obj.get("metadata") or {}
        objects[(obj["kind"], str(meta.get("namespace") or ""), meta["name"])] = (
            obj,
            [str(p) for p in item["ignore"]],
        )
    return objects


def _paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a manifest: `spec.replicas`, `spec.template.spec.containers[0].image`."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_paths(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, sub in enumerate(value):
            out.update(_paths(sub, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def changed_paths(before: Any, after: Any, ignore: list[str]) -> list[str]:
    """Paths that differ, minus those under an `ignore_changes` path (the engine keeps the
    old value there: pulumi's documented ignoreChanges semantics)."""
    a, b = _paths(before), _paths(after)
    return sorted(
        p
        for p in a.keys() | b.keys()
        if a.get(p) != b.get(p)
        and not any(p == i or p.startswith((f"{i}.", f"{i}[")) for i in ignore)
    )


def predict_with_renders(engine: Engine, stack: str, base: str) -> dict[tuple[str, str, str], str]:
    """Fallback until `stackctl diff` is merged: two renders compared object by object.

    Predicts create/delete exactly; a changed object is `change` (update or replace: the
    replacement rules are what `stackctl diff` adds).
    """
    with tempfile.TemporaryDirectory(prefix="e2e-render-") as tmp:
        base_dir = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(base_dir), base],
            cwd=engine.project, check=True, capture_output=True,
        )  # fmt: skip
        try:
            if not (base_dir / ".venv").exists():
                (base_dir / ".venv").symlink_to((engine.project / ".venv").resolve())
            before = _render(engine, stack, base_dir)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_dir)],
                cwd=engine.project, check=False, capture_output=True,
            )  # fmt: skip
    after = _render(engine, stack, engine.project)
    out: dict[tuple[str, str, str], str] = {}
    for key in before.keys() | after.keys():
        if key not in before:
            out[key] = "create"
        elif key not in after:
            out[key] = "delete"
        elif changed_paths(before[key][0], after[key][0], after[key][1]):
            out[key] = "change"
    return out


def predict(engine: Engine, stack: str, base: str) -> tuple[str, dict[tuple[str, str, str], str]]:
    if has_stackctl_diff(engine):
        return "stackctl diff", predict_with_stackctl_diff(engine, stack, base)
    return "render diff", predict_with_renders(engine, stack, base)


def assert_engine_matches_prediction(
    source: str, predicted: dict[tuple[str, str, str], str], steps: list[Step]
) -> dict[tuple[str, str, str], str]:
    actual = changes(steps)
    mismatches = []
    for key in predicted.keys() | actual.keys():
        want, got = predicted.get(key, "same"), actual.get(key, "same")
        if want == "change" and got in ("update", "replace"):
            continue
        if want != got:
            mismatches.append(f"{'/'.join(key)}: {source} says {want}, engine says {got}")
    assert not mismatches, "engine and prediction differ:\n" + "\n".join(sorted(mismatches))
    return actual

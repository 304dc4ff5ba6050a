"""Compliant object sets for the policy tests; failing sets are deep-copied mutations of them."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from policy.rules import RULES, RuleContext, Violation, evaluate

NS = "apps"
LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-prod"}
DIGEST = "sha256:" + "a" * 64

Obj = dict[str, Any]


def container(name: str = "web") -> Obj:
    return {
        "name": name,
        "image": f"registry.example.com/appstack/web:1.4.2@{DIGEST}",
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": 8080}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def pod_spec() -> Obj:
    return {
        "serviceAccountName": "web",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": dict(LABELS)},
        "spec": {
            "minReadySeconds": 5,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec()},
        },
    }


def compliant_stack() -> list[Obj]:
    """A fully compliant app (prod rules): namespace, SA, Deployment, Service, HPA, PDB,
    default-deny + allow NetworkPolicies."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "web", "namespace": NS},
            "automountServiceAccountToken": False,
        },
        deployment(),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(LABELS),
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(LABELS)}},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": NS},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "web-allow", "namespace": NS},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"port": 8080}]}],
            },
        },
    ]


def rbac_objects() -> list[Obj]:
    """Jenkins-style agent RBAC: a namespaced Role without wildcards, bound to an SA."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "jenkins-agents", "namespace": "ci-agents"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["create", "delete", "get", "list", "watch", "patch", "update"],
                },
                {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "jenkins-agents", "namespace": "ci-agents"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "jenkins-agents",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "jenkins", "namespace": "ci"}],
        },
    ]


def find(objects: Sequence[Obj], kind: str, name: str | None = None) -> Obj:
    for obj in objects:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    raise KeyError(f"{kind}/{name}")


def web(objects: Sequence[Obj]) -> Obj:
    """The web container of the Deployment (mutable, inside `objects`)."""
    result: Obj = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return result


def web_pod(objects: Sequence[Obj]) -> Obj:
    """The Deployment's pod spec (mutable, inside `objects`)."""
    result: Obj = find(objects, "Deployment")["spec"]["template"]["spec"]
    return result


def mutated(objects: Sequence[Obj]) -> list[Obj]:
    return copy.deepcopy(list(objects))


def run_rule(objects: Sequence[Obj], rule: str, environment: str = "prod") -> list[Violation]:
    selected = [r for r in RULES if r.name == rule]
    assert selected, f"no rule named {rule}"
    return evaluate(objects, RuleContext(environment), selected)


def messages(objects: Sequence[Obj], rule: str, environment: str = "prod") -> list[str]:
    found = run_rule(objects, rule, environment)
    assert all(v.rule == rule for v in found)
    return [v.message for v in found]


def assert_one_violation(
    objects: Sequence[Obj], rule: str, path: str, environment: str = "prod"
) -> Violation:
    """Exactly the violations of `rule` that name `path`; returns the first."""
    found = run_rule(objects, rule, environment)
    assert found, f"expected a {rule} violation naming {path}, got none"
    naming = [v for v in found if path in v.message]
    assert naming, f"no {rule} violation names {path}: {[v.message for v in found]}"
    assert all(v.rule == rule for v in found)
    return naming[0]

"""Policy guardrails for rendered Kubernetes objects, as plain functions, one module per family.

Every rule takes the whole object set (some rules are cross-object: a PDB and the workloads it
selects, a pod and the RoleBinding of its ServiceAccount, a namespace and its NetworkPolicies) as
plain manifest dicts, exactly what `kubectl apply` would take (apiVersion, kind, metadata, spec,
camelCase keys), and returns one `Violation` per problem. Each message names the field path, the
bad value and what is allowed.

Families: `pod_security` (Pod Security Standards "restricted"), `resources` (requests/limits and
probes), `availability` (PDBs, zero-downtime rollouts), `network` (LoadBalancer source ranges,
default-deny NetworkPolicies), `rbac`, `images`; `base` holds the shared vocabulary. Value
grammar (quantities, image references) comes from appstack_grammar, installed into the pack's
virtualenv from policy/requirements.txt.

Nothing here imports Pulumi: `stackctl check` runs the rules over rendered YAML, the CrossGuard
pack (`policy/pack.py`) over the stack's resources, the tests over dicts. The rules encode
/work/shared/SECURITY.md (Pod Security Standards "restricted" plus the availability and RBAC
rules there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from appstack_grammar import parse_quantity, split_image
from policy.rules.availability import check_pdb_consistent, check_zero_downtime_rollout
from policy.rules.base import (
    POD_TEMPLATE_KINDS,
    PRODUCTION_RULES,
    Rule,
    RuleContext,
    Violation,
    environments,
    object_id,
    template_of,
)
from policy.rules.images import check_image_pinned
from policy.rules.network import check_loadbalancer_source_ranges, check_namespace_default_deny
from policy.rules.pod_security import check_pod_security_restricted
from policy.rules.rbac import SECRETS_REASON_ANNOTATION, check_rbac_no_wildcards
from policy.rules.resources import check_probes, check_resources_requests_limits

__all__ = [
    "POD_TEMPLATE_KINDS",
    "PRODUCTION_RULES",
    "RULES",
    "RULE_NAMES",
    "SECRETS_REASON_ANNOTATION",
    "Rule",
    "RuleContext",
    "Violation",
    "environments",
    "evaluate",
    "object_id",
    "parse_quantity",
    "split_image",
    "template_of",
]

RULES: tuple[Rule, ...] = (
    Rule(
        "pod-security-restricted",
        "Pods meet Pod Security Standards 'restricted': non-root UID/GID >= 10000, no host "
        "namespaces/ports/paths, no privilege escalation, drop ALL, seccomp, read-only root, "
        "dedicated ServiceAccount, no SA token unless bound, never the default namespace.",
        check_pod_security_restricted,
    ),
    Rule(
        "resources-requests-limits",
        "Every container and initContainer sets cpu and memory requests and limits, "
        "request <= limit.",
        check_resources_requests_limits,
    ),
    Rule(
        "probes",
        "Every container has readiness and liveness probes, and they differ.",
        check_probes,
    ),
    Rule(
        "image-pinned",
        "Images are never latest or untagged; in prod a digest or a non-moving tag; "
        "imagePullPolicy Always.",
        check_image_pinned,
    ),
    Rule(
        "pdb-consistent",
        "PodDisruptionBudgets select their workload and never block all evictions; "
        "replicated prod workloads have one.",
        check_pdb_consistent,
    ),
    Rule(
        "zero-downtime-rollout",
        "Deployments roll with maxUnavailable 0 and surge > 0 (outside prod's rules, Recreate "
        "when they mount a ReadWriteOnce/ReadWriteOncePod claim), minReadySeconds in prod, no "
        "replicas when an HPA owns them, grace period longer than the preStop sleep.",
        check_zero_downtime_rollout,
    ),
    Rule(
        "loadbalancer-source-ranges",
        "In prod a LoadBalancer Service states loadBalancerSourceRanges.",
        check_loadbalancer_source_ranges,
    ),
    Rule(
        "namespace-default-deny",
        "Every workload namespace has a default-deny NetworkPolicy and every pod is selected "
        "by a NetworkPolicy.",
        check_namespace_default_deny,
    ),
    Rule(
        "rbac-no-wildcards",
        "RBAC rules have no wildcards, nothing binds cluster-admin, secrets access needs a "
        "stated reason.",
        check_rbac_no_wildcards,
    ),
)

RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)


def evaluate(
    objects: Sequence[Mapping[str, Any]], ctx: RuleContext, rules: Sequence[Rule] = RULES
) -> list[Violation]:
    """Run `rules` over the object set; violations in rule order, then object order."""
    out: list[Violation] = []
    for rule in rules:
        out.extend(rule.check(objects, ctx))
    return out

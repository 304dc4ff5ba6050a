"""RBAC: no wildcards, no cluster-admin bindings, secrets only with a stated reason
(`rbac-no-wildcards`)."""

from __future__ import annotations

from policy.rules.base import (
    Objects,
    RuleContext,
    Violation,
    as_list,
    as_map,
    object_id,
    of_kind,
    show,
)

SECRETS_REASON_ANNOTATION = "appstack.io/secrets-access-reason"
"""A Role/ClusterRole that grants `secrets` must carry this annotation with a non-empty reason."""


def check_rbac_no_wildcards(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """No wildcards in Roles, no cluster-admin bindings, secrets only with a stated reason."""
    rule = "rbac-no-wildcards"
    out: list[Violation] = []
    for role in of_kind(objects, "Role", "ClusterRole"):
        oid = object_id(role)
        annotations = as_map(as_map(role.get("metadata")).get("annotations"))
        reason = str(annotations.get(SECRETS_REASON_ANNOTATION) or "").strip()
        for index, raw in enumerate(as_list(role.get("rules"))):
            role_rule = as_map(raw)
            for field in ("apiGroups", "resources", "verbs"):
                values = [str(v) for v in as_list(role_rule.get(field))]
                if any("*" in v for v in values):
                    out.append(
                        Violation(
                            rule,
                            oid,
                            f"rules[{index}].{field} is {values}; wildcards (*) are not "
                            "allowed, list each item explicitly",
                        )
                    )
            resources = [str(v) for v in as_list(role_rule.get("resources"))]
            if any(r == "secrets" or r.startswith("secrets/") for r in resources) and not reason:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"rules[{index}].resources {resources} grants secrets; allowed only "
                        f"with a non-empty metadata.annotations[{SECRETS_REASON_ANNOTATION}] "
                        "stating why",
                    )
                )
    for binding in of_kind(objects, "RoleBinding", "ClusterRoleBinding"):
        role_ref = as_map(binding.get("roleRef"))
        if role_ref.get("name") == "cluster-admin":
            out.append(
                Violation(
                    rule,
                    object_id(binding),
                    f'roleRef.name is "cluster-admin" (roleRef.kind {show(role_ref.get("kind"))})'
                    "; bind a namespaced Role with only the verbs needed",
                )
            )
    return out

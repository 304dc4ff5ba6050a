"""Network: LoadBalancer source ranges in prod (`loadbalancer-source-ranges`), a default-deny
NetworkPolicy in every workload namespace (`namespace-default-deny`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.base import (
    Objects,
    RuleContext,
    Violation,
    as_list,
    as_map,
    namespace_of,
    object_id,
    of_kind,
    pod_templates,
    selector_matches,
    show,
)


def check_loadbalancer_source_ranges(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """In prod a LoadBalancer Service states its allowed source ranges."""
    rule = "loadbalancer-source-ranges"
    if not ctx.prod:
        return []
    out: list[Violation] = []
    for service in of_kind(objects, "Service"):
        spec = as_map(service.get("spec"))
        if spec.get("type") != "LoadBalancer":
            continue
        ranges = as_list(spec.get("loadBalancerSourceRanges"))
        if not ranges:
            out.append(
                Violation(
                    rule,
                    object_id(service),
                    "spec.loadBalancerSourceRanges is "
                    f"{show(spec.get('loadBalancerSourceRanges'))} on a LoadBalancer Service "
                    f"in {ctx.environment}; list the allowed CIDRs "
                    "(0.0.0.0/0 only where the config explicitly allows the world)",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# namespace-default-deny


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    spec = as_map(policy.get("spec"))
    selector = as_map(spec.get("podSelector"))
    if as_map(selector.get("matchLabels")) or as_list(selector.get("matchExpressions")):
        return False
    types = {str(t) for t in as_list(spec.get("policyTypes"))}
    if not {"Ingress", "Egress"} <= types:
        return False
    return not as_list(spec.get("ingress")) and not as_list(spec.get("egress"))


def check_namespace_default_deny(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """A default-deny NetworkPolicy in every workload namespace; every pod selected by one."""
    rule = "namespace-default-deny"
    out: list[Violation] = []
    policies = list(of_kind(objects, "NetworkPolicy"))
    reported: set[str] = set()
    for template in pod_templates(objects):
        ns = namespace_of(template.owner) or "default"
        in_ns = [p for p in policies if (namespace_of(p) or "default") == ns]
        if ns not in reported and not any(_is_default_deny(p) for p in in_ns):
            reported.add(ns)
            out.append(
                Violation(
                    rule,
                    f"Namespace/-/{ns}",
                    f"namespace {ns} holds {object_id(template.owner)} but no NetworkPolicy "
                    "there is a default deny (spec.podSelector {}, spec.policyTypes [Ingress, "
                    "Egress], no spec.ingress/spec.egress rules)",
                )
            )
        if not any(
            selector_matches(as_map(as_map(p.get("spec")).get("podSelector")), template.labels)
            for p in in_ns
        ):
            out.append(
                Violation(
                    rule,
                    object_id(template.owner),
                    f"{template.path('metadata.labels')} {show(dict(template.labels))} are "
                    f"selected by no NetworkPolicy in namespace {ns}; every pod must be "
                    "selected by one",
                )
            )
    return out

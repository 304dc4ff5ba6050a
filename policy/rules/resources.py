"""Resources and probes: requests and limits on every container (`resources-requests-limits`),
readiness and liveness probes that differ (`probes`)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from appstack_grammar import parse_quantity
from policy.rules.base import (
    Container,
    Objects,
    RuleContext,
    Violation,
    as_map,
    containers,
    object_id,
    pod_templates,
    show,
)


def _resource_problems(container: Container, resource: str) -> Iterator[str]:
    """One resource (cpu, memory) of a container: request and limit set, valid, >= 0, and the
    request <= the limit."""
    resources = as_map(container.spec.get("resources"))
    parsed: dict[str, Decimal] = {}
    for kind in ("requests", "limits"):
        path = f"{container.path}.resources.{kind}.{resource}"
        raw = as_map(resources.get(kind)).get(resource)
        if raw is None:
            yield f"{path} is unset; set a {resource} {kind[:-1]}"
            continue
        try:
            parsed[kind] = parse_quantity(raw)
        except ValueError as exc:
            yield f"{path}: {exc}"
            continue
        if parsed[kind] < 0:
            yield f"{path} is {show(raw)}; a {kind[:-1]} must not be negative"
    if "requests" in parsed and "limits" in parsed and parsed["requests"] > parsed["limits"]:
        req = as_map(resources.get("requests"))[resource]
        lim = as_map(resources.get("limits"))[resource]
        yield (
            f"{container.path}.resources.requests.{resource} ({show(req)}) is greater than "
            f"{container.path}.resources.limits.{resource} ({show(lim)}); "
            "the request must be <= the limit"
        )


def check_resources_requests_limits(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """cpu and memory requests and limits on every container and initContainer, >= 0,
    request <= limit."""
    rule = "resources-requests-limits"
    out: list[Violation] = []
    for template in pod_templates(objects):
        oid = object_id(template.owner)
        for container in containers(template):
            for resource in ("cpu", "memory"):
                out.extend(Violation(rule, oid, m) for m in _resource_problems(container, resource))
    return out


# --------------------------------------------------------------------------------------------
# probes


def check_probes(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Every container has readiness and liveness probes, and they are not identical."""
    rule = "probes"
    out: list[Violation] = []
    for template in pod_templates(objects):
        oid = object_id(template.owner)
        for container in containers(template, init=False):
            readiness = container.spec.get("readinessProbe")
            liveness = container.spec.get("livenessProbe")
            for field, probe in (("readinessProbe", readiness), ("livenessProbe", liveness)):
                if not probe:
                    out.append(
                        Violation(
                            rule,
                            oid,
                            f"{container.path}.{field} is unset; every container needs a "
                            "readinessProbe and a livenessProbe",
                        )
                    )
            if readiness and liveness and readiness == liveness:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{container.path}.livenessProbe is identical to "
                        f"{container.path}.readinessProbe; they must differ (e.g. a longer "
                        "liveness period/failureThreshold, or a different endpoint)",
                    )
                )
    return out

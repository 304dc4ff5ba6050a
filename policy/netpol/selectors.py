"""metav1.LabelSelector matching (apimachinery pkg/apis/meta/v1/helpers.go
LabelSelectorAsSelector): `matchLabels` and `matchExpressions` are ANDed; an empty selector
matches everything; operators In, NotIn, Exists, DoesNotExist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector the API server would reject (unknown operator, bad values)."""


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = str(expr.get("key", ""))
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op not in OPERATORS:
        raise SelectorError(f"matchExpressions operator {op!r}: allowed {', '.join(OPERATORS)}")
    if op in ("In", "NotIn") and not values:
        raise SelectorError(f"matchExpressions {key!r} {op}: values must be non-empty")
    if op in ("Exists", "DoesNotExist") and values:
        raise SelectorError(f"matchExpressions {key!r} {op}: values must be empty")
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":  # a missing key satisfies NotIn (labels.Requirement.Matches)
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    return key not in labels


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """True when `labels` satisfy `selector`; an empty (or None) selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])

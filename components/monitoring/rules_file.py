"""Prometheus rule groups as a standalone rules file (`promtool check rules` / `test rules`),
in a stable key order, and the metric names their expressions read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

_METRIC_TOKEN_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_SUFFIX_RE = re.compile(r"_(bucket|count|sum)$")


_GROUP_KEY_ORDER = ("name", "interval", "limit", "rules")
_RULE_KEY_ORDER = ("record", "alert", "expr", "for", "labels", "annotations")


def _ordered(mapping: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(order)}
    keys = sorted(mapping, key=lambda k: (rank.get(k, len(order)), k))
    return {key: mapping[key] for key in keys}


def _canonical_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out = _ordered(rule, _RULE_KEY_ORDER)
    for key in ("labels", "annotations"):
        if isinstance(out.get(key), Mapping):
            out[key] = dict(sorted(out[key].items()))
    return out


class _RulesDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (PromQL) as literal `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_RulesDumper.add_representer(str, _represent_str)


def rules_file(groups: Iterable[Mapping[str, Any]]) -> str:
    """A Prometheus rules file (`groups:`) with a fixed key order, for promtool or a ConfigMap."""
    doc = {
        "groups": [
            {
                **_ordered(group, _GROUP_KEY_ORDER),
                "rules": [_canonical_rule(rule) for rule in group.get("rules", [])],
            }
            for group in groups
        ]
    }
    return yaml.dump(
        doc, Dumper=_RulesDumper, sort_keys=False, default_flow_style=False, width=1000
    )


def _strip_non_metric_text(expr: str) -> str:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range / subquery durations
    # label lists of aggregations and vector matching
    return re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)


_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


def referenced_metric_names(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """Metric names the rule expressions read that the groups do not record themselves.

    Function names, keywords, label names/values and durations are ignored; names recorded by a
    `record:` rule of `groups` (`job:...`) are left out, so what remains must be scraped.
    """
    groups = list(groups)
    recorded = {
        rule["record"] for group in groups for rule in group.get("rules", []) if "record" in rule
    }
    names: set[str] = set()
    for group in groups:
        for rule in group.get("rules", []):
            text = _strip_non_metric_text(str(rule.get("expr", "")))
            for match in _METRIC_TOKEN_RE.finditer(text):
                token = match.group()
                rest = text[match.end() :].lstrip()
                if rest.startswith("(") or token.lower() in _PROMQL_WORDS:
                    continue  # function call or keyword
                before = text[: match.start()]
                if before and (before[-1].isdigit() or before[-1] == "."):
                    continue  # exponent/suffix of a number literal, e.g. 1e5
                names.add(token)
    return names - recorded


def metric_names_used(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """Base names of the app-exported metrics (`http_*`) the rules read.

    Histogram series suffixes (`_bucket`, `_count`, `_sum`) are stripped, so the result for
    `app_rule_groups()` is `{"http_requests_total", "http_request_duration_seconds"}`; recorded
    series (`job:...`) and cluster metrics (cAdvisor, kube-state-metrics, `up`) are excluded.
    """
    return {
        _HISTOGRAM_SUFFIX_RE.sub("", name)
        for name in referenced_metric_names(groups)
        if name.startswith("http_")
    }

"""Prometheus durations, the type of prometheus-operator's `Duration` fields (ServiceMonitor
`endpoints[].interval`, `scrapeTimeout`, PrometheusRule `for`): the CRD schema pattern (read from
the monitoring.coreos.com schemas of prometheus-operator v0.93.0 in the shared CRD schemas)

    ^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$

which also matches the empty string; Prometheus' own `model.ParseDuration` rejects that, and so
does this module."""

from __future__ import annotations

import re

PROMETHEUS_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def is_prometheus_duration(value: str) -> bool:
    """`30s`, `1m30s`, `2h`, `0`; not empty, no fractions, no spaces."""
    return bool(value) and PROMETHEUS_DURATION.match(value) is not None


def prometheus_duration_seconds(value: str) -> float:
    """Seconds of a valid Prometheus duration; ValueError otherwise."""
    if not is_prometheus_duration(value):
        raise ValueError(f"{value!r} is not a Prometheus duration (e.g. 30s, 1m30s, 2h)")
    total = 0.0
    rest = value
    ms = re.search(r"([0-9]+)ms$", rest)
    if ms:
        total += int(ms.group(1)) / 1000
        rest = rest[: ms.start()]
    for unit, seconds in _UNITS:
        match = re.match(rf"([0-9]+){unit}", rest)
        if match:
            total += int(match.group(1)) * seconds
            rest = rest[match.end() :]
    return total

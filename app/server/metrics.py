"""The service's metrics, in a private registry, and their bounded labels (the label policy of the
package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.server.routes import OTHER, ROUTES

STANDARD_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    in_flight: Gauge
    build_info: Gauge


def create_metrics(version: str) -> Metrics:
    """The service's metrics, registered in a fresh private registry."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "http_requests",
        "HTTP requests answered, by method, status code and route template.",
        ("method", "code", "path"),
        registry=registry,
    )
    duration = Histogram(
        "http_request_duration_seconds",
        "Time from reading the request line to the end of the response.",
        ("method", "path"),
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    in_flight = Gauge(
        "http_requests_in_flight",
        "HTTP requests being handled right now.",
        registry=registry,
    )
    build_info = Gauge(
        "app_build_info",
        "Build information; the value is always 1.",
        ("version",),
        registry=registry,
    )
    build_info.labels(version=version).set(1)
    return Metrics(registry, requests, duration, in_flight, build_info)


def path_label(path: str) -> str:
    """Bounded `path` label: the route template of a known route, else ``other``."""
    return path if path in ROUTES else OTHER


def method_label(method: str | None) -> str:
    """Bounded `method` label: a standard HTTP method, else ``other``."""
    return method if method in STANDARD_METHODS else OTHER

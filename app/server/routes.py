"""The service's endpoints: the route templates on PORT, the metrics path on METRICS_PORT and the
methods they answer. Shared by the handlers and the metrics' bounded `path` label."""

from __future__ import annotations

from typing import Final

SERVICE_NAME: Final = "appstack"
OTHER: Final = "other"
ROUTE_ROOT: Final = "/"
ROUTE_HEALTH: Final = "/health"
ROUTE_READY: Final = "/health/ready"
ROUTE_SLEEP: Final = "/sleep"
ROUTES: Final = frozenset({ROUTE_ROOT, ROUTE_HEALTH, ROUTE_READY, ROUTE_SLEEP})
METRICS_PATH: Final = "/metrics"
ALLOWED_METHODS: Final = ("GET", "HEAD")

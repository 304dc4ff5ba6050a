"""appstack reference HTTP service: the workload the stack deploys.

Run it with ``python -m app.server`` (or call `main()`). Standard library HTTP server
(`http.server.ThreadingHTTPServer`, one thread per connection, HTTP/1.1 keep-alive) plus
`prometheus_client`. Nothing is written to disk, so it runs on a read-only root filesystem.

Configuration (environment variables). An invalid value prints one ``error:`` line on stderr
naming the variable and its allowed range and exits with code 2 (no traceback):

* ``HOST`` (default ``0.0.0.0``): IPv4/IPv6 address literal both listeners bind to.
* ``PORT`` (``8080``): 1-65535; the app and health endpoints.
* ``METRICS_PORT`` (``9090``): 1-65535, different from PORT; ``GET /metrics`` only.
* ``SHUTDOWN_DELAY_SECONDS`` (``0``): 0-300; after SIGTERM keep accepting this long while
  readiness already answers 503 (time for endpoint removal to propagate). Leave it 0 when the
  pod has a preStop sleep: that already delays SIGTERM.
* ``DRAIN_TIMEOUT_SECONDS`` (``20``): 0-300; once the listener is closed, wait at most this
  long for in-flight requests, then exit anyway.
* ``APP_VERSION`` (``dev``): 1-128 printable characters (no control characters).
* ``FAULT_ERROR_RATIO`` (``0``, off): 0-1; the fault switch for alert and rollout tests. That
  share of the requests to the user routes (``/`` and ``/sleep``), spread evenly (the n-th fails
  when floor(n x ratio) grows), is answered 500 ``{"error": "fault injected"}``; the probes
  (``/health``, ``/health/ready``) are never failed. Never set it in a real environment.

Fault switches, all off by default, for the failure scenarios (a bad version must be caught by
the rollout, docs/operations.md "When a deploy goes wrong"); never set them in a real release:

* ``FAULT_NEVER_READY`` (``false``): ``true`` or ``false``; when true ``/health/ready`` always
  answers 503 ``{"status": "never-ready"}`` while liveness stays 200: a version whose readiness
  never passes (its rollout stalls, the old pods keep serving).
* ``FAULT_CRASH_ON_START`` (``false``): ``true`` or ``false``; when true the process logs
  ``crashed``, prints one ``error:`` line and exits 3 before it listens: a version that crashes
  before it is ready (the kubelet restarts it into ``CrashLoopBackOff``).
* ``STARTUP_DELAY_SECONDS`` (``0``): 0-300; sleep this long (logging ``starting``) before
  listening: a slow but good version, which a rollout must not fail while it stays within the
  startup probe's budget.

Endpoints on PORT (only GET and HEAD; HEAD answers like GET without a body; every body is JSON):

* ``GET /``              200 ``{"service": "appstack", "version": APP_VERSION, "host": HOSTNAME}``
                         where HOSTNAME is the process's host name (`socket.gethostname()`):
                         in Kubernetes the pod's name, so a client can tell which pod (and,
                         through its labels, which track or colour) served it; appstack sets
                         APP_VERSION from the pod's version label, so each track or colour
                         reports its own image's version
* ``GET /health``        liveness: 200 ``{"status": "ok"}``, also while draining
* ``GET /health/ready``  readiness: 200 ``{"status": "ready"}``; 503 ``{"status": "draining"}``
                         from the moment SIGTERM/SIGINT is received
* ``GET /sleep?ms=N``    diagnostic endpoint for drain and latency tests: sleeps N milliseconds
                         (integer >= 0, capped at 10000) and answers 200 ``{"slept_ms": N}``;
                         400 when ``ms`` is missing or not a non-negative integer
* unknown path -> 404 (whatever the method); known path with another method -> 405 with
  ``Allow: GET, HEAD``. A request that carries a body is answered and its connection closed
  (bodies are never read).

Metrics on METRICS_PORT: ``GET /metrics`` in the Prometheus text format (OpenMetrics when the
scraper asks for it), from a private `CollectorRegistry` (not the process-global default):

* ``http_requests_total{method,code,path}``              counter
* ``http_request_duration_seconds{method,path}``         histogram, buckets 0.005 .. 10 s
* ``http_requests_in_flight``                            gauge
* ``app_build_info{version}``                            gauge, always 1

Label policy (bounded cardinality): ``path`` is the route template for a known route (``/``,
``/health``, ``/health/ready``, ``/sleep``; the query string is never part of it) and the literal
``other`` for anything else; ``method`` is the request method for the nine standard HTTP methods
and ``other`` otherwise; ``code`` is the numeric status sent. Every request on PORT that gets a
response is counted, **including the liveness and readiness probes** (they are real requests;
filter on ``path`` to exclude them) and malformed requests the server rejects with 4xx (as
``method="other"`` unless the method was parsed, ``path="other"``). Scrapes of METRICS_PORT are
not counted. The duration runs from reading the request line to the last byte of the response.

Shutdown on SIGTERM or SIGINT (both are blocked in every thread and collected with
`signal.sigwait`, so this also works as PID 1 in a container and no handler races a lock):

1. readiness answers 503 at once; log ``draining``;
2. keep serving for SHUTDOWN_DELAY_SECONDS, then stop accepting and close the listener
   (responses sent while draining carry ``Connection: close``);
3. wait up to DRAIN_TIMEOUT_SECONDS for in-flight requests (the metrics listener keeps
   serving meanwhile); requests still running after that are abandoned;
4. log ``stopped`` and exit 0. Further signals during steps 1-3 are ignored (SIGKILL ends it).

The worst case from SIGTERM to exit is therefore SHUTDOWN_DELAY_SECONDS + DRAIN_TIMEOUT_SECONDS
plus about one second: a pod's terminationGracePeriodSeconds must be larger than that.

Logging: one JSON object per line on stdout for each lifecycle event (``started``,
``draining``, ``stopped``) and for unexpected request-handling errors (``request_error``, the
exception type only). There is no access log; request bodies and header values are never logged.
Startup failures (bad config: exit 2; cannot listen: exit 1; FAULT_CRASH_ON_START: exit 3) print
one ``error:`` line on stderr.

One module per concern: `config` (environment variables), `routes` (the endpoints), `metrics`
(registry and bounded labels), `handlers` (HTTP handling), `lifecycle` (health and drain: the
shared readiness state, start, drain and stop), `log` (JSON lines); `__main__` starts it.
"""

from app.server.config import Config, ConfigError, load_config
from app.server.lifecycle import main
from app.server.metrics import DURATION_BUCKETS, Metrics, create_metrics, method_label, path_label
from app.server.routes import OTHER, ROUTE_HEALTH, ROUTE_READY, ROUTE_ROOT, ROUTE_SLEEP, ROUTES

__all__ = [
    "DURATION_BUCKETS",
    "OTHER",
    "ROUTES",
    "ROUTE_HEALTH",
    "ROUTE_READY",
    "ROUTE_ROOT",
    "ROUTE_SLEEP",
    "Config",
    "ConfigError",
    "Metrics",
    "create_metrics",
    "load_config",
    "main",
    "method_label",
    "path_label",
]

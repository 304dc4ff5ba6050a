"""`python -m stackctl verify <stack>`: check every app from outside after a deploy.

Reads the stack output `health_urls` (components/endpoints.py: the app's readiness path on its
Ingress host or LoadBalancer address) and GETs each URL until it answers 200, retrying every
`--interval` seconds, each attempt bounded by `--request-timeout`, all apps in parallel and
together bounded by `--timeout`. One line per app, then a summary; exit 0 when every app is
ready, 1 when any is not, 2 for bad input (unknown stack, no `health_urls` output, bad --url).

What counts as ready is the app's own readiness answer (app/server.py): 200
`{"status": "ready"}`. A draining pod answers 503 `{"status": "draining"}`, a stopped one
refuses the connection, a hung one times out: each is named in the app's line.

`--url app=URL` replaces (or adds) an app's URL, e.g. a dev ClusterIP service checked through a
port-forward or a VPN address; `--no-outputs` checks only the `--url`s (GitOps: no Pulumi stack).
`--expect-version app=V` also waits until `GET /` under the same prefix reports version V, so a
check right after an asynchronous rollout (Argo CD) does not pass on the previous version.

CI runs it after every deploy (scripts/ci/verify.sh, called by deploy.sh); a failure is a
failed deploy and triggers the automatic rollback.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stackctl.errors import UserError
from stackctl.ops.api_proxy import ApiAccess, route
from stackctl.ops.deploy import REPO_ROOT
from stackctl.ops.operator import Console
from stackctl.ops.stacks import validate_stack_name

OUTPUT_KEY = "health_urls"
USER_AGENT = "appstack-verify"


@dataclass(frozen=True)
class Answer:
    """One attempt: did the app answer ready, and what it said."""

    ready: bool
    detail: str
    body: Any = None


@dataclass(frozen=True)
class AppResult:
    app: str
    url: str
    ready: bool
    detail: str
    attempts: int
    seconds: float

    def line(self, width: int) -> str:
        status = "ok" if self.ready else "FAILED"
        tries = f"attempt {self.attempts}" if self.ready else f"{self.attempts} attempt(s)"
        return (
            f"{self.app.ljust(width)}  {status:<6}  {self.url or '-'}  "
            f"{self.detail} ({tries}, {self.seconds:.1f}s)"
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None


def _said(code: int, body: Any) -> str:
    status = body.get("status") if isinstance(body, dict) else None
    return f"{code} {status}" if status else f"HTTP {code}"


def fetch(url: str, timeout: float, access: ApiAccess | None = None) -> Answer:
    """GET `url` once; 200 is ready, anything else is named (status, refused, timeout, DNS).
    With `access`, a URL on its API server carries its credentials (stackctl/ops/api_proxy.py)."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    context = None
    if access is not None and url.startswith(access.server.rstrip("/") + "/"):
        headers.update(access.headers)
        context = access.context
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            body = _json(response.read(65536))
            return Answer(response.status == 200, _said(response.status, body), body)
    except urllib.error.HTTPError as exc:
        with exc:
            body = _json(exc.read(65536))
        return Answer(False, _said(exc.code, body), body)
    except urllib.error.URLError as exc:
        return Answer(False, _reason(exc.reason, timeout))
    except TimeoutError:
        return Answer(False, f"no answer within {timeout:g}s")
    except (OSError, ValueError) as exc:
        return Answer(False, _reason(exc, timeout))


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(reason, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message})"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    return str(reason) or type(reason).__name__


def root_url(health_url: str) -> str:
    """`GET /` of the app behind `health_url`: the readiness path replaced by `/`."""
    parts = urlsplit(health_url)
    path = parts.path
    for suffix in ("/health/ready", "/health"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/") + "/", "", ""))


Fetch = Callable[[str, float], Answer]


@dataclass(frozen=True)
class Budget:
    """Retry policy shared by every app of one run."""

    timeout: float = 300.0
    request_timeout: float = 5.0
    interval: float = 5.0


def check_app(
    app: str,
    url: str,
    budget: Budget,
    *,
    expect_version: str | None = None,
    fetch_: Fetch = fetch,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AppResult:
    started = clock()
    deadline = started + budget.timeout
    if not url:
        return AppResult(app, url, False, "no address yet (LoadBalancer pending?)", 0, 0.0)
    if urlsplit(url).scheme not in ("http", "https"):
        return AppResult(app, url, False, "not an http(s) URL", 0, 0.0)
    attempts = 0
    while True:
        attempts += 1
        remaining = max(deadline - clock(), 0.1)
        answer = fetch_(url, min(budget.request_timeout, remaining))
        detail = answer.detail
        ready = answer.ready
        if ready and expect_version is not None:
            served = fetch_(root_url(url), min(budget.request_timeout, remaining)).body
            version = served.get("version") if isinstance(served, dict) else None
            ready = version == expect_version
            detail += f", version {version}" + ("" if ready else f" (waiting for {expect_version})")
        if ready:
            return AppResult(app, url, True, detail, attempts, clock() - started)
        if clock() + budget.interval >= deadline:
            return AppResult(app, url, False, detail, attempts, clock() - started)
        sleep(budget.interval)


def run_verify(
    stack: str,
    urls: Mapping[str, str],
    budget: Budget,
    *,
    console: Console,
    expect_versions: Mapping[str, str] | None = None,
    fetch_: Fetch = fetch,
) -> int:
    if not urls:
        raise UserError(f"nothing to verify in {stack}: no app URLs (stack output {OUTPUT_KEY})")
    apps = sorted(urls)
    console.print(
        f"== verify {stack}: {len(apps)} app(s), ready within {budget.timeout:g}s "
        f"(every {budget.interval:g}s, {budget.request_timeout:g}s per request)"
    )
    versions = expect_versions or {}
    with ThreadPoolExecutor(max_workers=min(len(apps), 16)) as pool:
        futures = [
            pool.submit(
                check_app, app, urls[app], budget, expect_version=versions.get(app), fetch_=fetch_
            )
            for app in apps
        ]
        results = [f.result() for f in futures]
    width = max(len(app) for app in apps)
    for result in results:
        console.print(result.line(width))
    failed = [r.app for r in results if not r.ready]
    if failed:
        console.print(f"verify {stack}: FAILED, not ready: {', '.join(failed)}")
        return 1
    console.print(f"verify {stack}: all {len(results)} app(s) ready")
    return 0


# --------------------------------------------------------------------------------------------
# CLI


def _pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"{flag} {raw!r}: expected <app>=<value>")
        pairs[key.strip()] = value.strip()
    return pairs


def stack_outputs(stack: str, project_dir: Path) -> dict[str, Any]:
    """The stack's outputs through the Automation API (secret outputs are left out)."""
    from stackctl.ops.automation import PulumiAutomationBackend

    return PulumiAutomationBackend(stack, project_dir).outputs()


# Tests replace this to serve outputs without the Pulumi CLI.
OUTPUTS: Callable[[str, Path], dict[str, Any]] = stack_outputs


def urls_from_outputs(stack: str, outputs: Mapping[str, Any]) -> dict[str, str]:
    found = outputs.get(OUTPUT_KEY)
    if not isinstance(found, dict):
        raise UserError(
            f"stack {stack} has no `{OUTPUT_KEY}` output (deployed before `stackctl verify` "
            "existed?); deploy it once, or pass --no-outputs with --url app=URL"
        )
    return {str(app): str(url or "") for app, url in found.items()}


def _handle(args: argparse.Namespace) -> int:
    stack = validate_stack_name(args.stack)
    overrides = _pairs(args.url, "--url")
    versions = _pairs(args.expect_version, "--expect-version")
    urls: dict[str, str] = {}
    if not args.no_outputs:
        urls = urls_from_outputs(stack, OUTPUTS(stack, Path(args.project_dir).resolve()))
    urls.update(overrides)
    unknown = sorted(set(versions) - set(urls))
    if unknown:
        raise UserError(f"--expect-version {', '.join(unknown)}: no such app to verify")
    budget = Budget(args.timeout, args.request_timeout, args.interval)
    # A cluster-internal URL, checked from outside the cluster: through the API server's
    # service proxy with the deploy kubeconfig (stackctl/ops/api_proxy.py).
    urls, access = route(urls)

    def fetch_(url: str, timeout: float) -> Answer:
        return fetch(url, timeout, access)

    return run_verify(
        stack,
        urls,
        budget,
        console=Console.from_environment(),
        expect_versions=versions,
        fetch_=fetch_,
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 3600] seconds")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every app of a deployed stack from outside (readiness over HTTP)",
        description="GET each app's readiness URL (stack output health_urls) until it answers "
        "200 or the timeout passes. Exit 0 all ready, 1 any not ready, 2 bad input.",
    )
    parser.add_argument("stack", help="stack name: dev, staging, prod (or <org>/<stack>)")
    parser.add_argument("--project-dir", default=str(REPO_ROOT), help="directory with Pulumi.yaml")
    parser.add_argument("--timeout", type=_seconds, default=300.0, help="overall seconds (300)")
    parser.add_argument(
        "--request-timeout", type=_seconds, default=5.0, help="seconds per request (5)"
    )
    parser.add_argument("--interval", type=_seconds, default=5.0, help="seconds between tries")
    parser.add_argument(
        "--url", action="append", default=[], metavar="APP=URL", help="URL to check for APP"
    )
    parser.add_argument(
        "--expect-version",
        action="append",
        default=[],
        metavar="APP=VERSION",
        help="also wait until GET / of APP reports this version",
    )
    parser.add_argument(
        "--no-outputs", action="store_true", help="check only --url (no Pulumi stack)"
    )
    parser.set_defaults(handler=_handle)

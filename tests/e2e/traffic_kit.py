"""Traffic through a Service on the real nodes while a release changes it (issue 28, item 5).

`Timeline` follows a Service's EndpointSlices and its pods with the API server's watch (a
streamed list of events, recorded with the wall-clock time each arrived), so a test can say, for
every pod that terminated during a load, when its endpoint stopped being ready and when its
container stopped (`terminated.finishedAt`, which the kubelet reports before it removes the pod).
`graceful_problems` turns that into the graceful-shutdown rule: every terminated pod left the
endpoints before its process stopped. `split_problems` compares a measured traffic split with the
share the render gives, at a false-alarm rate (exact binomial test, e2e/load.py).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from e2e.kube import Kube
from e2e.load import binomial_bounds

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# False-alarm rate of one traffic-split check: a correct split fails it with at most this
# probability (two-sided, exact binomial). Each run makes a handful of such checks.
SPLIT_ALPHA = 1e-4


def api_seconds(text: str) -> float:
    """An API timestamp (RFC 3339, seconds, UTC) as wall-clock seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass
class PodTrack:
    """What the watch saw of one pod (wall-clock seconds)."""

    name: str
    node: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ready_at: float | None = None
    deleting_at: float | None = None
    """First event with a deletionTimestamp."""
    finished_at: float | None = None
    """The app container's terminated.finishedAt (the API's second precision, truncated)."""
    exit_code: int | None = None
    endpoint_ready_at: float | None = None
    endpoint_left_at: float | None = None
    """First event after it was a ready endpoint in which it no longer is (not ready, or gone)."""
    gone_at: float | None = None


class _Watch(threading.Thread):
    """One streamed watch (`?watch=1`) of `path`, each event handed to `handle` with its arrival
    time; restarted from the last resourceVersion when the server ends the stream."""

    def __init__(self, kube: Kube, path: str, query: dict[str, str], handle: Any) -> None:
        super().__init__(daemon=True, name=f"watch {path}")
        self.kube, self.path, self.query, self.handle = kube, path, query, handle
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        creds = kube.creds
        self.ctx = ssl.create_default_context(cafile=str(creds.ca_file))
        self.ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
        listed = kube.request("GET", path, query=query)
        self.version = listed["metadata"]["resourceVersion"]
        now = time.time()
        for item in listed.get("items") or []:
            handle("ADDED", item, now)

    def run(self) -> None:
        while not self.stopped.is_set():
            query = {**self.query, "watch": "1", "resourceVersion": self.version,
                     "timeoutSeconds": "30", "allowWatchBookmarks": "true"}  # fmt: skip
            url = f"{self.kube.creds.server}/{self.path}?{urllib.parse.urlencode(query)}"
            try:
                with urllib.request.urlopen(url, context=self.ctx, timeout=60) as stream:
                    for line in stream:
                        if self.stopped.is_set():
                            return
                        event = json.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":  # e.g. 410 Gone: relist
                            self.version = self.kube.request("GET", self.path, query=self.query)[
                                "metadata"
                            ]["resourceVersion"]
                            break
                        self.version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.handle(event["type"], obj, time.time())
            except BaseException as exc:  # reported by the test (Timeline.check)
                if not self.stopped.is_set():
                    self.error = exc
                return


class Timeline:
    """Pods and endpoints of Service `service` in `namespace` (pods by `selector`), from the
    moment it starts; use as a context manager around a scenario."""

    def __init__(self, kube: Kube, namespace: str, service: str, selector: str) -> None:
        self.kube, self.namespace, self.service, self.selector = kube, namespace, service, selector
        self.pods: dict[str, PodTrack] = {}
        self.lock = threading.Lock()
        self._ready_endpoints: set[str] = set()
        self._slices: dict[str, set[str]] = {}
        self._watches: list[_Watch] = []

    def _track(self, name: str) -> PodTrack:
        return self.pods.setdefault(name, PodTrack(name))

    def _on_pod(self, kind: str, pod: dict[str, Any], at: float) -> None:
        with self.lock:
            track = self._track(pod["metadata"]["name"])
            track.node = pod["spec"].get("nodeName") or track.node
            track.labels = dict(pod["metadata"].get("labels") or {})
            status = pod.get("status") or {}
            conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
            if conds.get("Ready") == "True" and track.ready_at is None:
                track.ready_at = at
            if pod["metadata"].get("deletionTimestamp") and track.deleting_at is None:
                track.deleting_at = at
            for cs in status.get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated")
                if cs["name"] == "app" and term and track.finished_at is None:
                    track.finished_at = api_seconds(term["finishedAt"])
                    track.exit_code = int(term.get("exitCode", -1))
            if kind == "DELETED":
                track.gone_at = at

    def _on_slice(self, kind: str, eps: dict[str, Any], at: float) -> None:
        ready = set()
        if kind != "DELETED":
            for endpoint in eps.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                if ref.get("kind") == "Pod" and (endpoint.get("conditions") or {}).get("ready"):
                    ready.add(ref["name"])
        with self.lock:
            self._slices[eps["metadata"]["name"]] = ready
            now_ready = set().union(*self._slices.values())
            for name in now_ready - self._ready_endpoints:
                track = self._track(name)
                track.endpoint_ready_at = at
                track.endpoint_left_at = None
            for name in self._ready_endpoints - now_ready:
                self._track(name).endpoint_left_at = at
            self._ready_endpoints = now_ready

    def ready_endpoints(self) -> set[str]:
        with self.lock:
            return set(self._ready_endpoints)

    def __enter__(self) -> Timeline:
        pods = _Watch(self.kube, f"api/v1/namespaces/{self.namespace}/pods",
                      {"labelSelector": self.selector}, self._on_pod)  # fmt: skip
        slices = _Watch(
            self.kube,
            f"apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices",
            {"labelSelector": f"{SERVICE_NAME_LABEL}={self.service}"},
            self._on_slice,
        )
        self._watches = [pods, slices]
        for watch in self._watches:
            watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for watch in self._watches:
            watch.stopped.set()

    def check(self) -> None:
        for watch in self._watches:
            if watch.error is not None:
                raise AssertionError(f"{watch.name} failed: {watch.error!r}")

    def wait_gone(self, names: set[str], timeout: float) -> None:
        """Until every pod in `names` was removed (and reported its container's end)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with self.lock:
                if all(self._track(n).gone_at is not None for n in names):
                    return
            time.sleep(0.2)
        raise AssertionError(f"pods not removed after {timeout:.0f}s: {sorted(names)}")

    def terminated(self) -> list[PodTrack]:
        with self.lock:
            return [t for t in self.pods.values() if t.deleting_at is not None]


def graceful_problems(timeline: Timeline) -> list[str]:
    """Every pod that terminated while the timeline ran: it was a ready endpoint, it stopped
    being one before its process stopped (finishedAt is truncated to the second, so the endpoint
    must have left before that second began), and the app exited 0 (drained: its lifecycle exits
    0 after the drain, app/server)."""
    problems = []
    for track in timeline.terminated():
        if track.endpoint_ready_at is None:
            continue  # never served (e.g. a surge pod removed before it was ready)
        if track.finished_at is None:
            problems.append(f"{track.name}: no terminated state seen before it was removed")
            continue
        if track.endpoint_left_at is None:
            problems.append(f"{track.name}: still a ready endpoint after its process stopped")
        elif track.endpoint_left_at >= track.finished_at:
            problems.append(
                f"{track.name}: endpoint left {track.endpoint_left_at - track.finished_at:+.2f}s "
                "after the second its process stopped"
            )
        if track.exit_code != 0:
            problems.append(f"{track.name}: exit code {track.exit_code} (not drained)")
    return problems


def grouped(split: dict[str, int], group_of: dict[str, str]) -> dict[str, int]:
    """Per-pod response counts (the app's `host` field: the pod's name) summed per group (a
    pod's track or colour, from its labels); a host no pod had stays under its own name."""
    out: dict[str, int] = {}
    for host, count in split.items():
        group = group_of.get(host, f"unknown:{host}")
        out[group] = out.get(group, 0) + count
    return out


def split_problems(
    counts: dict[str, int], expected: dict[str, float], alpha: float = SPLIT_ALPHA
) -> list[str]:
    """Each group's count must lie in the exact binomial acceptance region of its expected
    share at false-alarm rate `alpha` (kube-proxy's iptables mode picks one ready endpoint
    uniformly at random per new connection: `statistic --mode random`, probability 1/n, then
    1/(n-1), ...), and no response may come from a group not expected."""
    n = sum(counts.values())
    problems = []
    for group, share in sorted(expected.items()):
        k = counts.get(group, 0)
        lo, hi = binomial_bounds(n, share, alpha)
        if not lo <= k <= hi:
            problems.append(
                f"{group}: {k} of {n} ({k / max(n, 1):.3f}), expected {share:.3f} "
                f"(acceptance {lo}..{hi} at alpha {alpha:g})"
            )
    unexpected = set(counts) - set(expected)
    if unexpected:
        problems.append(f"responses from unexpected groups: {sorted(unexpected)}")
    return problems

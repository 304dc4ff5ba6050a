"""promtool unit-test cases for every alert of a rendered stack, generated from the RENDER.

For each alert kind there is a firing case and a silent case. The input series are those the
cluster would export for the rendered pods (tests/monitoring/series.py: pod names as the
controllers give them, container names and memory limits from the pod spec, the workloads' real
kind and name, the app's metrics through the rendered ServiceMonitor). The expected alerts
name those pods, containers and workloads: one per workload of the release strategy (every
colour, the canary track, both ReplicaSets of a Rollout mid-release), so an alert that cannot
see some strategy's pods fails. Thresholds come from the stack config
(`appstack:monitoring.alerts`), never from the rules. The silent case also drives a sibling app
`web-api` into the bad state: `web`'s alerts must ignore it.

promtool compares labels *and* annotations exactly, so a firing case also pins the value the
expression computes (it is interpolated into the description).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.server import DURATION_BUCKETS
from components import config as config_model
from tests.monitoring import series as gen

EVALUATION_INTERVAL = "1m"
APP = "web"
SIBLING = "web-api"
NAME_LABEL = "app.kubernetes.io/name"


@dataclass(frozen=True)
class Firing:
    """One expected alert: its labels (without alertname/severity) and its value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Case:
    name: str
    series: Sequence[tuple[str, str]]
    eval_time: str
    firing: Sequence[Firing] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------
# What the render says about an app


@dataclass(frozen=True)
class AppView:
    """The rendered objects of one app and the pods the controllers would run for them."""

    app: str
    cluster: gen.Cluster

    def _mine(self, kind: str) -> list[Mapping[str, Any]]:
        return [
            o for o in self.cluster.of(kind) if o["metadata"]["labels"].get(NAME_LABEL) == self.app
        ]

    @property
    def workloads(self) -> list[Mapping[str, Any]]:
        return self._mine("Deployment") + self._mine("Rollout")

    @property
    def pods(self) -> list[gen.Pod]:
        return [p for p in self.cluster.pods if p.labels.get(NAME_LABEL) == self.app]

    def first_pod_of_each_revision(self) -> list[gen.Pod]:
        seen: dict[tuple[str, str], gen.Pod] = {}
        for pod in self.pods:
            seen.setdefault((pod.owner, pod.revision), pod)
        return list(seen.values())

    @property
    def hpas(self) -> list[Mapping[str, Any]]:
        return self._mine("HorizontalPodAutoscaler")

    @property
    def pdbs(self) -> list[Mapping[str, Any]]:
        return self._mine("PodDisruptionBudget")

    @property
    def targets(self) -> list[gen.ScrapeTarget]:
        return gen.app_targets(self.cluster, self.app)


def _ctr_labels(pod: gen.Pod, container: str) -> dict[str, str]:
    return {"namespace": pod.namespace, "pod": pod.name, "container": container}


def _job_labels(view: AppView) -> dict[str, str]:
    target = view.targets[0]
    return {"job": target.labels["job"], "namespace": target.labels["namespace"]}


def _ns(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["namespace"])


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


# ---------------------------------------------------------------------------------------------
# Per-container alerts: a bad container in the first pod of every ReplicaSet of the app


ContainerSeries = Callable[[gen.Pod, str, bool], list[tuple[str, str]]]
"""(pod, container, bad) -> series; the expected alert value comes from `value(pod, bad)`."""


def _container_cases(
    web: AppView,
    sibling: AppView,
    make: ContainerSeries,
    value: Callable[[gen.Pod], float],
    eval_time: str,
    what: str,
) -> list[Case]:
    bad = web.first_pod_of_each_revision()
    firing_series = []
    expected = []
    for pod in bad:
        for container in pod.containers:
            firing_series += make(pod, container.name, True)
            expected.append(Firing(_ctr_labels(pod, container.name), value(pod)))
    healthy = [p for p in web.pods if p not in bad]
    for pod in healthy[:1]:
        firing_series += make(pod, pod.containers[0].name, False)
    silent_series = []
    for pod in web.pods:
        for container in pod.containers:
            silent_series += make(pod, container.name, False)
    for pod in sibling.pods:
        for container in pod.containers:
            silent_series += make(pod, container.name, True)
    return [
        Case(f"{what} in the first pod of every ReplicaSet", firing_series, eval_time, expected),
        Case(f"no {what} in any pod; the sibling app's pods are ignored", silent_series, eval_time),
    ]


def _memory(web: AppView, sibling: AppView, ratio: float) -> list[Case]:
    high, low = (1 + ratio) / 2, ratio / 2

    def used(pod: gen.Pod, bad: bool) -> int:
        limit = pod.containers[0].memory_limit
        assert limit is not None, f"{pod.name}: no memory limit in the pod spec"
        return int(limit * (high if bad else low))

    def make(pod: gen.Pod, container: str, bad: bool) -> list[tuple[str, str]]:
        ctr = next(c for c in pod.containers if c.name == container)
        assert ctr.memory_limit is not None
        return [
            *gen.cadvisor(
                pod, container, "container_memory_working_set_bytes", f"{used(pod, bad)}+0x30"
            ),
            gen.ksm_container(
                pod,
                container,
                "kube_pod_container_resource_limits",
                f"{ctr.memory_limit}+0x30",
                resource="memory",
                unit="byte",
                node=pod.node,
            ),
        ]

    def value(pod: gen.Pod) -> float:
        limit = pod.containers[0].memory_limit
        assert limit is not None
        return used(pod, True) / limit

    return _container_cases(web, sibling, make, value, "20m", "memory near the limit")


def _throttling(web: AppView, sibling: AppView, ratio: float) -> list[Case]:
    high, low = min(100, math.ceil(ratio * 100) + 20), math.floor(ratio * 50)

    def make(pod: gen.Pod, container: str, bad: bool) -> list[tuple[str, str]]:
        return [
            *gen.cadvisor(
                pod,
                container,
                "container_cpu_cfs_throttled_periods_total",
                f"0+{high if bad else low}x40",
            ),
            *gen.cadvisor(pod, container, "container_cpu_cfs_periods_total", "0+100x40"),
        ]

    return _container_cases(web, sibling, make, lambda _: high / 100, "25m", "CPU throttling")


def _restarts(web: AppView, sibling: AppView, per_hour: int) -> list[Case]:
    bad, good = per_hour + 2, per_hour - 1

    def make(pod: gen.Pod, container: str, is_bad: bool) -> list[tuple[str, str]]:
        # the restarts happen at 61m; at 70m they all lie within the last hour
        n = bad if is_bad else good
        return [
            gen.ksm_container(
                pod, container, "kube_pod_container_status_restarts_total", f"0+0x60 {n}+0x30"
            )
        ]

    # The restarting pods are replaced (a good version) at 68m: kube-state-metrics stops
    # exporting them, Prometheus marks their series stale; the samples before that stay in the
    # [1h] range, but the pod is gone and so is the alert.
    deleted = [
        gen.ksm_container(
            pod, container.name, "kube_pod_container_status_restarts_total",
            f"0+0x60 {bad}+0x6 stale",
        )
        for pod in web.first_pod_of_each_revision()
        for container in pod.containers
    ]  # fmt: skip
    return [
        *_container_cases(web, sibling, make, lambda _: bad, "70m", "restarts"),
        Case("restarts in pods deleted since (replaced by a good version)", deleted, "75m"),
    ]


def _crashloop(web: AppView, sibling: AppView) -> list[Case]:
    def make(pod: gen.Pod, container: str, bad: bool, values: str = "1+0x30") -> list[gen.Series]:
        reason = "CrashLoopBackOff" if bad else "ContainerCreating"
        restarts = values.replace("1+0x", "0+1x") if bad else values.replace("1+0x", "0+0x")
        # kube-state-metrics exports the restart count of every container of a pod that exists
        return [
            gen.ksm_container(
                pod, container, "kube_pod_container_status_waiting_reason", values, reason=reason
            ),
            gen.ksm_container(pod, container, "kube_pod_container_status_restarts_total", restarts),
        ]

    # The crash-looping pods are replaced at 21m: within the [5m] of max_over_time their last
    # samples remain, but the pods no longer exist.
    deleted = [
        series
        for pod in web.first_pod_of_each_revision()
        for container in pod.containers
        for series in make(pod, container.name, True, "1+0x20 stale")
    ]
    return [
        *_container_cases(web, sibling, make, lambda _: 1, "20m", "CrashLoopBackOff"),
        Case("CrashLoopBackOff in pods deleted since (replaced by a good version)", deleted, "23m"),
    ]


# ---------------------------------------------------------------------------------------------
# Per-job alerts (the app's own metrics through the ServiceMonitor)


def _target_down(web: AppView, sibling: AppView) -> list[Case]:
    targets = web.targets
    assert targets, "the ServiceMonitor scrapes no pod of the app"
    return [
        Case(
            "every target of the app down",
            [gen.up(t, "0+0x15") for t in targets] + [gen.up(t, "1+0x15") for t in sibling.targets],
            "10m",
            [Firing(_job_labels(web), 0)],
        ),
        Case(
            "one target up; the sibling app down",
            [gen.up(t, "1+0x15" if i == 0 else "0+0x15") for i, t in enumerate(targets)]
            + [gen.up(t, "0+0x15") for t in sibling.targets],
            "10m",
        ),
    ]


def _error_ratio(web: AppView, sibling: AppView, ratio: float) -> list[Case]:
    high, low = min(100, math.ceil(ratio * 200)), math.floor(ratio * 50)

    def traffic(view: AppView, errors: int) -> list[tuple[str, str]]:
        out = []
        for t in view.targets:
            out.append(gen.http_requests(t, "200", f"0+{100 - errors}x30"))
            out.append(gen.http_requests(t, "500", f"0+{errors}x30"))
            out.append(gen.http_requests(t, "404", "0+7x30"))  # 4xx are not errors
        return out

    return [
        Case(
            f"{high}% 5xx on every pod",
            traffic(web, high),
            "20m",
            [Firing(_job_labels(web), high / 107)],
        ),
        Case(
            f"{low}% 5xx; the sibling app failing", traffic(web, low) + traffic(sibling, 100), "20m"
        ),
    ]


def _latency(web: AppView, sibling: AppView, threshold: float) -> list[Case]:
    bounds = list(DURATION_BUCKETS)
    lower = next(b for b in bounds if b >= threshold)
    upper = bounds[bounds.index(lower) + 1]
    calm_upper = max(b for b in bounds if b <= threshold)

    def observed(view: AppView, duration: float) -> list[tuple[str, str]]:
        return [s for t in view.targets for s in gen.duration_buckets(t, {duration: 100}, bounds)]

    # histogram_quantile interpolates linearly inside the bucket holding rank 0.95
    p95 = lower + 0.95 * (upper - lower)
    return [
        Case(f"p95 {p95:.3f}s", observed(web, upper), "25m", [Firing(_job_labels(web), p95)]),
        Case(
            f"p95 below {threshold}s; the sibling app slow",
            observed(web, calm_upper) + observed(sibling, bounds[-1]),
            "25m",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Per-object alerts (kube-state-metrics, Argo Rollouts controller)


def _hpa(web: AppView, sibling: AppView) -> list[Case]:
    def hpa_series(hpa: Mapping[str, Any], current: int) -> list[tuple[str, str]]:
        spec = hpa["spec"]
        return [
            gen.ksm_object(metric, "horizontalpodautoscaler", _ns(hpa), _name(hpa), f"{v}+0x30")
            for metric, v in (
                ("kube_horizontalpodautoscaler_status_current_replicas", current),
                ("kube_horizontalpodautoscaler_spec_max_replicas", spec["maxReplicas"]),
                ("kube_horizontalpodautoscaler_spec_min_replicas", spec.get("minReplicas", 1)),
            )
        ]

    at_max = [s for h in web.hpas for s in hpa_series(h, h["spec"]["maxReplicas"])]
    below = [s for h in web.hpas for s in hpa_series(h, h["spec"]["maxReplicas"] - 1)]
    return [
        Case(
            "every HPA of the app at its max",
            at_max,
            "20m",
            [
                Firing(
                    {"namespace": _ns(h), "horizontalpodautoscaler": _name(h)},
                    h["spec"]["maxReplicas"],
                )
                for h in web.hpas
            ],
        ),
        Case(
            "below max; the sibling's HPA at max",
            below + [s for h in sibling.hpas for s in hpa_series(h, h["spec"]["maxReplicas"])],
            "20m",
        ),
    ]


def _pdb(web: AppView, sibling: AppView) -> list[Case]:
    def allowed(pdb: Mapping[str, Any], n: int) -> tuple[str, str]:
        return gen.ksm_object(
            "kube_poddisruptionbudget_status_pod_disruptions_allowed",
            "poddisruptionbudget",
            _ns(pdb),
            _name(pdb),
            f"{n}+0x90",
        )

    return [
        Case(
            "no disruption allowed by any PDB of the app for 70m",
            [allowed(p, 0) for p in web.pdbs],
            "70m",
            [Firing({"namespace": _ns(p), "poddisruptionbudget": _name(p)}, 0) for p in web.pdbs],
        ),
        Case(
            "one disruption allowed; the sibling's PDB blocked",
            [allowed(p, 1) for p in web.pdbs] + [allowed(p, 0) for p in sibling.pdbs],
            "70m",
        ),
    ]


def _deployment_state(
    deployment: Mapping[str, Any], progressing: bool, unavailable: int
) -> list[tuple[str, str]]:
    ns, name = _ns(deployment), _name(deployment)
    out = [
        gen.ksm_object(
            "kube_deployment_status_condition",
            "deployment",
            ns,
            name,
            f"{int(status == ('true' if progressing else 'false'))}+0x30",
            condition="Progressing",
            status=status,
        )
        for status in ("true", "false", "unknown")
    ]
    out += [
        gen.ksm_object("kube_deployment_metadata_generation", "deployment", ns, name, "3+0x30"),
        gen.ksm_object(
            "kube_deployment_status_observed_generation", "deployment", ns, name, "3+0x30"
        ),
        gen.ksm_object(
            "kube_deployment_status_replicas_unavailable",
            "deployment",
            ns,
            name,
            f"{unavailable}+0x30",
        ),
    ]
    return out


def _rollout_state(
    cl: gen.Cluster, rollout: Mapping[str, Any], phase: str, unavailable: int
) -> list[tuple[str, str]]:
    return [
        gen.rollout_info(cl, rollout, phase),
        gen.argo_rollout("rollout_info_replicas_unavailable", cl, rollout, f"{unavailable}+0x30"),
    ]


def _workload_cases(web: AppView, sibling: AppView, kind: str) -> list[Case]:
    cl = web.cluster
    stuck = kind == "RolloutStuck"
    firing_series: list[tuple[str, str]] = []
    silent_series: list[tuple[str, str]] = []
    expected = []
    for w in web.workloads:
        if w["kind"] == "Rollout":
            firing_series += _rollout_state(
                cl, w, "Timeout" if stuck else "Progressing", 0 if stuck else 1
            )
            # a blue-green Rollout waits for its manual promotion: Paused is no alarm
            silent_series += _rollout_state(cl, w, "Paused", 0)
            labels = {"namespace": _ns(w), "rollout": _name(w)}
            if stuck:
                labels["phase"] = "Timeout"
        else:
            firing_series += _deployment_state(
                w, progressing=not stuck, unavailable=0 if stuck else 1
            )
            silent_series += _deployment_state(w, progressing=True, unavailable=0)
            labels = {"namespace": _ns(w), "deployment": _name(w)}
        expected.append(Firing(labels, 1))
    for w in sibling.workloads:
        silent_series += _deployment_state(w, progressing=False, unavailable=2)
    what = "not progressing" if stuck else "a replica unavailable"
    return [
        Case(f"every workload of the app {what}", firing_series, "20m", expected),
        Case(f"the app's workloads healthy; the sibling {what}", silent_series, "20m"),
    ]


def cases(
    cl: gen.Cluster, cfg: config_model.StackConfig, app: str = APP, sibling_app: str = SIBLING
) -> dict[str, list[Case]]:
    """Alert kind -> its cases, for the alerts the render defines for `app`."""
    web, sibling = AppView(app, cl), AppView(sibling_app, cl)
    alerts = cfg.monitoring.alerts
    found = {
        "TargetDown": _target_down(web, sibling),
        "HighErrorRatio": _error_ratio(web, sibling, alerts.error_ratio),
        "HighLatencyP95": _latency(web, sibling, alerts.p95_latency_seconds),
        "MemoryNearLimit": _memory(web, sibling, alerts.memory_limit_ratio),
        "CPUThrottling": _throttling(web, sibling, alerts.cpu_throttle_ratio),
        "PodRestarting": _restarts(web, sibling, alerts.restarts_per_hour),
        "CrashLooping": _crashloop(web, sibling),
        "RolloutStuck": _workload_cases(web, sibling, "RolloutStuck"),
        "ReplicasUnavailable": _workload_cases(web, sibling, "ReplicasUnavailable"),
    }
    if web.hpas:
        found["HPAAtMaxReplicas"] = _hpa(web, sibling)
    if web.pdbs:
        found["PDBNoDisruptionsAllowed"] = _pdb(web, sibling)
    return found


# ---------------------------------------------------------------------------------------------
# Rendering the expected annotations exactly as Prometheus' text/template would.

_LABEL_RE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE_RE = re.compile(r'\{\{\s*\$value\s*(?:\|\s*(humanizePercentage|printf\s+"([^"]*)")\s*)?\}\}')


def go_float(value: float) -> str:
    """`{{ $value }}`: Go prints a float64 with %v (shortest repr, integers without `.0`)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _render_value(match: re.Match[str], value: float) -> str:
    func, fmt = match.group(1), match.group(2)
    if func is None:
        return go_float(value)
    if func == "humanizePercentage":
        return f"{value * 100:.4g}%"
    return fmt % value  # printf with %.Nf, identical in Go and Python


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """Render the subset of Prometheus annotation templating the rules use."""
    out = _LABEL_RE.sub(lambda m: labels[m.group(1)], template)
    out = _VALUE_RE.sub(lambda m: _render_value(m, value), out)
    if "{{" in out:
        raise AssertionError(f"template construct not supported by the test renderer: {out!r}")
    return out


def alert_rules(groups: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def app_alert(groups: Sequence[Mapping[str, Any]], kind: str, app: str = APP) -> Mapping[str, Any]:
    """The rule of alert `kind` among the rules of the PrometheusRule of `app`."""
    found = [
        rule
        for group in groups
        if group["name"] == f"{app}.alerts"
        for rule in group["rules"]
        if rule["alert"].lower() == f"{app.replace('-', '')}{kind}".lower()
    ]
    assert len(found) == 1, f"{app}: {len(found)} rules for alert kind {kind}"
    return found[0]


def promtool_tests(
    groups: Sequence[Mapping[str, Any]],
    all_cases: Mapping[str, Sequence[Case]],
    label: str,
    app: str = APP,
) -> list[dict[str, Any]]:
    """`promtool test rules` test groups: one per case."""
    tests = []
    for kind, kind_cases in all_cases.items():
        rule = app_alert(groups, kind, app)
        for case in kind_cases:
            exp_alerts = [
                {
                    "exp_labels": {**firing.labels, **rule["labels"]},
                    "exp_annotations": {
                        key: render(text, firing.labels, firing.value)
                        for key, text in rule["annotations"].items()
                    },
                }
                for firing in case.firing
            ]
            tests.append(
                {
                    "name": f"{label}: {rule['alert']}: {case.name}",
                    "interval": EVALUATION_INTERVAL,
                    "input_series": [{"series": s, "values": v} for s, v in case.series],
                    "alert_rule_test": [
                        {
                            "eval_time": case.eval_time,
                            "alertname": rule["alert"],
                            "exp_alerts": exp_alerts,
                        }
                    ],
                }
            )
    return tests

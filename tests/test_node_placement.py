"""Issue 32: node selectors and tolerations per app (`apps.<name>.nodeSelector`,
`apps.<name>.tolerations`). Off by default (nothing set in any pod template); when configured,
every workload of the app (the Deployments of each release strategy, the Argo Rollout) carries
them and only them, and the rendered pods land where the scheduler's own rules say they may;
bad values fail with one line naming the key path and what is allowed, as the API server would
refuse them (k8s.io/kubernetes pkg/apis/core/validation/validation.go `validateTolerations`;
apimachinery pkg/util/validation `IsQualifiedName`, `IsValidLabelValue` for nodeSelector, which
`ValidatePodSpec` checks with `ValidateLabels`)."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config as config_model
from policy.rules import template_of
from stackctl.render import RenderResult
from tests import crd_schemas
from tests.conftest import base_raw, load_error
from tests.monitoring.strategies import STRATEGIES, rendered
from tests.renders import Renders
from tests.tooling import REPO, SHIPPED_STACKS

NAME_LABEL = "app.kubernetes.io/name"
SELECTOR = {"appstack.io/pool": "apps", "kubernetes.io/arch": "amd64"}
TOLERATIONS: list[dict[str, Any]] = [
    {"key": "appstack.io/dedicated", "value": "apps", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 60},
]  # fmt: skip
#: As the API server stores them (the pod spec's own fields; operator written out).
RENDERED_TOLERATIONS = [
    {"key": "appstack.io/dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 60},
]  # fmt: skip


def _templates(result: RenderResult) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(kind/name, app name, pod spec) of every pod template the render holds."""
    found = []
    for obj in result.objects:
        template = template_of(obj)
        if template is not None:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            found.append((where, template.labels[NAME_LABEL], template.spec))
    return found


def _placed(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    out["apps"]["web"]["nodeSelector"] = dict(SELECTOR)
    out["apps"]["web"]["tolerations"] = copy.deepcopy(TOLERATIONS)
    return out


# --------------------------------------------------------------------------------------------
# The scheduler's rules, as upstream writes them, for the rendered pods


@dataclass(frozen=True)
class Node:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...] = field(default=())


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    """k8s.io/api core/v1 toleration.go `ToleratesTaint`: an empty effect matches all effects,
    an empty key (operator Exists) all keys; Equal (or no operator) compares the value."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    operator = toleration.get("operator", "Equal")
    if operator == "Exists":
        return True
    return operator == "Equal" and toleration.get("value", "") == taint.get("value", "")


def schedulable(pod: Mapping[str, Any], node: Node) -> bool:
    """The NodeAffinity filter's nodeSelector part (every pair is a label of the node) and the
    TaintToleration filter (every NoSchedule / NoExecute taint is tolerated; PreferNoSchedule
    only scores): kube-scheduler pkg/scheduler/framework/plugins/{nodeaffinity,tainttoleration}."""
    selector = pod.get("nodeSelector") or {}
    if any(node.labels.get(key) != value for key, value in selector.items()):
        return False
    hard = [t for t in node.taints if t["effect"] in ("NoSchedule", "NoExecute")]
    return all(any(tolerates(t, taint) for t in pod.get("tolerations") or []) for taint in hard)


#: A dedicated pool (labelled and tainted for the apps) beside a general node.
APPS_NODE = Node(
    "apps-1",
    {"appstack.io/pool": "apps", "kubernetes.io/arch": "amd64"},
    ({"key": "appstack.io/dedicated", "value": "apps", "effect": "NoSchedule"},),
)
GENERAL_NODE = Node("general-1", {"kubernetes.io/arch": "amd64"})


# --------------------------------------------------------------------------------------------
# Off by default


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_nothing_is_set_in_the_shipped_stacks(renders: Renders, stack: str) -> None:
    templates = _templates(renders.stack(stack))
    assert templates
    for where, _, pod in templates:
        assert "nodeSelector" not in pod and "tolerations" not in pod, where


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_nothing_is_set_when_off_in_any_strategy(strategy: str) -> None:
    for where, _, pod in _templates(rendered(strategy)):
        assert "nodeSelector" not in pod and "tolerations" not in pod, where
        assert schedulable(pod, GENERAL_NODE) and not schedulable(pod, APPS_NODE), where


def test_defaults_are_empty() -> None:
    app = config_model.load(base_raw()).apps["web"]
    assert app.node_selector == {} and app.tolerations == []


# --------------------------------------------------------------------------------------------
# On: every workload of the app, nothing else


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_workload_of_the_app_carries_its_placement(renders: Renders, strategy: str) -> None:
    result = renders.config(_placed(STRATEGIES[strategy]), strategy)
    templates = _templates(result)
    web = [(where, pod) for where, app, pod in templates if app == "web"]
    # as many workloads as the strategy renders without placement: none is left out
    assert len(web) == sum(1 for _, app, _ in _templates(rendered(strategy)) if app == "web")
    for where, pod in web:
        assert pod["nodeSelector"] == SELECTOR, where
        assert pod["tolerations"] == RENDERED_TOLERATIONS, where
        assert schedulable(pod, APPS_NODE), where
        assert not schedulable(pod, GENERAL_NODE), where  # the selector keeps it off
    for where, app, pod in templates:
        if app != "web":  # the sibling app keeps its own (empty) placement
            assert "nodeSelector" not in pod and "tolerations" not in pod, where
            assert not schedulable(pod, APPS_NODE), where  # the taint keeps it off
    for obj in result.objects:
        if crd_schemas.is_custom_resource(obj):  # the Argo Rollout's template, strictly
            assert crd_schemas.errors(obj) == [], obj["kind"]


def test_tolerations_alone_allow_a_tainted_node_without_requiring_it(render: Any) -> None:
    raw = base_raw(tolerations=[{"key": "appstack.io/dedicated", "operator": "Exists"}])
    [(where, _, pod)] = _templates(render(raw))
    assert "nodeSelector" not in pod
    assert pod["tolerations"] == [{"key": "appstack.io/dedicated", "operator": "Exists"}]
    assert schedulable(pod, APPS_NODE) and schedulable(pod, GENERAL_NODE), where


def test_a_changed_placement_rolls_the_pods_and_replaces_nothing(render: Any) -> None:
    """A pod-template change: the Deployment is updated in place (its selector is unchanged),
    so the rollout replaces the pods under the usual zero-downtime rules."""
    before = render(base_raw())
    after = render(base_raw(nodeSelector={"appstack.io/pool": "apps"}))
    names = {o["metadata"]["name"]: o for o in before.objects if o["kind"] == "Deployment"}
    for obj in after.objects:
        if obj["kind"] == "Deployment":
            old = names[obj["metadata"]["name"]]
            assert obj["spec"]["selector"] == old["spec"]["selector"]
            assert obj["spec"]["template"]["spec"] != old["spec"]["template"]["spec"]
    assert {r.name for r in after.resources} == {r.name for r in before.resources}


# --------------------------------------------------------------------------------------------
# Validation: the API server's rules, one line per problem naming the key


@pytest.mark.parametrize(
    ("placement", "key", "detail"),
    [
        ({"nodeSelector": {"-pool": "a"}}, "nodeSelector.-pool", "is not a label/annotation key"),
        ({"nodeSelector": {"Example.com/pool": "a"}}, "nodeSelector.Example.com/pool", "key"),
        ({"nodeSelector": {"a/b/c": "x"}}, "nodeSelector.a/b/c", "[prefix/]name"),
        ({"nodeSelector": {"pool": "-a"}}, "nodeSelector.pool", "is not a label value"),
        ({"nodeSelector": {"pool": "x" * 64}}, "nodeSelector.pool", "at most 63 characters"),
        ({"nodeSelector": {"pool": 3}}, "nodeSelector.pool", "valid string"),
        ({"tolerations": [{"value": "x"}]}, "tolerations[0].operator", "must be Exists when key"),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
            "tolerations[0].value",
            "value must be empty when operator is Exists",
        ),
        (
            {"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]},
            "tolerations[0].tolerationSeconds",
            "needs effect: NoExecute",
        ),
        (
            {"tolerations": [{"key": "k", "tolerationSeconds": 5}]},
            "tolerations[0].tolerationSeconds",
            "effect is empty",
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Gt", "value": "1"}]},
            "tolerations[0].operator",
            "'Gt' is not allowed; input should be 'Equal' or 'Exists'",
        ),
        (
            {"tolerations": [{"key": "k", "effect": "NoRun"}]},
            "tolerations[0].effect",
            "input should be '', 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        ({"tolerations": [{"key": "k", "value": "a b"}]}, "tolerations[0].value", "label value"),
        ({"tolerations": [{"key": "k/"}]}, "tolerations[0].key", "is not a label key"),
        (
            {"tolerations": [{"key": "k", "effect": "NoExecute", "tolerationSeconds": -1}]},
            "tolerations[0].tolerationSeconds",
            "greater than or equal to 0",
        ),
        ({"tolerations": [{"key": "k", "operatr": "Exists"}]}, "tolerations[0].operatr", "did you"),
    ],
)
def test_bad_placement_is_one_line_naming_the_key(
    placement: dict[str, Any], key: str, detail: str
) -> None:
    message = load_error(base_raw(**placement))
    lines = [line.strip() for line in message.splitlines()[1:]]
    assert len(lines) == 1, message
    assert lines[0].startswith(f"appstack:apps.web.{key}: "), message
    assert detail in lines[0], message


@pytest.mark.parametrize(
    "tolerations",
    [
        [{"operator": "Exists"}],  # empty key + Exists: every taint
        [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}],
        [{"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        [{"key": "dedicated", "value": "", "effect": "PreferNoSchedule"}],  # Equal, empty value
        [{"key": "a.b-c_d", "operator": "Equal", "value": "A.b-1_2"}],
    ],
)
def test_what_the_api_server_accepts_is_accepted(render: Any, tolerations: list[Any]) -> None:
    [(_, _, pod)] = _templates(render(base_raw(tolerations=tolerations)))
    # written back as configured, with the operator spelled out and empty strings left out
    expected = [
        {k: v for k, v in {"operator": "Equal", **t}.items() if v != ""} for t in tolerations
    ]
    assert pod["tolerations"] == expected


def test_bad_placement_reaches_the_operator_as_one_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    doc["config"]["appstack:apps"]["web"]["tolerations"] = [{"key": "k", "operator": "Lt"}]
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "stackctl", "check", "dev", "--project-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        "appstack:apps.web.tolerations[0].operator: 'Lt' is not allowed; input should be "
        "'Equal' or 'Exists'" in proc.stderr
    )

"""Apps whose derived names collide are rejected in config (issue 9, item 13).

The oracle is the render: an app `web` rendered in every release strategy with every option on
derives the object and resource names it derives; each one, used as a second app's name, must be
rejected, naming both apps, and `components/kube/labels.py` must know every suffix the render shows.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

import pytest

import appstack_grammar as grammar
from components import config as config_model
from components.kube import labels
from stackctl.errors import UserError
from stackctl.render.stack import RenderResult, render_config
from tests.conftest import PROD_IMAGE, base_raw, load_error, with_app

INGRESS = {"enabled": True, "host": "shop.example.com"}
CANARY_IMAGE = "registry.example.com/appstack/web:2.0.0"
EVERY_OPTION: dict[str, dict[str, Any]] = {
    "rolling": {"ingress": INGRESS, "autoscaling": {"enabled": True}, "build": {"target": "rt"}},
    "blue-green": {"ingress": INGRESS, "release": {"strategy": "blueGreen"}},
    "canary": {
        "ingress": INGRESS,
        "autoscaling": {"enabled": True},
        "release": {"strategy": "canary", "canaryImage": CANARY_IMAGE, "weight": 10},
    },
    "argo-canary": {"release": {"strategy": "canary", "argoRollouts": True}},
    "argo-blue-green": {"release": {"strategy": "blueGreen", "argoRollouts": True}},
}


def _raw(options: dict[str, Any], *extra_apps: str) -> dict[str, Any]:
    raw = base_raw(**options)
    raw["monitoring"] = {"enabled": True}
    raw["secrets"] = {"web": {"TOKEN": "x"}}
    for name in extra_apps:
        raw = with_app(raw, name)
    return raw


@cache
def _render(strategy: str) -> RenderResult:
    return render_config(config_model.load(_raw(EVERY_OPTION[strategy])), "dev")


def _renders() -> tuple[RenderResult, ...]:
    return tuple(_render(strategy) for strategy in EVERY_OPTION)


def _derived(
    renders: tuple[RenderResult, ...] | None = None, prefix: str = "web-"
) -> tuple[set[str], set[str]]:
    """(object names, resource logical names) starting with `web-` in the renders (all)."""
    renders = _renders() if renders is None else renders
    objects = {o["metadata"]["name"] for r in renders for o in r.objects}
    resources = {res.name for r in renders for res in r.resources}
    return (
        {n for n in objects if n.startswith(prefix)},
        {n for n in resources if n.startswith(prefix)},
    )


def _covered(name: str, suffixes: tuple[str, ...]) -> bool:
    rest = name.removeprefix("web-")
    return any(rest.startswith(s[:-1]) if s.endswith("*") else rest == s for s in suffixes)


def test_labels_know_every_name_an_app_derives() -> None:
    objects, resources = _derived()
    assert {"web-metrics", "web-preview", "web-canary", "web-blue", "web-green"} <= objects
    assert [n for n in sorted(objects) if not _covered(n, labels.OBJECT_SUFFIXES)] == []
    assert [n for n in sorted(resources) if not _covered(n, labels.RESOURCE_SUFFIXES)] == []


def _duplicates(result: RenderResult) -> list[tuple[Any, ...]]:
    """Objects the API server would see twice, URNs the engine would see twice."""
    objects = Counter(
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in result.objects
    )
    urns = Counter((r.type, r.parent_type, r.name) for r in result.resources)
    return [k for k, n in objects.items() if n > 1] + [k for k, n in urns.items() if n > 1]


def _renders_a_duplicate(monkeypatch: pytest.MonkeyPatch, raw: dict[str, Any]) -> bool:
    """Render with the collision rule off: does an object or URN come out twice?"""
    with monkeypatch.context() as patch:
        patch.setattr(labels, "shared_derived_name", lambda _a, _b: None)
        try:
            result = render_config(config_model.load(raw), "dev")
        except UserError as exc:  # render refuses two objects with one file name
            assert "same file" in str(exc)
            return True
    return bool(_duplicates(result))


def _candidate_names(rendered: RenderResult) -> list[str]:
    """Second-app names to try: the first two and three words of every name `rendered` derives."""
    objects, resources = _derived((rendered,))
    out: set[str] = set()
    for name in objects | resources:
        words = name.split("-")
        out.update("-".join(words[:i]) for i in range(2, min(len(words), 3) + 1))
    return sorted(
        n for n in out if grammar.is_dns1035_label(n) and len(n) <= config_model.MAX_APP_NAME
    )


def _own_name_objects(rendered: RenderResult) -> set[str]:
    """web's Services and workloads not named `web`: a second app of such a name renders a
    Service and a workload under that very name, so the pair must collide."""
    kinds = {"Service", "Deployment", "StatefulSet", "Rollout"}
    return {
        o["metadata"]["name"]
        for o in rendered.objects
        if o["kind"] in kinds and o["metadata"]["name"].startswith("web-")
    }


@pytest.mark.parametrize("strategy", EVERY_OPTION)
def test_a_second_app_whose_names_would_collide_is_rejected_naming_both(
    monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    """For each candidate name: render with the rule off; where the render holds a duplicate
    object or URN, config validation (rule on) must reject the pair."""
    options = EVERY_OPTION[strategy]
    rendered = _render(strategy)
    colliding: set[str] = set()
    for name in _candidate_names(rendered):
        if not _renders_a_duplicate(monkeypatch, _raw(options, name)):
            continue
        colliding.add(name)
        message = load_error(_raw(options, name))
        line = next(ln for ln in message.splitlines() if "collide" in ln)
        assert line.strip().startswith(f"appstack:apps.{name}:"), message
        assert "'web'" in line and f"'{name}'" in line, message
    assert _own_name_objects(rendered) <= colliding
    assert "web-metrics" in colliding  # monitoring is on in every strategy


def test_apps_with_distinct_derived_names_render_without_duplicates() -> None:
    # `web-service` and `web-deployment` share words with web's resources, not a whole name.
    for options in EVERY_OPTION.values():
        raw = _raw(options, "web-api", "web-service", "web-deployment", "api")
        assert _duplicates(render_config(config_model.load(raw), "dev")) == []


def test_the_rule_is_symmetric_and_ignores_unrelated_names() -> None:
    assert labels.shared_derived_name("web-metrics", "web") == "web-metrics"
    assert labels.shared_derived_name("web", "webmetrics") is None
    assert labels.shared_derived_name("api", "web") is None
    assert PROD_IMAGE  # the second app runs the same pinned image

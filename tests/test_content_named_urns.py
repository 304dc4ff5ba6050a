"""Content-named ConfigMaps (the app's config, Jenkins' casc and plugins) are one Pulumi resource
per content, so a content change never is a Pulumi replacement.

The engine rule (pulumi pkg/v3 resource/deploy, v3.219.0 and v3.274.0): a registration whose
URN (or an alias of it) matches a live resource of the old state is diffed against it, and a
change of `metadata.name` replaces it create-before-delete, the old entry kept as `delete: true`
until the end of the update; when the update fails the entry stays, and the next update (the
rollback, which registers that very object again) deletes it (step_generator.go
GenerateDeletes, `if res.Delete`). A URN the old state lacks is a create; an old URN nobody
registers is deleted by GenerateDeletes, which deployment_executor.go runs from
performPostSteps only once the program has finished without a failed step. So: the URN carries
the content, the previous constant logical name is an alias (existing stacks keep their object),
and a content change registers a URN the previous render did not, nor any alias of it."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from stackctl.render import REPO_ROOT, load_raw_config
from stackctl.render.stack import RenderResult, render_config
from tests.jenkins.helpers import jenkins_raw
from tests.urns import Registrations, recording

SNAPSHOT: dict[str, list[str]] = json.loads(
    (Path(__file__).parent / "golden" / "urns.json").read_text()
)
CONFIG_MAP = "kubernetes:core/v1:ConfigMap::"
DEPLOYMENT = "$kubernetes:apps/v1:Deployment::"
APP_CONFIG = "appstack:app:AppService$" + CONFIG_MAP
JENKINS = "appstack:jenkins:JenkinsController$" + CONFIG_MAP


def render(raw: Mapping[str, Any], stack: str) -> tuple[RenderResult, Registrations]:
    with recording() as found:
        result = render_config(config_model.load(raw), stack)
    return result, found


def config_maps(result: RenderResult) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in result.objects if o["kind"] == "ConfigMap"}


def urns_of(found: Registrations, prefix: str) -> set[str]:
    return {u for u in found.urns() if u.startswith(prefix)}


def prod_with_env(value: str) -> dict[str, Any]:
    raw = copy.deepcopy(dict(load_raw_config(REPO_ROOT, "prod")))
    raw["apps"]["web"]["env"] = {**(raw["apps"]["web"].get("env") or {}), "LOG_LEVEL": value}
    return raw


@pytest.mark.parametrize("prefix", [APP_CONFIG, JENKINS])
def test_the_urn_of_a_content_named_config_map_carries_its_content_hash(prefix: str) -> None:
    result, found = render(load_raw_config(REPO_ROOT, "prod"), "prod")
    hashes = {name.rsplit("-", 1)[1] for name in config_maps(result)}
    urns = urns_of(found, prefix)
    assert urns
    for urn in urns:
        assert urn.rsplit("-", 1)[1] in hashes, urn


@pytest.mark.parametrize("prefix", [APP_CONFIG, JENKINS])
def test_existing_stacks_keep_their_config_map_through_the_alias(prefix: str) -> None:
    """The URN a stack deployed before this change holds (tests/golden/urns.json) is an alias
    of exactly one content-named URN: the engine renames the state entry, nothing is replaced."""
    _, found = render(load_raw_config(REPO_ROOT, "prod"), "prod")
    aliases = found.aliases()
    before = {u for u in SNAPSHOT["prod"] if u.startswith(prefix)}
    assert before
    for old in before:
        claimants = [urn for urn in urns_of(found, prefix) if old in aliases.get(urn, set())]
        assert len(claimants) == 1, (old, claimants)
        assert old not in found.urns()


def test_a_config_change_registers_a_new_urn_and_drops_the_old_one() -> None:
    """The engine creates the new URN and deletes the unregistered old one after a successful
    program; the new URN's alias names nothing the previous render registered, so the engine
    finds no old state for it (no replacement). The Deployment keeps its URN (an update)."""
    (before, old_found), (after, new_found) = (
        render(prod_with_env("info"), "prod"),
        render(prod_with_env("debug"), "prod"),
    )
    assert set(config_maps(before)) != set(config_maps(after))
    old_urns, new_urns = urns_of(old_found, APP_CONFIG), urns_of(new_found, APP_CONFIG)
    assert len(old_urns) == len(new_urns) == 1
    assert old_urns.isdisjoint(new_found.urns()) and new_urns.isdisjoint(old_found.urns())
    (new_urn,) = new_urns
    assert new_found.aliases()[new_urn].isdisjoint(old_found.urns())
    deployments = {u for u in old_found.urns() if DEPLOYMENT in u}
    assert deployments and deployments <= new_found.urns()


def test_a_casc_change_registers_a_new_jenkins_urn_and_keeps_the_plugins_urn() -> None:
    (before, old_found), (after, new_found) = (
        render(jenkins_raw("dev"), "dev"),
        render(jenkins_raw("dev", ingress={"enabled": True, "host": "jenkins.example.com"}), "dev"),
    )
    old_urns, new_urns = urns_of(old_found, JENKINS), urns_of(new_found, JENKINS)
    changed = {n for n in set(config_maps(before)) ^ set(config_maps(after)) if "casc" in n}
    assert len(changed) == 2, "the casc content differs between the two configs"
    moved = old_urns ^ new_urns
    assert len(moved) == 2 and all("casc" in u for u in moved), "only the casc URN moves"
    for urn in new_urns - old_urns:
        assert new_found.aliases()[urn].isdisjoint(old_found.urns())

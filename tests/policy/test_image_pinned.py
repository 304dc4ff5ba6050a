"""image-pinned: never latest/untagged; prod (and staging, which keeps prod's rules) needs a
digest or a non-moving tag; pull Always."""

from __future__ import annotations

import pytest

from policy.rules import environments, split_image
from tests.policy.factory import DIGEST, compliant_stack, messages, mutated, run_rule, web

RULE = "image-pinned"
IMAGE = "spec.template.spec.containers[web].image"


def with_image(image: str) -> list[dict[str, object]]:
    objects = mutated(compliant_stack())
    web(objects)["image"] = image
    return objects


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE, "prod") == []
    assert run_rule(compliant_stack(), RULE, "dev") == []


@pytest.mark.parametrize("env", environments())
def test_latest_tag_violates_everywhere(env: str) -> None:
    [msg] = messages(with_image("ghcr.io/acme/web:latest"), RULE, env)
    assert msg.startswith(f'{IMAGE} is "ghcr.io/acme/web:latest": the "latest" tag is forbidden')


@pytest.mark.parametrize("env", environments())
def test_untagged_image_violates_everywhere(env: str) -> None:
    [msg] = messages(with_image("registry:5000/acme/web"), RULE, env)
    assert msg.startswith(f'{IMAGE} is "registry:5000/acme/web": untagged')


@pytest.mark.parametrize("tag", ["stable", "main", "master"])
def test_a_moving_tag_violates_in_prod_and_staging_only(tag: str) -> None:
    objects = with_image(f"ghcr.io/acme/web:{tag}")
    for env in ("prod", "staging"):
        [msg] = messages(objects, RULE, env)
        assert f'moving tag "{tag}" in {env}' in msg and IMAGE in msg
    assert run_rule(objects, RULE, "dev") == []


def test_a_digest_pins_a_moving_tag_in_prod() -> None:
    assert run_rule(with_image(f"ghcr.io/acme/web:stable@{DIGEST}"), RULE, "prod") == []
    assert run_rule(with_image(f"ghcr.io/acme/web@{DIGEST}"), RULE, "prod") == []


def test_a_version_tag_without_digest_passes_in_prod() -> None:
    assert run_rule(with_image("ghcr.io/acme/web:1.4.2"), RULE, "prod") == []


def test_a_malformed_digest_violates() -> None:
    [msg] = messages(with_image("ghcr.io/acme/web@sha256:abc"), RULE)
    assert 'digest "sha256:abc" is malformed' in msg


@pytest.mark.parametrize("policy", [None, "IfNotPresent", "Never"])
def test_image_pull_policy_must_be_always(policy: str | None) -> None:
    objects = mutated(compliant_stack())
    if policy is None:
        del web(objects)["imagePullPolicy"]
    else:
        web(objects)["imagePullPolicy"] = policy
    [msg] = messages(objects, RULE)
    assert msg.startswith("spec.template.spec.containers[web].imagePullPolicy is ")
    assert msg.endswith("it must be Always")


def test_split_image_tells_a_registry_port_from_a_tag() -> None:
    assert split_image("localhost:5000/web") == ("localhost:5000/web", None, None)
    assert split_image("localhost:5000/web:1.0") == ("localhost:5000/web", "1.0", None)
    assert split_image(f"web:1@{DIGEST}") == ("web", "1", DIGEST)

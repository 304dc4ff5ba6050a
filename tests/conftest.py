"""Shared fixtures: build configs, render them under Pulumi's mocks, find rendered objects.

The mock runtime is entered and left by `stackctl.mockruntime.mocked_runtime` (it sets the
mocks and restores the runtime settings afterwards); the `render` fixture is the only way tests run
the program, so no test depends on another's runtime state. Renders are computed once per test run
(`renders`, tests/renders.py) and handed out as deep copies.
"""

from __future__ import annotations

import copy
import gc
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from components import config as config_model
from stackctl import mockruntime
from stackctl.render.stack import RenderResult
from tests import validators
from tests.renders import Renders

PROD_IMAGE = "registry.example.com/appstack/web:1.4.2"
DIGEST_IMAGE = "registry.example.com/appstack/web@sha256:" + "a" * 64


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported and collected so far lives as long as the test process: moved out of
    the cyclic collector's reach (`gc.freeze`), each full collection a render triggers walks
    only what the tests made since, not the SDKs' modules and every collected test again."""
    gc.collect()
    gc.freeze()


def base_raw(environment: str = "dev", **app_overrides: Any) -> dict[str, Any]:
    """A minimal valid config for `environment` with one app `web` (overrides merged in)."""
    app: dict[str, Any] = {"image": PROD_IMAGE}
    if config_model.production_rules(environment):  # prod's rules: source ranges on the LB
        app["service"] = {"loadBalancerSourceRanges": ["203.0.113.0/24"]}
    return {
        "environment": environment,
        "namespace": "shop",
        "apps": {"web": config_model.deep_merge(app, app_overrides)},
    }


def with_app(raw: Mapping[str, Any], name: str, **settings: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    out["apps"][name] = {"image": PROD_IMAGE, **settings}
    return out


Render = Callable[[Mapping[str, Any]], RenderResult]


@pytest.fixture(scope="session")
def renders() -> Renders:
    """Every render of this test run, each computed once (callers get deep copies)."""
    return Renders()


@pytest.fixture
def render(renders: Renders) -> Render:
    """Validate a raw config and render it under mocks (stack name = its environment).

    The result may be a copy of an earlier render of the same config: a test that watches the
    program run itself (a spy on the mock monitor) calls `stackctl.render.stack.render_config`."""
    return renders.config


@pytest.fixture(scope="session")
def checkov_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], validators.CheckovServer]]:
    """This test process's checkov server (`validators.CheckovServer`), started when first
    asked for and stopped with the session."""
    started: list[validators.CheckovServer] = []

    def server() -> validators.CheckovServer:
        if not started:
            started.append(validators.CheckovServer(tmp_path_factory.mktemp("checkov")))
        return started[0]

    yield server
    for each in started:
        each.close()


@pytest.fixture(scope="session", autouse=True)
def validator_batch(
    tmp_path_factory: pytest.TempPathFactory,
    renders: Renders,
    checkov_server: Callable[[], validators.CheckovServer],
) -> Iterator[validators.ValidatorBatch | None]:
    """The outside validators over every registered set, started with the session so that they
    run beside the other tests; None when no collected module registered a set. Under
    pytest-xdist one worker runs them and the others read its results (the workers of a run
    share the parent of their temp dirs)."""
    if not validators.RENDER_SETS:
        yield None
        return
    shared = None
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "validator-batch"
    root = tmp_path_factory.mktemp("rendered")
    with validators.session_batch(root, shared, renders, checkov_server) as batch:
        yield batch


@pytest.fixture(scope="session")
def rendered_tree(validator_batch: validators.ValidatorBatch | None) -> validators.RenderedTree:
    """Every manifest set the collected test modules registered (`validators.render_set`),
    written once into one tree: `<root>/<set name>/...`."""
    assert validator_batch is not None, "no test module registered a render set"
    return validator_batch.tree


@pytest.fixture(scope="session")
def batch(validator_batch: validators.ValidatorBatch | None) -> validators.ValidatorBatch:
    assert validator_batch is not None, "no test module registered a render set"
    return validator_batch


@pytest.fixture
def pulumi_mocks() -> Iterator[mockruntime.RecordingMocks]:
    """Pulumi's mock runtime for a test that builds components itself; restored afterwards."""
    with mockruntime.mocked_runtime("appstack", "test") as mocks:
        yield mocks


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def load_error(raw: Mapping[str, Any]) -> str:
    """The message of the ConfigError `raw` must raise."""
    with pytest.raises(config_model.ConfigError) as info:
        config_model.load(raw)
    return str(info.value)

"""The Pulumi entry point (__main__.py) reads the engine's config, deploys and exports:
the path `pulumi up` takes, run here under Pulumi's mocks."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from typing import Any

import pulumi.runtime
import pytest

from components import pulumi_config
from stackctl.mockruntime import capture
from tests.conftest import base_raw
from tests.tooling import REPO


@pytest.fixture
def engine_config() -> Iterator[dict[str, str]]:
    """The engine's config bag (as `pulumi up` fills it), cleared afterwards."""
    values: dict[str, str] = {}
    yield values
    pulumi.runtime.set_all_config({})


def as_engine_config(raw: dict[str, Any]) -> dict[str, str]:
    """Pulumi passes structured config as JSON strings under `appstack:<key>`."""
    return {f"appstack:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()} | {
        "kubernetes:context": "kind-dev"
    }


def run_main(config: dict[str, str]) -> Any:
    def program() -> dict[str, Any]:
        pulumi.runtime.set_all_config(config)
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        return {}

    return capture(program, project="appstack", stack="dev")


def test_engine_config_is_read_as_the_raw_appstack_keys(engine_config: dict[str, str]) -> None:
    pulumi.runtime.set_all_config(as_engine_config(base_raw()))
    raw = pulumi_config.raw_from_engine()
    assert raw["environment"] == "dev" and raw["apps"]["web"]["image"].endswith(":1.4.2")
    assert "context" not in raw  # other packages' keys are not ours


def test_config_from_the_language_host_environment_is_read(
    engine_config: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pulumi up` runs the program with PULUMI_CONFIG set, not with the runtime config bag
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(as_engine_config(base_raw("prod"))))
    raw = pulumi_config.raw_from_engine()
    assert raw["environment"] == "prod"
    assert raw["apps"]["web"]["service"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_main_deploys_the_stack_from_engine_config(engine_config: dict[str, str]) -> None:
    cap = run_main(as_engine_config(base_raw()))
    kinds = {r.inputs.get("kind") for r in cap.resources if r.custom}
    assert {"Namespace", "Deployment", "Service", "NetworkPolicy"} <= kinds


def test_main_exits_2_with_the_problems_on_invalid_config(
    engine_config: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_main(as_engine_config(base_raw(replicas=0)))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "appstack:apps.web.replicas:" in err and "Traceback" not in err


def test_main_stays_thin() -> None:
    lines = [
        line
        for line in (REPO / "__main__.py").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) <= 20

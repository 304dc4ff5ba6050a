"""`components.pulumi_config` reads the engine's config through the SDK's public API only. The
oracle is the SDK: each `appstack:*` key the program reads is what `pulumi.runtime.get_config`
answers for it (the runtime's value before the language host's environment), whichever of the
two sources holds it; every key of the environment's bag is there as the language host passed
it; and a key set with --secret is refused from either source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pulumi.runtime
import pytest

from components import config as config_model
from components import pulumi_config
from tests.conftest import base_raw


@pytest.fixture
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    yield
    pulumi.runtime.set_all_config({}, [])


def _bag(raw: dict[str, Any]) -> dict[str, str]:
    return {f"appstack:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def _sdk_answers(keys: list[str]) -> dict[str, Any]:
    return {k: v for k in keys if (v := pulumi.runtime.get_config(k)) is not None}


@pytest.mark.parametrize("split", ["runtime", "environment", "both"])
def test_each_key_is_the_sdks_answer_whichever_source_holds_it(
    split: str, clean_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev, prod = _bag(base_raw("dev")), _bag(base_raw("prod"))
    runtime = dev if split in ("runtime", "both") else {}
    environment = (prod if split == "both" else dev) if split != "runtime" else {}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**environment, "kubernetes:context": "k"}))
    pulumi.runtime.set_all_config(runtime, [])
    read = pulumi_config.engine_config()
    keys = sorted({*runtime, *environment})
    assert {k: read[k] for k in keys} == _sdk_answers(keys)
    assert read["kubernetes:context"] == "k"  # the language host's bag, whole
    expected = "dev"  # `both`: the runtime's value wins, as the SDK's get_config answers
    assert pulumi_config.raw_from_engine()["environment"] == expected


def test_an_unknown_key_of_the_language_host_still_reaches_validation(
    clean_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(_bag(base_raw()) | {"appstack:replica": "3"}))
    with pytest.raises(config_model.ConfigError, match="replica"):
        config_model.load(pulumi_config.raw_from_engine())


@pytest.mark.parametrize("source", ["runtime", "environment"])
def test_a_secret_outside_secrets_is_refused_from_either_source(
    source: str, clean_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = _bag(base_raw())
    if source == "runtime":
        pulumi.runtime.set_all_config(bag, ["appstack:namespace"])
    else:
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(bag))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["appstack:namespace"]))
    with pytest.raises(config_model.ConfigError, match="appstack:namespace: is set as a secret"):
        pulumi_config.raw_from_engine()

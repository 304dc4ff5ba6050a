"""Secrets end to end (issue 9, item 12).

1. A key set with `pulumi config set --secret` outside appstack:secrets / appstack:registry is
   refused: the engine passes the list of secret keys (PULUMI_CONFIG_SECRET_KEYS, or the
   runtime's secret-key set; pulumi/runtime/config.py), and the program would otherwise put the
   decrypted value into ConfigMaps and the state in clear.
2. Removing a key from an app's secrets removes it from the Secret (so from the mounted files)
   under Server-Side Apply: judged by applying the rendered Secrets, before and after, the way the
   API server does (stringData merged into data and never stored; SSA removes the fields a manager
   applied before and no longer applies).
"""

from __future__ import annotations

import copy
import json
import runpy
from collections.abc import Iterator
from typing import Any

import pulumi.runtime
import pytest

from components import config as config_model
from components import pulumi_config
from stackctl import mockruntime
from tests.conftest import Render, base_raw, one
from tests.tooling import REPO

# --- 1. secret keys -------------------------------------------------------------------------


@pytest.fixture
def engine_config() -> Iterator[None]:
    yield
    pulumi.runtime.set_all_config({}, [])


def as_engine_config(raw: dict[str, Any]) -> dict[str, str]:
    return {f"appstack:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def with_secret_env(raw: dict[str, Any]) -> dict[str, Any]:
    return config_model.deep_merge(raw, {"apps": {"web": {"env": {"API_TOKEN": "s3cr3t"}}}})


def test_a_secret_outside_secrets_is_refused_naming_the_key(engine_config: None) -> None:
    raw = with_secret_env(base_raw())
    # `pulumi config set --secret --path apps.web.env.API_TOKEN s3cr3t` marks appstack:apps
    pulumi.runtime.set_all_config(as_engine_config(raw), ["appstack:apps"])
    with pytest.raises(config_model.ConfigError) as info:
        pulumi_config.raw_from_engine()
    (line,) = info.value.problems
    assert line.startswith("appstack:apps: is set as a secret")
    assert "appstack:secrets.<app>.<KEY>" in line and "s3cr3t" not in line


def test_the_language_host_secret_key_list_is_read(
    engine_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(as_engine_config(base_raw())))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["appstack:namespace"]))
    with pytest.raises(config_model.ConfigError, match="appstack:namespace: is set as a"):
        pulumi_config.raw_from_engine()


def test_secrets_registry_and_other_packages_secrets_are_accepted(engine_config: None) -> None:
    raw = {
        **base_raw(),
        "secrets": {"web": {"API_TOKEN": "s3cr3t"}},
        "registry": {"username": "ci", "password": "pw"},
    }
    config = as_engine_config(raw) | {"kubernetes:kubeconfig": "apiVersion: v1"}
    pulumi.runtime.set_all_config(
        config, ["appstack:secrets", "appstack:registry", "kubernetes:kubeconfig"]
    )
    assert pulumi_config.raw_from_engine()["secrets"] == {"web": {"API_TOKEN": "s3cr3t"}}


def test_main_exits_2_without_traceback_and_registers_nothing(
    engine_config: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[str] = []
    record = mockruntime.RecordingMocks.new_resource

    def spy(self: mockruntime.RecordingMocks, args: Any) -> Any:
        registered.append(args.name)
        return record(self, args)

    monkeypatch.setattr(mockruntime.RecordingMocks, "new_resource", spy)

    def program() -> dict[str, Any]:
        pulumi.runtime.set_all_config(
            as_engine_config(with_secret_env(base_raw())), ["appstack:apps"]
        )
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        return {}

    with pytest.raises(SystemExit) as info:
        mockruntime.capture(program, project="appstack", stack="dev")
    assert info.value.code == 2 and registered == []
    err = capsys.readouterr().err
    assert "appstack:apps: is set as a secret" in err and "Traceback" not in err
    assert "s3cr3t" not in err


# --- 2. removing a secret key under Server-Side Apply -----------------------------------------


def _leaves(obj: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(obj, dict) and obj:
        return {leaf for k, v in obj.items() for leaf in _leaves(v, (*path, str(k)))}
    return {path}


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for a Secret: stringData merged into data (core/v1
    conversion), stringData itself never kept."""
    out = copy.deepcopy(obj)
    string_data = out.pop("stringData", None) or {}
    out["data"] = {**(out.get("data") or {}), **string_data}
    return out


def _remove(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            return
        node = node[part]
    node.pop(path[-1], None)


def _ssa(live: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Apply `after` over `live` as the sole field manager that applied `before`: fields it
    applied before and not now are removed, then the new configuration is merged and stored."""
    result = copy.deepcopy(live)
    for path in _leaves(before) - _leaves(after) - {()}:
        _remove(result, path)
    merged = config_model.deep_merge(result, after)
    return _stored(merged)


def _secret(render: Render, keys: list[str]) -> dict[str, Any]:
    raw = {**base_raw(), "secrets": {"web": {k: f"value-of-{k}" for k in keys}}}
    return one(render(raw).objects, "Secret", "web-secrets")


def test_a_secret_key_removed_from_config_leaves_the_mounted_secret(render: Render) -> None:
    before = _secret(render, ["API_TOKEN", "OLD_TOKEN"])
    after = _secret(render, ["API_TOKEN"])
    live = _ssa({}, {}, before)
    assert set(live["data"]) == {"API_TOKEN", "OLD_TOKEN"}
    live = _ssa(live, before, after)
    assert set(live["data"]) == {"API_TOKEN"}


def test_the_secret_holds_data_never_string_data(render: Render) -> None:
    secret = _secret(render, ["API_TOKEN"])
    assert "stringData" not in secret and set(secret["data"]) == {"API_TOKEN"}

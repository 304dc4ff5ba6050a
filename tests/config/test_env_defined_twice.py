"""One variable defined twice for an app, as a plain value and as a secret, is a config error
naming both keys (issue 27 item 5): never a silent rule about which one the app sees. The
oracle is the render: a name the ConfigMap carries (the pod's envFrom) and a key of the
app's Secret (mounted as a file) never coincide."""

from __future__ import annotations

from typing import Any

import pytest

from components import config as config_model
from tests.conftest import Render, base_raw, find


def _raw(env: dict[str, str], secrets: dict[str, str]) -> dict[str, Any]:
    raw = base_raw("dev", env=env)
    raw["secrets"] = {"web": secrets}
    return raw


def test_a_variable_set_as_plain_and_secret_is_one_error_naming_both_keys() -> None:
    with pytest.raises(config_model.ConfigError) as exc:
        config_model.load(_raw({"API_TOKEN": "plain", "LOG_LEVEL": "info"}, {"API_TOKEN": "s3"}))
    assert exc.value.problems == [
        "appstack:secrets.web.API_TOKEN: API_TOKEN is defined twice for app 'web': as a plain "
        "value (appstack:apps.web.env.API_TOKEN) and as a secret "
        "(appstack:secrets.web.API_TOKEN); define it once: in secrets if the value is secret, "
        "else in env"
    ]
    assert "s3" not in str(exc.value), "a secret value reached the message"


def test_every_clash_is_reported_and_other_apps_are_unaffected() -> None:
    raw = _raw({"A": "1", "B": "2", "C": "3"}, {"B": "x", "A": "y", "D": "z"})
    with pytest.raises(config_model.ConfigError) as exc:
        config_model.load(raw)
    assert [p.split(":")[1].split(" ")[0] for p in exc.value.problems] == [
        "secrets.web.A",
        "secrets.web.B",
    ]


def test_distinct_names_render_with_no_name_in_both_places(render: Render) -> None:
    objects = render(_raw({"LOG_LEVEL": "info"}, {"API_TOKEN": "s3cr3t-value"})).objects
    plain = {
        key
        for cm in find(objects, "ConfigMap")
        if cm["metadata"]["name"].startswith("web-config")
        for key in cm.get("data") or {}
    }
    secret = {
        key
        for s in find(objects, "Secret")
        for key in (s.get("data") or {}) | (s.get("stringData") or {})
    }
    assert "LOG_LEVEL" in plain and "API_TOKEN" in secret
    assert plain & secret == set()

"""One reading of the stack files, under the engine and in the render (issue 27 item 4).

The oracle is what the Pulumi engine holds for each value and hands the program in
PULUMI_CONFIG (pulumi sdk/v3 go/common/resource/config/value.go `unmarshalValue`: a stack-file
value is first unmarshalled into a Go string, which succeeds for every YAML scalar and keeps its
text, gopkg.in/yaml.v3 decode.go `scalar`, `out.SetString(n.Value)`; a mapping or a list is
decoded by yaml.v3 and stored as its JSON). ENGINE below is written out by hand from those
rules for STACK_FILE; the engine path (`raw_from_engine`, fed that PULUMI_CONFIG) and the render
path (`load_raw_config`, reading the file) must give the same raw config, and so the same
validated config. `make e2e` checks the same with the real CLI's `pulumi config --json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import set_all_config

from components import config as config_model
from components import pulumi_config
from components.config.reading import engine_value
from stackctl.render import load_raw_config

IMAGE = "registry.example.com/appstack/web:1.4.2"
STACK_FILE = f"""\
config:
  kubernetes:context: kind-dev
  appstack:environment: dev
  appstack:namespace: "123"
  appstack:apps:
    web:
      image: {IMAGE}
      replicas: 2
      env:
        ENABLED: yes
        FEATURE: on
        RATIO: "0.5"
        RELEASED: 2024-01-02
        COUNT: "007"
  appstack:namespaceQuota:
    headroomPercent: 0x10
"""
#: What the engine holds for STACK_FILE (module docstring): scalars as their text, objects as
#: the JSON of yaml.v3's decoding (`yes`/`on` are strings in YAML 1.2; an unquoted timestamp is
#: a time.Time, which json.Marshal writes in RFC 3339; `0x10` is the int 16).
ENGINE = {
    "kubernetes:context": "kind-dev",
    "appstack:environment": "dev",
    "appstack:namespace": "123",
    "appstack:apps": json.dumps(
        {
            "web": {
                "image": IMAGE,
                "replicas": 2,
                "env": {
                    "ENABLED": "yes",
                    "FEATURE": "on",
                    "RATIO": "0.5",
                    "RELEASED": "2024-01-02T00:00:00Z",
                    "COUNT": "007",
                },
            }
        }
    ),
    "appstack:namespaceQuota": json.dumps({"headroomPercent": 16}),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: appstack\nruntime: python\nconfig:\n  namespace:\n    type: string\n"
        "    default: appstack\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_FILE)
    return tmp_path


@pytest.fixture
def engine_raw(monkeypatch: pytest.MonkeyPatch) -> Any:
    def read(values: dict[str, str]) -> dict[str, Any]:
        set_all_config({})
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
        return pulumi_config.raw_from_engine()

    return read


def test_the_engine_and_the_render_read_the_same_raw_config(project: Path, engine_raw: Any) -> None:
    assert load_raw_config(project, "dev") == engine_raw(ENGINE)


def test_a_quoted_number_is_the_same_string_on_both_paths(project: Path, engine_raw: Any) -> None:
    from_render = config_model.load(load_raw_config(project, "dev"))
    from_engine = config_model.load(engine_raw(ENGINE))
    assert from_render == from_engine
    assert from_engine.namespace == "123"
    assert from_engine.apps["web"].env["ENABLED"] == "yes"  # YAML 1.2: not a boolean
    assert from_engine.namespace_quota.headroom_percent == 16


@pytest.mark.parametrize("text", ['"123"', "123", "'123'"])
def test_a_top_level_scalar_is_its_text_however_it_is_quoted(
    tmp_path: Path, engine_raw: Any, text: str
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: appstack\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(f"config:\n  appstack:namespace: {text}\n")
    assert load_raw_config(tmp_path, "dev")["namespace"] == "123"
    assert engine_raw({"appstack:namespace": "123"})["namespace"] == "123"


@pytest.mark.parametrize(
    ("held", "read"),
    [
        ("dev", "dev"),
        ("123", "123"),
        ("true", "true"),
        ("null", None),
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", [1, 2]),
        ("{not json", "{not json"),
    ],
)
def test_engine_value_decodes_objects_and_lists_only(held: str, read: object) -> None:
    assert engine_value(held) == read


def test_a_bad_value_is_one_error_naming_the_key(project: Path, engine_raw: Any) -> None:
    values = {**ENGINE, "appstack:namespace": "Not_A_Label"}
    with pytest.raises(config_model.ConfigError) as exc:
        config_model.load(engine_raw(values))
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith("appstack:namespace: 'Not_A_Label'")

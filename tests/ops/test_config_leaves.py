"""Rollback writes a secret object back leaf by leaf, keeping the stack file's per-leaf
`secure:` layout (issue 27 item 3).

`pulumi config set --secret --path 'appstack:secrets.web.API_TOKEN' v` stores one `secure:`
value per leaf; `pulumi config set-all --json` of a secret object stores the whole object as one
encrypted blob (pulumi sdk/v3 go/common/resource/config/value.go: a `secret` entry of the JSON
input becomes one secure value), so the stack file would change shape and the render, which
reads `secure:` leaves under appstack:secrets, would see something else. The oracle here is the
CLI commands sent (which flags, which keys); `make e2e` checks the stack file itself after a
real round trip (tests/e2e/test_e2e.py::test_dev_stackctl_deploy_history_rollback).
"""

from __future__ import annotations

import json
from pathlib import Path

from stackctl.ops.automation import ConfigValue, PulumiAutomationBackend
from stackctl.ops.config_paths import leaves, secret_leaf_paths
from tests.ops.test_automation import StandInStack, StandInWorkspace, backend_with

SECRETS = {"web": {"API_TOKEN": "t0k3n", "DB_PASSWORD": "pw"}, "api": {"KEY": "k"}}
REGISTRY = {"server": "registry.example.com", "username": "ci", "password": "p4ss"}


def test_get_config_learns_which_leaves_are_secure_from_the_stack_file(tmp_path: Path) -> None:
    # The CLI's redacted listing elides a secret object entirely (pulumi pkg/cmd/pulumi/config/
    # config.go: `entry.ObjectValue = nil` when the value is secure and secrets are not
    # shown), so the secure leaves come from Pulumi.<stack>.yaml itself.
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n"
        "  appstack:secrets:\n"
        "    web:\n      API_TOKEN:\n        secure: v1:aaa\n"
        "      DB_PASSWORD:\n        secure: v1:bbb\n"
        "    api:\n      KEY:\n        secure: v1:ccc\n"
        "  appstack:registry:\n"
        "    server: registry.example.com\n    username: ci\n"
        "    password:\n      secure: v1:ddd\n"
    )
    shown = {
        "appstack:secrets": {"value": json.dumps(SECRETS), "objectValue": SECRETS, "secret": True},
        "appstack:registry": {
            "value": json.dumps(REGISTRY), "objectValue": REGISTRY, "secret": True
        },
    }  # fmt: skip
    backend = PulumiAutomationBackend("dev", tmp_path, "file:///repo/.pulumi-state")
    backend._stack = StandInStack(StandInWorkspace({"config --show-secrets": json.dumps(shown)}))
    cfg = backend.get_config()
    assert cfg["appstack:registry"].secret_leaves == ('["password"]',)
    assert set(cfg["appstack:secrets"].secret_leaves) == {
        '["web"]["API_TOKEN"]', '["web"]["DB_PASSWORD"]', '["api"]["KEY"]'
    }  # fmt: skip


def test_a_secret_object_goes_back_leaf_by_leaf_never_as_one_json_blob() -> None:
    backend, stack = backend_with({})
    registry_leaves = ('["password"]',)
    backend.set_config(
        {
            "appstack:registry": ConfigValue(
                json.dumps(REGISTRY), secret=True, object_value=REGISTRY,
                secret_leaves=registry_leaves,
            ),
            "appstack:apps": ConfigValue('{"web":{}}', object_value={"web": {}}),
        }
    )  # fmt: skip
    # the plain object still through --json; the secret one removed, then set per leaf
    assert stack.calls == ["set-all --json", "rm-all", "set-all --path"]
    assert [json.loads(t) for t in stack.set_all_json] == [
        {"appstack:apps": {"value": '{"web":{}}', "objectValue": {"web": {}}, "secret": False}}
    ]
    assert stack.removed == [["appstack:registry"]]
    sent = {k: (v.value, v.secret) for k, v in stack.set_all[-1].items()}
    assert sent == {
        'appstack:registry["server"]': ("registry.example.com", False),
        'appstack:registry["username"]': ("ci", False),
        'appstack:registry["password"]': ("p4ss", True),
    }


def test_a_secret_object_whose_secure_leaves_are_unknown_is_secret_everywhere() -> None:
    found = leaves("appstack:secrets", SECRETS, True, ())
    assert found == {
        'appstack:secrets["web"]["API_TOKEN"]': ("t0k3n", True),
        'appstack:secrets["web"]["DB_PASSWORD"]': ("pw", True),
        'appstack:secrets["api"]["KEY"]': ("k", True),
    }


def test_leaf_paths_round_trip_lists_and_non_string_leaves() -> None:
    value = {"a": [1, {"b": True}], "c": "x"}
    assert leaves("appstack:k", value, False, ()) == {
        'appstack:k["a"][0]': ("1", False),
        'appstack:k["a"][1]["b"]': ("true", False),
        'appstack:k["c"]': ("x", False),
    }
    stored = {"a": [{"secure": "v1:x"}, {"b": {"secure": "v1:y"}}], "c": "x"}
    assert secret_leaf_paths(stored) == (
        '["a"][0]',
        '["a"][1]["b"]',
    )

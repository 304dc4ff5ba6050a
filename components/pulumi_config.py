"""Read the `appstack:*` keys from the running Pulumi engine into the raw mapping that
`components.config.load` validates. Used by __main__.py only; render reads the stack files.

The CLI's Python language host hands config to the program in the PULUMI_CONFIG environment
variable (a JSON object of `project:key` -> string); the Automation API's inline programs set it
in the runtime instead (`pulumi.runtime.set_all_config`). Both are read through the SDK's public
API: every key of the environment's bag (`get_config_env`), and each top-level `appstack:*` key
of the config model through `pulumi.Config`, which takes the runtime's value before the
environment's. (The SDK offers no public listing of the runtime's keys: a key the model does not
know, set only in the runtime, is neither read nor checked.)

Secrets. The values arrive decrypted; which keys were set with `--secret` comes separately:
PULUMI_CONFIG_SECRET_KEYS (a JSON list of full keys, set by the language host) or the runtime's
secret-key set (`set_all_config(..., secret_keys)`, read by `is_config_secret`), see
pulumi/runtime/config.py (pulumi 3.272.0). A secret set with `--path` marks its whole top-level
key. Only `appstack:secrets` (delivered as a Secret) and `appstack:registry` (the push login) are
handled as secrets by the program; a secret anywhere else would land in ConfigMaps, labels and
the state in clear, so it is refused (`components.config.check_secret_keys`).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import get_config_env, get_config_secret_keys_env, is_config_secret

from components.config import PROJECT, StackConfig, check_secret_keys
from components.config.reading import engine_value


def engine_config() -> dict[str, Any]:
    """Every config value the engine passed that the program can name, by full key."""
    config: dict[str, Any] = dict(get_config_env())
    ours = pulumi.Config(PROJECT)
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        value = ours.get(key)
        if value is not None:
            config[ours.full_key(key)] = value
    return config


def engine_secret_keys(keys: list[str]) -> list[str]:
    """The config keys (of `keys` and of the language host's list) set with `--secret`."""
    return sorted(set(get_config_secret_keys_env()) | {k for k in keys if is_config_secret(k)})


def raw_from_engine() -> dict[str, Any]:
    """Every `appstack:<key>`, decoded as the render decodes the stack files
    (components/config/reading.py `engine_value`: objects and lists decoded, scalars kept).

    Raises ConfigError when a key other than appstack:secrets / appstack:registry is a secret.
    """
    config = engine_config()
    check_secret_keys(engine_secret_keys(list(config)))
    raw: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, value in config.items():
        if not full_key.startswith(prefix):
            continue
        raw[full_key[len(prefix) :]] = engine_value(value)
    return raw

"""Loading raw `appstack:*` values and reporting every problem with its key path."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from components.config.base import (
    CUSTOM_ERRORS,
    PROJECT,
    Model,
    deep_merge,
)
from components.config.signing import ImageSigning
from components.config.stack import (
    ENVIRONMENT_DEFAULTS,
    StackConfig,
    environments,
    max_progress_deadline_seconds,
    production_rules,
)

# --------------------------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """Invalid stack config; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid stack config ({len(problems)} {noun}):\n  " + "\n  ".join(problems)
        )


SECRET_KEYS = ("secrets", "registry")
"""The only `appstack:*` keys whose values the program treats as secrets."""


def check_secret_keys(keys: Iterable[str]) -> None:
    """Refuse `appstack:*` keys set with `pulumi config set --secret` outside SECRET_KEYS: the
    program would put their values into ConfigMaps, labels and the state in clear."""
    prefix = f"{PROJECT}:"
    problems = [
        f"{key}: is set as a secret (pulumi config set --secret), but only "
        f"{' and '.join(prefix + k for k in SECRET_KEYS)} hold secrets; its values would reach "
        "ConfigMaps and the stack state in clear. Move the secret value to "
        f"{prefix}secrets.<app>.<KEY> (mounted as a file), or set {key} without --secret"
        for key in sorted(keys)
        if key.startswith(prefix) and key.removeprefix(prefix) not in SECRET_KEYS
    ]
    if problems:
        raise ConfigError(problems)


class _SigningOnly(Model):
    """`appstack:imageSigning` alone, at its place in the tree (so errors name its key path)."""

    image_signing: ImageSigning


def load_image_signing(raw: Mapping[str, Any], environment: str) -> ImageSigning:
    """`appstack:imageSigning` of raw `appstack:*` values (keys without the namespace) under
    `environment`'s defaults, validated by the same model as `load` (stackctl deploy's signature
    gate reads only this key, before any engine run). Raises ConfigError."""
    if environment not in ENVIRONMENT_DEFAULTS:
        raise ConfigError(
            [f"{PROJECT}:environment: {environment!r} is not an environment; "
             f"allowed: {', '.join(environments())}"]
        )  # fmt: skip
    defaults = ENVIRONMENT_DEFAULTS[environment]["stack"].get("imageSigning", {})
    value = raw.get("imageSigning")
    merged = deep_merge(defaults, value) if isinstance(value, Mapping) else value
    try:
        return _SigningOnly.model_validate(
            {"imageSigning": defaults if value is None else merged}
        ).image_signing
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


def _top_key_names() -> list[str]:
    return sorted(f.alias or name for name, f in StackConfig.model_fields.items())


def with_defaults(raw: Mapping[str, Any], environment: str) -> dict[str, Any]:
    """Apply the environment defaults under the user's raw `appstack:*` values."""
    defaults = ENVIRONMENT_DEFAULTS[environment]
    merged = deep_merge(defaults["stack"], raw)
    apps = raw.get("apps")
    if isinstance(apps, Mapping):
        merged["apps"] = {
            name: deep_merge(defaults["app"], app) if isinstance(app, Mapping) else app
            for name, app in apps.items()
        }
    return merged


def load(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw `appstack:*` values (keys without the namespace) into a StackConfig.

    Raises ConfigError listing every problem found.
    """
    environment = raw.get("environment")
    if not isinstance(environment, str) or environment not in ENVIRONMENT_DEFAULTS:
        # Without a valid environment no defaults apply; report it with the other problems.
        problems = [
            f"{PROJECT}:environment: {environment!r} is not an environment; "
            f"allowed: {', '.join(environments())}"
        ]
        try:
            StackConfig.model_validate({**raw, "environment": "dev"})
        except ValidationError as exc:
            problems += [
                p for p in format_errors(exc) if not p.startswith(f"{PROJECT}:environment")
            ]
        raise ConfigError(problems)
    merged = with_defaults(raw, str(environment))
    try:
        return StackConfig.model_validate(
            merged,
            context={
                "environment": environment,
                "production_rules": production_rules(environment),
                "max_progress_deadline_seconds": max_progress_deadline_seconds(environment),
            },
        )
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


def _key_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return f"{PROJECT}:{path}"


def format_errors(exc: ValidationError) -> list[str]:
    """One line per problem: `appstack:<key path>: <what is wrong and what is allowed>`."""
    lines: list[str] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        loc = [p for p in loc if p not in ("[key]",)]
        ctx = err.get("ctx") or {}
        if err["type"] == "appstack_rules":
            for sub, message in ctx["problems"]:
                lines.append(
                    f"{_key_path(loc)}: {message}"
                    if not sub
                    else f"{_key_path([*loc, *sub.split('.')])}: {message}"
                )
            continue
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            bad = str(loc[-1])
            hint = difflib.get_close_matches(bad, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(
                f"{_key_path(loc)}: unknown key{suggestion}; allowed: {', '.join(allowed)}"
            )
            continue
        message = err["msg"]
        if err["type"] == "literal_error":
            message = f"{err['input']!r} is not allowed; {message[0].lower()}{message[1:]}"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif "input" in err and err["type"] not in CUSTOM_ERRORS | {
            "hpa_range",
            "probes_identical",
            "egress_target",
        }:
            message = (
                f"{err['input']!r}: {message}" if not isinstance(err["input"], dict) else message
            )
        lines.append(f"{_key_path(loc)}: {message}")
    return lines


def _unwrap(annotation: Any) -> Any:
    """The model class a (possibly Optional/list/dict/Annotated) annotation leads to."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _unwrap(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    if origin in (list, dict, typing.Mapping) or (origin is not None and get_args(annotation)):
        args = get_args(annotation)
        return _unwrap(args[-1]) if args else None
    return annotation


def _allowed_keys(loc: list[int | str]) -> list[str]:
    """The keys allowed at a location of the config tree (for unknown-key messages)."""
    model: Any = StackConfig
    expect_key = False  # next part is a dict key / list index (skip it)
    for part in loc:
        if expect_key:
            expect_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part),
            None,
        )
        if field is None:
            return []
        origin = get_origin(field.annotation)
        expect_key = origin in (dict, list) or (
            origin in (Union, types.UnionType)
            and any(get_origin(a) in (dict, list) for a in get_args(field.annotation))
        )
        model = _unwrap(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or n for n, f in model.model_fields.items())
    return []

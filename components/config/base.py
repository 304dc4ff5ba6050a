"""Field types with Kubernetes' own validation rules, the `Model` base, `Problems`."""

from __future__ import annotations

import copy
import functools
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

import appstack_grammar as grammar

PROJECT = "appstack"
#: An environment's name: a key of `ENVIRONMENT_DEFAULTS` (components/config/stack.py), which is
#: the one list of environments; the stack model checks membership against it.
Environment = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*$", max_length=20)]

# --------------------------------------------------------------------------------------------
# Field types with Kubernetes' own validation rules (the rules: appstack_grammar)
# --------------------------------------------------------------------------------------------

MAX_APP_NAME = 40  # derived names add suffixes such as "-metrics" and "-config-<hash>"

CUSTOM_ERRORS: set[str] = {"appstack_rules"}
"""Error types whose message already quotes the value (format_errors adds nothing)."""


@dataclass(frozen=True)
class FreeText:
    """Marks a string that may hold any text, with the reason (the config inventory test reads
    it): e.g. an environment variable value or an annotation value."""

    reason: str


def _rule(code: str, check: Callable[[Any], bool], allowed: str) -> AfterValidator:
    """A field validator: `check(value)` or the error "'<value>' <allowed>"."""
    CUSTOM_ERRORS.add(code)

    def validate(value: Any) -> Any:
        if not check(value):
            raise PydanticCustomError(code, "'{value}' " + allowed, {"value": value})
        return value

    return AfterValidator(validate)


def _quantity(*, positive: bool) -> BeforeValidator:
    """A quantity string (numbers are taken as their text), >= 0, or > 0 when `positive`."""
    CUSTOM_ERRORS.update({"quantity", "quantity_sign"})
    example = "(e.g. 100m, 0.5, 1Gi)"

    def validate(value: Any) -> str:
        text = str(value)
        try:
            amount = grammar.parse_quantity(text)
        except ValueError:
            raise PydanticCustomError(
                "quantity",
                "'{value}' is not a Kubernetes quantity; use e.g. '250m', '0.5', '128Mi', '1Gi'",
                {"value": text},
            ) from None
        if amount < 0 or (positive and amount == 0):
            wording = "positive" if positive else "non-negative"
            raise PydanticCustomError(
                "quantity_sign",
                "'{value}' must be a " + wording + " Kubernetes quantity " + example,
                {"value": text},
            )
        return text

    return BeforeValidator(validate)


def _optional(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: value == "" or check(value)


def _is_pinned(value: str) -> bool:
    ref = grammar.parse_image(value)
    return ref.digest is not None or not grammar.is_moving_tag(ref.tag)


def _image(value: str) -> str:
    try:
        pinned = _is_pinned(value)
    except ValueError:
        raise PydanticCustomError(
            "image",
            "'{value}' is not an image reference '[registry/]name[:tag][@sha256:digest]' "
            "(lowercase path, tag [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})",
            {"value": value},
        ) from None
    if not pinned:
        raise PydanticCustomError(
            "image_unpinned",
            "'{value}' is not pinned: give an immutable tag (not {moving}) or a digest "
            "'@sha256:...'",
            {"value": value, "moving": "/".join(sorted(MOVING_TAGS))},
        )
    return value


CUSTOM_ERRORS.update({"image", "image_unpinned"})
MOVING_TAGS = grammar.MOVING_TAGS
IMAGE_PATTERN = grammar.image.REFERENCE_PATTERN
"""The image reference grammar (groups repo, tag, digest), from appstack_grammar."""
_SUBDOMAIN = (
    "is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting "
    "and ending with a letter or digit, at most 253 characters"
)

DNS1123 = Annotated[
    str,
    _rule(
        "dns1123",
        grammar.is_dns1123_label,
        "is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
        "letter or digit, at most 63 characters",
    ),
]
AppName = Annotated[
    str,
    _rule(
        "app_name",
        lambda v: len(v) <= MAX_APP_NAME and grammar.is_dns1035_label(v),
        "is not a valid service name: a DNS-1035 label (lowercase letters, digits and '-', "
        f"starting with a letter) of at most {MAX_APP_NAME} characters",
    ),
]
SubdomainName = Annotated[str, _rule("dns1123_subdomain", grammar.is_dns1123_subdomain, _SUBDOMAIN)]
"""An object name that must be set (e.g. an IngressClass)."""
ObjectName = Annotated[
    str, _rule("dns1123_subdomain", _optional(grammar.is_dns1123_subdomain), _SUBDOMAIN)
]
"""The name of an existing object (Secret, StorageClass, IngressClass); empty means none."""
IngressHost = Annotated[
    str,
    _rule(
        "ingress_host",
        _optional(grammar.is_ingress_host),
        "is not a host name: a DNS-1123 subdomain such as shop.example.com or a wildcard "
        "*.example.com, lowercase, without scheme, port, path or IP address",
    ),
]
LabelKey = Annotated[
    str,
    _rule(
        "label_key",
        grammar.is_qualified_name,
        "is not a label/annotation key: [prefix/]name, prefix a DNS-1123 subdomain, name at most "
        "63 characters of letters, digits, '-', '_' and '.' starting and ending alphanumeric",
    ),
]
OptionalLabelKey = Annotated[
    str,
    _rule(
        "label_key",
        _optional(grammar.is_qualified_name),
        "is not a label key: [prefix/]name, prefix a DNS-1123 subdomain, name at most 63 "
        "characters of letters, digits, '-', '_' and '.' starting and ending alphanumeric "
        "(or empty)",
    ),
]
"""A label key or nothing (a toleration's key: empty matches every taint key)."""
LabelValue = Annotated[
    str,
    _rule(
        "label_value",
        grammar.is_label_value,
        "is not a label value: at most 63 characters of letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit (or empty)",
    ),
]
EnvName = Annotated[
    str,
    _rule(
        "env_name",
        grammar.is_env_var_name,
        "is not an environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)",
    ),
]
SecretKey = Annotated[
    str,
    _rule(
        "secret_key",
        grammar.is_config_key,
        "is not a valid Secret key ([-._a-zA-Z0-9]+, at most 253 characters, not '.' or '..')",
    ),
]
Quantity = Annotated[str, _quantity(positive=False)]
"""A resource amount (requests, limits, LimitRange defaults): quantity grammar, >= 0."""
PositiveQuantity = Annotated[str, _quantity(positive=True)]
"""A size (volume, emptyDir limit): quantity grammar, > 0."""
ProbePath = Annotated[
    str, _rule("abs_path", lambda v: v.startswith("/"), "must be absolute (start with '/')")
]
MountPath = Annotated[
    str,
    _rule(
        "mount_path",
        lambda v: v.startswith("/") and v != "/" and posixpath.normpath(v) == v,
        "is not allowed: mountPath must be a normalised absolute path other than / "
        "(no trailing '/', '.' or '..')",
    ),
]
"""A container mount path: absolute, normalised, not the root (which would hide the image)."""
Cidr = Annotated[
    str, _rule("cidr", grammar.is_cidr, "is not a CIDR block like '203.0.113.0/24' (no host bits)")
]
Port = Annotated[int, Field(ge=1, le=65535)]
PrometheusDuration = Annotated[
    str,
    _rule(
        "duration",
        grammar.is_prometheus_duration,
        "is not a Prometheus duration: e.g. 30s, 1m, 1m30s, 2h (units y w d h m s ms)",
    ),
]
HttpUrl = Annotated[
    str,
    _rule(
        "http_url",
        lambda v: re.fullmatch(r"https?://[^\s]+", v) is not None,
        "is not an http(s) URL",
    ),
]
ImageTag = Annotated[
    str,
    _rule(
        "image_tag",
        lambda v: grammar.is_tag(v) and not grammar.is_moving_tag(v),
        "is not an allowed tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}, not "
        + "/".join(sorted(grammar.MOVING_TAGS))
        + ")",
    ),
]


def _percent_or_int(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,3}%", value):
        raise PydanticCustomError(
            "int_or_percent",
            "'{value}' must be an integer or a percentage like '25%'",
            {"value": value},
        )
    return value


CUSTOM_ERRORS.add("int_or_percent")
IntOrPercent = Annotated[int | str, AfterValidator(_percent_or_int)]
ImageRef = Annotated[str, AfterValidator(_image)]


@functools.lru_cache(maxsize=1024)
def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of a validated image reference (parsed once per reference:
    every object of an app reads its version label from it)."""
    ref = grammar.parse_image(image)
    return ref.repository, ref.tag, ref.digest


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys rejected, immutable, field docstrings."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class Problems:
    """Collects cross-field problems of one object; raised together as one validation error."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError("appstack_rules", "{problems}", {"problems": self.items})


def _environment(info: ValidationInfo) -> str:
    context = info.context or {}
    return str(context.get("environment", "dev"))


def _production_rules(info: ValidationInfo) -> bool:
    """Whether the environment being loaded keeps prod's rules (its `productionRules` in
    ENVIRONMENT_DEFAULTS, handed to validation as context by `components.config.load`)."""
    context = info.context or {}
    return bool(context.get("production_rules", False))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, recursively for mappings; lists and scalars replace.

    A new dict in `base`'s key order, then `override`'s new keys; it shares nothing mutable
    with either (each value is copied once, where it lands)."""
    merged: dict[str, Any] = {}
    for key, value in base.items():
        if key not in override:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(override[key], Mapping):
            merged[key] = deep_merge(value, override[key])
        else:
            merged[key] = copy.deepcopy(override[key])
    for key, value in override.items():
        if key not in base:
            merged[key] = copy.deepcopy(value)
    return merged

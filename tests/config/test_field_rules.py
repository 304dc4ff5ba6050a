"""Every config value that lands in a Kubernetes field is checked by that field's own rule
(issue 9, item 15).

- An inventory walks every string of the config model tree (fields, list items, map keys and
  values, Jenkins included) and proves each has a validator, or a written reason (`FreeText`)
  why any string is fine.
- Hold-out classes and their neighbours are rejected with the key path, the value and what is
  allowed; `stackctl render` exits 2 with that one line, no traceback, nothing written.
- The quantity grammar is apimachinery's: upstream's own test table is the oracle.
"""

from __future__ import annotations

import subprocess
import sys
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    SecretStr,
    WrapValidator,
)
from pydantic.fields import FieldInfo

import appstack_grammar as grammar
from components import config as config_model
from components.config.base import FreeText
from tests.conftest import base_raw, load_error
from tests.tooling import REPO

# --- inventory ----------------------------------------------------------------------------------

VALIDATORS = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)


def _judged(metadata: list[Any]) -> str | None:
    """'validator', 'free: <reason>' or None for one string position."""
    for item in metadata:
        if isinstance(item, VALIDATORS) or getattr(item, "pattern", None):
            return "validator"
        if isinstance(item, FreeText) and item.reason.strip():
            return f"free: {item.reason}"
        if isinstance(item, FieldInfo):  # Annotated[str, Field(pattern=...)]
            inner = _judged(list(item.metadata))
            if inner is not None:
                return inner
    return None


def _strings(tp: Any, meta: list[Any], where: str, seen: set[type]) -> list[tuple[str, str | None]]:
    """(key path, judgement) of every string position reachable from type `tp`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _strings(args[0], meta + list(args[1:]), where, seen)
    if origin in (Union, types.UnionType):
        return [p for a in args if a is not type(None) for p in _strings(a, meta, where, seen)]
    if origin is Literal:
        return []
    if origin in (list, tuple, set, frozenset):
        return _strings(args[0], [], f"{where}[]", seen)
    if origin in (dict, typing.Mapping) or (origin is not None and len(args) == 2):
        return _strings(args[0], [], f"{where}.<key>", seen) + _strings(
            args[1], [], f"{where}.<value>", seen
        )
    if tp in (str, SecretStr):
        return [(where, _judged(meta))]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return []
        seen.add(tp)
        out = []
        for name, field in tp.model_fields.items():
            key = f"{where}.{field.alias or name}" if where else (field.alias or name)
            out += _strings(field.annotation, list(field.metadata), key, seen)
        return out
    return []


def _inventory() -> list[tuple[str, str | None]]:
    return _strings(config_model.StackConfig, [], "", set())


def test_every_string_of_the_config_model_has_a_rule_or_a_reason() -> None:
    inventory = _inventory()
    unjudged = [where for where, judged in inventory if judged is None]
    assert unjudged == [], f"string fields without a validator or a FreeText reason: {unjudged}"


class _Probe(config_model.Model):
    """A model to check the inventory itself."""

    checked: Annotated[str, Field(pattern=r"^[a-z]+$")] = "a"
    """A pattern inside Annotated."""
    listed: list[Annotated[str, Field(pattern=r"^[a-z]+$")]] = Field(default_factory=list)
    """Patterned items."""
    free: Annotated[str, FreeText("any text")] = ""
    """Free text."""
    unchecked: str = ""
    """No rule."""
    mapped: dict[str, str] = Field(default_factory=dict)
    """No rule for keys or values."""


def test_the_inventory_tells_a_rule_from_none() -> None:
    judged = dict(_strings(_Probe, [], "", set()))
    assert judged["checked"] == judged["listed[]"] == "validator"
    assert judged["free"] == "free: any text"
    assert judged["unchecked"] is None
    assert judged["mapped.<key>"] is None and judged["mapped.<value>"] is None


def test_the_inventory_reaches_every_part_of_the_model() -> None:
    paths = {where for where, _ in _inventory()}
    for expected in (
        "apps.<value>.image",
        "apps.<value>.resources.requests.cpu",
        "apps.<value>.ingress.host",
        "apps.<value>.env.<key>",
        "apps.<value>.service.annotations.<key>",
        "network.dnsPodLabels.<value>",
        "monitoring.scrapeInterval",
        "jenkins.home.size",
        "jenkins.home.storageClassName",
        "jenkins.kubeApiCidrs[]",
        "secrets.<value>.<key>",
    ):
        assert expected in paths
    free = sorted(where for where, judged in _inventory() if judged and judged.startswith("free"))
    # the strings that may hold any text, each with its reason at the field
    assert free == sorted(
        [
            "apps.<value>.build.context",
            "apps.<value>.build.dockerfile",
            "apps.<value>.build.target",
            "apps.<value>.env.<value>",
            "apps.<value>.service.annotations.<value>",
            "jenkins.job.repository",
            "registry.password",
            "registry.username",
            "secrets.<value>.<value>",
        ]
    )


# --- hold-out classes and the other field rules ---------------------------------------------


def _app(**settings: Any) -> dict[str, Any]:
    return base_raw(**settings)


def _jenkins(**settings: Any) -> dict[str, Any]:
    return {**base_raw(), "jenkins": {"enabled": True, **settings}}


CASES = [
    # (id, raw, key, expected message)
    (
        "negative-cpu-request",
        _app(resources={"requests": {"cpu": "-100m"}}),
        "appstack:apps.web.resources.requests.cpu",
        "'-100m' must be a non-negative Kubernetes quantity (e.g. 100m, 0.5, 1Gi)",
    ),
    (
        "negative-memory-limit",
        _app(resources={"limits": {"memory": "-1Gi"}}),
        "appstack:apps.web.resources.limits.memory",
        "'-1Gi' must be a non-negative Kubernetes quantity",
    ),
    (
        "quantity-grammar",
        _app(resources={"requests": {"memory": "1GB"}}),
        "appstack:apps.web.resources.requests.memory",
        "'1GB' is not a Kubernetes quantity",
    ),
    (
        "zero-tmp-size",
        _app(tmpSizeLimit="0"),
        "appstack:apps.web.tmpSizeLimit",
        "'0' must be a positive Kubernetes quantity",
    ),
    (
        "host-with-scheme",
        _app(ingress={"enabled": True, "host": "https://shop.example.com"}),
        "appstack:apps.web.ingress.host",
        "'https://shop.example.com' is not a host name",
    ),
    (
        "host-with-port",
        _app(ingress={"enabled": True, "host": "shop.example.com:443"}),
        "appstack:apps.web.ingress.host",
        "without scheme, port, path or IP address",
    ),
    (
        "host-ip",
        _app(ingress={"enabled": True, "host": "203.0.113.7"}),
        "appstack:apps.web.ingress.host",
        "is not a host name",
    ),
    (
        "tls-secret-name",
        _app(ingress={"enabled": True, "host": "a.example.com", "tlsSecretName": "My_Cert"}),
        "appstack:apps.web.ingress.tlsSecretName",
        "'My_Cert' is not a DNS-1123 subdomain",
    ),
    (
        "ingress-class",
        _app(ingress={"className": ""}),
        "appstack:apps.web.ingress.className",
        "'' is not a DNS-1123 subdomain",
    ),
    (
        "version-label",
        _app(version="1.0 beta"),
        "appstack:apps.web.version",
        "'1.0 beta' is not a label value",
    ),
    (
        "annotation-key",
        _app(service={"annotations": {"bad key": "x"}}),
        "appstack:apps.web.service.annotations.bad key",
        "'bad key' is not a label/annotation key",
    ),
    (
        "env-name",
        _app(env={"1=BAD": "x"}),
        "appstack:apps.web.env.1=BAD",
        "is not an environment variable name",
    ),
    (
        "cidr-host-bits",
        _app(service={"loadBalancerSourceRanges": ["203.0.113.7/24"]}),
        "appstack:apps.web.service.loadBalancerSourceRanges[0]",
        "'203.0.113.7/24' is not a CIDR block",
    ),
    (
        "port-range",
        _app(port=70000),
        "appstack:apps.web.port",
        "less than or equal to 65535",
    ),
    (
        "image-reference",
        _app(image="Registry.example.com/Web:1"),
        "appstack:apps.web.image",
        "is not an image reference",
    ),
    (
        "egress-app-name",
        _app(egress=[{"app": "Not_An_App", "ports": [{"port": 443}]}]),
        "appstack:apps.web.egress[0].app",
        "is not a valid service name",
    ),
    (
        "dns-pod-label",
        {**base_raw(), "network": {"dnsPodLabels": {"k8s-app": "kube dns"}}},
        "appstack:network.dnsPodLabels.k8s-app",
        "'kube dns' is not a label value",
    ),
    (
        "scrape-interval",
        {**base_raw(), "monitoring": {"scrapeInterval": "30 seconds"}},
        "appstack:monitoring.scrapeInterval",
        "'30 seconds' is not a Prometheus duration",
    ),
    (
        "runbook-url",
        {**base_raw(), "monitoring": {"runbookBaseUrl": "runbooks/appstack"}},
        "appstack:monitoring.runbookBaseUrl",
        "is not an http(s) URL",
    ),
    (
        "secret-key",
        {**base_raw(), "secrets": {"web": {"api token": "x"}}},
        "appstack:secrets.web.api token",
        "is not a valid Secret key",
    ),
    (
        "jenkins-home-negative",
        _jenkins(home={"size": "-8Gi"}),
        "appstack:jenkins.home.size",
        "'-8Gi' must be a positive Kubernetes quantity",
    ),
    (
        "jenkins-storage-class",
        _jenkins(home={"storageClassName": "Fast_SSD"}),
        "appstack:jenkins.home.storageClassName",
        "is not a DNS-1123 subdomain",
    ),
    (
        "jenkins-ingress-host",
        _jenkins(ingress={"enabled": True, "host": "http://ci.example.com/"}),
        "appstack:jenkins.ingress.host",
        "is not a host name",
    ),
    (
        "jenkins-negative-limit",
        _jenkins(agentResources={"limits": {"cpu": "-1"}}),
        "appstack:jenkins.agentResources.limits.cpu",
        "'-1' must be a non-negative Kubernetes quantity",
    ),
    (
        "limit-range-negative",
        {**base_raw(), "limitRange": {"defaultRequest": {"cpu": "-50m"}}},
        "appstack:limitRange.defaultRequest.cpu",
        "must be a non-negative Kubernetes quantity",
    ),
]


@pytest.mark.parametrize(
    ("raw", "key", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_value_breaking_its_fields_rule_is_rejected_with_key_value_and_rule(
    raw: dict[str, Any], key: str, expected: str
) -> None:
    message = load_error(raw)
    lines = [line.strip() for line in message.splitlines()[1:]]
    matching = [line for line in lines if line.startswith(f"{key}: ")]
    assert matching, message
    assert any(expected in line for line in matching), message


def test_the_hold_out_error_reads_exactly_as_documented() -> None:
    message = load_error(_app(resources={"requests": {"cpu": "-100m"}}))
    assert (
        "appstack:apps.web.resources.requests.cpu: '-100m' must be a non-negative Kubernetes "
        "quantity (e.g. 100m, 0.5, 1Gi)"
    ) in message.splitlines()[1].strip()


def test_render_of_a_bad_value_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"]["appstack:apps"]["web"]["ingress"] = {
        "enabled": True,
        "host": "https://shop.example.com",
    }
    stack_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "stackctl", "render", "dev"]
    proc = subprocess.run(
        [*command, "--project-dir", str(tmp_path), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "appstack:apps.web.ingress.host: 'https://shop.example.com' is not a host name" in (
        proc.stderr
    )
    assert not out.exists()


# --- the quantity grammar against apimachinery's own test table ----------------------------------
# k8s.io/apimachinery pkg/api/resource/quantity_test.go `TestQuantityParse` (eed236ce): every
# table entry parses to its expected value (decQuantity(mantissa, exponent)), with a sign or
# without; every `invalid` entry fails; "" fails.

UPSTREAM_VALID = {
    "0": (0, 0), "0n": (0, 0), "0u": (0, 0), "0m": (0, 0), "0Ki": (0, 0), "0k": (0, 0),
    "0Mi": (0, 0), "0M": (0, 0), "0Gi": (0, 0), "0G": (0, 0), "0Ti": (0, 0), "0T": (0, 0),
    "1": (1, 0), "1Ki": (1024, 0), "8Ki": (8 * 1024, 0), "7Mi": (7 * 2**20, 0),
    "6Gi": (6 * 2**30, 0), "5Ti": (5 * 2**40, 0), "4Pi": (4 * 2**50, 0), "3Ei": (3 * 2**60, 0),
    "10Ti": (10 * 2**40, 0), "100Ti": (100 * 2**40, 0),
    "5n": (5, -9), "4u": (4, -6), "3m": (3, -3), "9": (9, 0), "8k": (8, 3), "50k": (5, 4),
    "7M": (7, 6), "6G": (6, 9), "5T": (5, 12), "40T": (4, 13), "300T": (3, 14), "2P": (2, 15),
    "1E": (1, 18), "1E-3": (1, -3), "1e3": (1, 3), "1E6": (1, 6), "1e9": (1, 9),
    "1E12": (1, 12), "1e15": (1, 15), "1E18": (1, 18), "1e14": (1, 14), "1e13": (1, 13),
    "100.035k": (100035, 0), "0.001": (1, -3), "0.0005k": (5, -1), "0.005": (5, -3),
    "0.05": (5, -2), "0.5": (5, -1), "0.00050k": (5, -1), "0.00500": (5, -3),
    "0.05000": (5, -2), "0.50000": (5, -1), "0.5e0": (5, -1), "0.5e-1": (5, -2),
    "0.5e-2": (5, -3), "10.035M": (10035, 3), "1.2e3": (12, 2), "1.3E+6": (13, 5),
    "1.40e9": (14, 8), "1.53E12": (153, 10), "1.6e15": (16, 14), "1.7E18": (17, 17),
    "9.01": (901, -2), "8.1k": (81, 2), "7.123456M": (7123456, 0),
    "6.987654321G": (6987654321, 0), "5.444T": (5444, 9), "40.1T": (401, 11),
    "300.2T": (3002, 11), "2.5P": (25, 14), "1.01E": (101, 16),
    "3.001n": (4, -9), "1.1E-9": (2, -9), "0.0000000001": (1, -9), "0.0000000005": (1, -9),
    "0.00000000050": (1, -9), "0.5e-9": (1, -9), "0.9n": (1, -9), "0.00000012345": (124, -9),
    "0.00000012354": (124, -9), "9Ei": (2**63 - 1, 0), "9223372036854775807Ki": (2**63 - 1, 0),
    "12E": (12, 18), "100.035Ki": (10243584, -2), "0.5Mi": (2**19, 0),
    "0.05Gi": (536870912, -1), "0.025Ti": (274877906944, -1),
    "0.000000000001Ki": (2, -9), ".001": (1, -3), ".0001k": (100, -3), "1.": (1, 0),
    "1.G": (1, 9),
}  # fmt: skip
UPSTREAM_INVALID = [
    "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ", "",
]  # fmt: skip


@pytest.mark.parametrize("text", sorted(UPSTREAM_VALID))
def test_quantities_parse_to_apimachinerys_values(text: str) -> None:
    mantissa, exponent = UPSTREAM_VALID[text]
    expected = Decimal(mantissa).scaleb(exponent)
    assert grammar.parse_quantity(text) == expected
    assert grammar.parse_quantity("+" + text) == expected
    assert grammar.parse_quantity("-" + text) == -expected


@pytest.mark.parametrize("text", UPSTREAM_INVALID)
def test_quantities_apimachinery_rejects_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        grammar.parse_quantity(text)


@pytest.mark.parametrize("text", ["Mi", ".", "+", "-"])
def test_quantities_without_a_digit_are_rejected_as_the_openapi_pattern_does(text: str) -> None:
    # the scanner alone reads these as 0; the split regex or the OpenAPI pattern refuses them
    with pytest.raises(ValueError):
        grammar.parse_quantity(text)

"""Kubernetes quantity parsing (apimachinery resource/quantity.go semantics)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.rules import parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Decimal("0.1")),
        ("1", Decimal(1)),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("250u", Decimal("0.00025")),
        ("7n", Decimal("7e-9")),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("2G", Decimal(2 * 10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1Ti", Decimal(2**40)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("12e-3", Decimal("0.012")),
        ("5e+2", Decimal(500)),
        ("+2", Decimal(2)),
        ("-1", Decimal(-1)),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parses(text: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "1Kb", "1ki", "1.2.3", "Mi", "1 Gi", "1mi", "1e", "--1", "1KiB", "."]
)
def test_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_rejects_bool() -> None:
    with pytest.raises(ValueError):
        parse_quantity(True)


def test_binary_and_decimal_suffixes_differ() -> None:
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000Mi") < parse_quantity("1Gi")
    assert parse_quantity("1500m") == parse_quantity("1.5")


@given(st.integers(min_value=0, max_value=2**40))
def test_ki_round_trips_with_bytes(n: int) -> None:
    assert parse_quantity(f"{n}Ki") == n * 1024 == parse_quantity(str(n * 1024))


@given(st.integers(min_value=0, max_value=10**9))
def test_milli_is_a_thousandth(n: int) -> None:
    assert parse_quantity(f"{n}m") * 1000 == parse_quantity(str(n)) == parse_quantity(n)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=-9, max_value=18))
def test_exponent_form(mantissa: int, exponent: int) -> None:
    assert parse_quantity(f"{mantissa}e{exponent}") == Decimal(mantissa).scaleb(exponent)

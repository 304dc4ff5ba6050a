"""Kubernetes resource quantities: the syntax apimachinery accepts, and their numeric value.

Grammar from k8s.io/apimachinery/pkg/api/resource/quantity.go:
`<sign><digits>[.<digits>]<suffix>` with suffix one of the binary SI (Ki Mi Gi Ti Pi Ei),
decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

QUANTITY_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity in base units (cores, bytes). Raises ValueError if invalid."""
    match = QUANTITY_PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * _DECIMAL[suffix]
    exponent = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if exponent is None:
        raise ValueError(
            f"{text!r} has an unknown suffix {suffix!r}; allowed: "
            "Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent like e3"
        )
    return value * (Decimal(10) ** int(exponent.group(1)))


def format_cpu(cores: Decimal) -> str:
    """A CPU quantity in millicores, rounded up."""
    millis = int((cores * 1000).to_integral_value(rounding="ROUND_CEILING"))
    return f"{millis}m"


def format_bytes(value: Decimal) -> str:
    """A memory quantity in Mi, rounded up."""
    mebi = int((value / _BINARY["Mi"]).to_integral_value(rounding="ROUND_CEILING"))
    return f"{mebi}Mi"

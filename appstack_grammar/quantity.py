"""Kubernetes resource quantities, parsed as the API server parses them.

Source: k8s.io/apimachinery pkg/api/resource/quantity.go (`ParseQuantity`,
`parseQuantityString`) and suffix.go (`newSuffixer`, `suffixHandler.interpret`), read at
kubernetes/apimachinery eed236ce (v1.36.0-alpha.2-226). The API server does not use the
split regex for parsing; it scans:

    <quantity>     ::= <signedNumber><suffix>
    <signedNumber> ::= [+-] <number>
    <number>       ::= <digits> | <digits>. | .<digits> | <digits>.<digits>
    <suffix>       ::= Ki|Mi|Gi|Ti|Pi|Ei | n|u|m|""|k|M|G|T|P|E | (e|E)<signed integer>

A value is accepted when every upstream judge accepts it: it matches the split regex
(`splitREString`, quoted by `ErrFormatWrong`), the scanner and the suffix table accept it, and
its number holds a digit, as the OpenAPI pattern of `Quantity` (kube-openapi, used for CRD
schemas and by client-side validators) demands. So "1.", "1.G" and ".5" parse (upstream's own
test table), while "." and "Mi", which the scanner alone would read as 0, do not. A value is
rounded away from zero to a whole nano unit and binary-SI values are capped at 2^63-1 ("9Ei"),
as upstream does. No whitespace: `ParseQuantity` rejects it.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, ROUND_UP, Decimal, localcontext

QUANTITY_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
"""apimachinery's `splitREString`: the shape a quantity has (the error message quotes it)."""

_BINARY: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_NANO = Decimal("1e-9")
_MAX_INT64 = Decimal(2**63 - 1)
_INT64 = 2**63
_ALLOWED = "e.g. 100m, 0.5, 128Mi, 1Gi, 1e3 (suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei)"


def _scan_digits(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _DIGITS:
        pos += 1
    return pos


def _scan(text: str) -> tuple[bool, str, str, str]:
    """`parseQuantityString`: (positive, integer digits, fraction digits, suffix)."""
    pos, positive = 0, True
    if text[:1] in ("-", "+"):
        positive, pos = text[0] == "+", 1
    start = pos
    pos = _scan_digits(text, pos)
    num = text[start:pos].lstrip("0") or "0"
    denom = ""
    if pos < len(text) and text[pos] == ".":
        end = _scan_digits(text, pos + 1)
        denom, pos = text[pos + 1 : end], end
    suffix_start = pos
    while pos < len(text) and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < len(text) and text[pos] in "+-":
        pos += 1
    if _scan_digits(text, pos) != len(text):
        raise ValueError("format")
    return positive, num, denom, text[suffix_start:]


def _suffix_scale(suffix: str) -> tuple[int, int] | None:
    """`suffixHandler.interpret`: (base, exponent) or None for an unknown suffix."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix]
    if suffix in _BINARY:
        return 2, _BINARY[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        exponent = suffix[1:]
        # strconv.ParseInt(s, 10, 64): optional sign, then digits only, within int64
        if re.fullmatch(r"[+-]?[0-9]+", exponent) and -_INT64 <= int(exponent) < _INT64:
            return 10, int(exponent)
    return None


def parse_quantity(value: str | int | float) -> Decimal:
    """The value of a quantity in base units (cores, bytes), as the API server reads it.

    `"100m"` -> 0.1, `"1Ki"` -> 1024, `"1k"` -> 1000, `"1e3"` -> 1000, `2` -> 2.
    Raises ValueError (naming what is allowed) on anything the API server rejects.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a quantity string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: must be finite")
        return Decimal(repr(value))
    return _parse_text(value)


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> Decimal:
    """`parse_quantity` of a string; a config repeats the same few, and a Decimal is immutable."""
    shape = QUANTITY_PATTERN.match(value)
    if shape is None or not any(c in _DIGITS for c in shape.group(1)):
        raise ValueError(f"invalid quantity {value!r}: {_ALLOWED}")
    try:
        positive, num, denom, suffix = _scan(value)
    except ValueError:
        raise ValueError(f"invalid quantity {value!r}: {_ALLOWED}") from None
    scale = _suffix_scale(suffix)
    if scale is None:
        raise ValueError(f"invalid quantity {value!r}: unknown suffix {suffix!r}; {_ALLOWED}")
    base, exponent = scale
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 200, MAX_EMAX, MIN_EMIN
        amount = Decimal(f"{num}.{denom or '0'}")
        amount = amount.scaleb(exponent) if base == 10 else amount * (Decimal(2) ** exponent)
        if amount != 0 and amount.as_tuple().exponent < -9:  # type: ignore[operator]
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
        if base == 2 and amount > _MAX_INT64:
            amount = _MAX_INT64
    return amount if positive else -amount


def format_cpu(cores: Decimal) -> str:
    """A CPU quantity in millicores, rounded up."""
    millis = int((cores * 1000).to_integral_value(rounding=ROUND_CEILING))
    return f"{millis}m"


def format_bytes(value: Decimal) -> str:
    """A memory quantity in Mi, rounded up."""
    mebi = int((value / 2**20).to_integral_value(rounding=ROUND_CEILING))
    return f"{mebi}Mi"

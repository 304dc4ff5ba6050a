"""CIDRs and ports as the API server validates them (k8s.io/kubernetes pkg/apis/core/validation
`ValidateCIDR` / `validateIPBlock`: a network address with its prefix length, host bits zero;
apimachinery `IsValidPortNum`: 1..65535)."""

from __future__ import annotations

import ipaddress
import re

_CIDR_SHAPE = re.compile(r"^[0-9a-fA-F:.]+/[0-9]{1,3}$")


def is_cidr(value: str) -> bool:
    """`203.0.113.0/24` or `2001:db8::/32`: prefix length given, no host bits set."""
    if _CIDR_SHAPE.match(value) is None:
        return False
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def is_port(value: int) -> bool:
    """A port number, 1..65535."""
    return not isinstance(value, bool) and 1 <= value <= 65535

"""Names and label syntax, as k8s.io/apimachinery pkg/util/validation/validation.go defines them
(read at kubernetes/apimachinery eed236ce): `IsDNS1123Label`, `IsDNS1123Subdomain`,
`IsDNS1035Label`, `IsValidLabelValue`, `IsQualifiedName`, `IsEnvVarName`, `IsConfigMapKey`,
plus the Ingress host rule of k8s.io/kubernetes pkg/apis/networking/validation
(`IsDNS1123Subdomain` or `IsWildcardDNS1123Subdomain`, never an IP address).
"""

from __future__ import annotations

import ipaddress
import re

MAX_LABEL = 63
"""DNS1123LabelMaxLength, DNS1035LabelMaxLength, LabelValueMaxLength, qualifiedNameMaxLength."""
MAX_SUBDOMAIN = 253
"""DNS1123SubdomainMaxLength."""

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_WILDCARD_SUBDOMAIN = re.compile(
    r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def is_dns1123_label(value: str) -> bool:
    """Lowercase alphanumerics and '-', alphanumeric at both ends, at most 63 characters."""
    return len(value) <= MAX_LABEL and DNS1123_LABEL.match(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    """DNS-1123 labels joined by '.', at most 253 characters."""
    return len(value) <= MAX_SUBDOMAIN and _DNS1123_SUBDOMAIN.match(value) is not None


def is_dns1035_label(value: str) -> bool:
    """A DNS-1123 label that starts with a letter (Service names)."""
    return len(value) <= MAX_LABEL and DNS1035_LABEL.match(value) is not None


def is_label_value(value: str) -> bool:
    """Empty, or alphanumerics, '-', '_', '.' with alphanumeric ends, at most 63."""
    return len(value) <= MAX_LABEL and LABEL_VALUE.match(value) is not None


def is_qualified_name(value: str) -> bool:
    """A label or annotation key: `[prefix/]name`, prefix a DNS-1123 subdomain, name like a
    non-empty label value."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or not is_dns1123_subdomain(prefix)):
        return False
    return len(name) <= MAX_LABEL and _QUALIFIED_NAME.match(name) is not None


def is_env_var_name(value: str) -> bool:
    """An environment variable name the API server accepts (`IsEnvVarName`)."""
    return _ENV_VAR_NAME.match(value) is not None


def is_config_key(value: str) -> bool:
    """A ConfigMap/Secret data key: alphanumerics, '-', '_', '.', at most 253, not '.' or '..'."""
    return (
        len(value) <= MAX_SUBDOMAIN
        and _CONFIG_KEY.match(value) is not None
        and value not in (".", "..")
        and not value.startswith("..")
    )


def is_ingress_host(value: str) -> bool:
    """An Ingress rule host: a DNS-1123 subdomain or `*.<subdomain>`, never an IP address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return False
    if value.startswith("*."):
        return len(value) <= MAX_SUBDOMAIN and _WILDCARD_SUBDOMAIN.match(value) is not None
    return is_dns1123_subdomain(value)

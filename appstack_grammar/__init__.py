"""Kubernetes value grammar, in one place, pure Python (no Pulumi import, no dependencies).

Each rule is the one the API server (or the owning controller) applies to the field the value
lands in, transcribed from its upstream source and cited beside the code:

- `quantity`: resource quantities (k8s.io/apimachinery pkg/api/resource/quantity.go);
- `image`: container image references (github.com/distribution/reference regexp.go);
- `names`: DNS-1123 labels and subdomains, DNS-1035 labels, label values, qualified names,
  environment variable names, ConfigMap/Secret keys (apimachinery pkg/util/validation);
- `network`: CIDRs and ports;
- `duration`: Prometheus durations (prometheus-operator's `monitoringv1.Duration`).

Used by the config model (components/config), the components and the policy rules (policy/),
which installs this directory as a local path dependency of its own virtualenv.
"""

from __future__ import annotations

from appstack_grammar.duration import is_prometheus_duration, prometheus_duration_seconds
from appstack_grammar.image import (
    MOVING_TAGS,
    ImageReference,
    is_digest,
    is_moving_tag,
    is_tag,
    parse_image,
    split_image,
)
from appstack_grammar.names import (
    MAX_LABEL,
    MAX_SUBDOMAIN,
    is_config_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_ingress_host,
    is_label_value,
    is_qualified_name,
)
from appstack_grammar.network import is_cidr, is_port
from appstack_grammar.quantity import (
    QUANTITY_PATTERN,
    format_bytes,
    format_cpu,
    parse_quantity,
)

__all__ = [
    "MAX_LABEL",
    "MAX_SUBDOMAIN",
    "MOVING_TAGS",
    "QUANTITY_PATTERN",
    "ImageReference",
    "format_bytes",
    "format_cpu",
    "is_cidr",
    "is_config_key",
    "is_digest",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_env_var_name",
    "is_ingress_host",
    "is_label_value",
    "is_moving_tag",
    "is_port",
    "is_prometheus_duration",
    "is_qualified_name",
    "is_tag",
    "parse_image",
    "parse_quantity",
    "prometheus_duration_seconds",
    "split_image",
]

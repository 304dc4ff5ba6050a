"""The service's configuration: environment variables, each validated against its allowed range
(an invalid one raises `ConfigError` naming it; `main` prints it and exits 2)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_PORT_RANGE: Final = (1, 65535)
_SECONDS_RANGE: Final = (0.0, 300.0)
_SECONDS_RE: Final = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_RATIO_RE: Final = re.compile(r"[01](?:\.[0-9]{1,6})?")
#: A non-negative integer of at most nine digits (ports here, `/sleep?ms=` in the handlers).
INTEGER: Final = re.compile(r"[0-9]{1,9}")
_VERSION_MAX_LEN: Final = 128


class ConfigError(ValueError):
    """An environment variable holds a value outside its allowed range."""


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"  # all interfaces: the pod IP must be reachable
    port: int = 8080
    metrics_port: int = 9090
    shutdown_delay_seconds: float = 0.0
    drain_timeout_seconds: float = 20.0
    version: str = "dev"
    fault_error_ratio: float = 0.0
    # Fault switches (off by default) for the failure scenarios of the e2e tiers (issue 29):
    # a version whose readiness never passes, one that crashes before it is ready, one that is
    # merely slow to start.
    fault_never_ready: bool = False
    fault_crash_on_start: bool = False
    startup_delay_seconds: float = 0.0


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    low, high = _PORT_RANGE
    if INTEGER.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be an integer in {low}-{high}, got {_shown(raw)}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    low, high = _SECONDS_RANGE
    if _SECONDS_RE.fullmatch(raw) is None or not low <= float(raw) <= high:
        raise ConfigError(
            f"{name} must be a number of seconds in {low:g}-{high:g} (e.g. 20 or 0.5), "
            f"got {_shown(raw)}"
        )
    return float(raw)


def _ratio(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    if _RATIO_RE.fullmatch(raw) is None or not 0.0 <= float(raw) <= 1.0:
        raise ConfigError(f"{name} must be a ratio in 0-1 (e.g. 0 or 0.5), got {_shown(raw)}")
    return float(raw)


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {_shown(raw)}")
    return raw == "true"


def load_config(env: Mapping[str, str]) -> Config:
    """Read and validate the configuration; raise `ConfigError` naming the first bad variable."""
    defaults = Config()
    host = env.get("HOST", defaults.host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"HOST must be an IPv4 or IPv6 address literal (e.g. 0.0.0.0, ::, 127.0.0.1), "
            f"got {_shown(host)}"
        ) from None
    port = _port(env, "PORT", defaults.port)
    metrics_port = _port(env, "METRICS_PORT", defaults.metrics_port)
    if metrics_port == port:
        raise ConfigError(f"METRICS_PORT must be in 1-65535 and differ from PORT, both are {port}")
    delay = _seconds(env, "SHUTDOWN_DELAY_SECONDS", defaults.shutdown_delay_seconds)
    drain = _seconds(env, "DRAIN_TIMEOUT_SECONDS", defaults.drain_timeout_seconds)
    version = env.get("APP_VERSION", defaults.version)
    # Informational only (JSON and a label value), so any printable text is accepted: an image
    # tag, a git SHA, "1.2.3+build.4", ...
    if not 1 <= len(version) <= _VERSION_MAX_LEN or not version.isprintable():
        raise ConfigError(
            f"APP_VERSION must be 1-{_VERSION_MAX_LEN} printable characters, got {_shown(version)}"
        )
    return Config(
        host,
        port,
        metrics_port,
        delay,
        drain,
        version,
        fault_error_ratio=_ratio(env, "FAULT_ERROR_RATIO", defaults.fault_error_ratio),
        fault_never_ready=_switch(env, "FAULT_NEVER_READY"),
        fault_crash_on_start=_switch(env, "FAULT_CRASH_ON_START"),
        startup_delay_seconds=_seconds(
            env, "STARTUP_DELAY_SECONDS", defaults.startup_delay_seconds
        ),
    )

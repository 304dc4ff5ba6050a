"""The SDK's own wire functions in place of stackctl.wire's: the oracle the mock runtime's
conversions are held to (tests/test_engine_wire.py, tests/test_engine_monitor.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stackctl import wire


@contextmanager
def sdk_wire() -> Iterator[None]:
    """Runs under the mocks (`engine.mocked_runtime`) started in the block use the SDK's own
    `serialize_property` and `deserialize_properties`/`deserialize_property`."""
    ours = (wire.serialize_property, wire.deserialize_properties, wire.deserialize_property)
    wire.serialize_property = wire.SDK_SERIALIZE_PROPERTY  # type: ignore[assignment]
    wire.deserialize_properties = wire.SDK_DESERIALIZE_PROPERTIES
    wire.deserialize_property = wire.SDK_DESERIALIZE_PROPERTY
    try:
        yield
    finally:
        wire.serialize_property, wire.deserialize_properties, wire.deserialize_property = ours  # type: ignore[assignment]

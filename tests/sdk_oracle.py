"""The SDK's own functions in place of those the mock runtime swaps in: the oracle its
conversions and shortcuts are held to (tests/test_engine_wire.py, tests/test_engine_aliases.py,
tests/test_engine_monitor.py, tests/test_engine_components.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stackctl.mockruntime import components as mock_components
from stackctl.mockruntime import urns as sdk_urns
from stackctl.mockruntime import wire


@contextmanager
def sdk_functions() -> Iterator[None]:
    """Runs under the mocks (`mockruntime.mocked_runtime`) started in the block use the SDK's own
    `serialize_property`, `deserialize_properties`/`deserialize_property`,
    `collapse_alias_to_urn`, `create_urn`, `register_resource` and `register_resource_outputs`."""
    ours = (wire.serialize_property, wire.deserialize_properties, wire.deserialize_property)
    urns = (sdk_urns.alias_urn_unread, sdk_urns.create_urn)
    components = (mock_components.register_resource, mock_components.register_resource_outputs)
    wire.serialize_property = wire.SDK_SERIALIZE_PROPERTY  # type: ignore[assignment]
    wire.deserialize_properties = wire.SDK_DESERIALIZE_PROPERTIES
    wire.deserialize_property = wire.SDK_DESERIALIZE_PROPERTY
    sdk_urns.alias_urn_unread = sdk_urns.SDK_COLLAPSE_ALIAS_TO_URN
    sdk_urns.create_urn = sdk_urns.SDK_CREATE_URN
    mock_components.register_resource = mock_components.SDK_REGISTER_RESOURCE
    mock_components.register_resource_outputs = mock_components.SDK_REGISTER_RESOURCE_OUTPUTS
    try:
        yield
    finally:
        wire.serialize_property, wire.deserialize_properties, wire.deserialize_property = ours  # type: ignore[assignment]
        sdk_urns.alias_urn_unread, sdk_urns.create_urn = urns
        mock_components.register_resource, mock_components.register_resource_outputs = components

"""The wall: Pulumi's mock runtime as the render runs it, and every shortcut that replaces or
reads a private name of the Pulumi SDK (rpc internals, `_types`, `Output._data`, settings,
`_state_migration_context`). It imports only pulumi, protobuf and the standard library; the rest
of the program uses only the names below (`tests/test_pulumi_wall.py` holds both rules)."""

from stackctl.mockruntime.capture import capture, untouched_runtime
from stackctl.mockruntime.engine import Capture, CapturedResource, RecordingMocks, mocked_runtime
from stackctl.mockruntime.urns import (
    STACK_TYPE,
    full_urn,
    qualified_type,
    relative_urn,
    split_urn,
)
from stackctl.mockruntime.values import is_secret, unwrap_secret

__all__ = [
    "STACK_TYPE",
    "Capture",
    "CapturedResource",
    "RecordingMocks",
    "capture",
    "full_urn",
    "is_secret",
    "mocked_runtime",
    "qualified_type",
    "relative_urn",
    "split_urn",
    "untouched_runtime",
    "unwrap_secret",
]

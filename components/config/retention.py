"""`appstack:registryRetention`: how `stackctl registry prune` cleans up the image registry.

Read by `stackctl registry prune` (stackctl/ops/prune.py), never by the program: the render does
not change with it. It lives in the stack config so that each stack file says how long its
images stay, validated like every other key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Model

# A repository without tag or digest: registry host (a dot or a port, or localhost), then a
# lowercase path (the image grammar's path components).
REPOSITORY_PATTERN = (
    r"^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?|\[[0-9a-f:]+\](:[0-9]{1,5})?)"
    r"(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)+$"
)


class RegistryRetention(Model):
    """Retention of the commit tags CI pushes (`<repo>:<commit>`), applied by
    `stackctl registry prune` on a schedule."""

    max_age_days: int = Field(default=30, ge=1, le=3650)
    """Commit tags whose image is older than this many days may be deleted (1-3650)."""
    keep_last: int = Field(default=10, ge=1, le=1000)
    """The newest N commit tags of each repository are always kept (1-1000)."""
    repositories: list[Annotated[str, Field(pattern=REPOSITORY_PATTERN)]] = Field(
        default_factory=list
    )
    """Repositories to prune (`host/path`); empty: the repositories of the stack's app images."""

"""`appstack:gitops`: the Argo CD `Application` that syncs this stack's published manifests
(issue 32 item 6). Off by default; components/gitops.py registers it when enabled.

The Application watches what scripts/ci/publish-manifests.sh pushes: branch `targetRevision`
(the script's `MANIFESTS_BRANCH`, default `manifests`), directory `path` (default
`manifests/<stack>`, the script's `manifests_target`). `repoUrl` is the repository Argo CD
clones, in a form Argo CD's repo-server accepts (argo-cd util/git: https/http, ssh, scp-like
`user@host:path`, and file:// for a repository on the repo-server's own disk). Credentials never
go into the URL: Argo CD reads them from a repository Secret in its namespace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from components.config.base import CUSTOM_ERRORS, DNS1123, HttpUrl, Model, Problems

_SCHEME_URL = re.compile(r"(https?|ssh|git)://(?P<authority>[^/\s]+)(/[^\s]*)?|file:///[^\s]*")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/][^\s]*")


def _rule(code: str, check: Callable[[str], bool], allowed: str) -> AfterValidator:
    """A field validator: `check(value)` or the error "'<value>' <allowed>"."""
    CUSTOM_ERRORS.add(code)

    def validate(value: str) -> str:
        if not check(value):
            raise PydanticCustomError(code, "'{value}' " + allowed, {"value": value})
        return value

    return AfterValidator(validate)


def is_repo_url(value: str) -> bool:
    """A git URL Argo CD clones, without a password in it (https://user:token@ is refused)."""
    match = _SCHEME_URL.fullmatch(value)
    if match is not None:
        authority = match.group("authority") or ""
        userinfo = authority.rpartition("@")[0] if "@" in authority else ""
        return ":" not in userinfo
    return _SCP_LIKE.fullmatch(value) is not None


def is_branch(value: str) -> bool:
    """`git check-ref-format --branch` for the names a branch may take (ASCII subset)."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", value) or value.startswith(("-", "/", ".")):
        return False
    parts = value.split("/")
    return not (
        ".." in value
        or value.endswith(("/", ".", ".lock"))
        or any(p == "" or p.startswith(".") or p.endswith(".lock") for p in parts)
    )


def is_relative_path(value: str) -> bool:
    """A directory inside the repository: relative, no `..` or `.` segment, no empty segment."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", value) or value.startswith("/"):
        return False
    return all(p not in ("", ".", "..") for p in value.split("/"))


RepoUrl = Annotated[
    str,
    _rule(
        "git_repo_url",
        is_repo_url,
        "is not a git URL Argo CD clones: https://host/path, ssh://host/path, user@host:path or "
        "file:///path, with no password in it (Argo CD reads credentials from a repository "
        "Secret)",
    ),
]
Branch = Annotated[
    str,
    _rule(
        "git_branch",
        is_branch,
        "is not a branch name (letters, digits, '.', '_', '-', '/'; no '..', no leading '-', "
        "'/' or '.', no trailing '/', '.' or '.lock')",
    ),
]
RepoPath = Annotated[
    str,
    _rule(
        "repo_path",
        is_relative_path,
        "is not a directory of the repository (relative, e.g. manifests/dev; no '..')",
    ),
]


class GitOps(Model):
    """The Argo CD Application of this stack (off by default)."""

    enabled: bool = False
    """Register the Application (needs repoUrl)."""
    repo_url: RepoUrl | None = None
    """The repository publish-manifests.sh pushes to, as Argo CD clones it."""
    target_revision: Branch = "manifests"
    """The manifests branch (publish-manifests.sh's MANIFESTS_BRANCH)."""
    path: RepoPath | None = None
    """The stack's directory on the branch; unset: manifests/<stack> (publish-manifests.sh)."""
    namespace: DNS1123 = "argocd"
    """Namespace Argo CD runs in and reads Applications from."""
    application_name: DNS1123 | None = None
    """Name of the Application; unset: appstack-<stack>."""
    project: DNS1123 = "default"
    """Argo CD AppProject of the Application."""
    destination_server: HttpUrl = "https://kubernetes.default.svc"
    """API server Argo CD applies to (the default: the cluster Argo CD runs in)."""
    prune: bool = True
    """Delete objects that left the manifests (the JENKINS_HOME and app claims carry
    Prune=false and are never pruned)."""
    self_heal: bool = True
    """Revert drift from the branch."""
    retry_limit: int = Field(default=3, ge=0, le=20)
    """Sync retries before Argo CD reports the sync failed (0-20)."""

    @model_validator(mode="after")
    def _needs_repo_url(self) -> GitOps:
        if self.enabled and self.repo_url is None:
            problems = Problems()
            problems.add(
                "repoUrl",
                "gitops.enabled needs the repository Argo CD clones the manifests branch from "
                "(e.g. https://git.example.com/acme/appstack.git)",
            )
            problems.raise_if_any()
        return self

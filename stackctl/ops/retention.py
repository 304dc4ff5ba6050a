"""Registry retention: which commit tags `stackctl registry prune` deletes, as pure rules.

CI pushes every build as `<repo>:<commit>` (a git commit hash) and deploys it by digest. Without
clean-up those tags pile up. The rules, per repository:

1. Only **commit tags** are candidates: 7 to 40 lowercase hex digits (a short or full git hash).
   Every other tag (a version tag such as `0.1.0`, `buildcache`, cosign's companions) is never a
   candidate by itself.
2. The `keepLast` newest commit tags (by the image's creation time) are kept.
3. Every digest any stack's update history references is kept (each record's
   `appstack:apps.<name>.image` config and the `images:` of its message), so a rollback target is
   never deleted.
4. Commit tags younger than `maxAgeDays` are kept; so is one whose creation time is unknown.
5. A digest is deleted only if **every** tag pointing at it is deleted: a manifest DELETE by
   digest removes all its tags (OCI distribution spec, "Deleting Manifests"), so a digest that a
   kept tag (a version tag, another commit) also names is kept whole.
6. With a deleted digest `sha256:<hex>` go its cosign companion tags in the same repository,
   `sha256-<hex>.sig`, `.att` and `.sbom` (cosign's tag scheme for signatures, attestations and
   attached SBOMs), each deleted by its own manifest digest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

COMMIT_TAG = re.compile(r"^[0-9a-f]{7,40}$")
COMPANION_TAG = re.compile(r"^sha256-(?P<hex>[0-9a-f]{64})\.(?P<kind>sig|att|sbom)$")
COMPANION_SUFFIXES = ("sig", "att", "sbom")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class TagInfo:
    """One tag of a repository as the registry reports it."""

    tag: str
    digest: str
    created: datetime | None  # the image's creation time (config `created`), None if unknown


@dataclass(frozen=True)
class Policy:
    """Retention settings (appstack:registryRetention or flags)."""

    max_age: timedelta
    keep_last: int


@dataclass
class Plan:
    """What a prune of one repository deletes and keeps, and why."""

    repository: str
    delete_tags: list[TagInfo] = field(default_factory=list)  # commit tags to delete
    delete_digests: list[str] = field(default_factory=list)  # manifests to DELETE, sorted
    companions: list[TagInfo] = field(default_factory=list)  # .sig/.att/.sbom going with them
    kept: dict[str, str] = field(default_factory=dict)  # commit tag -> reason kept


def is_commit_tag(tag: str) -> bool:
    return bool(COMMIT_TAG.match(tag))


def companion_tags(digest: str) -> list[str]:
    """cosign's companion tags of `digest` (`sha256:<hex>` -> `sha256-<hex>.sig` ...)."""
    return [f"{digest.replace(':', '-')}.{suffix}" for suffix in COMPANION_SUFFIXES]


def digests_in(text: str) -> set[str]:
    return set(DIGEST.findall(text))


def _config_value(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        return None
    if entry.get("objectValue") is not None:
        return entry["objectValue"]
    return entry.get("value")


def history_digests(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every digest a stack's update history references (`pulumi stack history --json` records):
    the image references in each record's `appstack:*` config values (apps' images, the Jenkins
    agent's image) and in its deploy/rollback message. Any record counts, whatever its result:
    rollback restores a record's config, and a failed update may have left its image running."""
    found: set[str] = set()
    for record in records:
        found |= digests_in(str(record.get("message") or ""))
        config = record.get("config") or {}
        if not isinstance(config, Mapping):
            continue
        for key, entry in config.items():
            if not str(key).startswith("appstack:") or (
                isinstance(entry, Mapping) and entry.get("secret")
            ):
                continue
            found |= digests_in(str(_config_value(entry)))
    return found


def plan(
    repository: str,
    tags: Iterable[TagInfo],
    protected: set[str],
    policy: Policy,
    now: datetime,
) -> Plan:
    """Apply the rules above to one repository's tags."""
    all_tags = list(tags)
    result = Plan(repository)
    commits = sorted(
        (t for t in all_tags if is_commit_tag(t.tag)),
        key=lambda t: (t.created is not None, t.created or now, t.tag),
        reverse=True,
    )
    dated = [t for t in commits if t.created is not None]
    newest = {t.tag for t in dated[: policy.keep_last]}
    candidates: list[TagInfo] = []
    for t in commits:
        if t.created is None:
            result.kept[t.tag] = "creation time unknown"
        elif t.tag in newest:
            result.kept[t.tag] = f"among the {policy.keep_last} newest"
        elif t.digest in protected:
            result.kept[t.tag] = "referenced by a stack's update history"
        elif now - t.created < policy.max_age:
            result.kept[t.tag] = f"younger than {policy.max_age.days} days"
        else:
            candidates.append(t)
    candidate_names = {t.tag for t in candidates}
    holders: dict[str, list[str]] = {}
    for t in all_tags:
        holders.setdefault(t.digest, []).append(t.tag)
    for t in candidates:
        others = sorted(h for h in holders[t.digest] if h not in candidate_names)
        if others:
            result.kept[t.tag] = f"its digest is also tagged {', '.join(others)}"
        else:
            result.delete_tags.append(t)
    result.delete_digests = sorted({t.digest for t in result.delete_tags})
    by_name = {t.tag: t for t in all_tags}
    result.companions = [
        by_name[c] for d in result.delete_digests for c in companion_tags(d) if c in by_name
    ]
    result.delete_tags.sort(key=lambda t: t.tag)
    return result

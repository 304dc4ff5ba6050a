"""Registry retention (`stackctl registry prune`): which tags go, which stay.

Oracles: the stack's update history as deploy writes it and rollback reads it (a rollback
target's image must survive), and the OCI distribution spec: a manifest DELETE by digest removes
every tag of that digest (so a digest another kept tag names must not be deleted), and cosign's
companion tags `sha256-<hex>.sig|.att|.sbom` name the digest they belong to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.config.loading import load
from stackctl.errors import OperationFailed, UserError
from stackctl.ops.deploy import run_deploy
from stackctl.ops.images import parse_image_overrides
from stackctl.ops.prune import Settings, resolve_settings, run_prune
from stackctl.ops.registry_api import parse_created, split_repository
from stackctl.ops.retention import Policy, TagInfo, companion_tags, history_digests, plan
from stackctl.ops.rollback import select_target
from stackctl.ops.stacks import images_from_apps
from tests.ops.conftest import make_project
from tests.ops.fake_backend import FakeBackend

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REPO = "registry.example.com/appstack/web"
POLICY = Policy(max_age=timedelta(days=30), keep_last=2)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def commit(n: int) -> str:
    return f"{n:07x}abcdef"[:12]


def old(days: int) -> datetime:
    return NOW - timedelta(days=days)


def deploy_digests(backend: FakeBackend, project: Path, recorder: Any, *digests: str) -> None:
    for d in digests:
        assert (
            run_deploy(
                backend,
                project_dir=project,
                assume_yes=True,
                console=recorder().console,
                images=parse_image_overrides([f"web={REPO}@{d}"]),
            )
            == 0
        )


def test_every_rollback_target_of_a_deployed_history_is_protected(
    project: Path, recorder: Any
) -> None:
    backend = FakeBackend(records=[])
    deployed = [digest(i) for i in (1, 2, 3, 4)]
    deploy_digests(backend, project, recorder, *deployed)
    history = backend.history()
    protected = history_digests(history)
    for steps in (1, 2, 3):
        target = select_target(history, to_version=None, steps=steps)
        image = images_from_apps(target["config"]["appstack:apps"]["objectValue"])["web"]
        assert image.split("@", 1)[1] in protected
    # all of them old, keep only the newest: still nothing a rollback could need is deleted
    tags = [TagInfo(commit(i), d, old(90 + i)) for i, d in enumerate(deployed)]
    result = plan(REPO, tags, protected, Policy(timedelta(days=1), keep_last=1), NOW)
    assert result.delete_digests == []


def test_a_digest_only_in_a_failed_updates_message_is_protected() -> None:
    records = [
        {
            "version": 7,
            "kind": "update",
            "result": "failed",
            "message": f"appstack deploy abc1234 images: web={REPO}@{digest(9)}",
        }
    ]
    assert history_digests(records) == {digest(9)}


def test_only_commit_tags_are_deleted() -> None:
    tags = [
        TagInfo(commit(1), digest(1), old(400)),
        TagInfo("0.1.0", digest(2), old(400)),
        TagInfo("buildcache", digest(3), old(400)),
        TagInfo("latest", digest(4), old(400)),
    ]
    result = plan(REPO, tags, set(), Policy(timedelta(days=30), keep_last=1), NOW)
    # keep_last keeps the one commit tag; nothing else is ever a candidate
    assert result.delete_digests == []
    tags.append(TagInfo(commit(5), digest(5), old(300)))
    result = plan(REPO, tags, set(), Policy(timedelta(days=30), keep_last=1), NOW)
    assert [t.tag for t in result.delete_tags] == [commit(1)]


def test_the_newest_n_stay_however_old() -> None:
    tags = [TagInfo(commit(i), digest(i), old(100 + i)) for i in range(5)]
    result = plan(REPO, tags, set(), POLICY, NOW)
    assert sorted(result.kept) == [commit(0), commit(1)]  # the two newest
    assert result.delete_digests == sorted(digest(i) for i in (2, 3, 4))


def test_tags_younger_than_the_max_age_stay() -> None:
    tags = [TagInfo(commit(i), digest(i), old(days)) for i, days in enumerate([1, 2, 29, 31])]
    result = plan(REPO, tags, set(), POLICY, NOW)
    assert result.kept[commit(2)] == "younger than 30 days"
    assert result.delete_digests == [digest(3)]


def test_a_digest_another_kept_tag_names_is_not_deleted() -> None:
    # DELETE /v2/<name>/manifests/<digest> removes every tag of the digest (OCI distribution
    # spec), so deleting it would also remove the version tag 0.1.0.
    tags = [
        TagInfo(commit(1), digest(1), old(1)),
        TagInfo(commit(2), digest(2), old(2)),
        TagInfo(commit(3), digest(3), old(300)),
        TagInfo("0.1.0", digest(3), None),
        TagInfo(commit(4), digest(4), old(300)),
        TagInfo(commit(5), digest(4), old(301)),  # two old commit tags of one digest: both go
    ]
    result = plan(REPO, tags, set(), POLICY, NOW)
    assert "also tagged 0.1.0" in result.kept[commit(3)]
    assert result.delete_digests == [digest(4)]
    assert [t.tag for t in result.delete_tags] == [commit(4), commit(5)]


def test_signature_attestation_and_sbom_tags_go_with_their_digest_only() -> None:
    gone, kept = digest(3), digest(1)
    tags = [
        TagInfo(commit(1), kept, old(1)),
        TagInfo(commit(2), digest(2), old(2)),
        TagInfo(commit(3), gone, old(300)),
    ]
    tags += [TagInfo(c, digest(100 + i), None) for i, c in enumerate(companion_tags(gone))]
    tags += [TagInfo(c, digest(200 + i), None) for i, c in enumerate(companion_tags(kept))]
    result = plan(REPO, tags, set(), POLICY, NOW)
    assert sorted(t.tag for t in result.companions) == [
        f"sha256-{gone.split(':')[1]}.{k}" for k in ("att", "sbom", "sig")
    ]


def test_a_tag_whose_age_is_unknown_stays() -> None:
    tags = [TagInfo(commit(i), digest(i), None if i == 3 else old(100)) for i in range(4)]
    result = plan(REPO, tags, set(), POLICY, NOW)
    assert result.kept[commit(3)] == "creation time unknown"
    assert digest(3) not in result.delete_digests


# -------------------------------------------------------------------------- settings


def write_stack(tmp_path: Path, retention: str, stack: str = "dev") -> Path:
    return make_project(
        tmp_path / "p",
        stack=stack,
        stack_yaml=(
            "config:\n  appstack:environment: dev\n  appstack:apps:\n    web:\n"
            f"      image: {REPO}:1.0.0\n{retention}"
        ),
    )


def test_settings_come_from_the_stack_file(tmp_path: Path) -> None:
    project = write_stack(tmp_path, "  appstack:registryRetention:\n    keepLast: 4\n")
    settings = resolve_settings(project, ["dev"])
    assert settings.policy == Policy(timedelta(days=30), 4)
    assert settings.repositories == (REPO,)  # the app image's repository


def test_a_bad_setting_names_its_key(tmp_path: Path) -> None:
    project = write_stack(tmp_path, "  appstack:registryRetention:\n    keepLast: 0\n")
    with pytest.raises(UserError, match=r"appstack:registryRetention\.keepLast: .*greater than"):
        resolve_settings(project, ["dev"])
    project = write_stack(tmp_path / "b", "  appstack:registryRetention:\n    keep: 3\n")
    with pytest.raises(UserError, match=r"registryRetention\.keep: unknown key.*keepLast"):
        resolve_settings(project, ["dev"])


def test_the_program_accepts_the_key_and_validates_it() -> None:
    raw = {"environment": "dev", "apps": {"web": {"image": f"{REPO}:1.0.0"}}}
    cfg = load({**raw, "registryRetention": {"maxAgeDays": 14}})
    assert cfg.registry_retention.max_age_days == 14
    with pytest.raises(Exception, match=r"appstack:registryRetention\.maxAgeDays"):
        load({**raw, "registryRetention": {"maxAgeDays": 0}})


class UnreadableHistory(FakeBackend):
    def history(self) -> list[dict[str, Any]]:
        raise OperationFailed("backend unreachable")


def test_an_unreadable_history_stops_the_prune_before_any_registry_call(recorder: Any) -> None:
    settings = Settings(POLICY, (REPO,), frozenset())
    contacted: list[str] = []

    def client_for(host: str) -> Any:
        contacted.append(host)
        raise AssertionError("no registry call may happen")

    with pytest.raises(OperationFailed, match="nothing was deleted"):
        run_prune(
            settings,
            [UnreadableHistory("prod")],
            client_for,
            apply=True,
            console=recorder().console,
            now=NOW,
        )
    assert contacted == []


# -------------------------------------------------------------------------- registry API inputs


def test_repositories_split_as_the_docker_reference_grammar_does() -> None:
    # distribution/reference splitDockerDomain: the first component is a registry host only if
    # it has a '.' or a ':' or is 'localhost'
    assert split_repository("registry.example.com:5000/appstack/web:1.0") == (
        "registry.example.com:5000",
        "appstack/web",
    )
    assert split_repository(f"localhost/web@{digest(1)}") == ("localhost", "web")
    assert split_repository("127.0.0.1:5000/a/b") == ("127.0.0.1:5000", "a/b")
    with pytest.raises(UserError, match="expected <registry host>/<path>"):
        split_repository("appstack/web:1.0")  # Docker Hub implied: name the registry


def test_image_creation_times_read_as_go_writes_them() -> None:
    # buildah and docker write `created` with nanoseconds (Go's RFC3339Nano)
    assert parse_created("2026-12-07T05:21:19.504493697Z") == datetime(
        2026, 12, 7, 5, 21, 19, 504493, tzinfo=UTC
    )
    assert parse_created("2026-01-01T00:00:00+01:00") == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert parse_created("2026-01-01T00:00:00") is None  # no zone: not RFC 3339
    assert parse_created(None) is None

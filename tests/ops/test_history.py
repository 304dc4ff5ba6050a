"""history: normalized rows from raw `pulumi stack history --json` records, table and --json."""

from __future__ import annotations

import json
from typing import Any

from stackctl.ops.history import normalize_record, run_history
from tests.ops.fake_backend import FakeBackend, record, sample_history


def test_rows_are_normalized_from_the_raw_records() -> None:
    rows = [normalize_record(r) for r in sample_history()]
    assert rows[0] == {
        "version": 6,
        "start_time": "2026-11-20T10:50:05Z",
        "kind": "update",
        "result": "succeeded",
        "commit": "4f2a9c1",
        "images": "api=registry.example.com/appstack/api:2.0.0,"
        "web=registry.example.com/appstack/web:1.2.0",
        "changes": "+14 ~0 -0",
    }
    assert rows[1]["kind"] == "destroy" and rows[1]["changes"] == "+0 ~0 -12"
    assert rows[1]["images"] == "-"
    assert rows[2]["result"] == "failed"
    assert rows[5]["commit"] == "0123456"


def test_missing_metadata_becomes_dash() -> None:
    rec = record(1, commit=None, message="manual pulumi up")
    del rec["endTime"]
    del rec["resourceChanges"]
    rec["result"] = "in-progress"
    row = normalize_record(rec)
    assert row["commit"] == "-" and row["images"] == "-" and row["changes"] == "-"


def test_replacements_count_as_updates() -> None:
    rec = record(1, changes={"create": 2, "update": 1, "replace": 2, "delete": 1, "same": 4})
    assert normalize_record(rec)["changes"] == "+2 ~3 -1"


def test_table_newest_first_with_limit(recorder: Any) -> None:
    rec = recorder()
    history = list(reversed(sample_history()))  # order of the input does not matter
    assert run_history(FakeBackend(records=history), limit=2, console=rec.console) == 0
    lines = rec.text.strip().splitlines()
    assert lines[0].split() == [
        "VERSION", "START", "TIME", "KIND", "RESULT", "COMMIT", "CHANGES", "IMAGES"
    ]  # fmt: skip
    assert lines[1].split()[:6] == [
        "6",
        "2026-11-20T10:50:05Z",
        "update",
        "succeeded",
        "4f2a9c1",
        "+14",
    ]
    assert lines[2].split()[:4] == ["5", "2026-11-20T10:40:05Z", "destroy", "succeeded"]
    assert len(lines) == 3


def test_json_prints_the_same_rows(recorder: Any) -> None:
    rec = recorder()
    run_history(FakeBackend(), as_json=True, console=rec.console)
    rows = json.loads(rec.text)
    assert rows == [normalize_record(r) for r in sample_history()]
    assert [r["version"] for r in rows] == [6, 5, 4, 3, 2, 1]


def test_history_never_prints_secrets(recorder: Any) -> None:
    rec = recorder()
    run_history(FakeBackend(), as_json=True, console=rec.console)
    assert "[secret]" not in rec.text and "s3cr3t" not in rec.text


def test_empty_history(recorder: Any) -> None:
    rec = recorder()
    run_history(FakeBackend(records=[]), console=rec.console)
    assert rec.text.strip() == "stack dev has no updates"

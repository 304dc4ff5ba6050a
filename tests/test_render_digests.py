"""Rendered output is byte-identical to the stored digests (tests/golden/render-digests.json):
a change that is not meant to change the output (a refactor, a speed-up) leaves every file of
every case as it was. A change meant to change the output regenerates the file (see below)."""

from __future__ import annotations

from typing import Any

import pytest

from tests import render_digests

STORED = render_digests.load()
CASES = render_digests.cases()


def _difference(stored: dict[str, Any], current: dict[str, Any]) -> str:
    files_before, files_now = stored["files"], current["files"]
    lines = [f"  + {n}" for n in sorted(files_now.keys() - files_before.keys())]
    lines += [f"  - {n}" for n in sorted(files_before.keys() - files_now.keys())]
    lines += [
        f"  ~ {n}"
        for n in sorted(files_now.keys() & files_before.keys())
        if files_now[n] != files_before[n]
    ]
    lines += [
        f"  ~ ({key})" for key in ("options", "outputs", "resources") if stored[key] != current[key]
    ]
    return "\n".join(lines)


def test_every_case_has_a_stored_digest() -> None:
    assert sorted(STORED) == sorted(CASES), (
        "the digested cases changed; if intended, regenerate with "
        f"`{render_digests.UPDATE_COMMAND}` and commit tests/golden/render-digests.json"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_is_byte_identical_to_the_stored_digest(case: str) -> None:
    if case not in STORED:
        pytest.fail(f"no stored digest for {case}; run `{render_digests.UPDATE_COMMAND}`")
    current = render_digests.digest(CASES[case]())
    stored = STORED[case]
    assert current == stored, (
        f"the render of {case!r} differs from tests/golden/render-digests.json:\n"
        f"{_difference(stored, current)}\n"
        "If the change to the rendered output is intended, regenerate the digests with "
        f"`{render_digests.UPDATE_COMMAND}` (or `make render-digests`) and commit the JSON."
    )

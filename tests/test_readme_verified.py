"""README "What is verified here, and what is not" says what the repository runs (issue 27
item 6). The oracle is the repository itself: tests/e2e runs real `pulumi up`, `preview` and
`destroy` (through e2e/engine.py, the CLI built from Go modules) under `make e2e`, so the
section must say so and must not deny it."""

from __future__ import annotations

import re

from tests.tooling import REPO

HEADING = "### What is verified here, and what is not"


def section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(HEADING) + len(HEADING)
    end = text.find("\n#", start)
    return " ".join(text[start : end if end != -1 else None].split())


def e2e_commands() -> set[str]:
    """The pulumi commands the e2e story runs for real."""
    source = (REPO / "tests" / "e2e" / "test_e2e.py").read_text(encoding="utf-8")
    found = set(re.findall(r'engine\.pulumi\(\s*"(\w+)"', source))
    if "engine.up(" in source:
        found.add("up")
    return found


def test_the_e2e_story_runs_real_pulumi_commands() -> None:
    assert {"up", "preview", "destroy"} <= e2e_commands()
    assert "e2e" in (REPO / "Makefile").read_text(encoding="utf-8")


def test_the_section_says_make_e2e_runs_them() -> None:
    text = section()
    assert "`make e2e`" in text
    for command in ("up", "preview", "destroy"):
        assert f"pulumi {command}" in text.replace("`", "").replace("\n", " "), command


def test_no_sentence_of_the_section_denies_a_real_pulumi_up() -> None:
    denials = re.compile(r"\b(not|never|no real|without)\b", re.IGNORECASE)
    for sentence in re.split(r"(?<=[.:])\s", section()):
        if "pulumi up" in sentence.replace("`", "") and denials.search(sentence):
            raise AssertionError(f"the README denies a real pulumi up: {sentence!r}")

"""Rules for the reference service's image definition (app/Dockerfile, build context app/)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tests.tooling import run_tool

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
DOCKERFILE = APP / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage; each group starts with its FROM."""
    groups: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            groups.append([])
        assert groups, f"{ins.keyword} before the first FROM"
        groups[-1].append(ins)
    return groups


def from_image(ins: Instruction) -> tuple[str, str | None]:
    """(image reference, stage alias) of a FROM instruction, ignoring --flags."""
    words = [w for w in ins.args.split() if not w.startswith("--")]
    alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return words[0], alias


INSTRUCTIONS = parse(DOCKERFILE.read_text())
STAGES = stages(INSTRUCTIONS)
FINAL = STAGES[-1]


def test_hadolint_reports_no_findings() -> None:
    result = run_tool("hadolint", "app/Dockerfile", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_build_is_multi_stage() -> None:
    assert len(STAGES) >= 2


def unpinned_base_images(instructions: list[Instruction]) -> list[str]:
    """Base images (not earlier stages) lacking a tag or digest, using latest, or templated."""
    bad: list[str] = []
    aliases: set[str] = set()
    for stage in stages(instructions):
        image, alias = from_image(stage[0])
        if image not in aliases:
            tag = image.split("@")[0].rpartition("/")[2].partition(":")[2]
            if ("@sha256:" not in image and not tag) or tag == "latest" or "$" in image:
                bad.append(image)
        if alias:
            aliases.add(alias)
    return bad


def final_user_problem(instructions: list[Instruction]) -> str | None:
    """Why the final stage's USER is not a numeric UID:GID >= 10000, or None if it is."""
    users = [ins.args for ins in stages(instructions)[-1] if ins.keyword == "USER"]
    if not users:
        return "the final stage never sets USER, so it runs as root"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    if match is None:
        return f"USER {users[-1]} is not numeric (runAsNonRoot needs a numeric UID)"
    if min(int(match[1]), int(match[2] or match[1])) < 10000:
        return f"USER {users[-1]} is below 10000"
    return None


def test_every_base_image_is_pinned_by_tag_or_digest_and_never_latest() -> None:
    assert unpinned_base_images(INSTRUCTIONS) == []


def test_pin_rule_flags_latest_untagged_and_templated_base_images() -> None:
    text = (
        "FROM python:latest AS a\nFROM python AS b\nFROM ${IMG}:1 AS c\n"
        "FROM registry:5000/python AS d\nFROM a\nFROM python@sha256:" + "0" * 64 + "\n"
    )
    assert unpinned_base_images(parse(text)) == [
        "python:latest",
        "python",
        "${IMG}:1",
        "registry:5000/python",
    ]


def test_final_stage_runs_as_a_numeric_non_root_uid_and_gid_of_at_least_10000() -> None:
    assert final_user_problem(INSTRUCTIONS) is None


def test_user_rule_flags_root_names_and_low_ids() -> None:
    for user_lines in ("", "USER app\n", "USER 1000\n", "USER 10001:0\n"):
        text = f"FROM python:3 AS build\nUSER 10001\nFROM python:3\n{user_lines}"
        assert final_user_problem(parse(text)) is not None, user_lines


def test_final_stage_exposes_app_port_8080_and_metrics_port_9090() -> None:
    exposed = {
        port.split("/")[0] for ins in FINAL if ins.keyword == "EXPOSE" for port in ins.args.split()
    }
    assert {"8080", "9090"} <= exposed


def test_final_stage_disables_bytecode_writes_and_output_buffering() -> None:
    env = " ".join(ins.args for ins in FINAL if ins.keyword == "ENV").split()
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_final_stage_starts_the_service_in_exec_form() -> None:
    starts = [ins for ins in FINAL if ins.keyword in ("ENTRYPOINT", "CMD")]
    assert starts, "the final stage has neither ENTRYPOINT nor CMD"
    argv: list[str] = []
    for ins in starts:
        assert ins.args.startswith("["), f"{ins.keyword} {ins.args} is in shell form"
        argv += json.loads(ins.args)
    assert argv == ["python", "-m", "app.server"]


def test_final_stage_declares_no_healthcheck() -> None:
    # Kubernetes probes /health and /health/ready; a Docker HEALTHCHECK would be ignored there.
    assert not [ins for ins in FINAL if ins.keyword == "HEALTHCHECK"]


def test_every_copy_source_from_the_context_exists_under_app() -> None:
    for stage in STAGES:
        for ins in stage:
            if ins.keyword not in ("COPY", "ADD") or "--from=" in ins.args:
                continue
            words = [w for w in ins.args.split() if not w.startswith("--")]
            for source in words[:-1]:
                assert (APP / source).exists(), f"{ins.keyword} source {source} is not in app/"


def test_requirements_are_exact_pins_with_hashes() -> None:
    text = (APP / "requirements.txt").read_text()
    logical = re.sub(r"\\\n", " ", text)
    reqs = [line.split() for line in logical.splitlines() if line.strip() and line[0] != "#"]
    assert reqs
    for words in reqs:
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", words[0]), words[0]
        assert any(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", w) for w in words[1:]), words[0]


def test_runtime_pin_matches_the_version_the_tests_run_against() -> None:
    def pins(path: Path) -> dict[str, str]:
        found = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text(), flags=re.MULTILINE)
        return {name.lower().replace("_", "-"): version for name, version in found}

    app_pins, dev_pins = pins(APP / "requirements.txt"), pins(REPO / "requirements-dev.txt")
    for name, version in app_pins.items():
        assert dev_pins.get(name) == version, (
            f"{name}: app pins {version}, dev {dev_pins.get(name)}"
        )


def test_dockerignore_keeps_tests_caches_venvs_and_git_out_of_the_context() -> None:
    patterns = {
        line.strip()
        for line in (APP / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in ("tests", "**/__pycache__", ".venv", ".git", "**/.pytest_cache"):
        assert required in patterns, f".dockerignore misses {required}"

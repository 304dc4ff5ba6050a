"""The pinned plugin set is closed and starts on the pinned core: every rule is checked against
jenkins/plugins-metadata.yaml, whose rows come from each plugin's pom.xml at its release tag."""

from __future__ import annotations

import re

import pytest
import yaml

from components.config import JenkinsSettings, image_parts
from components.config.jenkins_plugins import (
    PLUGINS_METADATA_FILE,
    compare_versions,
    compatibility_problems,
    load_metadata,
    plugin_pins,
    version_key,
)

CORE, META = load_metadata()
PINS = plugin_pins()


def _image_core() -> str:
    _, tag, _ = image_parts(JenkinsSettings().image)
    assert tag is not None
    match = re.match(r"^(\d+\.\d+\.\d+)-lts", tag)
    assert match, f"default image {tag} is not an LTS tag"
    return match.group(1)


def test_plugins_txt_is_exactly_the_metadata_table() -> None:
    assert set(PINS) == set(META)
    assert {name: row.version for name, row in META.items()} == PINS


def test_the_default_image_is_the_core_the_table_was_taken_for() -> None:
    assert _image_core() == CORE


def test_every_plugin_runs_on_the_pinned_core_and_every_dependency_is_pinned_high_enough() -> None:
    assert compatibility_problems(PINS, META, _image_core()) == []


def test_every_row_cites_its_source_tag_and_file() -> None:
    for name, row in META.items():
        assert re.match(r"^jenkinsci/[\w.-]+ tag \S+ \S*pom\.xml$", row.source), name


def test_the_configuration_as_code_release_of_the_issue_needs_a_newer_core_than_2_528() -> None:
    # configuration-as-code 2065.v7a_20a_b_d84088's pom.xml baseline is 2.541 (issue 14): on the
    # old image 2.528.2 the set must be refused.
    assert compatibility_problems(PINS, META, "2.528.2")
    assert compare_versions(META["configuration-as-code"].required_core, "2.528.2") > 0


def _older(version: str) -> str:
    head, _, rest = version.partition(".")
    return f"{int(head) - 1}.{rest}" if head.isdigit() and int(head) > 1 else "0.1"


@pytest.mark.parametrize(
    "dependency", sorted({d for row in META.values() for d in row.dependencies})
)
def test_lowering_any_dependency_below_a_dependant_s_minimum_fails(dependency: str) -> None:
    minimum = min(
        (row.dependencies[dependency] for row in META.values() if dependency in row.dependencies),
        key=version_key,
    )
    pins = {**PINS, dependency: _older(minimum)}
    meta = {
        **META,
        dependency: META[dependency].__class__(
            **{**META[dependency].__dict__, "version": pins[dependency]}
        ),
    }
    problems = compatibility_problems(pins, meta, CORE)
    assert any(f"needs {dependency} >=" in p for p in problems), problems


def test_bumping_a_pin_without_its_metadata_fails() -> None:
    pins = {**PINS, "kubernetes": "9999.v0"}
    assert any("kubernetes: pinned 9999.v0" in p for p in compatibility_problems(pins, META, CORE))


def test_dropping_a_transitive_dependency_fails() -> None:
    pins = {k: v for k, v in PINS.items() if k != "kubernetes-client-api"}
    problems = compatibility_problems(pins, META, CORE)
    assert any("needs kubernetes-client-api" in p for p in problems)


@pytest.mark.parametrize(
    ("low", "high"),
    [
        # Maven ComparableVersion order (hudson.util.VersionNumber); no release qualifiers here
        ("2.528.3", "2.541"),
        ("2.541", "2.541.1"),
        ("9.9-185.va_6c6b_3348b_c3", "9.9.1-189.vb_5ef2964da_91"),
        ("1502.v5c95e620ddfe", "1511.v2e3cb_0008ef0"),
        ("2.5-143.v93b_c004f89de", "2.5-149.v72471e9c6371"),
    ],
)
def test_version_order_follows_jenkins(low: str, high: str) -> None:
    assert compare_versions(low, high) < 0 < compare_versions(high, low)


def test_table_header_names_the_core() -> None:
    raw = yaml.safe_load(PLUGINS_METADATA_FILE.read_text())
    assert raw["core"]["image"] == JenkinsSettings().image


def test_the_table_is_read_as_the_pure_python_parser_reads_it() -> None:
    text = PLUGINS_METADATA_FILE.read_text()
    raw = yaml.load(text, Loader=yaml.SafeLoader)
    core, rows = load_metadata()
    assert core == str(raw["core"]["version"])
    columns = ("dependencies", "optionalDependencies")
    assert {
        name: (
            row.version,
            row.required_core,
            dict(row.dependencies),
            dict(row.optional_dependencies),
        )
        for name, row in rows.items()
    } == {
        name: (
            str(row["version"]),
            str(row["requiredCore"]),
            *({k: str(v) for k, v in (row.get(c) or {}).items()} for c in columns),
        )
        for name, row in raw["plugins"].items()
    }


def test_the_parsed_table_is_shared_read_only() -> None:
    first, second = load_metadata()[1], load_metadata()[1]
    assert first is not second and first == second
    first.pop("kubernetes")
    assert "kubernetes" in load_metadata()[1]
    with pytest.raises(TypeError):
        second["kubernetes"].dependencies["kubernetes-client-api"] = "0.1"  # type: ignore[index]


#: Newest split of core's split-plugins.txt (jenkinsci/jenkins core/src/main/resources/jenkins/
#: split-plugins.txt: instance-identity split at 2.356). A plugin built against an older core gets
#: an implied dependency on every plugin split after its baseline, which the table would not show.
NEWEST_SPLIT = "2.356"


def test_no_plugin_has_implied_dependencies_on_split_plugins() -> None:
    oldest = min((row.required_core for row in META.values()), key=version_key)
    assert compare_versions(oldest, NEWEST_SPLIT) > 0, oldest

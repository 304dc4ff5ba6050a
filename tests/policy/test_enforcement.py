"""Enforcement levels per environment from the pack config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy.enforcement import CONFIG_DIR, load_levels, parse_levels
from policy.rules import RULE_NAMES, RULES, RuleContext, environments


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_prod_and_staging_are_mandatory_for_every_rule(env: str) -> None:
    # staging keeps prod's rules, so it enforces them as prod does
    assert load_levels(env) == dict.fromkeys(RULE_NAMES, "mandatory")


def test_dev_is_advisory_for_every_rule() -> None:
    assert load_levels("dev") == dict.fromkeys(RULE_NAMES, "advisory")


def test_an_unknown_environment_names_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"unknown environment 'qa'; allowed: dev, staging, prod"):
        load_levels("qa")
    with pytest.raises(ValueError, match="allowed: dev, staging, prod"):
        RuleContext("qa")


def test_the_config_files_are_pulumi_policy_pack_config() -> None:
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(environments())
    for env in environments():
        raw = json.loads((CONFIG_DIR / f"{env}.json").read_text())
        assert set(raw) <= {"all", *RULE_NAMES}


def test_per_policy_entries_override_all() -> None:
    levels = parse_levels(
        {
            "all": "mandatory",
            "probes": "advisory",
            "image-pinned": {"enforcementLevel": "disabled"},
            "pdb-consistent": {"environment": "dev"},  # properties only: level unchanged
            "rbac-no-wildcards": {"enforcementLevel": "remediate"},
        }
    )
    assert levels["probes"] == "advisory"
    assert levels["image-pinned"] == "disabled"
    assert levels["pdb-consistent"] == "mandatory"
    assert levels["rbac-no-wildcards"] == "mandatory"
    assert levels["namespace-default-deny"] == "mandatory"


def test_unmentioned_policies_keep_the_pack_default() -> None:
    assert parse_levels({"probes": "mandatory"})["image-pinned"] == "advisory"


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy name"):
        parse_levels({"no-such-rule": "advisory"})
    with pytest.raises(ValueError, match="enforcement level 'strict' is not one of"):
        parse_levels({"all": "strict"})
    (tmp_path / "dev.json").write_text("[]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        load_levels("dev", tmp_path)
    (tmp_path / "prod.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_levels("prod", tmp_path)


def test_rule_names_are_unique_kebab_case() -> None:
    assert len(set(RULE_NAMES)) == len(RULES) == 9
    for name in RULE_NAMES:
        assert name == name.lower() and " " not in name and "_" not in name

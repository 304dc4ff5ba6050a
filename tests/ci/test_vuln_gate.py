"""scripts/ci/vuln_gate.py: the vulnerability gate, on recorded advisory data.

The data: real OSV records of real releases (tests/ci/data/advisories/, SOURCES.md says where
each came from) and a pip-audit JSON report naming them. The oracles: the advisories' own
ratings and the CVSS v3.1 specification's published example scores (FIRST, "CVSS v3.1 Examples")
and NVD's scores for these CVEs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.ci.pipelines import CI_SCRIPTS
from tests.tooling import REPO

GATE_PY = CI_SCRIPTS / "vuln_gate.py"
DATA = Path(__file__).resolve().parent / "data"
REPORT = DATA / "pip-audit-report.json"
ADVISORIES = DATA / "advisories"
TODAY = dt.date(2026, 12, 7)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vuln_gate", GATE_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vuln_gate"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gate = _load()


def policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(tmp_path: Path, policy: str, *, report: Path = REPORT, today: dt.date = TODAY) -> Any:
    return subprocess.run(
        [
            sys.executable, str(GATE_PY), "--report", str(report), "--advisories",
            str(ADVISORIES), "--policy", str(policy_file(tmp_path, policy)),
            "--today", today.isoformat(),
        ],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip


# ---------------------------------------------------------------- severity


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        # FIRST, CVSS v3.1 Examples: CVE-2014-0160, CVE-2013-1937, CVE-2014-3566, CVE-2012-1516,
        # CVE-2013-0375
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        # the recorded advisories' vectors, as NVD / GitHub score them
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:H/A:N", 8.2),  # CVE-2024-1135
        ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", 5.6),  # CVE-2024-35195
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),  # GHSA-5h86-8mv2-jq9f
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores_match_the_published_ones(vector: str, score: float) -> None:
    assert gate.cvss3_base_score(vector) == score


def test_a_record_is_rated_by_its_highest_rating() -> None:
    records = gate.load_advisories(ADVISORIES)
    # GitHub rates it MODERATE (its vector: 5.9); the PyPA record's vector scores 7.5, HIGH.
    assert gate.record_severity(records["GHSA-5h86-8mv2-jq9f"]) == "MODERATE"
    assert gate.record_severity(records["PYSEC-2024-24"]) == "HIGH"
    assert gate.severity_of({"GHSA-5h86-8mv2-jq9f"}, records) == "HIGH"  # through the alias
    assert gate.record_severity(records["GHSA-w3h3-4rj7-4ph4"]) == "HIGH"
    assert gate.record_severity(records["GHSA-9wx4-h78v-vm56"]) == "MODERATE"


# ---------------------------------------------------------------- the gate on recorded data


def test_high_fails_the_build_and_names_each_vulnerability(tmp_path: Path) -> None:
    res = run(tmp_path, "failOn: HIGH\nallow: []\n")
    assert res.returncode == 1, res.stderr
    fails = [line for line in res.stderr.splitlines() if "FAIL" in line]
    assert len(fails) == 2, res.stderr
    assert "aiohttp 3.9.1 PYSEC-2024-24 (CVE-2024-23334, GHSA-5h86-8mv2-jq9f): HIGH" in fails[0]
    assert "fixed in 3.9.2" in fails[0]
    assert "gunicorn 21.2.0 GHSA-w3h3-4rj7-4ph4" in fails[1] and "no fixed version" in fails[1]
    assert "below failOn HIGH: requests 2.31.0 GHSA-9wx4-h78v-vm56" in res.stdout


def test_a_higher_threshold_passes_and_a_lower_one_fails_more(tmp_path: Path) -> None:
    assert run(tmp_path, "failOn: CRITICAL\n").returncode == 0
    res = run(tmp_path, "failOn: MODERATE\n")
    assert res.returncode == 1
    assert sum("FAIL" in line for line in res.stderr.splitlines()) == 3


ALLOW = """\
failOn: HIGH
allow:
  - id: PYSEC-2024-24
    reason: static routes are not served by aiohttp (no follow_symlinks)
    expires: 2026-12-31
  - id: CVE-2024-1135
    reason: behind a proxy that rejects conflicting Transfer-Encoding headers
    expires: {expires}
"""


def test_unexpired_entries_allow_by_id_or_alias(tmp_path: Path) -> None:
    res = run(tmp_path, ALLOW.format(expires="2026-12-07"))  # the last day still allows
    assert res.returncode == 0, res.stderr
    assert "allowed until 2026-12-31: aiohttp 3.9.1 PYSEC-2024-24" in res.stdout
    assert "allowed until 2026-12-07: gunicorn 21.2.0 GHSA-w3h3-4rj7-4ph4" in res.stdout


def test_an_expired_entry_no_longer_allows_and_says_so(tmp_path: Path) -> None:
    res = run(tmp_path, ALLOW.format(expires="2026-12-06"))
    assert res.returncode == 1
    (fail,) = [line for line in res.stderr.splitlines() if "FAIL" in line]
    assert "gunicorn 21.2.0 GHSA-w3h3-4rj7-4ph4" in fail
    assert "the allow-list entry CVE-2024-1135 expired on 2026-12-06" in fail


def test_a_dependency_pip_audit_could_not_audit_fails(tmp_path: Path) -> None:
    # What pip-audit 2.10.1 writes when its service cannot be reached (SOURCES.md).
    report = tmp_path / "report.json"
    skip = "Dependency not found on PyPI and could not be audited: prometheus-client (0.26.0)"
    report.write_text(
        json.dumps({"dependencies": [{"name": "prometheus-client", "skip_reason": skip}]})
    )
    res = run(tmp_path, "failOn: CRITICAL\n", report=report)
    assert res.returncode == 1
    assert f"FAIL prometheus-client: not audited: {skip}" in res.stderr


def test_a_vulnerability_without_a_rated_record_fails_closed(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    vuln = {"id": "GHSA-0000-0000-0000", "fix_versions": [], "aliases": []}
    report.write_text(
        json.dumps({"dependencies": [{"name": "x", "version": "1.0", "vulns": [vuln]}]})
    )
    res = run(tmp_path, "failOn: CRITICAL\n", report=report)
    assert res.returncode == 1
    assert "severity unknown (no advisory record rates it)" in res.stderr


def test_a_clean_report_passes(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    dep = {"name": "prometheus-client", "version": "0.26.0", "vulns": []}
    report.write_text(json.dumps({"dependencies": [dep], "fixes": []}))
    res = run(tmp_path, "failOn: LOW\n", report=report)
    assert res.returncode == 0
    assert "passed: 1 dependencies audited" in res.stdout


# ---------------------------------------------------------------- the policy file


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "failOn: SEVERE\n",
            "failOn: 'SEVERE' is not a severity; allowed: LOW, MODERATE, HIGH, CRITICAL",
        ),
        ("failOn: HIGH\nallowlist: []\n", "allowlist: unknown key; allowed: failOn, allow"),
        (
            "failOn: HIGH\nallow:\n  - id: GHSA-w3h3-4rj7-4ph4\n    expires: 2027-01-01\n",
            "allow[0].reason: required",
        ),
        (
            "failOn: HIGH\nallow:\n  - id: GHSA-w3h3-4rj7-4ph4\n    reason: r\n    expires: soon\n",
            "allow[0].expires: 'soon' is not a date; expected YYYY-MM-DD",
        ),
        (
            "failOn: HIGH\nallow:\n  - id: x\n    reason: r\n    expires: 2027-01-01\n",
            "allow[0].id: 'x' is not an advisory id",
        ),
        (
            "failOn: HIGH\nallow:\n  - {id: CVE-2024-1135, reason: r, expires: 2027-01-01, x: 1}\n",
            "allow[0].x: unknown key; allowed: id, reason, expires",
        ),
    ],
)
def test_a_bad_policy_is_named_with_the_allowed_values(
    tmp_path: Path, policy: str, message: str
) -> None:
    res = run(tmp_path, policy)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_the_shipped_policy_loads() -> None:
    policy = gate.load_policy(REPO / "security" / "vulnerability-gate.yaml")
    assert policy.fail_on in gate.LEVELS
    for entry in policy.allow:
        assert entry.reason and entry.expires >= TODAY

"""The vulnerability gate of the pipelines (issue 32 item 3): a known vulnerability at or above the
configured severity fails the build, unless an unexpired allow-list entry names it.

    python scripts/ci/vuln_gate.py --report out/ci/pip-audit.json \
        --advisories out/ci/advisories [--fetch] [--policy security/vulnerability-gate.yaml] \
        [--today YYYY-MM-DD]

Inputs:
- `--report`: pip-audit's JSON report (`pip-audit --format json`, pip_audit/_format/json.py):
  `dependencies[]` each `{name, version, vulns: [{id, fix_versions, aliases}]}` or, for a
  dependency pip-audit could not audit, `{name, skip_reason}`. A skipped dependency fails the
  gate: an audit that did not look is not a pass.
- `--advisories`: a directory of OSV records (`<id>.json` as the OSV API serves them, or
  `<id>.yaml` as the PyPA advisory database stores them). pip-audit's report carries no severity;
  it comes from these records: each vulnerability's own record and its aliases' records, the
  highest wins. With `--fetch`, missing records are downloaded from the OSV API into the
  directory first (the CI pipelines; kept as a build artifact), else a missing record is an
  unknown severity.
- `--policy`: `failOn` (LOW, MODERATE, HIGH or CRITICAL: the lowest severity that fails) and
  `allow` (entries `{id, reason, expires: YYYY-MM-DD}`; an entry allows a vulnerability whose id
  or alias is `id` until the end of `expires`; an expired entry allows nothing and is named).

Severity of one record (OSV schema 1.x): `database_specific.severity` (the GitHub advisory
database's qualitative rating: LOW, MODERATE, HIGH, CRITICAL), and the rating of each
`severity[]` entry of type CVSS_V3, its base score computed from the vector by the CVSS v3.1
specification (section 7.1; rating scale section 5: 0.1-3.9 LOW, 4.0-6.9 MEDIUM = MODERATE,
7.0-8.9 HIGH, 9.0-10.0 CRITICAL). A vulnerability with no rating anywhere is UNKNOWN and fails
(fail closed), unless allowed.

Exit: 0 pass, 1 the gate fails (one line per finding), 2 bad input (policy, report, records).
Standard library and PyYAML only (the project venv).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LEVELS = ("LOW", "MODERATE", "HIGH", "CRITICAL")
UNKNOWN = "UNKNOWN"
POLICY_KEYS = ("failOn", "allow")
ENTRY_KEYS = ("id", "reason", "expires")
ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$")
OSV_API = "https://api.osv.dev/v1/vulns/"

# CVSS v3.1 specification, section 7.4 (metric values).
CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required depends on Scope: (unchanged, changed).
CVSS_PR = {"N": (0.85, 0.85), "L": (0.62, 0.68), "H": (0.27, 0.5)}


class InputError(Exception):
    """A policy, report or record the gate cannot read: exit 2 with this message."""


def roundup(value: float) -> float:
    """CVSS v3.1 Appendix A `Roundup`: the smallest number with one decimal >= value."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    """Base score of a `CVSS:3.0/...` or `CVSS:3.1/...` vector (specification section 7.1)."""
    parts = vector.split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        changed = {"U": False, "C": True}[metrics["S"]]
        w = {k: CVSS_WEIGHTS[k][metrics[k]] for k in CVSS_WEIGHTS}
        pr = CVSS_PR[metrics["PR"]][1 if changed else 0]
    except KeyError as exc:
        raise ValueError(f"CVSS vector {vector!r}: missing or bad base metric {exc}") from None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return roundup(min(total, 10.0))


def rating(score: float) -> str | None:
    """CVSS v3.1 qualitative rating (section 5), MEDIUM named as OSV/GitHub name it: MODERATE."""
    if score == 0:
        return None
    if score < 4.0:
        return "LOW"
    if score < 7.0:
        return "MODERATE"
    if score < 9.0:
        return "HIGH"
    return "CRITICAL"


def record_severity(record: dict[str, Any]) -> str | None:
    """The highest rating an OSV record gives (None when it gives none)."""
    found: list[str] = []
    qualitative = str((record.get("database_specific") or {}).get("severity") or "").upper()
    if qualitative == "MEDIUM":
        qualitative = "MODERATE"
    if qualitative in LEVELS:
        found.append(qualitative)
    for entry in record.get("severity") or []:
        if entry.get("type") == "CVSS_V3":
            level = rating(cvss3_base_score(str(entry.get("score", ""))))
            if level:
                found.append(level)
    return max(found, key=LEVELS.index) if found else None


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class AllowEntry:
    id: str
    reason: str
    expires: dt.date


@dataclass(frozen=True)
class Policy:
    fail_on: str
    allow: tuple[AllowEntry, ...]


def load_policy(path: Path) -> Policy:
    """`failOn` and `allow`, every problem named by its key with the allowed values."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the policy: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a map with keys {', '.join(POLICY_KEYS)}")
    problems = [
        f"{path}: {key}: unknown key; allowed: {', '.join(POLICY_KEYS)}"
        for key in doc
        if key not in POLICY_KEYS
    ]
    fail_on = doc.get("failOn")
    if fail_on not in LEVELS:
        problems.append(
            f"{path}: failOn: {fail_on!r} is not a severity; allowed: {', '.join(LEVELS)}"
        )
    entries: list[AllowEntry] = []
    raw_entries = doc.get("allow") or []
    if not isinstance(raw_entries, list):
        problems.append(f"{path}: allow: expected a list of {{id, reason, expires}}")
        raw_entries = []
    for i, raw in enumerate(raw_entries):
        where = f"{path}: allow[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a map with keys {', '.join(ENTRY_KEYS)}")
            continue
        problems += [
            f"{where}.{key}: unknown key; allowed: {', '.join(ENTRY_KEYS)}"
            for key in raw
            if key not in ENTRY_KEYS
        ]
        vid, reason, expires = raw.get("id"), raw.get("reason"), raw.get("expires")
        if not isinstance(vid, str) or not ID_PATTERN.match(vid):
            problems.append(
                f"{where}.id: {vid!r} is not an advisory id (e.g. GHSA-..., PYSEC-..., CVE-...)"
            )
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}.reason: required: why this vulnerability may ship")
        if isinstance(expires, str):
            with contextlib.suppress(ValueError):
                expires = dt.date.fromisoformat(expires)
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            problems.append(f"{where}.expires: {expires!r} is not a date; expected YYYY-MM-DD")
        elif isinstance(vid, str) and isinstance(reason, str):
            entries.append(AllowEntry(vid, reason.strip(), expires))
    if problems:
        raise InputError("\n".join(problems))
    return Policy(str(fail_on), tuple(entries))


def load_report(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        deps = doc["dependencies"]
        if not isinstance(deps, list):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a pip-audit JSON report ({exc!r})") from None
    return deps


def load_advisories(directory: Path) -> dict[str, dict[str, Any]]:
    """Every record of the directory, by its id and by each alias it lists."""
    by_id: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return by_id
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            record = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: not an OSV record: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise InputError(f"{path}: not an OSV record (no `id`)")
        by_id[record["id"]] = record
    return by_id


def fetch_missing(report: list[dict[str, Any]], directory: Path, timeout: float = 20) -> None:
    """Download the OSV record of every reported id (not its aliases) not yet in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    have = load_advisories(directory)
    for dep in report:
        for vuln in dep.get("vulns") or []:
            vid = str(vuln.get("id"))
            if vid in have or not ID_PATTERN.match(vid):
                continue
            try:
                with urllib.request.urlopen(OSV_API + vid, timeout=timeout) as resp:
                    record = json.loads(resp.read())
            except (urllib.error.URLError, ValueError, OSError) as exc:
                raise InputError(f"cannot fetch the OSV record of {vid}: {exc}") from None
            (directory / f"{vid}.json").write_text(json.dumps(record, indent=2) + "\n")
            have[vid] = record


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    severity: str
    fix_versions: tuple[str, ...]


def severity_of(ids: set[str], advisories: dict[str, dict[str, Any]]) -> str:
    records = [advisories[i] for i in sorted(ids) if i in advisories]
    records += [
        r for r in advisories.values() if ids & set(r.get("aliases") or []) and r not in records
    ]
    levels = [level for r in records if (level := record_severity(r))]
    return max(levels, key=LEVELS.index) if levels else UNKNOWN


def findings(report: list[dict[str, Any]], advisories: dict[str, dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    for dep in report:
        for vuln in dep.get("vulns") or []:
            aliases = tuple(str(a) for a in vuln.get("aliases") or [])
            ids = {str(vuln["id"]), *aliases}
            out.append(
                Finding(
                    package=str(dep["name"]),
                    version=str(dep.get("version", "")),
                    id=str(vuln["id"]),
                    aliases=aliases,
                    severity=severity_of(ids, advisories),
                    fix_versions=tuple(str(v) for v in vuln.get("fix_versions") or []),
                )
            )
    return out


def decide(
    report: list[dict[str, Any]],
    advisories: dict[str, dict[str, Any]],
    policy: Policy,
    today: dt.date,
) -> tuple[list[str], list[str]]:
    """(failures, notes): one line each; the build fails when `failures` is not empty."""
    failures: list[str] = []
    notes: list[str] = []
    threshold = LEVELS.index(policy.fail_on)
    for dep in report:
        if "skip_reason" in dep:
            failures.append(f"{dep.get('name')}: not audited: {dep['skip_reason']}")
    for f in findings(report, advisories):
        ids = {f.id, *f.aliases}
        what = f"{f.package} {f.version} {f.id}" + (
            f" ({', '.join(f.aliases)})" if f.aliases else ""
        )
        fix = f"fixed in {', '.join(f.fix_versions)}" if f.fix_versions else "no fixed version"
        gates = f.severity == UNKNOWN or LEVELS.index(f.severity) >= threshold
        if not gates:
            notes.append(f"below failOn {policy.fail_on}: {what}: {f.severity}, {fix}")
            continue
        entries = [e for e in policy.allow if e.id in ids]
        valid = [e for e in entries if today <= e.expires]
        if valid:
            e = valid[0]
            notes.append(f"allowed until {e.expires}: {what}: {f.severity} ({e.reason})")
            continue
        reason = f"{f.severity} >= failOn {policy.fail_on}"
        if f.severity == UNKNOWN:
            reason = "severity unknown (no advisory record rates it): treated as failing"
        expired = "".join(f"; the allow-list entry {e.id} expired on {e.expires}" for e in entries)
        failures.append(f"{what}: {reason}, {fix}{expired}")
    return failures, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vuln_gate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, type=Path)
    parser.add_argument("--advisories", required=True, type=Path)
    parser.add_argument("--policy", type=Path, default=Path("security/vulnerability-gate.yaml"))
    parser.add_argument("--fetch", action="store_true", help="download missing OSV records")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args(argv)
    try:
        policy = load_policy(args.policy)
        report = load_report(args.report)
        if args.fetch:
            fetch_missing(report, args.advisories)
        advisories = load_advisories(args.advisories)
        failures, notes = decide(report, advisories, policy, args.today)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    audited = sum(1 for d in report if "skip_reason" not in d)
    for line in notes:
        print(f"vulnerability gate: {line}")
    for line in failures:
        print(f"vulnerability gate: FAIL {line}", file=sys.stderr)
    verdict = "failed" if failures else "passed"
    print(f"vulnerability gate {verdict}: {audited} dependencies audited, failOn {policy.fail_on}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

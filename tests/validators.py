"""Outside validators run on rendered manifests: kubernetes-validate (upstream OpenAPI schemas,
strict), checkov, promtool. Each returns what it found so a test can assert on it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.tooling import run_tool

KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
# CRD-backed kinds are not in kubernetes-validate: tests/crd_schemas.py validates them against
# the upstream CRD schemas (tests/test_crd_schemas.py), promtool their rules.
CRD_GROUPS = ("monitoring.coreos.com/", "argoproj.io/")


def builtin_manifests(root: Path) -> list[Path]:
    """Rendered files whose object is a built-in Kubernetes kind."""
    files = []
    for path in sorted(root.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if not str(doc.get("apiVersion", "")).startswith(CRD_GROUPS):
            files.append(path)
    return files


def kubernetes_validate(files: Iterable[Path], version: str) -> tuple[int, str]:
    """(exit code, output) of `kubernetes-validate --strict` for one Kubernetes version."""
    proc = run_tool("kubernetes-validate", "--strict", "--quiet", "-k", version, *map(str, files))
    return proc.returncode, proc.stdout + proc.stderr


@dataclass(frozen=True)
class CheckovFinding:
    check_id: str
    resource: str
    file: str
    reason: str = ""


@dataclass(frozen=True)
class CheckovReport:
    failed: list[CheckovFinding]
    skipped: list[CheckovFinding]
    passed: int
    parsing_errors: list[str]


def checkov(root: Path) -> CheckovReport:
    """Run `checkov --framework kubernetes` offline on a directory of manifests."""
    proc = run_tool(
        "checkov", "--framework", "kubernetes", "-d", str(root), "--skip-download", "-o", "json"
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    data: Any = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    failed: list[CheckovFinding] = []
    skipped: list[CheckovFinding] = []
    passed = 0
    errors: list[str] = []
    for report in reports:
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        errors += results.get("parsing_errors", [])
        for item in results.get("failed_checks", []):
            failed.append(CheckovFinding(item["check_id"], item["resource"], item["file_path"]))
        for item in results.get("skipped_checks", []):
            reason = item["check_result"].get("suppress_comment", "")
            skipped.append(
                CheckovFinding(item["check_id"], item["resource"], item["file_path"], reason)
            )
    return CheckovReport(failed, skipped, passed, errors)

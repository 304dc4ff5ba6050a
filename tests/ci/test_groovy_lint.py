"""npm-groovy-lint (CodeNarc) over every Groovy file the project ships or renders, in one JVM:
the Jenkinsfile must have no warning or error, the rendered job-dsl scripts (one per SCM the job
supports) no error (they must parse; CodeNarc's style rules are for hand-written code).

The files are linted together: one CodeNarc start instead of one per file (it is most of the
cost). They are copied into one directory first, because CodeNarc scans from the deepest common
directory of its inputs (`/` for files in unrelated directories). Each file is then judged at its
own level, as `--failon <level>` would judge it alone.

The JVM flags only shorten the start of a short-lived JVM (C1 compiler only, serial GC); CodeNarc's
rules and results do not depend on them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import config as config_model
from components.jenkins.casc import job_dsl
from tests.ci.pipelines import JENKINSFILE
from tests.jenkins.helpers import REPOSITORY, jenkins_raw
from tests.tooling import REPO

GROOVY_LINT = REPO / "node_modules" / ".bin" / "npm-groovy-lint"
PROD_JENKINSFILE = REPO / "jenkins" / "prod-deploy.Jenkinsfile"
PRUNE_JENKINSFILE = REPO / "jenkins" / "registry-prune.Jenkinsfile"
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: npm-groovy-lint's severities, lowest first (its `--failon` levels)
SEVERITIES = ("info", "warning", "error")
#: job-dsl scripts rendered for each SCM the job supports
JOB_DSL_SOURCES = {"github": REPOSITORY, "git": "https://gitlab.example.com/a/b.git"}


@dataclass(frozen=True)
class Finding:
    severity: str
    rule: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.severity} {self.rule} (line {self.line}): {self.message}"


def groovy_files() -> dict[str, str]:
    """File name -> text: the Jenkinsfile and the job-dsl script rendered for each SCM."""
    files = {
        "Jenkinsfile": JENKINSFILE.read_text(encoding="utf-8"),
        # the prod deploy job's pipeline (its own folder and credential)
        "prod-deploy.Jenkinsfile": PROD_JENKINSFILE.read_text(encoding="utf-8"),
        # the scheduled registry retention job (scripts/ci/registry-prune.sh)
        "registry-prune.Jenkinsfile": PRUNE_JENKINSFILE.read_text(encoding="utf-8"),
    }
    for scm, url in JOB_DSL_SOURCES.items():
        settings = config_model.load(jenkins_raw("prod", job={"scm": scm, "repository": url}))
        assert settings.jenkins is not None
        files[f"job-dsl-{scm}.groovy"] = job_dsl(settings.jenkins)
    return files


def lint_all() -> dict[str, tuple[Finding, ...]]:
    """Findings per file name of `groovy_files()`, from one npm-groovy-lint run."""
    if not GROOVY_LINT.is_file():
        pytest.fail("npm-groovy-lint is not installed; run `npm ci` (package-lock.json pins it)")
    java = shutil.which("java")
    if java is None:
        # npm-groovy-lint would download a JRE at run time; the tests never download.
        pytest.fail("java is not installed; npm-groovy-lint needs a JRE (Debian default-jre)")
    files = groovy_files()
    with tempfile.TemporaryDirectory(prefix="groovy-lint-") as tmp:
        paths = {name: Path(tmp) / name for name in files}
        for name, text in files.items():
            paths[name].write_text(text, encoding="utf-8")
        proc = subprocess.run(
            [
                str(GROOVY_LINT),
                "--noserver",  # no background CodeNarc server left running
                "--javaexecutable",
                java,
                "--failon",
                "none",  # each test applies its own level to its own file
                "--output",
                "json",
                *map(str, paths.values()),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "JAVA_TOOL_OPTIONS": SHORT_LIVED_JVM},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout)
        by_path = {str(path): name for name, path in paths.items()}
    assert report["summary"]["totalFilesLinted"] == len(files), report["summary"]
    found: dict[str, tuple[Finding, ...]] = {name: () for name in files}
    for path, result in report["files"].items():
        found[by_path[path]] = tuple(
            Finding(e["severity"], e["rule"], e.get("line"), e["msg"]) for e in result["errors"]
        )
    return found


def failing(findings: tuple[Finding, ...], level: str) -> list[str]:
    """The findings that `--failon <level>` fails on."""
    floor = SEVERITIES.index(level)
    return [str(f) for f in findings if SEVERITIES.index(f.severity) >= floor]


@pytest.mark.slow
def test_jenkinsfile_has_no_warning_and_job_dsl_scripts_no_error() -> None:
    found = lint_all()
    pipelines = {"Jenkinsfile", "prod-deploy.Jenkinsfile", "registry-prune.Jenkinsfile"}
    assert set(found) == {*pipelines, *(f"job-dsl-{scm}.groovy" for scm in JOB_DSL_SOURCES)}
    failures = {
        name: failing(findings, "warning" if name in pipelines else "error")
        for name, findings in found.items()
    }
    assert failures == {name: [] for name in found}

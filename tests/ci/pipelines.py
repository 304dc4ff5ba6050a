"""Rules for the CI pipeline files, as functions that return a list of problems (empty = ok).

The tests apply each rule to the real files (no problems) and to a copy broken on purpose (the
rule must notice), so a rule that stops checking anything fails its own test.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests import tooling
from tests.tooling import SHIPPED_STACKS

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
GITLAB_CI = REPO / ".gitlab-ci.yml"
JENKINSFILE = REPO / "Jenkinsfile"
CI_SCRIPTS = REPO / "scripts" / "ci"

#: Every stack, in promotion order: each one's deploy waits for the one before it.
STACKS = SHIPPED_STACKS
SECRET_VARS = (
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_BACKEND_URL",
    "KUBECONFIG_DATA",
    "KUBECONFIG_DATA_B64",
    "PREVIEW_NOTE_TOKEN",
    "MANIFESTS_PUSH_TOKEN",
    "GH_TOKEN",
)
_SECRET_ALT = "|".join(SECRET_VARS)
# `echo $X`, `printf "%s" "${X}"`, `cat $KUBECONFIG`: a secret's value written to the log.
SECRET_ECHO = re.compile(
    rf"\b(?:echo|printf|cat)\b[^\n;|&]*\$\{{?(?:{_SECRET_ALT}|KUBECONFIG)\b", re.IGNORECASE
)
XTRACE = re.compile(r"\bset\s+-[a-wyz]*x|\bbash\s+-[a-wyz]*x")
DEPLOY_CALL = re.compile(r"scripts/ci/deploy\.sh\s+(\S+)")
ACTION_REF = re.compile(r"^[\w.-]+/[\w./-]+@(?:v\d+|[0-9a-f]{40})$")
DOCKER_REF = re.compile(r"^docker://")


def load_yaml(path: Path) -> dict[str, Any]:
    doc = tooling.load_yaml(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path} is not a YAML mapping"
    return doc


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


# --------------------------------------------------------------------------------------------
# GitHub Actions


def triggers(workflow: Mapping[str, Any]) -> Any:
    # PyYAML (YAML 1.1) reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def jobs(workflow: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = workflow.get("jobs") or {}
    return {str(k): v for k, v in found.items() if isinstance(v, dict)}


def steps(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps") or [] if isinstance(s, dict)]


def run_texts(workflow: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for name, job in jobs(workflow).items():
        for index, step in enumerate(steps(job)):
            if isinstance(step.get("run"), str):
                yield f"{name}.steps[{index}]", step["run"]


def deployed_stack(job: Mapping[str, Any]) -> str | None:
    for step in steps(job):
        match = DEPLOY_CALL.search(str(step.get("run") or ""))
        if match:
            return match.group(1).strip("\"'")
    return None


def environment_name(env: Any) -> str | None:
    if isinstance(env, dict):
        return str(env.get("name")) if env.get("name") is not None else None
    return str(env) if env is not None else None


def github_problems(workflow: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if "permissions" not in workflow:
        problems.append("no top-level `permissions:` (the token's default scope is too wide)")
    if workflow.get("permissions") == "write-all":
        problems.append("top-level permissions: write-all")
    for name, job in jobs(workflow).items():
        if job.get("permissions") == "write-all":
            problems.append(f"{name}: permissions write-all")
        for step in steps(job):
            uses = step.get("uses")
            local = not isinstance(uses, str) or uses.startswith("./") or DOCKER_REF.match(uses)
            if not local and not ACTION_REF.match(str(uses)):
                problems.append(f"{name}: `{uses}` is not pinned to a major version or SHA")
    for where, text in run_texts(workflow):
        if "secrets." in text or "github.token" in text:
            problems.append(f"{where}: a secret expression inside `run:`; pass it through env:")
        if SECRET_ECHO.search(text):
            problems.append(f"{where}: prints a secret variable")
        if XTRACE.search(text):
            problems.append(f"{where}: xtrace (set -x) can print secrets")
    for name, job in jobs(workflow).items():
        stack = deployed_stack(job)
        if stack is None:
            continue
        conc = job.get("concurrency")
        if not isinstance(conc, dict) or conc.get("group") != f"deploy-{stack}":
            problems.append(f"{name}: deploys {stack} without `concurrency.group: deploy-{stack}`")
        elif conc.get("cancel-in-progress") is not False:
            problems.append(f"{name}: deploy concurrency must set cancel-in-progress: false")
        if stack == "prod" and environment_name(job.get("environment")) != "production":
            problems.append(f"{name}: prod deploy without `environment: production` (approval)")
    return problems


# --------------------------------------------------------------------------------------------
# GitLab CI

GITLAB_KEYWORDS = {
    "stages",
    "variables",
    "workflow",
    "default",
    "include",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def gitlab_job(doc: Mapping[str, Any], name: str, _depth: int = 0) -> dict[str, Any]:
    """A job with its `extends` chain merged in (hashes deep-merged, the rest replaced)."""
    assert _depth < 10, f"extends chain of {name} too deep"
    raw = doc[name]
    parents = raw.get("extends") or []
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = _merge(merged, gitlab_job(doc, parent, _depth + 1))
    merged = _merge(merged, {k: v for k, v in raw.items() if k != "extends"})
    return merged


def gitlab_jobs(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: gitlab_job(doc, name)
        for name, value in doc.items()
        if isinstance(value, dict) and name not in GITLAB_KEYWORDS and not name.startswith(".")
    }


def script_lines(job: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key in ("before_script", "script", "after_script"):
        value = job.get(key) or []
        lines += [value] if isinstance(value, str) else [str(v) for v in value]
    return lines


def gitlab_problems(doc: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    expected_stages = ["test", "preview", *(f"deploy-{stack}" for stack in STACKS)]
    if doc.get("stages") != expected_stages:
        problems.append(f"stages are {doc.get('stages')}, not {', '.join(expected_stages)}")
    for name, job in gitlab_jobs(doc).items():
        text = "\n".join(script_lines(job))
        if SECRET_ECHO.search(text):
            problems.append(f"{name}: prints a secret variable")
        if XTRACE.search(text):
            problems.append(f"{name}: xtrace (set -x) can print secrets")
        match = DEPLOY_CALL.search("\n".join(str(s) for s in job.get("script") or []))
        if not match:
            continue
        stack = match.group(1)
        if job.get("resource_group") != stack:
            problems.append(f"{name}: deploys {stack} without `resource_group: {stack}`")
        if job.get("interruptible") is not False:
            problems.append(f"{name}: a deploy job must be `interruptible: false`")
        rules = job.get("rules") or []
        if not rules or any("$CI_DEFAULT_BRANCH" not in str(r.get("if", "")) for r in rules):
            problems.append(f"{name}: deploys from a branch other than the default branch")
        if stack == "prod":
            if environment_name(job.get("environment")) != "production":
                problems.append(f"{name}: prod deploy without `environment: production`")
            if not rules or any(r.get("when") != "manual" for r in rules):
                problems.append(f"{name}: prod deploy is not `when: manual`")
            if any(r.get("allow_failure") is not False for r in rules):
                problems.append(f"{name}: manual prod deploy must block (allow_failure: false)")
    return problems


# --------------------------------------------------------------------------------------------
# Jenkinsfile


def strip_comments(text: str) -> str:
    """Groovy source without // and /* */ comments (string contents kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
        elif ch in "'\"":
            quote = ch
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def block_after(text: str, start: int) -> str:
    """The `{ ... }` block that opens at or after `start` (braces in strings ignored)."""
    open_at = text.index("{", start)
    depth = 0
    quote: str | None = None
    for i in range(open_at, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at : i + 1]
    raise ValueError("unbalanced braces")


STAGE = re.compile(r"\bstage\(\s*'([^']+)'\s*\)")


def jenkins_stages(source: str) -> dict[str, str]:
    code = strip_comments(source)
    return {m.group(1): block_after(code, m.end()) for m in STAGE.finditer(code)}


# --------------------------------------------------------------------------------------------
# One gate for both paths (issue 11): image -> dev (deploy or GitOps publish, then verify) ->
# staging (the same, issue 32) -> approval -> prod. GitOps publishing happens only inside
# deploy.sh, i.e. in the deploy jobs.

PUBLISH_CALL = re.compile(r"scripts/ci/publish-manifests\.sh")


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return (
        [needs]
        if isinstance(needs, str)
        else [n if isinstance(n, str) else n["job"] for n in needs]
    )


def upstream(all_jobs: Mapping[str, Mapping[str, Any]], name: str) -> set[str]:
    """Every job `name` waits for, directly or through other jobs."""
    seen: set[str] = set()
    todo = list(_needs(all_jobs[name]))
    while todo:
        current = todo.pop()
        if current not in seen and current in all_jobs:
            seen.add(current)
            todo.extend(_needs(all_jobs[current]))
    return seen


def github_gate_problems(workflow: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    all_jobs = jobs(workflow)
    deployers = {deployed_stack(j): n for n, j in all_jobs.items() if deployed_stack(j)}
    if set(deployers) != set(STACKS):
        return [f"expected one deploy job per stack, found {sorted(map(str, deployers))}"]
    prod = deployers["prod"]
    builders = [
        n
        for n, j in all_jobs.items()
        if any(str(s.get("uses", "")).startswith("docker/build-push-action@") for s in steps(j))
    ]
    if len(builders) != 1:
        return [f"expected one image build job, found {builders}"]
    build = builders[0]
    for name in (deployers[stack] for stack in STACKS):
        if build not in upstream(all_jobs, name):
            problems.append(f"{name}: does not wait for the image build {build}")
        env = {k: v for s in steps(all_jobs[name]) for k, v in (s.get("env") or {}).items()}
        if f"needs.{build}.outputs" not in str(env.get("DEPLOY_IMAGES", "")):
            problems.append(f"{name}: DEPLOY_IMAGES is not the digest output of {build}")
        if "vars.GITOPS" not in str(env.get("GITOPS", "")):
            problems.append(f"{name}: GITOPS is not passed, so the GitOps path skips this gate")
    for before, stack in pairwise(STACKS):
        if deployers[before] not in upstream(all_jobs, deployers[stack]):
            problems.append(
                f"{deployers[stack]}: {stack} does not wait for the {before} deploy "
                f"{deployers[before]}"
            )
    if environment_name(all_jobs[prod].get("environment")) != "production":
        problems.append(f"{prod}: prod without `environment: production` (approval)")
    for where, text in run_texts(workflow):
        if PUBLISH_CALL.search(text):
            problems.append(f"{where}: publishes manifests outside deploy.sh (bypasses the gate)")
    with_push = next(
        s.get("with") or {}
        for s in steps(all_jobs[build])
        if str(s.get("uses", "")).startswith("docker/build-push-action@")
    )
    if with_push.get("push") is not True or "github.sha" not in str(with_push.get("tags")):
        problems.append(f"{build}: must push a tag named by the commit (github.sha)")
    if "type=registry" not in str(with_push.get("cache-to")):
        problems.append(f"{build}: no registry cache (cache-to type=registry)")
    return problems


def gitlab_gate_problems(doc: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    all_jobs = gitlab_jobs(doc)
    deployers: dict[str, str] = {}
    for name, job in all_jobs.items():
        match = DEPLOY_CALL.search("\n".join(str(s) for s in job.get("script") or []))
        if match:
            deployers[match.group(1)] = name
        if PUBLISH_CALL.search("\n".join(script_lines(job))):
            problems.append(f"{name}: publishes manifests outside deploy.sh (bypasses the gate)")
    if set(deployers) != set(STACKS):
        return [*problems, f"expected one deploy job per stack, found {sorted(deployers)}"]
    builders = [
        n for n, j in all_jobs.items() if any("build-image.sh" in ln for ln in script_lines(j))
    ]
    if len(builders) != 1:
        return [*problems, f"expected one image build job, found {builders}"]
    build = builders[0]
    dotenv = ((all_jobs[build].get("artifacts") or {}).get("reports") or {}).get("dotenv")
    if dotenv != "out/ci/image.env":
        problems.append(f"{build}: the digest is not handed on as a dotenv report")
    for name in deployers.values():
        if build not in upstream(all_jobs, name):
            problems.append(f"{name}: does not wait for the image build {build}")
    for before, stack in pairwise(STACKS):
        if deployers[before] not in upstream(all_jobs, deployers[stack]):
            problems.append(f"{deployers[stack]}: {stack} does not wait for the {before} deploy")
    return problems

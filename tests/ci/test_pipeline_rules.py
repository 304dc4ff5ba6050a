"""Rules for the GitHub Actions workflows and .gitlab-ci.yml (tests/ci/pipelines.py holds the
rules; each is shown to catch a copy broken on purpose)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.ci.pipelines import (
    CI_SCRIPTS,
    GITLAB_CI,
    WORKFLOWS,
    deployed_stack,
    environment_name,
    github_gate_problems,
    github_problems,
    gitlab_gate_problems,
    gitlab_job,
    gitlab_jobs,
    gitlab_problems,
    jobs,
    load_yaml,
    script_lines,
    steps,
    triggers,
    workflow_files,
)
from tests.tooling import SHIPPED_STACKS


@pytest.fixture
def deploy_workflow() -> dict[str, Any]:
    return load_yaml(WORKFLOWS / "deploy.yml")


@pytest.fixture
def gitlab() -> dict[str, Any]:
    return load_yaml(GITLAB_CI)


def job_deploying(workflow: dict[str, Any], stack: str) -> tuple[str, dict[str, Any]]:
    found = [(n, j) for n, j in jobs(workflow).items() if deployed_stack(j) == stack]
    assert len(found) == 1, f"expected one job deploying {stack}, found {[n for n, _ in found]}"
    return found[0]


# --------------------------------------------------------------------------------------------
# GitHub Actions


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_workflow_rules(path: Path) -> None:
    assert github_problems(load_yaml(path)) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda w: w.pop("permissions"), "no top-level `permissions:`"),
        (
            lambda w: w["jobs"]["deploy-prod"]["steps"][0].update(uses="actions/checkout@main"),
            "not pinned",
        ),
        (
            lambda w: w["jobs"]["deploy-prod"]["steps"][-1].update(
                run="scripts/ci/deploy.sh prod --token ${{ secrets.PULUMI_ACCESS_TOKEN }}"
            ),
            "secret expression inside `run:`",
        ),
        (
            lambda w: w["jobs"]["deploy-dev"]["steps"][-1].update(
                run='echo "$PULUMI_CONFIG_PASSPHRASE"; scripts/ci/deploy.sh dev'
            ),
            "prints a secret",
        ),
        (
            lambda w: w["jobs"]["deploy-dev"]["steps"][-1].update(
                run="set -x; scripts/ci/deploy.sh dev"
            ),
            "xtrace",
        ),
        (lambda w: w["jobs"]["deploy-prod"].pop("concurrency"), "without `concurrency.group"),
        (
            lambda w: w["jobs"]["deploy-dev"]["concurrency"].update({"cancel-in-progress": True}),
            "cancel-in-progress: false",
        ),
        (lambda w: w["jobs"]["deploy-prod"].pop("environment"), "environment: production"),
    ],
)
def test_workflow_rules_catch_breakage(
    deploy_workflow: dict[str, Any], breakage: Any, expected: str
) -> None:
    broken = copy.deepcopy(deploy_workflow)
    breakage(broken)
    problems = github_problems(broken)
    assert any(expected in p for p in problems), problems


def test_ci_runs_make_test_on_every_push_and_pull_request() -> None:
    ci = load_yaml(WORKFLOWS / "ci.yml")
    on = triggers(ci)
    assert {"push", "pull_request", "workflow_call"} <= set(on)
    runs = [s.get("run") for j in jobs(ci).values() for s in steps(j)]
    assert "make test" in runs
    # main is tested through deploy.yml, which calls ci.yml before it deploys
    deploy = load_yaml(WORKFLOWS / "deploy.yml")
    assert jobs(deploy)["test"]["uses"] == "./.github/workflows/ci.yml"
    assert on["push"] == {"branches-ignore": ["main"]}
    assert triggers(deploy)["push"] == {"branches": ["main"]}


def test_deploys_run_on_push_to_main_after_tests(deploy_workflow: dict[str, Any]) -> None:
    dev_name, dev = job_deploying(deploy_workflow, "dev")
    staging_name, staging = job_deploying(deploy_workflow, "staging")
    _, prod = job_deploying(deploy_workflow, "prod")
    assert dev["needs"] == ["test", "image"]
    assert staging["needs"] == [dev_name, "image"]
    assert prod["needs"] == [staging_name, "image"]  # after staging's functional checks
    assert staging["concurrency"] == {"group": "deploy-staging", "cancel-in-progress": False}
    assert environment_name(staging["environment"]) == "staging"
    assert any(s.get("run") == "scripts/ci/deploy.sh staging" for s in steps(staging))
    for job in (dev, staging, prod):
        assert job["if"] == "github.event_name == 'push'"
        assert job["permissions"] == {"contents": "read"}
        secrets_env = {k for s in steps(job) for k in (s.get("env") or {})}
        assert {"PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_DATA"} <= secrets_env
    assert environment_name(prod["environment"]) == "production"
    assert prod["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}
    # rollback needs the last good commit: full history
    for job in (staging, prod):
        checkout = next(
            s for s in steps(job) if str(s.get("uses", "")).startswith("actions/checkout")
        )
        assert checkout["with"]["fetch-depth"] == 0


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_deploy_steps_get_the_notification_webhook_from_a_secret(
    deploy_workflow: dict[str, Any], gitlab: dict[str, Any], stack: str
) -> None:
    _, job = job_deploying(deploy_workflow, stack)
    step = next(s for s in steps(job) if s.get("run") == f"scripts/ci/deploy.sh {stack}")
    assert step["env"]["APPSTACK_NOTIFY_WEBHOOK_URL"] == (
        "${{ secrets.APPSTACK_NOTIFY_WEBHOOK_URL }}"
    )
    # GitLab: a masked CI/CD variable reaches the job by itself; never set in the file
    assert "APPSTACK_NOTIFY_WEBHOOK_URL" not in str(gitlab)


def test_preview_matrix_comments_on_the_pull_request(deploy_workflow: dict[str, Any]) -> None:
    preview = jobs(deploy_workflow)["preview"]
    assert "pull_request" in preview["if"]
    stacks = [entry["stack"] for entry in preview["strategy"]["matrix"]["include"]]
    assert stacks == list(SHIPPED_STACKS)
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = " ".join(str(s.get("run", "")) for s in steps(preview))
    assert 'scripts/ci/preview.sh "$STACK"' in runs
    assert "scripts/ci/post-github-comment.sh" in runs
    post = next(s for s in steps(preview) if "post-github-comment" in str(s.get("run")))
    assert post["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "!cancelled()" in post["if"]  # the summary of a failed preview is posted too


def test_jobs_without_explicit_permissions_get_none(deploy_workflow: dict[str, Any]) -> None:
    assert deploy_workflow["permissions"] == {}
    for name, job in jobs(deploy_workflow).items():
        assert "permissions" in job, f"{name}: grant what it needs explicitly"


# --------------------------------------------------------------------------------------------
# GitLab CI


def test_gitlab_rules(gitlab: dict[str, Any]) -> None:
    assert gitlab_problems(gitlab) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda d: d["stages"].remove("preview"), "stages are"),
        (lambda d: d["deploy-prod"].pop("resource_group"), "without `resource_group: prod`"),
        (lambda d: d["deploy-dev"].update(resource_group="prod"), "resource_group: dev"),
        (lambda d: d["deploy-prod"]["rules"][0].update(when="on_success"), "`when: manual`"),
        (lambda d: d["deploy-prod"]["rules"][0].pop("allow_failure"), "allow_failure: false"),
        (lambda d: d["deploy-prod"].update(environment="prod"), "environment: production"),
        (lambda d: d["deploy-dev"].update(rules=[{"when": "always"}]), "default branch"),
        (lambda d: d["deploy-prod"].update(interruptible=True), "interruptible: false"),
        (
            lambda d: d["deploy-dev"]["script"].insert(0, "cat $KUBECONFIG"),
            "prints a secret",
        ),
    ],
)
def test_gitlab_rules_catch_breakage(gitlab: dict[str, Any], breakage: Any, expected: str) -> None:
    broken = copy.deepcopy(gitlab)
    breakage(broken)
    problems = gitlab_problems(broken)
    assert any(expected in p for p in problems), problems


def test_gitlab_jobs_and_their_triggers(gitlab: dict[str, Any]) -> None:
    all_jobs = gitlab_jobs(gitlab)
    assert all_jobs["test"]["script"] == ["make test"]
    for stack in SHIPPED_STACKS:
        preview = all_jobs[f"preview-{stack}"]
        assert preview["stage"] == "preview"
        assert preview["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
        assert preview["variables"]["STACK"] == stack
        assert preview["environment"]["action"] == "prepare"  # no deployment recorded
        assert preview["artifacts"]["paths"] == [f"out/ci/preview-{stack}.md"]
        assert preview["artifacts"]["when"] == "always"
        assert any("post-gitlab-note.sh" in line for line in script_lines(preview))
    dev, staging, prod = (all_jobs[f"deploy-{s}"] for s in ("dev", "staging", "prod"))
    assert (dev["stage"], staging["stage"], prod["stage"]) == (
        "deploy-dev",
        "deploy-staging",
        "deploy-prod",
    )
    assert staging["needs"] == ["deploy-dev", "build-image"]
    assert staging["script"] == ["scripts/ci/deploy.sh staging"]
    assert staging["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]  # automatic
    assert staging["environment"] == {"name": "staging", "deployment_tier": "staging"}
    # prod also needs the signatures (and sign-image's cosign, for its signature gate)
    assert prod["needs"] == ["deploy-staging", "build-image", "sign-image"]
    assert prod["variables"]["STACKCTL_COSIGN"].endswith("/bin/cosign")
    assert prod["script"] == ["scripts/ci/deploy.sh prod"]
    assert prod["rules"] == [
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual", "allow_failure": False}
    ]
    for job in (dev, staging, prod):
        assert job["before_script"] == ["scripts/ci/bootstrap.sh"]
        assert job["image"] == "$PULUMI_IMAGE"
        assert job["variables"]["GIT_DEPTH"] == "0"


def test_gitlab_extends_is_resolved(gitlab: dict[str, Any]) -> None:
    job = gitlab_job(gitlab, "preview-prod")
    assert job["stage"] == "preview" and job["cache"]["paths"] == [".cache/pip"]


def test_pulumi_versions_match_the_sdk_pin(gitlab: dict[str, Any]) -> None:
    """The CLI in every pipeline is the version of the pulumi SDK pinned in requirements.txt."""
    pin = next(
        line.split("==")[1].strip()
        for line in (CI_SCRIPTS.parents[1] / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    assert gitlab["variables"]["PULUMI_IMAGE"].endswith(f":{pin}")
    deploy = load_yaml(WORKFLOWS / "deploy.yml")
    versions = {
        s["with"]["pulumi-version"]
        for j in jobs(deploy).values()
        for s in steps(j)
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    }
    assert versions == {pin}


# --------------------------------------------------------------------------------------------
# The failure path: every system deploys prod through deploy.sh, which rolls back.


def test_prod_failure_path_calls_the_rollback_script(
    deploy_workflow: dict[str, Any], gitlab: dict[str, Any]
) -> None:
    _, prod = job_deploying(deploy_workflow, "prod")
    assert any(s.get("run") == "scripts/ci/deploy.sh prod" for s in steps(prod))
    assert gitlab_jobs(gitlab)["deploy-prod"]["script"] == ["scripts/ci/deploy.sh prod"]
    deploy_sh = (CI_SCRIPTS / "deploy.sh").read_text()
    assert '"$CI_DIR/rollback.sh" "$stack"' in deploy_sh
    assert 'if rolls_back_on_failure "$environment"; then rollback=true' in deploy_sh
    # (tests/ci/test_scripts.py runs the failure path itself)


# --------------------------------------------------------------------------------------------
# One gate for both paths: image -> dev + verify -> approval -> prod, GitOps included


def test_github_gate(deploy_workflow: dict[str, Any]) -> None:
    assert github_gate_problems(deploy_workflow) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda w: w["jobs"]["deploy-prod"].update(needs=["image"]),
            "prod does not wait for the staging deploy",
        ),
        (
            lambda w: w["jobs"]["deploy-staging"].update(needs=["image"]),
            "staging does not wait for the dev deploy",
        ),
        (lambda w: w["jobs"]["deploy-dev"].update(needs=["test"]), "wait for the image build"),
        (lambda w: w["jobs"]["deploy-prod"].pop("environment"), "approval"),
        (
            lambda w: w["jobs"]["deploy-prod"]["steps"][-1]["env"].pop("GITOPS"),
            "GitOps path skips this gate",
        ),
        (
            lambda w: w["jobs"]["deploy-dev"]["steps"][-1]["env"].update(DEPLOY_IMAGES="web=x:1"),
            "DEPLOY_IMAGES is not the digest output",
        ),
        (
            lambda w: w["jobs"].update(
                gitops={
                    "runs-on": "ubuntu-24.04",
                    "needs": "test",
                    "steps": [{"run": "scripts/ci/publish-manifests.sh prod"}],
                }
            ),
            "outside deploy.sh",
        ),
        (
            lambda w: w["jobs"]["image"]["steps"][3]["with"].pop("cache-to"),
            "no registry cache",
        ),
    ],
)
def test_github_gate_catches_breakage(
    deploy_workflow: dict[str, Any], breakage: Any, expected: str
) -> None:
    broken = copy.deepcopy(deploy_workflow)
    breakage(broken)
    problems = github_gate_problems(broken)
    assert any(expected in p for p in problems), problems


def test_gitlab_gate(gitlab: dict[str, Any]) -> None:
    assert gitlab_gate_problems(gitlab) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            lambda d: d["deploy-prod"].update(needs=["build-image"]),
            "prod does not wait for the staging deploy",
        ),
        (
            lambda d: d["deploy-staging"].update(needs=["build-image"]),
            "staging does not wait for the dev deploy",
        ),
        (lambda d: d["deploy-dev"].update(needs=["test"]), "wait for the image build"),
        (lambda d: d["build-image"].pop("artifacts"), "dotenv"),
        (
            lambda d: d.update(
                gitops={"stage": "deploy-prod", "script": ["scripts/ci/publish-manifests.sh prod"]}
            ),
            "outside deploy.sh",
        ),
    ],
)
def test_gitlab_gate_catches_breakage(gitlab: dict[str, Any], breakage: Any, expected: str) -> None:
    broken = copy.deepcopy(gitlab)
    breakage(broken)
    problems = gitlab_gate_problems(broken)
    assert any(expected in p for p in problems), problems


def test_deploy_sh_publishes_gitops_manifests_only_in_its_own_step() -> None:
    """GitOps goes through the deploy step of its stack: dev's job publishes dev, prod's (behind
    the approval) publishes prod, each followed by verify."""
    text = (CI_SCRIPTS / "deploy.sh").read_text()
    gitops = text[text.index('if [[ "${GITOPS:-false}" == true ]]') :]
    gitops = gitops[: gitops.index("\nfi\n")]
    assert '"$CI_DIR/publish-manifests.sh" "$stack"' in gitops
    assert gitops.index("publish-manifests.sh") < gitops.index('"$CI_DIR/verify.sh" "$stack"')
    code = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert code.index("GITOPS") < code.index("-m stackctl")  # before any pulumi up


def test_pull_requests_post_the_render_diff_in_every_system(gitlab: dict[str, Any]) -> None:
    diff = load_yaml(WORKFLOWS / "diff.yml")
    job = jobs(diff)["diff"]
    assert job["strategy"]["matrix"]["stack"] == list(SHIPPED_STACKS)
    run = next(s for s in steps(job) if "diff.sh" in str(s.get("run")))
    assert run["run"] == 'scripts/ci/diff.sh "$STACK" "$TARGET_BRANCH" "out/ci/diff-$STACK.md"'
    allow = str(run["env"]["APPSTACK_ALLOW_RISKY_DIFF"])
    assert "'allow-risky-diff'" in allow and "vars.APPSTACK_ALLOW_RISKY_DIFF" in allow
    assert {"labeled", "unlabeled"} <= set(triggers(diff)["pull_request"]["types"])
    assert github_problems(diff) == []
    all_jobs = gitlab_jobs(gitlab)
    for stack in SHIPPED_STACKS:
        mr = all_jobs[f"diff-{stack}"]
        assert mr["variables"]["STACK"] == stack
        assert any("scripts/ci/diff.sh" in line for line in script_lines(mr))
        label_rule = mr["rules"][0]
        assert "allow-risky-diff" in label_rule["if"]
        assert label_rule["variables"] == {"APPSTACK_ALLOW_RISKY_DIFF": "true"}

"""The CI scripts, run for real against a stand-in for `python -m stackctl` and the Pulumi CLI.

Each test copies scripts/ci into a throw-away git repo with two commits (`good`, then `new`),
points PYTHON at a stub that answers `-m stackctl ...` from a JSON history file (and hands
every other invocation, e.g. rollback_plan.py, to the real interpreter), and records each
stackctl call with its working directory. Secrets are sentinel strings that must never appear
in the output, even under `bash -x`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from tests.ci.pipelines import CI_SCRIPTS
from tests.webhook_sink import payload_text, slack_shape_problems, unreachable_url, webhook_sink

REPO_ROOT = Path(__file__).resolve().parents[2]

PASSPHRASE = "sentinel-passphrase-7f3a"
KUBE_SECRET = "sentinel-kube-token-91c2"
KUBECONFIG_DATA = (
    f"apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- user: {{token: {KUBE_SECRET}}}\n"
)

STUB = """#!{python}
import json, os, subprocess, sys
from pathlib import Path

argv = sys.argv[1:]
state = Path(os.environ["FAKE_STATE"])
if argv[:2] == ["-m", "stackctl.ops.notify"]:  # the real sender, posting to the test's sink
    os.execve({python!r}, [{python!r}, *argv], {{**os.environ, "PYTHONPATH": {root!r}}})
if argv[:2] == ["-m", "stackctl.ops.images"]:  # GitOps: digests written into the stack file
    with (state / "calls.jsonl").open("a") as fh:
        fh.write(json.dumps({{"args": ["images", *argv[2:]], "cwd": os.getcwd(),
                             "kubeconfig_ok": False}}) + "\\n")
    sys.exit(0)
if argv[:2] != ["-m", "stackctl"]:
    os.execv({python!r}, [{python!r}, *argv])
args = argv[2:]
kube = os.environ.get("KUBECONFIG", "")
with (state / "calls.jsonl").open("a") as fh:
    fh.write(json.dumps({{"args": args, "cwd": os.getcwd(),
        "notify_env": any(k.startswith("APPSTACK_NOTIFY") for k in os.environ),
        "kubeconfig_ok": bool(kube) and Path(kube).is_file()
            and "{secret}" in Path(kube).read_text()}}) + "\\n")
hist = state / "history.json"
rows = json.loads(hist.read_text()) if hist.exists() else None

def record(result):
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    version = max([r["version"] for r in rows or []], default=0) + 1
    rows.insert(0, {{"version": version, "kind": "update", "result": result, "commit": head}})
    hist.write_text(json.dumps(rows))

cmd = args[0]
if cmd == "history":
    if rows is None:
        sys.exit("error: stack not found")
    print(json.dumps(rows))
elif cmd == "check":
    print("0 violations")
    sys.exit(int(os.environ.get("FAKE_CHECK_RC", "0")))
elif cmd == "deploy" and "--preview-only" in args:
    print("== preview " + args[1])
    print("preview " + args[1] + ": +1 ~2 -0 (create 1, update 2)")
    sys.exit(int(os.environ.get("FAKE_PREVIEW_RC", "0")))
elif cmd == "deploy":
    rows = [] if rows is None else rows
    in_worktree = Path.cwd().resolve() != Path(os.environ["FAKE_REPO"]).resolve()
    outcome = os.environ.get("FAKE_REDEPLOY" if in_worktree else "FAKE_DEPLOY", "succeeded")
    if outcome == "early":
        sys.exit("failed: policy violation in preview")
    record(outcome)
    sys.exit(0 if outcome == "succeeded" else 1)
elif cmd == "rollback":
    record("succeeded")
    sys.exit(int(os.environ.get("FAKE_ROLLBACK_RC", "0")))
elif cmd == "verify":
    # FAKE_VERIFY: exit codes of successive verify calls, e.g. "1,0" (unhealthy, then healthy)
    counter = state / "verify-count"
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    codes = os.environ.get("FAKE_VERIFY", "0").split(",")
    code = int(codes[min(n, len(codes) - 1)])
    print("web  " + ("ok" if code == 0 else "FAILED") + "  http://web.example/health/ready")
    sys.exit(code)
elif cmd == "diff":
    print("| action | kind | name |")
    print("diff warning on stderr", file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_DIFF_RC", "0")))
elif cmd == "render":
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "deployment-web.yaml").write_text(os.environ.get("FAKE_RENDER", "kind: Deployment\\n"))
    print("rendered")
else:
    sys.exit("unexpected stackctl call: " + " ".join(args))
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@dataclass
class Result:
    code: int
    out: str  # stdout + stderr
    stdout: str


@dataclass
class Sandbox:
    repo: Path
    state: Path
    env: dict[str, str]
    good: str  # short sha of the first commit
    new: str  # short sha of HEAD

    def history(self, rows: list[dict[str, Any]] | None) -> None:
        path = self.state / "history.json"
        if rows is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(rows))

    def rows(self) -> list[dict[str, Any]]:
        return list(json.loads((self.state / "history.json").read_text()))

    def calls(self) -> list[dict[str, Any]]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [" ".join(c["args"]) for c in self.calls()]

    def run(self, script: str, *args: str, trace: bool = False, **env: str) -> Result:
        cmd = ["bash", "-x"] if trace else []
        proc = subprocess.run(
            [*cmd, str(self.repo / "scripts" / "ci" / script), *args],
            cwd=self.repo,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout + proc.stderr, proc.stdout)


def good_row(version: int, commit: str) -> dict[str, Any]:
    return {"version": version, "kind": "update", "result": "succeeded", "commit": commit}


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copytree(
        CI_SCRIPTS, repo / "scripts" / "ci", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / "Pulumi.yaml").write_text("name: appstack\n")
    # stackctl itself is the stub; its images module marks a commit that knows `--image`
    (repo / "stackctl" / "ops").mkdir(parents=True)
    (repo / "stackctl" / "ops" / "images.py").write_text("")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "good")
    good = git(repo, "rev-parse", "--short=7", "HEAD")
    (repo / "Pulumi.yaml").write_text("name: appstack\n# new\n")
    git(repo, "commit", "-q", "-am", "new")
    new = git(repo, "rev-parse", "--short=7", "HEAD")

    state = tmp_path / "state"
    state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python-stub"
    stub.write_text(STUB.format(python=sys.executable, secret=KUBE_SECRET, root=str(REPO_ROOT)))
    pulumi = bin_dir / "pulumi"
    pulumi.write_text("#!/bin/sh\necho v3.0.0-stub\n")
    for exe in (stub, pulumi):
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHON": str(stub),
        "FAKE_STATE": str(state),
        "FAKE_REPO": str(repo),
        "CI_STATE_DIR": str(tmp_path / "ci-state"),
        "RUNNER_TEMP": str(runner_temp),
        "PULUMI_BACKEND_URL": f"file://{tmp_path}/backend",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "KUBECONFIG_DATA": KUBECONFIG_DATA,
    }
    return Sandbox(repo=repo, state=state, env=env, good=good, new=new)


def assert_no_secrets(result: Result) -> None:
    assert PASSPHRASE not in result.out
    assert KUBE_SECRET not in result.out


def no_leftovers(sandbox: Sandbox) -> None:
    """No kubeconfig copy and no rollback worktree outlives the script."""
    assert list(Path(sandbox.env["RUNNER_TEMP"]).iterdir()) == []
    assert git(sandbox.repo, "worktree", "list").count("\n") == 0


# --------------------------------------------------------------------------------------------
# deploy.sh


def test_dev_deploy_succeeds(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "dev", trace=True)
    assert result.code == 0, result.out
    assert sandbox.commands() == [
        "history dev --json",
        "deploy dev --yes",
        "verify dev --timeout 300",
    ]
    assert all(c["kubeconfig_ok"] for c in sandbox.calls())
    assert_no_secrets(result)
    no_leftovers(sandbox)


def test_refresh_is_opt_in(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    assert sandbox.run("deploy.sh", "dev", DEPLOY_REFRESH="true").code == 0
    assert sandbox.commands()[-2] == "deploy dev --yes --refresh"


def test_failed_dev_deploy_is_not_rolled_back(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "dev", FAKE_DEPLOY="failed")
    assert result.code == 1, result.out
    assert sandbox.commands() == ["history dev --json", "deploy dev --yes"]
    assert "no automatic rollback for dev" in result.out


def test_failed_prod_deploy_redeploys_the_last_good_commit_and_stays_red(sandbox: Sandbox) -> None:
    sandbox.history([good_row(2, sandbox.good), good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "prod", trace=True, FAKE_DEPLOY="failed")
    assert result.code == 1, result.out  # red although the rollback succeeded
    assert sandbox.commands() == [
        "history prod --json",
        "deploy prod --yes",
        "history prod --json",
        "deploy prod --yes",
        "verify prod --timeout 300",  # after the rollback: reported, the job stays red
    ]
    redeploy = sandbox.calls()[-2]
    assert Path(redeploy["cwd"]).resolve() != sandbox.repo.resolve()  # a worktree at `good`
    assert redeploy["kubeconfig_ok"]
    assert [(r["version"], r["result"], r["commit"]) for r in sandbox.rows()[:2]] == [
        (4, "succeeded", sandbox.good),
        (3, "failed", sandbox.new),
    ]
    assert "automatic rollback of prod finished" in result.out
    assert_no_secrets(result)
    no_leftovers(sandbox)


def test_failed_prod_deploy_at_the_same_commit_restores_config(sandbox: Sandbox) -> None:
    sandbox.history([good_row(7, sandbox.new)])
    result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed")
    assert result.code == 1, result.out
    assert sandbox.commands()[-2] == "rollback prod --to 7 --yes"


def test_prod_failure_before_any_change_is_not_rolled_back(sandbox: Sandbox) -> None:
    sandbox.history([good_row(2, sandbox.good)])
    result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="early")
    assert result.code == 1, result.out
    assert sandbox.commands()[:3] == [
        "history prod --json",
        "deploy prod --yes",
        "history prod --json",
    ]
    assert "nothing changed" in result.out


def test_failed_rollback_is_reported_and_the_deploy_status_kept(sandbox: Sandbox) -> None:
    sandbox.history([good_row(2, sandbox.good)])
    result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed", FAKE_REDEPLOY="failed")
    assert result.code == 1, result.out
    assert "automatic rollback of prod FAILED" in result.out
    no_leftovers(sandbox)


def test_first_prod_deploy_failing_has_nothing_to_roll_back_to(sandbox: Sandbox) -> None:
    sandbox.history(None)  # the stack does not exist yet
    result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed")
    assert result.code == 1, result.out
    assert "no successful update" in result.out
    assert "automatic rollback of prod FAILED" in result.out


def test_rollback_after_deploy_does_not_repeat(sandbox: Sandbox) -> None:
    """A pipeline's failure handler (Jenkins post) may call rollback.sh after deploy.sh did."""
    sandbox.history([good_row(2, sandbox.good)])
    assert sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed").code == 1
    calls = len(sandbox.calls())
    again = sandbox.run("rollback.sh", "prod")
    assert again.code == 0, again.out
    assert "already ran" in again.out
    assert len(sandbox.calls()) == calls


def test_rollback_without_a_recorded_deploy_does_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run("rollback.sh", "prod")
    assert result.code == 0, result.out
    assert sandbox.calls() == []


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("PULUMI_BACKEND_URL", "neither PULUMI_BACKEND_URL nor PULUMI_ACCESS_TOKEN"),
        ("KUBECONFIG_DATA", "no cluster credentials"),
    ],
)
def test_missing_credentials_fail_before_any_stackctl_call(
    sandbox: Sandbox, unset: str, message: str
) -> None:
    del sandbox.env[unset]
    result = sandbox.run("deploy.sh", "prod")
    assert result.code == 2
    assert message in result.out
    assert sandbox.calls() == []


def test_bad_stack_argument(sandbox: Sandbox) -> None:
    result = sandbox.run("deploy.sh", "../etc")
    assert result.code == 2
    assert "usage" in result.out


# --------------------------------------------------------------------------------------------
# setup-kubeconfig.sh


def kubeconfig(sandbox: Sandbox, **env: str) -> tuple[Result, Path]:
    result = sandbox.run("setup-kubeconfig.sh", trace=True, **env)
    return result, Path(result.stdout.strip())


def test_kubeconfig_file_is_private_and_never_printed(sandbox: Sandbox) -> None:
    result, path = kubeconfig(sandbox)
    assert result.code == 0, result.out
    assert path.parent == Path(sandbox.env["RUNNER_TEMP"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == KUBECONFIG_DATA + "\n"
    assert_no_secrets(result)


def test_kubeconfig_from_base64(sandbox: Sandbox) -> None:
    env = {
        "KUBECONFIG_DATA": "",
        "KUBECONFIG_DATA_B64": base64.b64encode(b"clusters: []\n").decode(),
    }
    result, path = kubeconfig(sandbox, **env)
    assert result.code == 0, result.out
    assert path.read_text() == "clusters: []\n"


def test_kubeconfig_file_from_the_ci_system_is_used_in_place(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    existing = tmp_path / "jenkins-secret-file"
    existing.write_text("clusters: []\n")
    existing.chmod(0o644)
    result, path = kubeconfig(sandbox, KUBECONFIG_DATA="", KUBECONFIG=str(existing))
    assert result.code == 0, result.out
    assert path == existing
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600


def test_kubeconfig_without_clusters_is_rejected_without_showing_it(sandbox: Sandbox) -> None:
    result = sandbox.run("setup-kubeconfig.sh", KUBECONFIG_DATA=f"token: {KUBE_SECRET}")
    assert result.code == 2
    assert "no top-level 'clusters:'" in result.out
    assert_no_secrets(result)
    assert list(Path(sandbox.env["RUNNER_TEMP"]).iterdir()) == []


# --------------------------------------------------------------------------------------------
# preview.sh


def test_preview_writes_a_summary_for_the_review(sandbox: Sandbox, tmp_path: Path) -> None:
    summary = tmp_path / "preview-prod.md"
    result = sandbox.run("preview.sh", "prod", str(summary), trace=True)
    assert result.code == 0, result.out
    assert sandbox.commands() == ["check prod", "deploy prod --preview-only"]
    text = summary.read_text()
    assert text.startswith("<!-- appstack-preview:prod -->\n### Pulumi preview of `prod`: passed")
    assert f"- commit: `{sandbox.new}`" in text
    assert "- changes: `+1 ~2 -0 (create 1, update 2)`" in text
    assert PASSPHRASE not in text and KUBE_SECRET not in text
    assert_no_secrets(result)
    no_leftovers(sandbox)


@pytest.mark.parametrize("failing", ["FAKE_PREVIEW_RC", "FAKE_CHECK_RC"])
def test_failed_preview_still_writes_the_summary(
    sandbox: Sandbox, tmp_path: Path, failing: str
) -> None:
    summary = tmp_path / "preview-dev.md"
    result = sandbox.run("preview.sh", "dev", str(summary), **{failing: "1"})
    assert result.code == 1, result.out
    assert "### Pulumi preview of `dev`: FAILED" in summary.read_text()


def test_preview_appends_to_the_github_step_summary(sandbox: Sandbox, tmp_path: Path) -> None:
    step_summary = tmp_path / "step-summary.md"
    result = sandbox.run("preview.sh", "dev", GITHUB_STEP_SUMMARY=str(step_summary))
    assert result.code == 0, result.out
    assert (sandbox.repo / "out" / "ci" / "preview-dev.md").is_file()
    assert "appstack-preview:dev" in step_summary.read_text()


# --------------------------------------------------------------------------------------------
# publish-manifests.sh (GitOps)


def test_publish_manifests_pushes_only_changes(sandbox: Sandbox, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(sandbox.repo, "remote", "add", "origin", str(remote))
    first = sandbox.run("publish-manifests.sh", "prod")
    assert first.code == 0, first.out
    files = git(remote, "ls-tree", "-r", "--name-only", "manifests").splitlines()
    assert files == ["manifests/prod/deployment-web.yaml"]
    assert git(remote, "log", "--format=%s", "manifests") == f"render prod from {sandbox.new}"

    again = sandbox.run("publish-manifests.sh", "prod")
    assert again.code == 0, again.out
    assert "nothing to push" in again.out

    changed = sandbox.run("publish-manifests.sh", "prod", FAKE_RENDER="kind: Deployment\n# 2\n")
    assert changed.code == 0, changed.out
    assert len(git(remote, "log", "--format=%s", "manifests").splitlines()) == 2
    assert git(sandbox.repo, "worktree", "list").count("\n") == 0


# --------------------------------------------------------------------------------------------
# Built images, verification after the deploy, rollback of an unhealthy update (issue 11)

DIGEST = "sha256:" + "ab" * 32
BUILT = f"web=registry.example.com/appstack/web@{DIGEST}"
OLD_IMAGES = "web=registry.example.com/appstack/web@sha256:" + "01" * 32


def test_deploy_runs_the_built_digest(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "dev", DEPLOY_IMAGES=BUILT)
    assert result.code == 0, result.out
    assert sandbox.commands()[1] == f"deploy dev --yes --image {BUILT}"


def test_images_file_from_the_build_step_is_used(sandbox: Sandbox) -> None:
    """Jenkins: build-image.sh wrote $CI_STATE_DIR/images, the stash brought it here."""
    sandbox.history([good_row(1, sandbox.good)])
    state_dir = Path(sandbox.env["CI_STATE_DIR"])
    state_dir.mkdir(parents=True)
    (state_dir / "images").write_text(BUILT + "\n")
    assert sandbox.run("deploy.sh", "dev").code == 0
    assert sandbox.commands()[1] == f"deploy dev --yes --image {BUILT}"


def test_malformed_images_are_refused_before_anything_runs(sandbox: Sandbox) -> None:
    result = sandbox.run("deploy.sh", "prod", DEPLOY_IMAGES="web")
    assert result.code == 2
    assert "bad image in DEPLOY_IMAGES" in result.out
    assert sandbox.calls() == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_unhealthy_prod_or_staging_update_is_rolled_back_to_the_previous_images(
    sandbox: Sandbox, stack: str
) -> None:
    """The update succeeds, `stackctl verify` fails: the failure path rolls back to the last
    good update, with the images it ran, and the job stays red. Staging keeps prod's rules, so
    its functional checks failing rolls it back too (and the red job stops the pipeline before
    the prod approval)."""
    sandbox.history([{**good_row(2, sandbox.good), "images": OLD_IMAGES}])
    result = sandbox.run("deploy.sh", stack, DEPLOY_IMAGES=BUILT, FAKE_VERIFY="1,0")
    assert result.code == 1, result.out
    assert sandbox.commands() == [
        f"history {stack} --json",
        f"deploy {stack} --yes --image {BUILT}",
        f"verify {stack} --timeout 300",
        f"history {stack} --json",
        f"deploy {stack} --yes --image {OLD_IMAGES}",
        f"verify {stack} --timeout 300",
    ]
    assert Path(sandbox.calls()[4]["cwd"]).resolve() != sandbox.repo.resolve()  # at `good`
    assert "FAILED verification after a successful update" in result.out
    assert f"automatic rollback of {stack} finished" in result.out
    no_leftovers(sandbox)


def test_the_scripts_roll_back_exactly_the_environments_with_prods_rules() -> None:
    """common.sh's ROLLBACK_ENVIRONMENTS is the config model's `productionRules`, read back."""
    common = (CI_SCRIPTS / "common.sh").read_text()
    match = re.search(r"^ROLLBACK_ENVIRONMENTS=\(([^)]*)\)$", common, re.M)
    assert match, "common.sh defines ROLLBACK_ENVIRONMENTS"
    strict = [env for env in config_model.environments() if config_model.production_rules(env)]
    assert match.group(1).split() == strict


def test_redeploy_of_a_commit_without_deploy_image_uses_its_stack_file(
    sandbox: Sandbox,
) -> None:
    """The last good commit predates `deploy --image`: its stackctl would reject the flag."""
    git(sandbox.repo, "rm", "-q", "-r", "stackctl")
    git(sandbox.repo, "commit", "-q", "-m", "before deploy --image existed")
    old = git(sandbox.repo, "rev-parse", "--short=7", "HEAD")
    (sandbox.repo / "Pulumi.yaml").write_text("name: appstack\n# newer\n")
    git(sandbox.repo, "commit", "-q", "-am", "newer")
    sandbox.history([{**good_row(2, old), "images": OLD_IMAGES}])
    result = sandbox.run("deploy.sh", "prod", FAKE_VERIFY="1,0")
    assert result.code == 1, result.out
    assert sandbox.commands()[4] == "deploy prod --yes"
    assert "predates deploy --image" in result.out


def test_unhealthy_dev_update_fails_the_pipeline_without_rollback(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "dev", FAKE_VERIFY="1")
    assert result.code == 1, result.out
    assert sandbox.commands()[-1] == "verify dev --timeout 300"
    assert "no automatic rollback for dev" in result.out


def test_verify_urls_and_timeout_reach_stackctl(sandbox: Sandbox) -> None:
    env = {"VERIFY_URLS": "web=http://127.0.0.1:8080/health/ready", "VERIFY_TIMEOUT": "60"}
    result = sandbox.run("verify.sh", "dev", **env)
    assert result.code == 0, result.out
    assert sandbox.commands() == [
        "verify dev --timeout 60 --url web=http://127.0.0.1:8080/health/ready"
    ]


def gitops_remote(sandbox: Sandbox, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(sandbox.repo, "remote", "add", "origin", str(remote))
    return remote


def test_gitops_deploy_publishes_this_stack_with_the_digest_then_verifies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    remote = gitops_remote(sandbox, tmp_path)
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_DATA"):
        del sandbox.env[name]  # GitOps needs no Pulumi backend and no cluster credentials
    env = {"GITOPS": "true", "DEPLOY_IMAGES": BUILT, "VERIFY_URLS": "web=https://web.dev/ready"}
    result = sandbox.run("deploy.sh", "dev", **env)
    assert result.code == 0, result.out
    commands = sandbox.commands()
    assert commands[0] == f"images dev {BUILT}"
    assert commands[1].startswith("render dev --out ")
    assert commands[2] == (
        "verify dev --timeout 300 --url web=https://web.dev/ready --no-outputs "
        f"--expect-version web={DIGEST[7:19]}"
    )
    assert git(remote, "ls-tree", "-r", "--name-only", "manifests") == (
        "manifests/dev/deployment-web.yaml"
    )


def test_gitops_verification_failure_fails_the_deploy(sandbox: Sandbox, tmp_path: Path) -> None:
    gitops_remote(sandbox, tmp_path)
    env = {"GITOPS": "true", "VERIFY_URLS": "web=https://web/ready", "FAKE_VERIFY": "1"}
    assert sandbox.run("deploy.sh", "prod", **env).code == 1


GITOPS_PROD = {"GITOPS": "true", "VERIFY_URLS": "web=https://web/ready", "DEPLOY_IMAGES": BUILT}


def published(remote: Path, stack: str = "prod") -> str:
    """The stack's manifest on the remote's manifests branch ('' if it has none)."""
    files = git(remote, "ls-tree", "-r", "--name-only", "manifests").splitlines()
    path = f"manifests/{stack}/deployment-web.yaml"
    return git(remote, "show", f"manifests:{path}") if path in files else ""


def test_failed_gitops_prod_deploy_reverts_its_manifests_and_stays_red(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    remote = gitops_remote(sandbox, tmp_path)
    earlier = sandbox.run("publish-manifests.sh", "prod", FAKE_RENDER="kind: Deployment # v1\n")
    assert earlier.code == 0, earlier.out
    good_head = git(remote, "rev-parse", "manifests")

    env = {**GITOPS_PROD, "FAKE_RENDER": "kind: Deployment # v2\n", "FAKE_VERIFY": "1,0"}
    result = sandbox.run("deploy.sh", "prod", **env)
    assert result.code == 1, result.out
    assert published(remote) == "kind: Deployment # v1"
    subjects = git(remote, "log", "--format=%s", "manifests").splitlines()
    pushed = git(remote, "rev-parse", "manifests~1")
    assert subjects[0] == f"revert prod to {good_head[:12]}: {pushed[:12]} failed verification"
    assert subjects[1:] == [f"render prod from {sandbox.new}"] * 2
    verifies = [c for c in sandbox.commands() if c.startswith("verify ")]
    assert len(verifies) == 2
    assert "--expect-version" in verifies[0] and "--expect-version" not in verifies[1]
    assert "failed deploy still fails this pipeline" in result.out
    no_leftovers(sandbox)

    head = git(remote, "rev-parse", "manifests")
    again = sandbox.run("revert-manifests.sh", "prod")  # a failure handler calling it again
    assert again.code == 0 and "nothing to revert" in again.out
    assert git(remote, "rev-parse", "manifests") == head


def test_failed_gitops_dev_deploy_keeps_its_manifests(sandbox: Sandbox, tmp_path: Path) -> None:
    remote = gitops_remote(sandbox, tmp_path)
    result = sandbox.run("deploy.sh", "dev", **{**GITOPS_PROD, "FAKE_VERIFY": "1"})
    assert result.code == 1, result.out
    assert published(remote, "dev") == "kind: Deployment"
    assert "no automatic rollback for dev" in result.out


@pytest.mark.parametrize("dev_published", [True, False])
def test_reverting_a_first_publish_removes_the_stacks_manifests(
    sandbox: Sandbox, tmp_path: Path, dev_published: bool
) -> None:
    remote = gitops_remote(sandbox, tmp_path)
    if dev_published:  # another stack's manifests are on the branch, and stay
        assert sandbox.run("publish-manifests.sh", "dev").code == 0
        was = git(remote, "rev-parse", "manifests")[:12]
    else:  # the branch starts with this publish
        was = "no manifests (its first publish)"
    result = sandbox.run("deploy.sh", "prod", **{**GITOPS_PROD, "FAKE_VERIFY": "1"})
    assert result.code == 1, result.out
    assert published(remote, "prod") == ""
    assert published(remote, "dev") == ("kind: Deployment" if dev_published else "")
    subject = git(remote, "log", "-1", "--format=%s", "manifests")
    assert subject.startswith(f"revert prod to {was}: ")


def test_a_newer_publish_of_the_stack_is_not_reverted(sandbox: Sandbox, tmp_path: Path) -> None:
    remote = gitops_remote(sandbox, tmp_path)
    assert sandbox.run("publish-manifests.sh", "prod").code == 0
    # another pipeline (its own state) publishes prod again afterwards
    other = sandbox.run(
        "publish-manifests.sh",
        "prod",
        CI_STATE_DIR=str(tmp_path / "other-state"),
        FAKE_RENDER="kind: Deployment # newer\n",
    )
    assert other.code == 0, other.out
    head = git(remote, "rev-parse", "manifests")
    result = sandbox.run("revert-manifests.sh", "prod")
    assert result.code == 1
    assert "not reverting a newer publish" in result.out
    assert git(remote, "rev-parse", "manifests") == head
    assert published(remote) == "kind: Deployment # newer"


@pytest.mark.parametrize("script", ["publish-manifests.sh", "revert-manifests.sh"])
def test_an_invalid_manifests_branch_is_refused(sandbox: Sandbox, script: str) -> None:
    result = sandbox.run(script, "prod", "bad..branch")
    assert result.code == 2
    assert "invalid branch name: bad..branch" in result.out
    assert sandbox.calls() == []


def test_gitops_without_verify_urls_publishes_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run("deploy.sh", "prod", GITOPS="true")
    assert result.code == 2
    assert "set VERIFY_URLS" in result.out
    assert sandbox.calls() == []


# --------------------------------------------------------------------------------------------
# diff.sh (issue 10: the pull request diff)


@pytest.fixture
def pr_sandbox(sandbox: Sandbox, tmp_path: Path) -> Sandbox:
    """The target branch `main` on the remote is at `good`; the pull request's HEAD is `new`."""
    remote = gitops_remote(sandbox, tmp_path)
    git(sandbox.repo, "push", "-q", "origin", "HEAD~1:refs/heads/main")
    assert git(remote, "rev-parse", "--short=7", "main") == sandbox.good
    return sandbox


@pytest.mark.parametrize(
    ("rc", "allowed", "expected", "verdict"),
    [
        ("0", "false", 0, "no risky change"),
        ("3", "false", 3, "RISKY: needs review"),
        ("3", "true", 0, "RISKY, allowed"),
        ("2", "true", 2, "FAILED: bad input"),
        ("1", "true", 1, "FAILED (exit 1)"),
    ],
)
def test_diff_exit_status_and_summary(
    pr_sandbox: Sandbox, tmp_path: Path, rc: str, allowed: str, expected: int, verdict: str
) -> None:
    summary = tmp_path / "diff-prod.md"
    env = {"FAKE_DIFF_RC": rc, "APPSTACK_ALLOW_RISKY_DIFF": allowed}
    result = pr_sandbox.run("diff.sh", "prod", "main", str(summary), **env)
    assert result.code == expected, result.out
    base = git(pr_sandbox.repo, "rev-parse", pr_sandbox.good)
    assert pr_sandbox.commands() == [f"diff prod --base {base} --markdown"]
    text = summary.read_text()
    assert text.startswith(
        f"<!-- appstack-diff:prod -->\n### Render diff of `prod` against `main`: {verdict}"
    )
    assert "| action | kind | name |" in text
    assert "diff warning on stderr" in text


def test_diff_needs_a_target_branch(pr_sandbox: Sandbox) -> None:
    assert pr_sandbox.run("diff.sh", "dev").code == 2
    assert pr_sandbox.run("diff.sh", "dev", "no-such-branch").code == 2
    assert pr_sandbox.calls() == []


# --------------------------------------------------------------------------------------------
# build-image.sh: the service image and the Jenkins agent's tools image, each by digest

BUILDCTL_STUB = """#!/bin/sh
# buildctl-daemonless.sh stand-in: records its arguments, "pushes" (a digest derived from the
# image name) and writes the metadata file as buildctl does (`containerimage.digest`).
printf '%s\\n' "$*" >>"$FAKE_STATE/buildctl.log"
name="" metadata=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output) name="$(printf '%s' "$2" | sed -n 's/.*name=\\([^,]*\\).*/\\1/p')"; shift ;;
    --metadata-file) metadata="$2"; shift ;;
  esac
  shift
done
digest="$(printf '%s' "$name" | sha256sum | cut -c1-64)"
printf '{"containerimage.digest": "sha256:%s"}\\n' "$digest" >"$metadata"
"""

WEB_REPO = "registry.example.com/appstack/web"
AGENT_REPO = "registry.example.com/appstack/ci-agent"


def pushed_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


@pytest.fixture
def builder(sandbox: Sandbox, tmp_path: Path) -> Sandbox:
    stub = tmp_path / "bin" / "buildctl-daemonless.sh"
    stub.write_text(BUILDCTL_STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    sandbox.env.update(
        {
            "IMAGE_REPOSITORY": WEB_REPO,
            "GIT_COMMIT": "c" * 40,
            "REGISTRY_USERNAME": "ci-bot",
            "REGISTRY_PASSWORD": "sentinel-registry-token-5d1e",
        }
    )
    return sandbox


def build(sandbox: Sandbox, *args: str, **env: str) -> Result:
    proc = subprocess.run(
        ["sh", str(sandbox.repo / "scripts" / "ci" / "build-image.sh"), *args],
        cwd=sandbox.repo,
        env={**sandbox.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout + proc.stderr, proc.stdout)


AGENT_ARGS = ("jenkins-agent", "jenkins/agent", "jenkins/agent/Dockerfile", AGENT_REPO)


def test_the_agent_image_is_built_into_its_own_repository_beside_the_service_image(
    builder: Sandbox,
) -> None:
    """The pipelines' build step: web, then the agent's tools image. Each is pushed to its own
    repository (tag = commit, its own cache) and both digests are handed on, neither clobbering
    the other: the Jenkins stash (`images`) and the GitLab dotenv (`DEPLOY_IMAGES`)."""
    assert build(builder).code == 0
    result = build(builder, *AGENT_ARGS)
    assert result.code == 0, result.out
    assert "sentinel-registry-token-5d1e" not in result.out

    commit = "c" * 40
    web = f"web={WEB_REPO}@{pushed_digest(f'{WEB_REPO}:{commit}')}"
    agent = f"jenkins-agent={AGENT_REPO}@{pushed_digest(f'{AGENT_REPO}:{commit}')}"
    state = Path(builder.env["CI_STATE_DIR"])
    assert (state / "images").read_text() == f"{web}\n{agent}\n"
    assert (state / "image.env").read_text() == f"DEPLOY_IMAGES={web},{agent}\n"

    web_call, agent_call = (builder.state / "buildctl.log").read_text().splitlines()
    assert "--local context=app --local dockerfile=app --opt filename=Dockerfile" in web_call
    assert (
        "--local context=jenkins/agent --local dockerfile=jenkins/agent --opt filename=Dockerfile"
        in agent_call
    )
    assert f"type=registry,ref={AGENT_REPO}:buildcache,mode=max" in agent_call
    assert f"name={AGENT_REPO}:{'c' * 40},push=true" in agent_call
    assert WEB_REPO not in agent_call

    # a rebuild of one service replaces its own record only
    commit = "d" * 40
    assert build(builder, *AGENT_ARGS, GIT_COMMIT=commit).code == 0
    agent2 = f"jenkins-agent={AGENT_REPO}@{pushed_digest(f'{AGENT_REPO}:{commit}')}"
    assert (state / "images").read_text() == f"{web}\n{agent2}\n"


def test_the_agent_image_needs_its_repository(builder: Sandbox) -> None:
    result = build(builder, *AGENT_ARGS[:3], "", IMAGE_REPOSITORY="")
    assert result.code == 2
    assert "repository of jenkins-agent" in result.out
    assert not (builder.state / "buildctl.log").exists()


BOTH = f"{BUILT},jenkins-agent={AGENT_REPO}@sha256:{'cd' * 32}"


def test_deploy_passes_the_agent_digest_too(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    result = sandbox.run("deploy.sh", "prod", DEPLOY_IMAGES=BOTH)
    assert result.code == 0, result.out
    assert sandbox.commands()[1] == (
        f"deploy prod --yes --image {BUILT} --image jenkins-agent={AGENT_REPO}@sha256:{'cd' * 32}"
    )


def test_gitops_publishes_the_agent_digest_and_waits_only_for_apps(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    gitops_remote(sandbox, tmp_path)
    env = {"GITOPS": "true", "DEPLOY_IMAGES": BOTH, "VERIFY_URLS": "web=https://web.dev/ready"}
    result = sandbox.run("deploy.sh", "dev", **env)
    assert result.code == 0, result.out
    commands = sandbox.commands()
    assert commands[0] == f"images dev {BUILT} jenkins-agent={AGENT_REPO}@sha256:{'cd' * 32}"
    assert commands[2].endswith(f"--expect-version web={DIGEST[7:19]}")  # not the agent


def test_the_agent_images_revision_is_the_last_commit_that_changed_it(builder: Sandbox) -> None:
    """IMAGE_REVISION=context: the revision label and SOURCE_DATE_EPOCH (BuildKit >= 0.11: the
    `created` times of the image config and its history, moby/buildkit docs/build-repro.md) come
    from the last commit that changed jenkins/agent, so a commit that leaves it alone rebuilds
    from the registry cache to the same digest. The service image keeps the commit."""
    repo = builder.repo
    (repo / "jenkins" / "agent").mkdir(parents=True)
    (repo / "jenkins" / "agent" / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "agent")
    changed, epoch = git(repo, "log", "-1", "--format=%H %ct").split()
    (repo / "Pulumi.yaml").write_text("name: appstack\n# later\n")
    git(repo, "commit", "-q", "-am", "later")
    head = git(repo, "rev-parse", "HEAD")

    assert build(builder, GIT_COMMIT=head).code == 0
    result = build(builder, *AGENT_ARGS, GIT_COMMIT=head, IMAGE_REVISION="context")
    assert result.code == 0, result.out
    web_call, agent_call = (builder.state / "buildctl.log").read_text().splitlines()
    assert f"label:org.opencontainers.image.revision={head}" in web_call
    assert "SOURCE_DATE_EPOCH" not in web_call
    assert f"label:org.opencontainers.image.revision={changed}" in agent_call
    assert f"--opt build-arg:SOURCE_DATE_EPOCH={epoch}" in agent_call
    assert f"name={AGENT_REPO}:{head},push=true" in agent_call  # the tag is still the commit


# --------------------------------------------------------------------------------------------
# Notifications: the real sender (stackctl.ops.notify) posting to a local sink
# (tests/webhook_sink.py: an http.server on 127.0.0.1; the payload judged by Slack's
# incoming-webhook shape, the content by the deploy's own outcome).

NOTIFY_URL = "APPSTACK_NOTIFY_WEBHOOK_URL"
OLD_IMAGE = "web=registry.example.com/appstack/web:1.0.0"


def assert_quiet_children(sandbox: Sandbox, result: Result, url: str) -> None:
    """The URL is in no output (even under bash -x) and no stackctl the scripts ran saw it."""
    assert url not in result.out
    assert "sentinel-webhook-token" not in result.out
    assert not any(call.get("notify_env") for call in sandbox.calls())


def test_failed_dev_deploy_posts_one_notification(sandbox: Sandbox) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    with webhook_sink() as sink:
        env = {NOTIFY_URL: sink.url, "DEPLOY_IMAGES": BUILT, "FAKE_DEPLOY": "early"}
        result = sandbox.run("deploy.sh", "dev", trace=True, **env)
    assert result.code == 1, result.out
    (body,) = sink.payloads()
    assert slack_shape_problems(body) == []
    assert body["text"] == (
        "Deploy of dev (dev) FAILED: policy violation in preview; no automatic rollback (dev)"
    )
    seen = payload_text(body)
    assert "*Stack*\ndev" in seen and "*Environment*\ndev" in seen and "*Apps*\nweb" in seen
    assert BUILT in seen
    assert_quiet_children(sandbox, result, sink.url)


def test_automatic_rollback_posts_the_version_rolled_back_to(sandbox: Sandbox) -> None:
    sandbox.history([{**good_row(2, sandbox.good), "images": OLD_IMAGE}, good_row(1, sandbox.good)])
    with webhook_sink() as sink:
        env = {NOTIFY_URL: sink.url, "DEPLOY_IMAGES": BUILT, "FAKE_DEPLOY": "failed"}
        result = sandbox.run("deploy.sh", "prod", trace=True, **env)
    assert result.code == 1, result.out  # red although the rollback succeeded
    failed, rolled = sink.payloads()
    assert [slack_shape_problems(b) for b in (failed, rolled)] == [[], []]
    assert failed["text"] == (
        "Deploy of prod (prod) FAILED: stackctl deploy exited 1; automatic rollback follows"
    )
    assert BUILT in payload_text(failed)
    assert rolled["text"] == (
        f"prod (prod) rolled back to v2: automatic rollback after a failed deploy: v2 (commit "
        f"{sandbox.good}) runs again"
    )
    assert "*Rolled back to*\nv2" in payload_text(rolled)
    assert OLD_IMAGE in payload_text(rolled) and BUILT not in payload_text(rolled)
    assert_quiet_children(sandbox, result, sink.url)

    again = sandbox.run("rollback.sh", "prod", **{NOTIFY_URL: sink.url})  # a failure handler
    assert again.code == 0 and "already ran" in again.out
    assert len(sink.requests) == 2


def test_unhealthy_update_and_failed_rollback_are_posted(sandbox: Sandbox) -> None:
    sandbox.history([good_row(2, sandbox.good)])
    with webhook_sink() as sink:
        env = {NOTIFY_URL: sink.url, "FAKE_VERIFY": "1", "FAKE_REDEPLOY": "failed"}
        result = sandbox.run("deploy.sh", "staging", **env)
    assert result.code == 1, result.out
    failed, rollback = sink.payloads()
    assert failed["text"].startswith(
        "Deploy of staging (staging) FAILED: the update succeeded but the apps did not pass "
        "verification"
    )
    assert rollback["text"] == (
        "Rollback of staging (staging) to v2 FAILED: automatic rollback exited 1; the stack "
        "needs an operator"
    )


def test_impossible_rollback_is_posted_with_its_reason(sandbox: Sandbox) -> None:
    sandbox.history(None)  # a first deploy: nothing to roll back to
    with webhook_sink() as sink:
        result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed", **{NOTIFY_URL: sink.url})
    assert result.code == 1, result.out
    texts = [b["text"] for b in sink.payloads()]
    assert len(texts) == 2
    assert texts[1].startswith("Rollback of prod (prod) FAILED: automatic rollback not possible: ")
    assert "no successful update" in texts[1]


def test_success_and_a_failure_that_changed_nothing_post_only_the_failure(
    sandbox: Sandbox,
) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    with webhook_sink() as sink:
        assert sandbox.run("deploy.sh", "dev", **{NOTIFY_URL: sink.url}).code == 0
        assert sink.requests == []
        result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="early", **{NOTIFY_URL: sink.url})
    assert result.code == 1, result.out
    assert "nothing changed" in result.out  # rollback.sh: plan `none`, posts nothing
    assert [b["text"].split(":")[0] for b in sink.payloads()] == ["Deploy of prod (prod) FAILED"]


def test_unset_url_posts_nothing(sandbox: Sandbox) -> None:
    sandbox.history([good_row(2, sandbox.good)])
    with webhook_sink() as sink:
        result = sandbox.run("deploy.sh", "prod", FAKE_DEPLOY="failed")
    assert result.code == 1, result.out
    assert sink.requests == []
    assert "notification" not in result.out


def test_url_from_a_secret_file(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.history([good_row(1, sandbox.good)])
    secret = tmp_path / "webhook-url"
    with webhook_sink() as sink:
        secret.write_text(sink.url + "\n")
        env = {"APPSTACK_NOTIFY_WEBHOOK_URL_FILE": str(secret), "FAKE_DEPLOY": "failed"}
        result = sandbox.run("deploy.sh", "dev", trace=True, **env)
    assert result.code == 1, result.out
    assert len(sink.requests) == 1
    assert_quiet_children(sandbox, result, sink.url)


@pytest.mark.parametrize(
    ("stack", "env", "code"),
    [
        ("dev", {"FAKE_DEPLOY": "failed"}, 1),
        ("prod", {"FAKE_DEPLOY": "failed"}, 1),
        ("prod", {"FAKE_DEPLOY": "failed", "FAKE_REDEPLOY": "failed"}, 1),
        ("prod", {"FAKE_DEPLOY": "early"}, 1),
    ],
)
def test_an_unreachable_webhook_changes_no_exit_status_or_step(
    sandbox: Sandbox, stack: str, env: dict[str, str], code: int
) -> None:
    sandbox.history([good_row(2, sandbox.good)])
    url = unreachable_url()
    result = sandbox.run("deploy.sh", stack, trace=True, **{NOTIFY_URL: url, **env})
    assert result.code == code, result.out
    with_url = sandbox.commands()

    (sandbox.state / "calls.jsonl").unlink()
    shutil.rmtree(sandbox.env["CI_STATE_DIR"])
    sandbox.history([good_row(2, sandbox.good)])
    without = sandbox.run("deploy.sh", stack, **env)
    assert without.code == code
    assert sandbox.commands() == with_url
    assert "notification not sent: ConnectionRefusedError" in result.out
    assert_quiet_children(sandbox, result, url)
    no_leftovers(sandbox)


def test_failed_gitops_deploy_posts_the_failure_and_the_revert(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    gitops_remote(sandbox, tmp_path)
    assert sandbox.run("publish-manifests.sh", "prod").code == 0
    with webhook_sink() as sink:
        env = {**GITOPS_PROD, "FAKE_VERIFY": "1,0", NOTIFY_URL: sink.url}
        result = sandbox.run("deploy.sh", "prod", **env)
    assert result.code == 1, result.out
    failed, reverted = (b["text"] for b in sink.payloads())
    assert failed.startswith("Deploy of prod (prod) FAILED: GitOps: the apps did not pass")
    assert reverted.startswith("prod (prod) rolled back: GitOps: the manifests of prod were")
    assert_quiet_children(sandbox, result, sink.url)

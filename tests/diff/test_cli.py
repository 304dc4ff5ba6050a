"""`python -m stackctl diff` end to end on a throwaway git repository holding this project:
exit statuses, one-line errors (never a traceback), Secret values never printed, the base
revision rendered from a temporary worktree that is gone afterwards, the checkout untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackctl.render.stack import REPO_ROOT

GIT_ENV = {
    "GIT_AUTHOR_NAME": "diff test",
    "GIT_AUTHOR_EMAIL": "diff@example.com",
    "GIT_COMMITTER_NAME": "diff test",
    "GIT_COMMITTER_EMAIL": "diff@example.com",
}
CIPHER_BEFORE = "v1:AAAAbeforeCIPHERTEXTbefore0000"
CIPHER_AFTER = "v1:BBBBafterCIPHERTEXTafter11111"


@dataclass
class Repo:
    path: Path
    tmp: Path

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.path / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    def diff(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["TMPDIR"] = str(self.tmp)
        return subprocess.run(
            [sys.executable, "-m", "stackctl", "diff", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """This project's files (tracked and new, not ignored) committed in a fresh repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    root = tmp_path / "appstack"
    for name in filter(None, files):
        source = REPO_ROOT / os.fsdecode(name)
        if source.is_file() and not source.is_symlink():
            target = root / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    r = Repo(root, scratch)
    r.git("init", "-q", "-b", "main")
    r.commit("base")
    return r


def assert_clean_exit(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


def assert_no_leftovers(repo: Repo) -> None:
    assert len(repo.git("worktree", "list").splitlines()) == 1
    assert list(repo.tmp.iterdir()) == []


def test_image_bump_against_head_and_against_a_committed_base(repo: Repo) -> None:
    unchanged = repo.diff("prod")
    assert_clean_exit(unchanged, 0)
    assert "no changes" in unchanged.stdout

    repo.edit("Pulumi.prod.yaml", "web:0.1.0", "web:0.2.0")
    status = repo.git("status", "--porcelain")
    result = repo.diff("prod", "--json")
    assert_clean_exit(result, 0)
    changes = {(c["kind"], c["name"]): c for c in json.loads(result.stdout)}
    deployment = changes[("Deployment", "web")]
    assert deployment["action"] == "update" and deployment["restarts_pods"]
    assert "spec.template.spec.containers[0].image" in deployment["fields"]
    assert repo.git("status", "--porcelain") == status  # the checkout is untouched
    assert_no_leftovers(repo)

    repo.commit("bump web")
    committed = repo.diff("prod", "--base", "HEAD~1", "--markdown")
    assert_clean_exit(committed, 0)
    assert "| update | `Deployment/appstack/web` |" in committed.stdout
    assert_no_leftovers(repo)


def test_each_revision_renders_with_its_own_code(repo: Repo) -> None:
    # the base revision's worker is forked from the process that loaded the working tree's code
    repo.edit("components/kube/labels.py", 'MANAGED_BY = "pulumi"', 'MANAGED_BY = "appstack"')
    result = repo.diff("dev", "--json")
    assert_clean_exit(result, 0)
    changes = {(c["kind"], c["name"]): c for c in json.loads(result.stdout)}
    label = 'metadata.labels["app.kubernetes.io/managed-by"]'
    assert label in changes[("Service", "web")]["fields"]
    assert_no_leftovers(repo)


def test_a_changed_secret_is_risky_and_its_value_never_printed(repo: Repo) -> None:
    secrets = "  appstack:secrets:\n    web:\n      API_TOKEN:\n        secure: {}\n"
    path = repo.path / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + secrets.format(CIPHER_BEFORE))
    repo.commit("add a secret")
    path.write_text(path.read_text().replace(CIPHER_BEFORE, CIPHER_AFTER))
    outputs = []
    for fmt in ((), ("--json",), ("--markdown",)):
        result = repo.diff("dev", *fmt)
        assert_clean_exit(result, 3)
        outputs.append(result.stdout + result.stderr)
    assert "secret-value" in outputs[0]
    for text in outputs:
        assert CIPHER_BEFORE not in text and CIPHER_AFTER not in text
    assert_no_leftovers(repo)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "unknown stack 'nope'"),
        (("dev", "--base", "no-such-ref"), "unknown git revision 'no-such-ref'"),
        (("dev", "--json", "--markdown"), "not allowed with argument"),
    ],
)
def test_bad_input_exits_2_with_one_line(repo: Repo, args: tuple[str, ...], message: str) -> None:
    result = repo.diff(*args)
    assert_clean_exit(result, 2)
    assert message in result.stderr
    assert_no_leftovers(repo)


def test_a_config_error_names_the_revision(repo: Repo) -> None:
    repo.edit("Pulumi.dev.yaml", "appstack:environment: dev", "appstack:environment: qa")
    repo.commit("broken base")
    repo.edit("Pulumi.dev.yaml", "appstack:environment: qa", "appstack:environment: dev")
    base_broken = repo.diff("dev")
    assert_clean_exit(base_broken, 2)
    head = repo.git("rev-parse", "HEAD").strip()
    assert f"at revision HEAD ({head[:12]})" in base_broken.stderr
    assert "appstack:environment" in base_broken.stderr

    repo.commit("fixed")
    repo.edit("Pulumi.dev.yaml", "appstack:environment: dev", "appstack:environment: qa")
    tree_broken = repo.diff("dev")
    assert_clean_exit(tree_broken, 2)
    assert "in the working tree" in tree_broken.stderr
    assert_no_leftovers(repo)


def test_a_stack_missing_at_the_base_revision_is_bad_input(repo: Repo) -> None:
    (repo.path / "Pulumi.dev-alice.yaml").write_text((repo.path / "Pulumi.dev.yaml").read_text())
    result = repo.diff("dev-alice")
    assert_clean_exit(result, 2)
    assert "unknown stack 'dev-alice' at revision HEAD" in result.stderr
    assert_no_leftovers(repo)


def test_a_base_revision_that_cannot_render_is_a_failure_without_traceback(repo: Repo) -> None:
    render = repo.path / "stackctl" / "render" / "stack.py"
    original = render.read_text()
    render.write_text(original + "\nraise RuntimeError('base revision is broken')\n")
    repo.commit("broken render")
    render.write_text(original)
    result = repo.diff("dev")
    assert_clean_exit(result, 1)
    assert result.stderr.startswith("failed: rendering HEAD")
    assert "base revision is broken" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_no_leftovers(repo)


def test_the_mock_runtimes_leaked_event_loops_print_nothing_at_exit() -> None:
    # Pulumi's mocks leave a loop per executor thread; finalized after its socket it used to
    # print "Exception ignored ... Invalid file descriptor: -1" with a traceback.
    code = (
        "import asyncio, gc\n"
        "from stackctl.diff.cmd import _quiet_event_loop_finalizers\n"
        "_quiet_event_loop_finalizers()\n"
        "loop = asyncio.new_event_loop(); loop._ssock.close(); del loop; gc.collect()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stderr == ""

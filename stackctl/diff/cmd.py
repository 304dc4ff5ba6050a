"""`python -m stackctl diff <stack> [--base REF] [--json | --markdown]`: what applying the working
tree's stack would do, compared with the stack at git revision REF, without a cluster.

- The base revision is rendered by its own code: in a temporary detached `git worktree` of REF
  (removed afterwards, also on failure; the user's checkout is never touched), by a child
  process that has forgotten the working tree's modules and imports the revision's
  (`BaseRender`), with that tree as its working directory. The working tree renders in this
  process at the same time.
- `stackctl.diff.compare` classifies every object (create / update / replace / delete, pods
  that restart, Services whose traffic moves) and raises the risk flags.
- `--state FILE` compares with a stack's state instead of a revision (`stackctl.diff.state`):
  what the stack last applied, for `stackctl deploy`'s check before an update.
- Exit status: 0 nothing risky, 3 a risk flag is raised, 2 bad input (unknown stack or
  revision, a config error at either revision, named), 1 a failure. Never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackctl.diff import output as diff_output
from stackctl.diff import render as diff_render
from stackctl.diff.compare import Change, Snapshot, compare, risky
from stackctl.errors import OperationFailed, UserError

if TYPE_CHECKING:
    from stackctl.render.stack import RenderResult

# stackctl.render.stack is imported where it is used, so that building the CLI (every command
# module is imported for its parser) does not load the renderer.
REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_OK, EXIT_RISK = 0, 3
WORKER_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Revision:
    """A git revision as the user named it and as git resolved it."""

    ref: str
    commit: str

    def __str__(self) -> str:
        return f"{self.ref} ({self.commit[:12]})"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise OperationFailed(
            "git is not installed (stackctl diff renders a git revision)"
        ) from None


def resolve(project_dir: Path, ref: str) -> tuple[Path, Revision]:
    """The repository top level and the commit `ref` names. UserError when it names none."""
    top = _git(project_dir, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UserError(f"{project_dir} is not in a git repository; --base needs one")
    if ref.startswith("-"):
        raise UserError(f"unknown git revision {ref!r}")
    found = _git(project_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        hint = (
            f"; in a shallow CI clone fetch it first: git fetch origin {ref.split('/', 1)[1]}"
            if ref.startswith("origin/") and "/" in ref
            else ""
        )
        raise UserError(
            f"unknown git revision {ref!r} (--base takes a branch, tag or commit, "
            f"e.g. HEAD or origin/main){hint}"
        )
    return Path(top.stdout.strip()), Revision(ref, found.stdout.strip())


@contextmanager
def base_worktree(top: Path, revision: Revision) -> Iterator[Path]:
    """A detached worktree of `revision` in a temporary directory; removed on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="appstack-diff-"))
    tree = tmp / "base"
    added = False
    try:
        result = _git(top, "worktree", "add", "--detach", "--quiet", str(tree), revision.commit)
        if result.returncode != 0:
            raise OperationFailed(
                f"cannot check out {revision} into a temporary worktree: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        added = True
        yield tree
    finally:
        if added:
            _git(top, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
        if added:
            _git(top, "worktree", "prune")


class BaseRender:
    """The base revision rendering in a child process, by its own code, its tree as working
    directory (`diff_render.worker`).

    The child is forked from this process once the packages a render needs are imported (the
    Pulumi and Kubernetes SDKs, pydantic: most of a render's start), and forgets every module of
    the project before it runs: the revision's `components/`, `stackctl/` and `policy/` are
    imported from its tree, nothing of the working tree's code or state reaches it."""

    def __init__(self, project_dir: Path, stack: str, revision: Revision, scratch: Path) -> None:
        self.revision = revision
        self.out_file = scratch / "base-render.json"
        self.err_file = scratch / "base-render.stderr"
        diff_render.run_key()  # created before the fork: both renders fingerprint with it
        diff_render.preload()
        sys.stdout.flush()
        sys.stderr.flush()
        self.proc = multiprocessing.get_context("fork").Process(
            target=_render_base,
            args=(project_dir, stack, self.out_file, self.err_file),
            name=f"render {revision}",
            daemon=True,
        )
        self.proc.start()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()

    def result(self) -> Snapshot:
        import json

        self.proc.join(timeout=WORKER_TIMEOUT_SECONDS)
        if self.proc.is_alive():
            self.stop()
            raise OperationFailed(f"rendering {self.revision} timed out")
        code = self.proc.exitcode
        if not self.out_file.exists():
            lines = self.err_file.read_text(errors="replace").strip().splitlines()
            raise OperationFailed(
                f"rendering {self.revision} failed (exit {code}): "
                f"{lines[-1] if lines else 'no output'}"
            )
        data = json.loads(self.out_file.read_text())
        if code == diff_render.EXIT_USER_ERROR:
            raise UserError(f"at revision {self.revision}: {data.get('error')}")
        if code != 0 or "error" in data:
            raise OperationFailed(f"rendering {self.revision} failed: {data.get('error')}")
        return Snapshot.from_json(data)


def _render_base(project_dir: Path, stack: str, out_file: Path, err_file: Path) -> None:
    """In the forked child: stdout to /dev/null, stderr to `err_file`, the working tree
    forgotten, then the worker in `project_dir`; its return value is the exit status."""
    with err_file.open("w") as err, open(os.devnull, "w") as null:
        os.dup2(err.fileno(), 2)
        os.dup2(null.fileno(), 1)
    _forget_project(REPO_ROOT, project_dir)
    os.chdir(project_dir)
    raise SystemExit(diff_render.worker(stack, str(out_file)))


def _forget_project(*roots: Path) -> None:
    """Drop the project from this process: every module of a top-level package or module that
    lies in one of `roots` (`sys.modules`), the import path entries of those roots and of the
    environment's PYTHONPATH (the worker's own process never had it)."""
    tops = {
        entry.stem if entry.suffix == ".py" else entry.name
        for root in roots
        for entry in root.iterdir()
        if entry.suffix == ".py" or (entry.is_dir() and any(entry.glob("*.py")))
    }
    for name in list(sys.modules):
        if name != "__main__" and name.partition(".")[0] in tops:
            del sys.modules[name]
    dropped = {str(root.resolve()) for root in roots}
    dropped |= {
        str(Path(p).resolve()) for p in os.environ.pop("PYTHONPATH", "").split(os.pathsep) if p
    }
    sys.path[:] = [
        entry for entry in sys.path if entry and str(Path(entry).resolve()) not in dropped
    ]
    importlib.invalidate_caches()


def render_both(stack: str, base: str, project_dir: Path = REPO_ROOT) -> tuple[Snapshot, Snapshot]:
    """Render `stack` at `base` (worktree, forked worker) and from the working tree (in this
    process) at the same time; return (before, after)."""
    from stackctl.render.stack import available_stacks

    if stack not in available_stacks(project_dir):
        raise UserError(
            f"unknown stack {stack!r} in the working tree; available: "
            f"{', '.join(available_stacks(project_dir)) or 'none'}"
        )
    top, revision = resolve(project_dir, base)
    relative = project_dir.resolve().relative_to(top.resolve())
    with base_worktree(top, revision) as tree:
        base_project = tree / relative
        if not (base_project / f"Pulumi.{stack}.yaml").exists():
            raise UserError(f"unknown stack {stack!r} at revision {revision}")
        worker = BaseRender(base_project, stack, revision, tree.parent)
        try:
            try:
                current = Snapshot.from_json(diff_render.snapshot(project_dir, stack))
            except UserError as exc:
                raise UserError(f"in the working tree: {exc}") from None
            before = worker.result()
        finally:
            worker.stop()
    return before, current


def diff_stack(stack: str, base: str, project_dir: Path = REPO_ROOT) -> list[Change]:
    """What applying the working tree's `stack` does, compared with `stack` at `base`."""
    return compare(*render_both(stack, base, project_dir))


def diff_against_state(stack: str, state_file: Path, project_dir: Path = REPO_ROOT) -> list[Change]:
    """What applying the working tree's `stack` does to the stack as its state holds it (a
    `pulumi stack export` document, `stackctl.diff.state`)."""
    import json

    from stackctl.diff.state import snapshot_of_state
    from stackctl.render.stack import available_stacks

    if stack not in available_stacks(project_dir):
        raise UserError(
            f"unknown stack {stack!r} in the working tree; available: "
            f"{', '.join(available_stacks(project_dir)) or 'none'}"
        )
    try:
        document = json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--state {state_file}: not a readable stack export ({exc})") from None
    if not isinstance(document, dict):
        raise UserError(f"--state {state_file}: not a stack export (a JSON object)")
    before = snapshot_of_state(document)
    try:
        current = Snapshot.from_json(diff_render.snapshot(project_dir, stack))
    except UserError as exc:
        raise UserError(f"in the working tree: {exc}") from None
    return compare(before, current)


def bench_case(stack: str = "prod", base: str = "HEAD") -> RenderResult:
    """`make bench`: one diff of `stack` against `base` (two renders plus compare), shaped as
    the working tree's render so the benchmark counts its objects."""
    from stackctl.render.stack import RenderResult

    before, after = render_both(stack, base)
    compare(before, after)
    return RenderResult(stack=stack, environment="", objects=after.objects)


def _quiet_event_loop_finalizers() -> None:
    """Pulumi's mock runtime gives every executor thread its own asyncio loop and never closes
    it (pulumi/runtime/mocks.py, sync_await.py `_ensure_event_loop`). At interpreter exit the
    garbage collector may finalize such a loop after its self-pipe socket and print "Exception
    ignored in BaseEventLoop.__del__ ... Invalid file descriptor: -1" with a traceback. Drop
    exactly that one; every other unraisable exception still reaches the default hook."""
    default = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        name = getattr(unraisable.object, "__qualname__", "")
        if name.endswith("EventLoop.__del__") and isinstance(unraisable.exc_value, ValueError):
            return
        default(unraisable)

    sys.unraisablehook = hook


def run(args: argparse.Namespace) -> int:
    _quiet_event_loop_finalizers()
    try:
        if args.state is not None:
            changes = diff_against_state(args.stack, Path(args.state))
        else:
            changes = diff_stack(args.stack, args.base)
    except (UserError, OperationFailed, KeyboardInterrupt):
        raise
    except Exception as exc:  # no traceback reaches the operator
        raise OperationFailed(f"diff of {args.stack} failed: {type(exc).__name__}: {exc}") from None
    base = f"state {args.state}" if args.state is not None else args.base
    title = f"stackctl diff {args.stack}: {base} -> working tree"
    if args.json:
        print(diff_output.as_json(changes))
    elif args.markdown:
        print(diff_output.as_markdown(changes, title), end="")
    else:
        print(diff_output.as_table(changes, title))
    return EXIT_RISK if risky(changes) else EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="what a change does to the cluster: render REF and the working tree, compare",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("stack", help="stack name (Pulumi.<stack>.yaml)")
    against = parser.add_mutually_exclusive_group()
    against.add_argument(
        "--base", default="HEAD", help="git revision to compare with (default HEAD)"
    )
    against.add_argument(
        "--state",
        metavar="FILE",
        help="compare with a stack's state instead (a `pulumi stack export` document: the "
        "inputs of its Kubernetes resources); stackctl deploy runs this before an update",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="a JSON list of changed objects")
    output.add_argument("--markdown", action="store_true", help="Markdown for a PR comment")
    parser.set_defaults(handler=run)

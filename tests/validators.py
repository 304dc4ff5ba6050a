"""Outside validators run on rendered manifests: kubernetes-validate (upstream OpenAPI schemas,
strict), checkov, promtool. Each returns what it found so a test can assert on it.

Batched: a test module registers the manifests it wants judged (`@render_set(name)`, a function
writing them under a folder); the session fixtures of tests/conftest.py write every registered
set of the run into one tree and run each tool over it (one
kubernetes-validate process per Kubernetes version, one checkov scan per folder a test scans,
each a process forked from `CheckovServer`), side by side in the background (`ValidatorBatch`),
and each test reads the verdict on its own files: `ValidatorBatch.checkov(folder)`,
`ToolRun.problems(files)`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import functools
import json
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as schema_utils
import pytest

from tests.renders import Renders
from tests.tooling import CHECKOV_BIN, load_yaml, run_tool

KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
# CRD-backed kinds are not in kubernetes-validate: tests/crd_schemas.py validates them against
# the upstream CRD schemas (tests/test_crd_schemas.py), promtool their rules.
CRD_GROUPS = ("monitoring.coreos.com/", "argoproj.io/")


def builtin_manifests(root: Path) -> list[Path]:
    """Rendered files whose object is a built-in Kubernetes kind."""
    files = []
    for path in sorted(root.rglob("*.yaml")):
        doc = load_yaml(path.read_text())
        if not str(doc.get("apiVersion", "")).startswith(CRD_GROUPS):
            files.append(path)
    return files


#: `kubernetes-validate`'s console script (kubernetes_validate/__main__.py, its `__main__` block
#: included) with each schema file parsed once per process, as `schemas_parsed_once` does in
#: process: the command line re-reads the multi-megabyte `_definitions.json` for every object.
KUBERNETES_VALIDATE_PARSING_ONCE = """
import errno, functools, sys
import kubernetes_validate.utils as utils
from kubernetes_validate.__main__ import main
utils.schema_contents = functools.cache(utils.schema_contents)
sys.argv[0] = "kubernetes-validate"
try:
    sys.exit(main())
except IOError as exc:
    if exc.errno != errno.EPIPE:
        raise
except RuntimeError as e:
    raise SystemExit(str(e))
"""


def kubernetes_validate(
    files: Iterable[Path], version: str, *, parse_once: bool = True
) -> tuple[int, str]:
    """(exit code, output) of `kubernetes-validate --strict` for one Kubernetes version: its
    command line, each schema parsed once (`parse_once`, the default) or as published."""
    args = ("--strict", "--quiet", "-k", version, *map(str, files))
    if parse_once:  # kubernetes-validate is a dependency of the tests' own interpreter
        proc = subprocess.run(
            [sys.executable, "-c", KUBERNETES_VALIDATE_PARSING_ONCE, *args],
            capture_output=True,
            text=True,
            check=False,
        )
    else:
        proc = run_tool("kubernetes-validate", *args)
    return proc.returncode, proc.stdout + proc.stderr


@contextlib.contextmanager
def schemas_parsed_once() -> Iterator[None]:
    """In-process `kubernetes_validate.validate` with each schema file parsed once.

    `validate` reads and parses its schema files, the multi-megabyte `_definitions.json`
    included, on every call (kubernetes_validate/utils.py `schema_contents`); within this block
    each file is parsed once and the parsed document shared. Same files, same validator, same
    verdicts: only the re-parsing is saved (the validator never modifies a schema)."""
    original = schema_utils.schema_contents
    schema_utils.schema_contents = functools.cache(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        schema_utils.schema_contents = original  # type: ignore[assignment]


#: A function writing a set of manifests into a folder; it returns the folders (inside it) that
#: checkov scans, each on its own, or None for the whole folder as one scan.
WriteSet = Callable[[Path, Renders], "list[Path] | None"]
#: Manifests test modules hand to the batched validators: folder name -> its writer.
RENDER_SETS: dict[str, WriteSet] = {}


def render_set(name: str) -> Callable[[WriteSet], WriteSet]:
    """Register a function that writes manifests into `<batch root>/<name>` for the batch."""

    def register(write: WriteSet) -> WriteSet:
        RENDER_SETS[name] = write
        return write

    return register


@dataclass(frozen=True)
class RenderedTree:
    """Every registered set, written: the root, and the folders checkov scans one by one."""

    root: Path
    scans: tuple[Path, ...]

    def __truediv__(self, name: str) -> Path:
        return self.root / name


def write_sets(root: Path, renders: Renders) -> RenderedTree:
    scans: list[Path] = []
    for name, write_set in sorted(RENDER_SETS.items()):
        folder = root / name
        scans += write_set(folder, renders) or [folder]
    return RenderedTree(root, tuple(scans))


@dataclass(frozen=True)
class ToolRun:
    """One run of a validator over many files: exit code, output, and the files it judged."""

    code: int
    output: str
    files: tuple[Path, ...]

    def problems(self, files: Iterable[Path]) -> str:
        """What the run reported about `files` ('' when it passed them). A failed run that
        names none of its files failed as a whole: then its whole output."""
        if self.code == 0:
            return ""
        lines = self.output.splitlines()
        mine = [line for line in lines if any(str(f) in line for f in files)]
        if mine:
            return "\n".join(mine)
        names_a_file = any(str(f) in line for line in lines for f in self.files)
        return "" if names_a_file else self.output


def kubernetes_validate_run(files: Iterable[Path], version: str) -> ToolRun:
    judged = tuple(files)
    code, output = kubernetes_validate(judged, version)
    return ToolRun(code, output, judged)


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
    passed_files: tuple[str, ...] = ()
    """The file of every passed check (one entry per check)."""

    def in_order(self) -> CheckovReport:
        """The same report, each list sorted (checkov's runners finish in any order)."""
        return CheckovReport(
            sorted(self.failed, key=repr),
            sorted(self.skipped, key=repr),
            self.passed,
            sorted(self.parsing_errors),
            tuple(sorted(self.passed_files)),
        )


CHECKOV_ARGS = ("--framework", "kubernetes", "--skip-download", "-o", "json")


def checkov(root: Path) -> CheckovReport:
    """Run `checkov --framework kubernetes` offline on a directory of manifests (the command
    line itself: its own process)."""
    proc = run_tool("checkov", "-d", str(root), *CHECKOV_ARGS)
    return checkov_report(proc.returncode, proc.stdout, proc.stderr)


def checkov_report(code: int, stdout: str, stderr: str) -> CheckovReport:
    """A checkov run's JSON output as a report (exit 0: nothing failed, 1: something failed)."""
    assert code in (0, 1), f"checkov exited {code}: {stderr[-2000:]}"
    data: Any = json.loads(stdout)
    reports = data if isinstance(data, list) else [data]
    failed: list[CheckovFinding] = []
    skipped: list[CheckovFinding] = []
    passed_files: list[str] = []
    errors: list[str] = []
    for report in reports:
        results = report.get("results", {})
        passed_files += [item["file_path"] for item in results.get("passed_checks", [])]
        errors += results.get("parsing_errors", [])
        for item in results.get("failed_checks", []):
            failed.append(CheckovFinding(item["check_id"], item["resource"], item["file_path"]))
        for item in results.get("skipped_checks", []):
            reason = item["check_result"].get("suppress_comment", "")
            skipped.append(
                CheckovFinding(item["check_id"], item["resource"], item["file_path"], reason)
            )
    return CheckovReport(failed, skipped, len(passed_files), errors, tuple(passed_files))


CHECKOV_SERVER = Path(__file__).with_name("checkov_server.py")


class CheckovServer:
    """`checkov --framework kubernetes -d <dir>` without paying checkov's import per scan:
    tests/checkov_server.py, under checkov's interpreter, imports the command line once and
    forks a child per scan that runs exactly what the `checkov` script runs. `scan` returns a
    future of the report; scans run side by side (two at a time) with the rest of the tests.
    `tests/test_validators.py` holds the server's report to the command line's own."""

    def __init__(self, scratch: Path) -> None:
        python = CHECKOV_BIN / "python"
        if not python.is_file():
            pytest.fail("checkov is not installed; run `make test` (it installs .venv-checkov)")
        self._scratch = scratch
        self._futures: dict[str, concurrent.futures.Future[CheckovReport]] = {}
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [str(python), str(CHECKOV_SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def scan(self, root: Path) -> concurrent.futures.Future[CheckovReport]:
        with self._lock:
            n = len(self._futures)
            out = self._scratch / f"checkov-{n}.json"
            future: concurrent.futures.Future[CheckovReport] = concurrent.futures.Future()
            self._futures[str(out)] = future
            job = {"argv": ["-d", str(root), *CHECKOV_ARGS], "stdout": str(out)}
            job["stderr"] = str(out.with_suffix(".stderr"))
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
        return future

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            done = json.loads(line)
            out = Path(done["stdout"])
            with self._lock:
                future = self._futures[done["stdout"]]
            try:
                report = checkov_report(
                    done["code"], out.read_text(), out.with_suffix(".stderr").read_text()
                )
            except BaseException as exc:  # handed to the test that reads it
                future.set_exception(exc)
            else:
                future.set_result(report)
        with self._lock:
            lost = [f for f in self._futures.values() if not f.done()]
        for future in lost:
            future.set_exception(AssertionError(f"the checkov server exited {self._proc.wait()}"))

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait()
        self._reader.join()


class ValidatorBatch:
    """The outside validators over every registered set, started at once and run side by side
    (each in its own process), so they overlap with each other and with the rest
    of the test run; a test waits only for the run it reads.

    - checkov: one scan (a `CheckovServer` child) per folder, exactly the folders the tests
      always scanned (checkov relates objects within one scan: a RoleBinding to its Role, a pod
      to its NetworkPolicy; folders are never merged, so no object can affect another folder's
      checks);
    - kubernetes-validate --strict: one process per Kubernetes version over every built-in
      object of every set (it judges each file alone).

    With `store` (a directory shared by the pytest-xdist workers of one run), the tree and every
    result are also written there as they land, for the other workers (`StoredBatch`): the
    batch runs once per test run, not once per worker."""

    def __init__(
        self,
        tree: RenderedTree,
        pool: concurrent.futures.Executor,
        checkov_server: CheckovServer,
        store: Path | None = None,
    ) -> None:
        self._tree = tree
        self.files = tuple(builtin_manifests(tree.root))
        self._schema = {
            version: pool.submit(kubernetes_validate_run, self.files, version)
            for version in KUBERNETES_VERSIONS
        }
        self._checkov = {
            str(folder.relative_to(tree.root)): checkov_server.scan(folder) for folder in tree.scans
        }
        if store is not None:
            _store(store, "tree", tree)
            results = {
                **{f"schema-{k}": f for k, f in self._schema.items()},
                **{f"checkov-{k}": f for k, f in self._checkov.items()},
            }
            for key, future in results.items():
                future.add_done_callback(functools.partial(_store_result, store, key))

    @property
    def tree(self) -> RenderedTree:
        return self._tree

    def checkov(self, folder: str) -> CheckovReport:
        """The report of the scan of `folder` (relative to the tree, e.g. `release`)."""
        return self._checkov[folder].result()

    def schema(self, version: str) -> ToolRun:
        return self._schema[version].result()


class StoredBatch(ValidatorBatch):
    """The batch another xdist worker of this run owns, read from its store as results land."""

    def __init__(self, store: Path) -> None:
        self.store = store

    @property
    def tree(self) -> RenderedTree:
        tree: RenderedTree = _load(self.store, "tree")
        return tree

    def checkov(self, folder: str) -> CheckovReport:
        report: CheckovReport = _load(self.store, f"checkov-{folder}")
        return report

    def schema(self, version: str) -> ToolRun:
        run: ToolRun = _load(self.store, f"schema-{version}")
        return run


STORE_WAIT_SECONDS = 900


def _path(store: Path, key: str) -> Path:
    return store / (key.replace("/", "__") + ".pickle")


def _store(store: Path, key: str, value: object) -> None:
    """Write atomically: a reader sees the whole pickle or none."""
    tmp = _path(store, key).with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(value))
    tmp.replace(_path(store, key))


def _store_result(store: Path, key: str, future: concurrent.futures.Future[Any]) -> None:
    error = future.exception()
    _store(store, key, future.result() if error is None else ("failed", repr(error)))


def _load(store: Path, key: str) -> Any:
    path = _path(store, key)
    deadline = time.monotonic() + STORE_WAIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {key} in {store} after {STORE_WAIT_SECONDS} s")
        time.sleep(0.05)
    value = pickle.loads(path.read_bytes())
    if isinstance(value, tuple) and value[:1] == ("failed",):
        raise AssertionError(f"the validator run {key} failed in its worker: {value[1]}")
    return value


@contextlib.contextmanager
def session_batch(
    root: Path, shared: Path | None, renders: Renders, checkov_server: Callable[[], CheckovServer]
) -> Iterator[ValidatorBatch]:
    """The batch of this test session: run here (alone, or as the first xdist worker of the run
    to take the lock in `shared`), or read from the worker that runs it."""
    if shared is None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            yield ValidatorBatch(write_sets(root, renders), pool, checkov_server())
        return
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield StoredBatch(shared)
            return
        tree = write_sets(shared / "tree", renders)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            yield ValidatorBatch(tree, pool, checkov_server(), store=shared)

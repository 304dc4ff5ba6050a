"""The real Pulumi engine for `make e2e`: CLI, Python language host and Kubernetes provider.

`Engine` gives every e2e run its own world, nothing shared with the user's setup:
- `PULUMI_HOME` in a temp dir; the CLI and language host `make e2e-tools` built, found on PATH;
  the provider it built installed into that home as a plugin at its release version (`pulumi
  plugin install resource kubernetes <v> --file`), the version the Python SDK pin asks for;
  automatic plugin download off (`PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`, read by pulumi's
  `pkg/engine/plugins.go`); no update check;
- a local file backend (`PULUMI_BACKEND_URL=file://<tmp>/state`), or the backend a test moves
  it to (`use_backend`: an `s3://` URL of e2e/s3.py's versitygw and its AWS variables), and the
  passphrase secrets provider with a random per-run passphrase (never written to a file);
- a copy of the repo's tracked files as the project dir (a fresh git repo with one commit, so
  the engine records `git.head` as stackctl's rollback requires), `.venv` linked to the repo's
  venv, the policy pack's own venv (`policy/venv`, `PulumiPolicy.yaml`) from a cache;
- `KUBECONFIG` pointing at the e2e cluster: the program uses the default Kubernetes provider,
  which reads it. The stack files are the repo's; nothing cluster-specific is written into them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import REPO_ROOT, bin_dir

CACHE = Path(os.environ.get("APPSTACK_E2E_CACHE") or Path.home() / ".cache" / "appstack-e2e")
COMMAND_TIMEOUT = 1800
#: Where a failed run keeps its logs (out/ is ignored by git and outlives the run's temporary
#: directory): `out/e2e-logs/<UTC start>-<pid>/`, named in the failure's message.
KEPT_LOGS = REPO_ROOT / "out" / "e2e-logs"
# The second CLI `make e2e-tools` builds for policy packs (e2e/tools/versions.env,
# PULUMI_POLICY_CLI_VERSION): CLI >= 3.221 starts a Python pack through the language host's
# RunPlugin RPC, which the v3.68 host (the newest the module proxy serves) cannot do; v3.219
# still runs it through `pulumi-analyzer-policy-python` beside it. Same state backend, same
# provider plugin, same PULUMI_HOME.
POLICY_CLI_DIR = "policy-cli"
VERSIONS_ENV = REPO_ROOT / "e2e" / "tools" / "versions.env"
#: the provider plugins `make e2e-tools` builds: plugin name -> the versions.env key of its version
PROVIDER_PLUGINS = {"kubernetes": "KUBERNETES_PROVIDER_VERSION"}
#: what the engine prints when a provider's version is below the one the SDK asks for
#: (pulumi pkg/v3 host/host.go); an e2e run must never see it
VERSION_SKEW = "is expected to have version"


def tool_versions() -> dict[str, str]:
    """The KEY=value lines of e2e/tools/versions.env."""
    pairs = (
        line.split("=", 1)
        for line in VERSIONS_ENV.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


class EngineError(AssertionError):
    """A pulumi/stackctl command failed; the message carries its command line and output tail."""


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 60) -> str:
        text = (self.stdout + "\n" + self.stderr).strip().splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Engine:
    root: Path
    kubeconfig: Path
    binaries: Path = field(default_factory=bin_dir)
    passphrase: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str = field(
        default_factory=lambda: f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    )

    def __post_init__(self) -> None:
        self.home = self.root / "pulumi-home"
        #: where the backend's objects are files on this machine (`.pulumi/...` below it)
        self.state = self.root / "state"
        self.backend_url = f"file://{self.state}"
        self.backend_env: dict[str, str] = {}
        self.project = self.root / "project"
        self.path = self.root / "path"
        self.log = self.root / "engine.log"

    @property
    def kept_logs(self) -> Path:
        return KEPT_LOGS / self.run_id

    def keep_logs(self, *extra: Path) -> Path:
        """Copy the commands' log (every pulumi/stackctl command of the session with its
        output; no secrets: the passphrase never reaches it) and any `extra` log files or
        directories to `kept_logs`, replacing an earlier copy; return that directory."""
        dest = self.kept_logs
        dest.mkdir(parents=True, exist_ok=True)
        for src in (self.log, *extra):
            if src.is_dir():
                shutil.copytree(src, dest / src.name, dirs_exist_ok=True)
            elif src.is_file():
                shutil.copyfile(src, dest / src.name)
        return dest

    # ---------------------------------------------------------------- environment

    @property
    def policy_cli(self) -> Path:
        return self.binaries / POLICY_CLI_DIR

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PULUMI_", "AWS_")) and k not in ("KUBECONFIG", "VIRTUAL_ENV")
        }
        env.update(self.backend_env)
        env.update(
            {
                "PATH": f"{self.path}{os.pathsep}{env.get('PATH', '')}",
                "PULUMI_HOME": str(self.home),
                "PULUMI_BACKEND_URL": self.backend_url,
                "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_SKIP_CONFIRMATIONS": "true",
                "KUBECONFIG": str(self.kubeconfig),
                # The language host built here reads the interpreter from PULUMI_PYTHON_CMD
                # (it predates runtime options passed by the CLI): the project's venv.
                "PULUMI_PYTHON_CMD": str(self.project / ".venv" / "bin" / "python"),
                "CI": "true",  # stackctl: never prompt
                "NO_COLOR": "1",
            }
        )
        return env

    def use_backend(self, url: str, files: Path, env: Mapping[str, str]) -> None:
        """Point both CLIs and stackctl at another state backend: `url`, the variables it needs
        (`env`: credentials, region), `files` where its objects are files on this machine."""
        self.backend_url, self.state, self.backend_env = url, files, dict(env)

    def has_stack(self, stack: str) -> bool:
        listed = json.loads(self.pulumi("stack", "ls", "--json").stdout or "[]")
        return any(str(s.get("name", "")).rsplit("/", 1)[-1] == stack for s in listed)

    def move_stack(self, stack: str, url: str, files: Path, env: Mapping[str, str]) -> None:
        """Move `stack` to another backend as a team does: `pulumi stack export` from this one,
        `stack init` (same passphrase; the stack file keeps its `encryptionsalt`) and `stack
        import` on the other. Without the stack here, only the backend changes."""
        if not self.has_stack(stack):
            self.use_backend(url, files, env)
            return
        exported = self.root / f"{stack}-moved.json"
        exported.write_text(self.pulumi("stack", "export", "--stack", stack).stdout)
        stack_file = self.stack_file(stack).read_text(encoding="utf-8")
        self.use_backend(url, files, env)
        self.init_stack(stack)
        self.stack_file(stack).write_text(stack_file, encoding="utf-8")
        self.pulumi("stack", "import", "--file", str(exported), "--stack", stack)
        exported.unlink()

    # ---------------------------------------------------------------- setup

    def setup(self) -> None:
        missing = [
            b
            for b in (
                "pulumi",
                "pulumi-language-python",
                "pulumi-resource-kubernetes",
                f"{POLICY_CLI_DIR}/pulumi",
                f"{POLICY_CLI_DIR}/pulumi-analyzer-policy-python",
            )
            if not os.access(self.binaries / b, os.X_OK)
        ]
        if missing:
            raise EngineError(
                f"missing in {self.binaries}: {', '.join(missing)}; run `make e2e-tools`"
            )
        self.home.mkdir(parents=True)
        self.state.mkdir(parents=True)
        self._path()
        self._project()
        self._install_providers()
        self._policy_venv()

    def _path(self) -> None:
        """The PATH dir: the built binaries except the providers. Pulumi takes a
        `pulumi-resource-<name>` found on PATH whatever version the SDK asks for
        (sdk/go/common/workspace/plugins.go `GetPluginPath`); from the plugin cache it must be
        the version asked for, so a skew between SDK pin and provider fails instead of warning."""
        self.path.mkdir(parents=True)
        for entry in sorted(self.binaries.iterdir()):
            if entry.is_file() and not entry.name.startswith("pulumi-resource-"):
                (self.path / entry.name).symlink_to(entry)

    def _install_providers(self) -> None:
        versions = tool_versions()
        for name, key in PROVIDER_PLUGINS.items():
            binary = self.binaries / f"pulumi-resource-{name}"
            self.pulumi("plugin", "install", "resource", name, versions[key], "--file", str(binary))

    def _project(self) -> None:
        """The repo's tracked (and new, unignored) files, as they are in the work tree."""
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for raw in listed:
            if not raw:
                continue
            rel = Path(raw.decode())
            src = REPO_ROOT / rel
            if rel.parts[0] in ("tests", "e2e", "docs", "node_modules") or not src.is_file():
                continue
            dst = self.project / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        (self.project / ".venv").symlink_to((REPO_ROOT / ".venv").resolve())
        self.git("init", "-q", "-b", "main")
        # The venv links are symlinks, which the repo's `.venv/`-style ignore lines do not match.
        exclude = self.project / ".git" / "info" / "exclude"
        exclude.write_text(".venv\npolicy/venv\n.pulumi-backups/\nout/\n")
        self.commit("e2e: project as in the work tree")

    def _policy_venv(self) -> None:
        """policy/venv (the pack's `runtime.options.virtualenv`), cached by its requirements."""
        reqs = self.project / "policy" / "requirements.txt"
        # Local-path requirements (../appstack_grammar) resolve from the pack's directory, as
        # the CLI installs them; their files are part of the cache key.
        hasher = hashlib.sha256(reqs.read_bytes())
        for line in reqs.read_text(encoding="utf-8").splitlines():
            local = line.split("#", 1)[0].strip()
            if local.startswith("."):
                for path in sorted((reqs.parent / local).rglob("*.py")):
                    hasher.update(path.read_bytes())
        digest = hasher.hexdigest()[:16]
        venv = CACHE / f"policy-venv-{digest}"
        if not (venv / ".installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(reqs)],
                check=True,
                cwd=reqs.parent,
            )
            (venv / ".installed").touch()
        (self.project / "policy" / "venv").symlink_to(venv)

    # ---------------------------------------------------------------- commands

    def run(
        self,
        args: list[str],
        *,
        cwd: Path | None = None,
        check: bool = True,
        timing: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> Result:
        env = self.env
        if extra_env:
            env.update(extra_env)
        started = time.monotonic()
        proc = subprocess.run(
            args,
            cwd=cwd or self.project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - started
        result = Result(args, proc.returncode, proc.stdout, proc.stderr, seconds)
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n$ {' '.join(args)}  [{proc.returncode}, {seconds:.1f}s]\n")
            log.write(proc.stdout)
            log.write(proc.stderr)
        if timing:
            self.timings[timing] = seconds
        if VERSION_SKEW in proc.stdout + proc.stderr:
            kept = self.keep_logs()
            raise EngineError(
                f"`{' '.join(args[:6])}`: provider and SDK differ (log kept in {kept}):\n"
                f"{result.tail()}"
            )
        if check and proc.returncode != 0:
            kept = self.keep_logs()
            raise EngineError(
                f"`{' '.join(args[:6])}` exited {proc.returncode} after {seconds:.0f}s "
                f"(log kept in {kept}/{self.log.name}):\n{result.tail()}"
            )
        return result

    def pulumi(self, *args: str, **kw: Any) -> Result:
        return self.run([str(self.binaries / "pulumi"), *args, "--non-interactive"], **kw)

    @property
    def policy_env(self) -> dict[str, str]:
        """PATH with the policy CLI first: the Automation API runs `pulumi` from PATH
        (`PulumiCommand(root=None)` -> command "pulumi", pulumi/automation/_cmd.py)."""
        return {"PATH": f"{self.policy_cli}{os.pathsep}{self.env['PATH']}"}

    def pulumi_policy(self, *args: str, **kw: Any) -> Result:
        """`pulumi` for runs with `--policy-pack`: the policy CLI (see POLICY_CLI_DIR)."""
        return self.run(
            [str(self.policy_cli / "pulumi"), *args, "--non-interactive"],
            extra_env=self.policy_env,
            **kw,
        )

    def stackctl(self, *args: str, policy_cli: bool = False, **kw: Any) -> Result:
        """stackctl; `policy_cli=True` for commands that run the policy pack (deploy, rollback)
        or must read what they wrote (history), through the policy CLI."""
        if policy_cli:
            kw["extra_env"] = {**(kw.get("extra_env") or {}), **self.policy_env}
        return self.run(
            [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "stackctl", *args], **kw
        )

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "appstack e2e",
            "GIT_AUTHOR_EMAIL": "e2e@appstack.invalid",
            "GIT_COMMITTER_NAME": "appstack e2e",
            "GIT_COMMITTER_EMAIL": "e2e@appstack.invalid",
        }
        proc = subprocess.run(
            ["git", *args], cwd=self.project, env=env, capture_output=True, text=True, check=True
        )
        return proc.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    # ---------------------------------------------------------------- stacks

    def init_stack(self, stack: str) -> None:
        self.pulumi("stack", "init", stack, "--secrets-provider", "passphrase")

    def stack_file(self, stack: str) -> Path:
        return self.project / f"Pulumi.{stack}.yaml"

    def read_config(self, stack: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(self.stack_file(stack).read_text(encoding="utf-8"))
        return doc

    def write_config(self, stack: str, doc: Mapping[str, Any]) -> None:
        """Rewrite Pulumi.<stack>.yaml (keeps `encryptionsalt` and every other key)."""
        self.stack_file(stack).write_text(yaml.safe_dump(dict(doc), sort_keys=False))

    def edit_app(self, stack: str, app: str, **changes: Any) -> None:
        """Set keys of `appstack:apps.<app>` (None removes a key) in the stack file."""
        doc = self.read_config(stack)
        settings = doc["config"]["appstack:apps"][app]
        for key, value in changes.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        self.write_config(stack, doc)

    def up(self, stack: str, *, timing: str | None = None, **kw: Any) -> Result:
        return self.pulumi("up", "--yes", "--skip-preview", "--stack", stack, timing=timing, **kw)

    def preview_steps(self, stack: str, *extra: str) -> list[Step]:
        res = self.pulumi("preview", "--json", "--stack", stack, *extra)
        return parse_preview(res.stdout)

    def export(self, stack: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.pulumi("stack", "export", "--stack", stack).stdout)
        return doc

    def kubernetes_resources(self, stack: str) -> Iterator[dict[str, Any]]:
        """Every Kubernetes object in the stack's state (custom resources, not providers)."""
        for res in self.export(stack)["deployment"].get("resources") or []:
            rtype = str(res.get("type", ""))
            if rtype.startswith("kubernetes:") and not rtype.startswith("pulumi:providers"):
                yield res


@dataclass(frozen=True)
class Step:
    """One resource step of `pulumi preview --json`, reduced to what a reviewer reads."""

    op: str  # create | update | replace | delete | same | ...
    urn: str
    type: str
    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


# The engine shows a replacement as several steps (pulumi `display/json.go`: create-replacement,
# replace, delete-replaced, or the discard variants); a reviewer reads one `replace`.
REPLACE_OPS = {"replace", "create-replacement", "delete-replaced", "discard-replaced"}


def _meta(state: Mapping[str, Any]) -> Mapping[str, Any]:
    props = state.get("outputs") or {}
    inputs = state.get("inputs") or {}
    meta: Mapping[str, Any] = props.get("metadata") or inputs.get("metadata") or {}
    return meta


def parse_preview(stdout: str) -> list[Step]:
    """Kubernetes steps of `pulumi preview --json`, one per object.

    A replacement that changes the object's name (a content-named ConfigMap) is, for the API
    server, a new object and the deletion of the old one: it becomes a `create` of the new name
    and a `delete` of the old, as `stackctl diff` reports a name change.
    """
    doc = json.loads(stdout)
    steps: dict[tuple[str, str], Step] = {}
    for raw in doc.get("steps") or []:
        urn = str(raw.get("urn", ""))
        new, old = raw.get("newState") or {}, raw.get("oldState") or {}
        rtype = str(new.get("type") or old.get("type") or urn.split("::")[-2].split("$")[-1])
        if not rtype.startswith("kubernetes:"):
            continue
        op = str(raw.get("op"))
        op = "replace" if op in REPLACE_OPS else op
        kind = rtype.rsplit(":", 1)[-1]

        def step(
            state: Mapping[str, Any], op: str, urn: str = urn, kind: str = kind, rtype: str = rtype
        ) -> Step:
            meta = _meta(state)
            return Step(
                op=op,
                urn=urn,
                type=rtype,
                kind=kind,
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or urn.rsplit("::", 1)[-1]),
            )

        if op == "replace" and new and old:
            before, after = step(old, "delete"), step(new, "create")
            if before.key != after.key:
                steps[(urn, "old")] = before
                steps[(urn, "new")] = after
                continue
        if (urn, "new") in steps:  # the other steps of a renaming replacement
            continue
        prior = steps.get((urn, ""))
        if prior is not None and prior.op == "replace":
            continue
        steps[(urn, "")] = step(new or old, op)
    return list(steps.values())


def changes(steps: list[Step]) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) -> op, for every step that is not `same`/`read`."""
    return {s.key: s.op for s in steps if s.op not in ("same", "read", "refresh")}

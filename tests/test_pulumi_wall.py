"""Issue 25, item 2: one package, `stackctl/mockruntime/` (the wall), touches Pulumi's private
runtime; nothing else of the program (components/, the rest of stackctl/, policy/, __main__.py)
imports a private Pulumi name or touches a private attribute of a Pulumi object, and the rest of
the program reaches the wall through its package's public names only.

What counts as private is read from the SDK itself, so the rule moves with the pin:
- a `_`-prefixed segment of a `pulumi` name (`pulumi._types`, `rpc._special_sig_key`);
- a `pulumi.runtime.<name>` that `pulumi.runtime.__all__` does not export as a function or class
  (its submodules `rpc`, `settings`, `config`, `resource`, `mocks`, ... are internals; a public
  name imported from a submodule, `from pulumi.runtime.config import is_config_secret`, is fine);
- an attribute `obj._x` (or `getattr(obj, "_x")`) where `_x` is a private attribute that the
  SDK's public classes define or set on their instances (`Resource._type`, `Output._data`...),
  unless `obj` is a module the program imported from elsewhere.

Tests may use private names only where they hold the wall to the SDK: the oracle tests below.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pulumi
import pulumi.runtime
import pytest

from stackctl import mockruntime

REPO = Path(__file__).resolve().parent.parent
WALL = "stackctl/mockruntime"
WALL_MODULE = "stackctl.mockruntime."
#: Tests that hold the wall (or the render it serves) to the SDK, with the private names they
#: need for it: the SDK's own functions as the oracle, the requests the mock monitor receives.
ORACLE_TESTS: dict[str, str] = {
    "tests/policy/test_pack.py": "plays the engine: the analyzer gRPC protocol (runtime.proto)",
    "tests/test_component_outputs.py": "the SDK's output-type derivation (_types) as the oracle",
    "tests/test_mockruntime_fidelity.py": "the SDK's functions, unreplaced, in the reference run",
    "tests/test_render.py": "the SDK's functions are back after a render; a secret's wire form",
    "tests/test_engine_aliases.py": "the SDK's alias code and Resource._aliases as the oracle",
    "tests/test_engine_components.py": "the SDK's register_resource path as the oracle",
    "tests/test_engine_monitor.py": "the SDK's MockMonitor and rpc signatures as the oracle",
    "tests/test_engine_resolve.py": "the SDK's Output.from_input internals as the oracle",
    "tests/test_engine_unknowns.py": "the SDK's rpc.contains_unknowns as the oracle",
    "tests/test_engine_urns.py": "the SDK's create_urn as the oracle",
    "tests/test_engine_wire.py": "the SDK's rpc serializers and _types as the oracle",
}
_BUILTIN_ACCESSORS = ("getattr", "setattr", "hasattr", "delattr")


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _is_private(segment: str) -> bool:
    return segment.startswith("_") and not _is_dunder(segment)


def _is_public_runtime(segment: str) -> bool:
    return segment in runtime_public() or _is_dunder(segment)


@cache
def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


@cache
def runtime_public() -> frozenset[str]:
    """What `pulumi.runtime` exports, its submodules left out."""
    exported = set(pulumi.runtime.__all__)
    return frozenset(n for n in exported if not _is_module(f"pulumi.runtime.{n}"))


@cache
def private_attributes() -> frozenset[str]:
    """`_`-prefixed attributes the SDK's public classes (everything `pulumi` exports that is a
    class) define, inherit from the SDK or set on `self`."""
    found: set[str] = set()
    for name in pulumi.__all__:
        cls = getattr(pulumi, name, None)
        if not inspect.isclass(cls):
            continue
        for klass in cls.__mro__:
            if not klass.__module__.startswith("pulumi"):
                continue
            found |= {n for n in vars(klass) if _is_private(n)}
            try:
                source = textwrap.dedent(inspect.getsource(klass))
            except (OSError, TypeError):
                continue
            for node in ast.walk(ast.parse(source)):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                    and _is_private(node.attr)
                ):
                    found.add(node.attr)
    return frozenset(found)


def private_path(dotted: str) -> bool:
    """Whether a name path under `pulumi` names something private (the rules above)."""
    parts = dotted.split(".")
    if parts[0] != "pulumi":
        return False
    if any(_is_private(p) for p in parts):
        return True
    if parts[:2] != ["pulumi", "runtime"] or len(parts) < 3 or _is_public_runtime(parts[2]):
        return False
    # pulumi.runtime.<submodule>.<name>: fine only for a name pulumi.runtime exports as the same
    if len(parts) >= 4 and parts[3] in runtime_public() and _is_module(".".join(parts[:3])):
        module = importlib.import_module(".".join(parts[:3]))
        return getattr(module, parts[3], None) is not getattr(pulumi.runtime, parts[3])
    return True


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.bound: dict[str, str] = {}  # local name -> the module path or name it was bound to
        self.found: list[tuple[int, str]] = []
        self.classes: list[bool] = []  # per enclosing class: whether it derives from pulumi's

    def _report(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        bases = [self._path(base) or "" for base in node.bases]
        self.classes.append(any(b.startswith("pulumi") for b in bases))
        self.generic_visit(node)
        self.classes.pop()

    def _foreign(self, receiver: ast.expr) -> bool:
        """Whether `receiver` is no Pulumi object: a module imported from elsewhere, or
        `self`/`cls` in a class of ours that does not derive from one of the SDK's."""
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls") and self.classes:
            return not self.classes[-1]
        path = self._path(receiver)
        return path is not None and not path.startswith("pulumi")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if private_path(alias.name):
                self._report(node, f"import {alias.name}")
            local = alias.asname or alias.name.partition(".")[0]
            self.bound[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        for alias in node.names:
            path = f"{base}.{alias.name}" if node.level == 0 else f".{alias.name}"
            if node.level == 0 and private_path(path):
                self._report(node, f"from {base} import {alias.name}")
            self.bound[alias.asname or alias.name] = path

    def _path(self, node: ast.expr) -> str | None:
        """`a.b.c` as the dotted path of what `a` was imported as; None if `a` is no import."""
        attrs: list[str] = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.bound:
            return None
        return ".".join([self.bound[node.id], *reversed(attrs)])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self._path(node)
        if path is not None:  # a chain rooted in an import: judged whole, once
            if private_path(path):
                self._report(node, path)
            return
        if node.attr in private_attributes() and not self._foreign(node.value):
            self._report(node, f".{node.attr} (a private attribute of the SDK's)")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func, args = node.func, node.args
        if (
            isinstance(func, ast.Name)
            and func.id in _BUILTIN_ACCESSORS
            and len(args) >= 2
            and isinstance(args[1], ast.Constant)
            and args[1].value in private_attributes()
            and not self._foreign(args[0])
        ):
            self._report(node, f"{func.id}(..., {args[1].value!r})")
        if (
            args
            and isinstance(args[0], ast.Constant)
            and isinstance(args[0].value, str)
            and private_path(args[0].value)
            and (self._path(func) or getattr(func, "id", ""))
            in ("importlib.import_module", "__import__")
        ):
            self._report(node, f"import of {args[0].value}")
        self.generic_visit(node)


def violations(source: str, filename: str = "<source>") -> list[str]:
    checker = _Checker()
    checker.visit(ast.parse(source, filename))
    return [f"{filename}:{line}: {what}" for line, what in sorted(set(checker.found))]


def program_modules() -> Iterator[Path]:
    yield REPO / "__main__.py"
    for package in ("components", "stackctl", "policy"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not rel.startswith((f"{WALL}/", "policy/venv/")):
                yield path


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --- the rule holds on the program ------------------------------------------------------------


def test_nothing_outside_the_wall_touches_a_private_pulumi_name() -> None:
    found = [v for p in program_modules() for v in violations(p.read_text(), _rel(p))]
    assert found == []


def test_the_rest_of_the_program_uses_the_walls_public_names_only() -> None:
    public = set(mockruntime.__all__)
    found = []
    for path in program_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "stackctl.mockruntime":
                found += [f"{_rel(path)}: {a.name}" for a in node.names if a.name not in public]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(WALL_MODULE):
                found.append(f"{_rel(path)}: from {node.module}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{_rel(path)}: {a.name}" for a in node.names if a.name.startswith(WALL_MODULE)
                ]
    assert found == []


def test_the_wall_imports_only_pulumi_protobuf_the_stdlib_and_itself() -> None:
    allowed = {"pulumi", "google", "__future__", *sys.stdlib_module_names}
    found = []
    for path in sorted((REPO / WALL).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                if name.partition(".")[0] not in allowed and not (
                    name == "stackctl.mockruntime" or name.startswith(WALL_MODULE)
                ):
                    found.append(f"{_rel(path)}: {name}")
    assert found == []


def test_only_the_oracle_tests_use_private_pulumi_names() -> None:
    users = {
        _rel(path)
        for path in sorted((REPO / "tests").rglob("*.py"))
        if violations(path.read_text(), _rel(path))
    }
    assert users == set(ORACLE_TESTS)


# --- the rule catches what it should, and only that -------------------------------------------

PLANTED = {
    "rpc module": "from pulumi.runtime import rpc\n",
    "rpc import": "import pulumi.runtime.rpc\n",
    "config internals": "from pulumi.runtime.config import CONFIG\n",
    "private module": "from pulumi import _types\n",
    "private module, dotted": "import pulumi._types as types\n",
    "private name": "from pulumi.runtime.rpc import _special_sig_key\n",
    "settings by attribute": "import pulumi\npulumi.runtime.settings.get_stack()\n",
    "submodule through an alias": "import pulumi.runtime as rt\nrt.rpc.serialize_property\n",
    "Output._data": "import pulumi\nx = pulumi.Output.from_input(1)\nx._data\n",
    "a component's own _name": (
        "import pulumi\nclass C(pulumi.ComponentResource):\n    def f(self):\n"
        "        return self._name\n"
    ),
    "Resource._type by getattr": "def f(res):\n    return getattr(res, '_type', None)\n",
    "private classmethod": "from pulumi import Output as O\nO._from_input_shallow(1)\n",
    "import_module": "import importlib\nimportlib.import_module('pulumi.runtime.settings')\n",
}
ALLOWED = {
    "public runtime": "import pulumi\npulumi.runtime.set_mocks\npulumi.runtime.get_root_resource()",
    "public runtime import": "from pulumi.runtime import get_config_env, is_config_secret\n",
    "public name from its submodule": "from pulumi.runtime.config import is_config_secret\n",
    "public API": "import pulumi\npulumi.Config('appstack').get('apps')\n",
    "our own module's private": "from stackctl.diff import rules\nrules._get(1, 2)\n",
    "our own private attribute": "class A:\n    def f(self):\n        return self._lock\n",
    "our class's method named as the SDK's": "class A:\n    def f(self):\n        self._get()\n",
    "dunder": "import pulumi\npulumi.__version__\n",
}


@pytest.mark.parametrize("source", PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_violation_is_found(source: str) -> None:
    assert len(violations(source)) == 1


@pytest.mark.parametrize("source", ALLOWED.values(), ids=ALLOWED.keys())
def test_public_use_is_not_a_violation(source: str) -> None:
    assert violations(source) == []


def test_the_private_attributes_are_the_sdks() -> None:
    """The attribute rule knows the names the shortcuts really read (so it would see them)."""
    assert {"_type", "_data", "_aliases", "_name", "_is_known"} <= private_attributes()
    assert "get_root_resource" in runtime_public() and "rpc" not in runtime_public()

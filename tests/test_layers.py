"""The layers of docs/architecture.md, held: which package of the program may import which.

Every import of the program (module level and inside functions, `from x import y` and `import x`)
is read from the source with `ast`, mapped to its package (the longest prefix in `LAYERS`), and
checked against the table below, which is the package map of docs/architecture.md. A second rule:
no cycle, neither between packages nor between modules through their module-level imports (a
cycle there is an import-order hazard whatever the table says).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.tooling import REPO

#: Package -> the packages of the program it may import (besides itself and the SDKs). Kept in
#: the order of docs/architecture.md's package map; the test below holds the two together.
LAYERS: Mapping[str, frozenset[str]] = {
    "appstack_grammar": frozenset(),
    "app": frozenset(),
    "components.kube": frozenset({"appstack_grammar"}),
    "components.config": frozenset({"appstack_grammar", "components.kube"}),
    "components.app": frozenset({"appstack_grammar", "components.config", "components.kube"}),
    "components.jenkins": frozenset({"appstack_grammar", "components.config", "components.kube"}),
    "components.image": frozenset({"components.config", "components.kube"}),
    "components.registry": frozenset({"components.config", "components.kube"}),
    "components.gitops": frozenset({"components.config", "components.kube"}),
    "components.pulumi_config": frozenset({"components.config"}),
    "components.monitoring": frozenset({"components.app", "components.config", "components.kube"}),
    "components.namespace": frozenset(
        {"appstack_grammar", "components.app", "components.config", "components.kube"}
    ),
    "components.stack": frozenset(
        {
            "components.app",
            "components.config",
            "components.gitops",
            "components.image",
            "components.jenkins",
            "components.kube",
            "components.monitoring",
            "components.namespace",
            "components.registry",
        }
    ),
    "components": frozenset(),
    "policy": frozenset({"appstack_grammar"}),
    "stackctl.errors": frozenset(),
    "stackctl.mockruntime": frozenset(),
    "stackctl.render": frozenset(
        {
            "components.config",
            "components.stack",
            "stackctl.errors",
            "stackctl.mockruntime",
        }
    ),
    "stackctl.diff": frozenset(
        {
            "components.config",
            "components.stack",
            "stackctl.errors",
            "stackctl.mockruntime",
            "stackctl.render",
        }
    ),
    "stackctl.ops": frozenset({"components.config", "components.image", "stackctl.errors"}),
    "stackctl.check": frozenset({"policy", "stackctl.errors", "stackctl.render"}),
    "stackctl.bench": frozenset(
        {"components.config", "stackctl.diff", "stackctl.mockruntime", "stackctl.render"}
    ),
    "stackctl": frozenset({"stackctl.errors"}),
    "e2e": frozenset(),
    "e2e.bench": frozenset({"components.config", "e2e", "stackctl.bench", "stackctl.render"}),
    "__main__": frozenset({"components.config", "components.pulumi_config", "components.stack"}),
}

#: The program's source roots (tests/ may import anything; policy/venv is the pack's install).
ROOTS = ("appstack_grammar", "app", "components", "policy", "stackctl", "e2e")
SKIP = re.compile(r"(^|/)(venv|\.venv[^/]*|node_modules|__pycache__)(/|$)")


def package_of(module: str) -> str | None:
    """The entry of LAYERS that owns `module` (longest dotted prefix), None outside the program."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return prefix
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def program_files() -> Iterator[Path]:
    yield REPO / "__main__.py"
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not SKIP.search(path.relative_to(REPO).as_posix()):
                yield path


def imports(
    source: str, module: str, modules: Iterable[str], *, top_level_only: bool = False
) -> Iterator[str]:
    """Every module of `modules` that `source` (the text of `module`) imports; relative imports
    resolved; `from pkg import name` is the module pkg.name where there is one, else pkg."""
    known = set(modules)
    tree = ast.parse(source)
    nodes: Iterable[ast.AST] = tree.body if top_level_only else ast.walk(tree)
    is_package = f"{module}.__init__" in known or any(m.startswith(module + ".") for m in known)
    package = module if is_package else module.rpartition(".")[0]
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        yield from (name for name in names if name in known)


def violations(edges: Iterable[tuple[str, str]]) -> list[str]:
    """Each (importer, imported) module pair that crosses LAYERS the wrong way."""
    found = []
    for importer, imported in edges:
        source, target = package_of(importer), package_of(imported)
        if source is None or target is None or source == target:
            continue
        if target.startswith(source + ".") and source != "components":
            continue  # a package's __init__ may name its own modules
        if target not in LAYERS[source]:
            found.append(
                f"{importer} imports {imported}: {source} may import {sorted(LAYERS[source])}"
            )
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The non-trivial strongly connected components of `graph` (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def program_edges(*, top_level_only: bool = False) -> list[tuple[str, str]]:
    modules = {module_name(p): p for p in program_files()}
    edges = []
    for name, path in modules.items():
        for imported in imports(path.read_text(), name, modules, top_level_only=top_level_only):
            edges.append((name, imported))
    return edges


def test_every_import_of_the_program_follows_the_layers() -> None:
    assert violations(program_edges()) == []


def test_the_packages_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in program_edges():
        source, target = package_of(importer), package_of(imported)
        if source and target and source != target and not target.startswith(source + "."):
            graph.setdefault(source, set()).add(target)
    assert cycles(graph) == []


def test_no_module_level_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in program_edges(top_level_only=True):
        if importer != imported and not importer.startswith(imported + "."):
            graph.setdefault(importer, set()).add(imported)
    assert cycles(graph) == []


def test_the_table_itself_has_no_cycle() -> None:
    assert cycles({k: set(v) for k, v in LAYERS.items()}) == []


def test_every_package_of_the_program_has_a_row() -> None:
    unowned = sorted(
        name for name in (module_name(p) for p in program_files()) if package_of(name) is None
    )
    assert unowned == []


def test_the_table_is_the_package_map_of_the_architecture_doc() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    section = doc.split("## Package map", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([\w.]+)/?` \|[^|]*\| ([^|]*) \|$", section, flags=re.M))
    documented = {
        name.replace("/", "."): frozenset(re.findall(r"`([\w.]+)`", may))
        for name, may in rows.items()
    }
    assert documented == dict(LAYERS)


@pytest.mark.parametrize(
    ("importer", "imported", "crosses"),
    [
        ("components.kube.labels", "components.app.pod", True),  # upward
        ("components.config.jenkins", "components.jenkins.plugins", True),  # config -> a component
        ("components.app.pod", "stackctl.render.stack", True),  # program -> CLI
        ("policy.rules.base", "components.config", True),  # the pack's venv has no components
        ("stackctl.ops.deploy", "stackctl.render.stack", True),  # ops never renders
        ("stackctl.render.stack", "stackctl.diff.compare", True),
        ("stackctl.mockruntime.engine", "components.stack", True),  # the wall imports only pulumi
        ("components.app.pod", "components.kube.security", False),
        ("stackctl.diff.cmd", "stackctl.render", False),
        ("components.stack", "components.jenkins", False),
        ("components.app.pod", "components.app.release", False),  # within a package
    ],
)
def test_a_planted_import_is_judged(importer: str, imported: str, crosses: bool) -> None:
    assert bool(violations([(importer, imported)])) is crosses


def test_a_planted_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_relative_imports_resolve_to_the_package() -> None:
    source = "from . import labels\nfrom ..config import base\nfrom components import kube\n"
    modules = ["components.kube.network", "components.kube.labels", "components.config.base"]
    got = set(imports(source, "components.kube.network", [*modules, "components.kube"]))
    assert got == {"components.kube.labels", "components.config.base", "components.kube"}

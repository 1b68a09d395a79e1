"""The package's layout stays as built: no import circle, no module reaching into another
module's private names, few modules at the top, modules and tests of a readable size.

benchkit's own imports are read with `ast` (every import statement, also those inside
functions: a lazy import still ties two modules together), never by importing the modules.
Sizes that exceed a limit must be named in LARGE with the reason, which docs/architecture.md
repeats.
"""

from __future__ import annotations

import ast
from pathlib import Path

from paths import DOCS, REPO

PACKAGE = REPO / "benchkit"
MAX_TOP_MODULES = 5
MAX_MODULE_LINES = 800
MAX_TEST_LINES = 800
MAX_SCRIPT_LINES = 300
# path relative to the repository -> why one concept needs more lines than the limit
LARGE: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every benchkit import in `path`."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "benchkit"]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] != "benchkit":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((sub, None) if sub in known else (node.module, alias.name))
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _ in imports_of(path, known) if target in known
                   and target != name}
            for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_name() -> None:
    known = modules()
    offences = [f"{name} imports {target}.{taken}"
                for name, path in known.items()
                for target, taken in imports_of(path, known)
                if taken and taken.startswith("_") and not taken.startswith("__")
                and target != name]
    assert offences == []


def test_few_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def _too_long(paths: list[Path], limit: int) -> list[str]:
    out = []
    for p in paths:
        rel = str(p.relative_to(REPO))
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > limit and rel not in LARGE:
            out.append(f"{rel}: {n} lines")
    return out


def test_modules_tests_and_scripts_stay_readable() -> None:
    assert _too_long(sorted(PACKAGE.rglob("*.py")), MAX_MODULE_LINES) == []
    assert _too_long(sorted((REPO / "tests").rglob("*.py")), MAX_TEST_LINES) == []
    assert _too_long(sorted((REPO / "scripts").glob("*.py")), MAX_SCRIPT_LINES) == []


def test_every_module_is_on_the_map() -> None:
    """docs/architecture.md names every module, and every large one with its reason."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "__init__.py" and str(p.relative_to(PACKAGE)) not in text]
    assert missing == []
    assert [rel for rel in LARGE if rel not in text] == []

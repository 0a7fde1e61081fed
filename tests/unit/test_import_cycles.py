"""No import cycle in src/livedesk, between files or between folders (docs/architecture.md).

The layer contracts (``lint-imports``, pyproject.toml) say which package may import which; they
do not see a cycle between two modules of one package, nor one the layers do not name. This
reads the source itself (``ast``), so it also counts imports inside functions and under
``TYPE_CHECKING`` — an import moved into a function to dodge a cycle is still a cycle here.
The rules are those of ``shared/tools/import-cycles.py``: ``from pkg import name`` is an edge
to ``pkg`` (its ``__init__``) and to ``pkg.name`` when that is a module; a folder is the first
package under ``livedesk`` (``livedesk.booking``), or a top-level module (``livedesk.app``).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PACKAGE = "livedesk"

Graph = Mapping[str, set[str]]


def _modules(src: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(src.rglob("*.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names one import statement reaches (unresolved: names may be attributes)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        return [f"{base}.{alias.name}" for alias in node.names] + [base]
    return []


def file_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the livedesk modules it imports, anywhere in its body."""
    modules = _modules(src)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(node, package):
                # An attribute (``from pkg.mod import func``) is an edge to its module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != ROOT_PACKAGE and target.startswith(ROOT_PACKAGE):
                    edges[name].add(target)
    return edges


def _folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def folder_graph(files: Graph) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for module, targets in files.items():
        folders.setdefault(_folder(module), set()).update(
            _folder(t) for t in targets if _folder(t) != _folder(module)
        )
    for targets in list(folders.values()):
        for target in targets:
            folders.setdefault(target, set())
    return folders


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def shortest_loop(graph: Graph, members: Iterable[str]) -> list[str]:
    """One shortest way round a cycle of ``members``, as the import chain to read first."""
    inside = set(members)
    start = min(inside)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & inside):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return [start]


def _report(kind: str, graph: Graph, found: list[list[str]]) -> str:
    lines = [f"{len(found)} {kind} cycle(s):"]
    for members in found:
        lines.append(f"- {len(members)} {kind}s: {', '.join(members)}")
        lines.append(f"  e.g. {' -> '.join(shortest_loop(graph, members))}")
    return "\n".join(lines)


def test_the_graph_sees_the_whole_package() -> None:
    files = file_graph()
    # A broken walk would find no cycle because it found no import.
    assert len(files) > 100
    assert "livedesk.app" in files
    assert "livedesk.realtime.server" in files["livedesk.app"]


def test_no_file_is_in_an_import_cycle() -> None:
    files = file_graph()
    found = cycles(files)
    assert not found, _report("file", files, found)


def test_no_folder_is_in_an_import_cycle() -> None:
    folders = folder_graph(file_graph())
    found = cycles(folders)
    assert not found, _report("folder", folders, found)


def test_a_cycle_is_found_and_named() -> None:
    """The check itself: a function-level import that closes a loop is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert shortest_loop(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_imports_inside_functions_and_from_packages_count(tmp_path: Path) -> None:
    package = tmp_path / ROOT_PACKAGE
    (package / "one").mkdir(parents=True)
    (package / "two").mkdir()
    (package / "__init__.py").write_text("")
    (package / "one" / "__init__.py").write_text("")
    (package / "two" / "__init__.py").write_text("")
    (package / "one" / "a.py").write_text("def f() -> None:\n    from livedesk.two import b\n")
    (package / "two" / "b.py").write_text("from ..one import a\n")
    files = file_graph(tmp_path)
    assert files["livedesk.one.a"] == {"livedesk.two", "livedesk.two.b"}
    assert files["livedesk.two.b"] == {"livedesk.one", "livedesk.one.a"}
    assert cycles(files) == [["livedesk.one.a", "livedesk.two.b"]]
    assert cycles(folder_graph(files)) == [["livedesk.one", "livedesk.two"]]

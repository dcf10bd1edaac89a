"""The language server's seams: who imports whom inside lsp_server/."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lsp_server"


def local_imports(path: Path) -> set[str]:
    """The lsp_server modules `path` imports, TYPE_CHECKING and function-level imports too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("lsp_server."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("lsp_server."))
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return (found & modules) - {path.stem}


GRAPH = {path.stem: local_imports(path) for path in PACKAGE.glob("*.py")}


def test_no_import_circle():
    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        for imported in GRAPH[module]:
            visit(imported, (*trail, module))

    for module in GRAPH:
        visit(module, ())


def test_only_the_entry_point_reaches_the_server_object():
    # server.py wires the parts together; the command line starts it; nothing else sees it.
    assert {m for m, imported in GRAPH.items() if "server" in imported} == {"cli"}


def test_code_actions_do_not_depend_on_the_rewrite_service():
    assert "service" not in GRAPH["actions"]
    assert not GRAPH["wire"] & {"service", "server", "actions"}

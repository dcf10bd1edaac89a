"""The language server's seams: who imports whom inside lsp_server/."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lsp_server"


def module_of(path: Path) -> str:
    """`path`'s module inside lsp_server: "service", "pygls_overrides.protocol"..."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_of(path): path for path in PACKAGE.rglob("*.py")}


def local_imports(path: Path) -> set[str]:
    """The lsp_server modules `path` imports, TYPE_CHECKING and function-level imports too."""
    name = module_of(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
            elif node.module and node.module.startswith("lsp_server."):
                base = []
            else:
                continue
            module = node.module or ""
            if not node.level:
                module = module.removeprefix("lsp_server.")
            stem = ".".join([*base, *([module] if module else [])])
            for alias in node.names:  # `from . import x` and `from .pkg import module`
                sub = f"{stem}.{alias.name}" if stem else alias.name
                found.add(sub if sub in MODULES else stem)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("lsp_server.") for a in node.names
                         if a.name.startswith("lsp_server."))
    return (found & set(MODULES)) - {name, ""}


GRAPH = {name: local_imports(path) for name, path in MODULES.items()}
OVERRIDES = "pygls_overrides"


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


def test_the_pygls_overrides_stand_alone():
    """The overrides replace pygls internals and nothing else: they import none of the
    server's own modules, so each can go once pygls fixes what it works around."""
    for module, imported in GRAPH.items():
        if module.startswith(OVERRIDES):
            assert {m for m in imported if not m.startswith(OVERRIDES)} == set(), module


# Private names outside lsp_server that the server may still use: the standard library's.
ALLOWED_PRIVATE = {"os._exit", "argparse._SubParsersAction", "value._asdict"}


def test_only_the_overrides_reach_into_pygls_internals():
    """A private attribute of another object (`protocol._shutdown`, `workspace.__class__`,
    `super()._run_generator`) is an override of pygls: it belongs in pygls_overrides/, where
    its index entry says why."""
    for module, path in MODULES.items():
        if module.startswith(OVERRIDES):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue  # the object's own state
            text = ast.unparse(node)
            if text in ALLOWED_PRIVATE or text == "super().__init__" or (
                    node.attr.startswith("__") and node.attr in ("__name__", "__traceback__",
                                                                  "__cause__")):
                continue
            raise AssertionError(f"{path.name}:{node.lineno} reaches into {text}: move it to "
                                 f"lsp_server/{OVERRIDES}/")


def test_lsp_frames_are_made_and_read_by_one_test_helper():
    """tests/helpers/raw_lsp.py frames LSP messages by hand, for every test that needs it
    (malformed frames included); a second copy would drift from it. HTTP is not LSP."""
    tests = PACKAGE.parent / "tests"
    helper = tests / "helpers" / "raw_lsp.py"
    header = "Content-" + "Length:"  # spelled so that this file does not match itself
    for path in tests.rglob("*.py"):
        if path == helper or path.is_relative_to(tests / "engine" / "api"):
            continue
        text = path.read_text(encoding="utf-8")
        assert header not in text, f"{path} frames LSP by hand: use {helper.name}"

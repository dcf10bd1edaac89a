"""The package's layers, lowest first: a module imports only from its own layer and lower ones.

Every import of every module of `engine` and `lsp_server` counts, those inside functions
included (they are how the front ends keep torch out of their start-up), and so do the
modules named by string to importlib. The README's layout section describes these layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (layer, the packages or modules in it), lowest first. Within a layer, a group never
# imports another group (the two servers are peers).
LAYERS: list[tuple[str, list[str | tuple[str, ...]]]] = [
    ("contract", ["engine.contract"]),
    ("decode", ["engine.decode"]),
    ("model", ["engine.model"]),
    ("rewriting", ["engine.rewriting"]),
    ("public Python API", ["engine"]),  # engine/__init__.py only
    ("servers", ["engine.api", "lsp_server"]),
    ("command line", ["engine.cli"]),
    ("lab", ["engine.bench"]),
    ("entry point", [("engine.cli.main", "engine.cli.__main__")]),
]


def place(module: str) -> tuple[int, str] | None:
    """(layer index, group) of a module of ours; None for anything else (torch, stdlib)."""
    best: tuple[int, str, str] | None = None  # (layer, group, the prefix that matched)
    for index, (_, groups) in enumerate(LAYERS):
        for group in groups:
            for prefix in (group,) if isinstance(group, str) else group:
                exact = prefix == "engine"  # the facade is engine/__init__.py, not its children
                matches = module == prefix or (not exact and module.startswith(prefix + "."))
                if matches and (best is None or len(prefix) > len(best[2])):
                    best = (index, str(group), prefix)
    return best[:2] if best is not None else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from engine import contract` imports engine.contract, not the facade.
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append((node.lineno, sub if place(sub) and place(sub) != place(module)
                              else module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
              and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                      and e.value.startswith(("engine.", "lsp_server."))
                      for e in node.value.elts) and node.value.elts):
            # A table of modules imported by name (the CLI's commands).
            found += [(node.lineno, e.value) for e in node.value.elts]  # type: ignore[attr-defined]
    return found


def sources() -> list[Path]:
    return sorted(p for package in ("engine", "lsp_server") for p in (ROOT / package).rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in sources():
        importer = module_name(path)
        here = place(importer)
        assert here is not None, f"{importer} is in no layer: add it to LAYERS"
        for line, imported in imports_of(path):
            there = place(imported)
            if there is None or there[1] == here[1]:
                continue
            where = f"{path.relative_to(ROOT)}:{line}: {importer} imports {imported}"
            if there[0] > here[0]:
                found.append(f"{where} (layer {LAYERS[there[0]][0]!r} is above "
                             f"{LAYERS[here[0]][0]!r})")
            elif there[0] == here[0]:
                found.append(f"{where} (peers in layer {LAYERS[here[0]][0]!r})")
    return found


def test_no_module_imports_a_higher_layer_or_a_peer() -> None:
    assert violations() == []


@pytest.mark.parametrize(("importer", "source", "expected"), [
    ("engine/decode/loop.py", "from engine.rewriting.prompt import FENCE\n", "above"),
    ("engine/model/loading.py", "def f():\n    from engine.cli import options\n", "above"),
    ("engine/api/app.py", "import lsp_server.server\n", "peers"),
    ("engine/rewriting/rewrite.py", "import engine\n", "above"),
    ("engine/rewriting/rewrite.py", "from .. import bench\n", "above"),
])
def test_the_check_catches_what_it_guards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          importer: str, source: str, expected: str) -> None:
    """A copy of the tree with one bad import added is refused (the check can fail)."""
    for package in ("engine", "lsp_server"):
        for path in (ROOT / package).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    (tmp_path / importer).write_text(source + (tmp_path / importer).read_text())
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = violations()
    assert len(found) == 1 and expected in found[0] and importer in found[0], found

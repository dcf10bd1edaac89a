"""Benchmark tasks: CanItEdit problems and the worked example."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .sandbox import run_sandboxed

# CanItEdit words each problem's instruction two ways: in detail, and as a hurried user would.
INSTRUCTION_KINDS = ("descriptive", "lazy")

WORKED_EXAMPLE_INSTRUCTION = (
    "Rewrite the code and add a single line comment above "
    "`const [shouldRefreshGold, setShouldRefreshGold]` explaining what it does."
)


@dataclass
class Task:
    id: str
    code: str
    instruction: str
    language: str
    tests: str | None = None  # CanItEdit asserts, run against the rewritten code
    reference: str | None = None  # CanItEdit's reference solution (`after`)
    kind: str = "canitedit"

    def check(self, text: str, timeout: float = 10.0) -> bool | None:
        """Is the rewrite right? None when the task has no way to tell."""
        if self.kind == "example":
            return worked_example_is_right(text)
        if self.tests is None:
            return None
        return run_tests(text, self.tests, timeout)


def worked_example_is_right(text: str) -> bool:
    """One new comment line directly above the declaration, everything else unchanged."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "const [shouldRefreshGold, setShouldRefreshGold]" in line:
            return i > 0 and lines[i - 1].strip().startswith(("//", "/*"))
    return False


def run_tests(code: str, tests: str, timeout: float) -> bool:
    """Untrusted code: a separate interpreter, a temp dir, a time limit, no network
    (engine/bench/sandbox.py; `specedit eval` reads the whole TestOutcome)."""
    return run_sandboxed(code, tests, timeout).passed


# The benchmark data that ships with the package: CanItEdit and the worked example, each
# with its terms in its README.
PACKAGED_DATA = Path(__file__).resolve().parent / "data"


def find_data_dir(explicit: Path | None = None) -> Path:
    """The benchmark data: --data, else $SPECEDIT_DATA, else the copy in the package."""
    if explicit is not None:
        return explicit
    if os.environ.get("SPECEDIT_DATA"):
        return Path(os.environ["SPECEDIT_DATA"])
    return PACKAGED_DATA


def load_canitedit(data: Path, instruction: str = "descriptive") -> list[Task]:
    tasks = []
    with (data / "canitedit" / "test.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            tasks.append(Task(id=row["full_name"], code=row["before"],
                              instruction=row[f"instruction_{instruction}"], language="python",
                              tests=row["tests"], reference=row["after"]))
    return tasks


def load_worked_example(data: Path) -> Task:
    code = (data / "examples" / "visualization.ts").read_text()
    readme = (data / "examples" / "README.md").read_text()
    # The README quotes the instruction as an indented block; fall back to the known text.
    match = re.search(r"\n    (Rewrite the code.+)\n", readme)
    instruction = match.group(1).strip() if match else WORKED_EXAMPLE_INSTRUCTION
    return Task(id="worked_example", code=code, instruction=instruction, language="typescript",
                kind="example")


def select(tasks: list[Task], ids: str | None, limit: int | None) -> list[Task]:
    if ids:
        wanted = {t.strip() for t in ids.split(",") if t.strip()}
        tasks = [t for t in tasks if t.id in wanted or t.id.split("_", 1)[0] in wanted]
    return tasks[:limit] if limit is not None else tasks

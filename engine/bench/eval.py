"""`specedit eval`: how often the rewrite is right on CanItEdit (pass@1), per prompt format.

Speculative edits give greedy's text, so pass@1 here is the greedy answer's: one
deterministic sample per problem (the benchmark's harness samples 20 at temperature 0.2).
Each rewrite is checked by the problem's tests in the sandbox (engine/bench/sandbox.py), and
each failure gets one cause (FAILURE_CAUSES) so that a low score can be explained. Some
problems' tests import pandas, scikit-learn, z3 or autograd: install the `[canitedit]` extra,
or those problems count as cannot-run-here.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.contract import SpecEditError
from engine.decode.methods import parse_method
from engine.model.loading import LoadedModel
from engine.rewriting.prompt import has_closing_fence
from engine.rewriting.rewrite import RewriteResult, rewrite

from .run import CsvLog
from .sandbox import DEFAULT_TEST_TIMEOUT, NETWORK_BLOCKED, TestOutcome, run_sandboxed
from .selection import WHOLE_FILE, Split, edits_outside_request, split_problem
from .tasks import Task

# One cause per problem, the first that applies, in this order.
PASSED = "passed"
REQUEST_ERROR = "request-error"  # the rewrite was refused (e.g. the prompt is too long)
CANNOT_RUN_HERE = "cannot-run-here"  # a library is missing here, the reference fails here too,
# or the tests wanted the network
CUT_SHORT = "cut-short"  # stopped at --max-new-tokens (finish_reason "length")
NO_CLOSING_FENCE = "no-closing-fence"  # the model ended its answer without closing the block
UNCHANGED = "unchanged"  # the model gave the code back as it was (the draft, accepted whole)
TIMEOUT = "timeout"  # the tests ran past --timeout
OUTSIDE_REQUEST = "edit-outside-request"  # changed a top-level block the reference leaves alone
WRONG_EDIT = "wrong-edit"
FAILURE_CAUSES = (REQUEST_ERROR, CANNOT_RUN_HERE, CUT_SHORT, NO_CLOSING_FENCE, UNCHANGED,
                  TIMEOUT, OUTSIDE_REQUEST, WRONG_EDIT)

ROW_KEY = ("task", "instruction", "prompt_format", "method", "selection")

_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


@dataclass
class EvalSettings:
    methods: list[str]
    prompt_formats: list[str]
    selection: str = WHOLE_FILE
    context_lines: int = 0  # used by the "changed" selection only
    max_new_tokens: int | None = None
    timeout: float = DEFAULT_TEST_TIMEOUT

    @property
    def selection_label(self) -> str:
        return self.selection if self.selection == WHOLE_FILE else (
            f"{self.selection}+-{self.context_lines}")


@dataclass
class EvalRow:
    task: str
    instruction: str  # descriptive or lazy
    prompt_format: str
    method: str
    selection: str  # "file", or "changed+-N" (N context lines each side)
    model: str
    dtype: str
    device: str
    passed: bool
    cause: str  # "passed" or one of FAILURE_CAUSES
    finish_reason: str  # "stop", "length", or "" when the rewrite was refused
    closing_fence: bool
    prompt_tokens: int
    output_tokens: int
    forward_passes: int
    accepted_tokens: int
    wall_seconds: float  # the rewrite, not the tests
    tokens_per_second: float
    test_seconds: float
    reference_passes_here: bool  # the reference solution passes these tests on this machine
    test_error: str  # the last line of the tests' stderr, or the refusal's message
    code: str  # the whole file the tests ran against


def missing_module(stderr: str) -> str | None:
    """The top-level module a ModuleNotFoundError names, when it is not installed here."""
    match = _MISSING_MODULE.search(stderr)
    if match is None:
        return None
    top = match.group(1).split(".")[0]
    return top if importlib.util.find_spec(top) is None else None


def failure_cause(outcome: TestOutcome, result: RewriteResult, closed: bool,
                  reference_ok: bool, unchanged: bool, outside: bool) -> str:
    if outcome.passed:
        return PASSED
    if (not reference_ok or missing_module(outcome.stderr) is not None
            or NETWORK_BLOCKED in outcome.stderr):
        return CANNOT_RUN_HERE
    if result.finish_reason == "length":
        return CUT_SHORT
    if not closed:
        return NO_CLOSING_FENCE
    if unchanged:
        return UNCHANGED
    if outcome.timed_out:
        return TIMEOUT
    return OUTSIDE_REQUEST if outside else WRONG_EDIT


def _last_line(text: str, limit: int = 300) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else ""


class ReferenceCheck:
    """Does each problem's reference solution pass its tests here? Run once per problem."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._known: dict[str, bool] = {}

    def __call__(self, task: Task) -> bool:
        if task.id not in self._known:
            if task.reference is None or task.tests is None:
                self._known[task.id] = True
            else:
                self._known[task.id] = run_sandboxed(task.reference, task.tests,
                                                     self.timeout).passed
        return self._known[task.id]


def problem_split(task: Task, settings: EvalSettings) -> Split:
    """What the model is asked to rewrite for this problem, and the lines around it."""
    return split_problem(task.code, task.reference or task.code, settings.selection,
                         settings.context_lines)


def evaluate_one(loaded: LoadedModel, task: Task, instruction_kind: str, prompt_format: str,
                 method: str, settings: EvalSettings, reference_ok: Callable[[Task], bool],
                 draft: LoadedModel | None = None) -> EvalRow:
    config = parse_method(method)  # rewrite methods only: eval runs through rewrite()
    split = problem_split(task, settings)
    common = dict(task=task.id, instruction=instruction_kind, prompt_format=prompt_format,
                  method=method, selection=settings.selection_label, model=loaded.name,
                  dtype=str(loaded.dtype).split(".")[-1], device=str(loaded.device))
    try:
        result = rewrite(loaded, split.selection, task.instruction, language=task.language,
                         context_before=split.context_before,
                         context_after=split.context_after, method=config,
                         max_new_tokens=settings.max_new_tokens, draft=draft,
                         prompt_format=prompt_format)
    except SpecEditError as exc:  # one refused problem must not end a long run
        return EvalRow(**common, passed=False, cause=REQUEST_ERROR, finish_reason="",
                       closing_fence=False, prompt_tokens=0, output_tokens=0, forward_passes=0,
                       accepted_tokens=0, wall_seconds=0.0, tokens_per_second=0.0,
                       test_seconds=0.0, reference_passes_here=reference_ok(task),
                       test_error=str(exc), code="")
    code = split.reassemble(result.text)
    outcome = run_sandboxed(code, task.tests or "", settings.timeout)
    closed = has_closing_fence(loaded.tokenizer.decode(result.output_ids,
                                                       skip_special_tokens=False))
    ref_ok = reference_ok(task)
    outside = (not outcome.passed and task.reference is not None
               and edits_outside_request(task.code, task.reference, code))
    s = result.stats
    return EvalRow(
        **common, passed=outcome.passed,
        cause=failure_cause(outcome, result, closed, ref_ok,
                            code.rstrip("\n") == task.code.rstrip("\n"), outside),
        finish_reason=result.finish_reason, closing_fence=closed,
        prompt_tokens=s.prompt_tokens, output_tokens=s.output_tokens,
        forward_passes=s.forward_passes, accepted_tokens=s.accepted_tokens,
        wall_seconds=round(s.wall_seconds, 4), tokens_per_second=round(s.tokens_per_second, 2),
        test_seconds=round(outcome.seconds, 3), reference_passes_here=ref_ok,
        test_error="timed out" if outcome.timed_out else _last_line(outcome.stderr),
        code=code,
    )


def open_log(path: Path, resume: bool) -> CsvLog:
    """The eval's rows.csv; on --resume, rows are known by ROW_KEY."""
    return CsvLog(path, resume, row_type=EvalRow, key=ROW_KEY)


def evaluate(loaded: LoadedModel, problems: Iterable[tuple[str, Task]], settings: EvalSettings,
             log: CsvLog, *, draft: LoadedModel | None = None,
             on_row: Callable[[EvalRow | None], None] | None = None) -> None:
    """Every (instruction kind, problem) under every prompt format and method; rows already in
    the log (on --resume) are skipped. on_row gets each new row, and None for a skipped one."""
    reference_ok = ReferenceCheck(settings.timeout)
    for kind, task in problems:
        for prompt_format in settings.prompt_formats:
            for method in settings.methods:
                key = (task.id, kind, prompt_format, method, settings.selection_label)
                if key in log.done:
                    if on_row is not None:
                        on_row(None)
                    continue
                row = evaluate_one(loaded, task, kind, prompt_format, method, settings,
                                   reference_ok, draft)
                log.add(row)
                log.done.add(key)
                if on_row is not None:
                    on_row(row)

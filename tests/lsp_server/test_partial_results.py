"""Partial results' parts without a server: the engine's tokens so far, the text held back,
the worker's decoding, the notifications' dedup and end, and cancelling between passes."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from lsprotocol import types

import engine
from engine.rewriting.prompt import partial_answer_text
from lsp_server.edits import fit_partial, fit_rewrite, region_range
from lsp_server.messages import Refused
from lsp_server.progress import PartialResults
from lsp_server.settings import ModelSpec
from lsp_server.wire import RewriteRequest
from lsp_server.worker import EngineWorker, Generated, RewriteJob
from tests.helpers.lsp import SAMPLE, Reference

SPEC = ModelSpec("tiny", "cpu", "float32")


# -- engine: Progress and the text so far ---------------------------------------------------

def test_progress_tokens_change_nothing_existing_callers_see():
    with_tokens = engine.Progress(3, 2, 0.5, 0.25, tokens=[1, 2, 3])
    assert with_tokens == engine.Progress(3, 2, 0.5, 0.25)
    assert repr(with_tokens) == repr(engine.Progress(3, 2, 0.5, 0.25))
    assert engine.Progress(1, 1, 0.1).tokens == ()


def test_progress_tokens_are_the_output_so_far(reference: Reference):
    lines = SAMPLE.splitlines(keepends=True)
    seen: list[list[int]] = []
    result = engine.rewrite(reference.loaded, "".join(lines[8:10]), "Add comments",
                            method="greedy", max_new_tokens=40,
                            on_progress=lambda p: seen.append(list(p.tokens)))
    assert seen, "no progress reported"
    for tokens in seen:
        assert tokens == result.output_ids[:len(tokens)]
    assert [len(t) for t in seen] == sorted(len(t) for t in seen)


@pytest.mark.parametrize(("decoded", "original", "expected"), [
    ("def f():\n    return 1\n```\nafter", "x\n", "def f():\n    return 1\n"),
    ("def f():\n``", "x\n", "def f():\n"),  # maybe the closing fence: held back
    ("`", "x\n", ""),
    ("a = `b`", "x\n", "a = `b`"),  # backticks inside a line are code
    ("caf\ufffd", "x\n", "caf"),  # an incomplete UTF-8 character
    ("x = 1\n", "x = 0", "x = 1"),  # the original's missing final newline
])
def test_partial_answer_text_holds_back_what_may_change(decoded: str, original: str,
                                                        expected: str):
    assert partial_answer_text(decoded, original) == expected


def test_partial_text_of_every_prefix_is_a_prefix_of_the_answer(reference: Reference):
    lines = SAMPLE.splitlines(keepends=True)
    code = "".join(lines[8:10])
    result = engine.rewrite(reference.loaded, code, "Add comments", method="greedy",
                            max_new_tokens=60)
    ids = result.output_ids
    texts = [engine.partial_text(reference.loaded, code, ids[:n]) for n in range(len(ids) + 1)]
    for earlier, later in zip(texts, texts[1:], strict=False):
        assert later.startswith(earlier)
    assert result.text.startswith(texts[-1])


# -- the server's side ----------------------------------------------------------------------

def test_fit_partial_keeps_crlf_and_adds_no_final_newline():
    assert fit_partial("a\r\nb\r\n", "x\ny") == "x\r\ny"
    assert fit_rewrite("a\r\nb\r\n", "x\ny").startswith(fit_partial("a\r\nb\r\n", "x\ny"))
    assert fit_partial("a\nb\n", "x\ny") == "x\ny"


def test_region_range_is_the_whole_lines():
    from engine.rewriting.request import region_of_lines

    region = region_of_lines(["a\n", "b\n", "c"], 0, 2, 0)
    assert region_range(region) == types.Range(start=types.Position(line=0, character=0),
                                               end=types.Position(line=2, character=0))
    last = region_of_lines(["a\n", "b\n", "cé"], 2, 3, 0)  # no line ending: to its end
    assert region_range(last).end == types.Position(line=2, character=2)


def progress(tokens: int, passes: int, elapsed: float) -> Any:
    return engine.Progress(tokens, passes, elapsed)


def test_partial_results_send_changes_then_the_final_state_then_nothing():
    sent: list[tuple[Any, dict[str, Any]]] = []
    partial = PartialResults(lambda token, value: sent.append((token, value)), "tok",
                             "file:///a.py", {"range": 1}, 4, fit=str.upper)
    partial.on_event(Generated(progress(1, 1, 0.1), "a"))
    partial.on_event(Generated(progress(2, 2, 0.2), "a"))  # unchanged text: not sent
    partial.on_event(Generated(progress(3, 3, 0.3), None))  # no text: not sent
    partial.on_event(Generated(progress(4, 4, 0.4), "ab"))
    stats = SimpleNamespace(output_tokens=5, forward_passes=5, wall_seconds=0.5)
    partial.finish("ABC\n", SimpleNamespace(stats=stats, finish_reason="stop", method="greedy"))
    partial.on_event(Generated(progress(6, 6, 0.6), "abcd"))  # after the end: dropped
    assert [v["text"] for _, v in sent] == ["A", "AB", "ABC\n"]
    assert {token for token, _ in sent} == {"tok"}
    assert sent[-1][1] == {"uri": "file:///a.py", "range": {"range": 1}, "version": 4,
                           "text": "ABC\n", "covered": None, "outputTokens": 5,
                           "forwardPasses": 5, "elapsedSeconds": 0.5}


def test_closed_partial_results_send_nothing():
    sent: list[Any] = []
    partial = PartialResults(lambda token, value: sent.append(value), 1, "u", {}, None)
    partial.close()
    partial.on_event(Generated(progress(1, 1, 0.1), "a"))
    assert sent == []


def test_partial_result_token_on_the_wire():
    raw = {"uri": "file:///a.py", "range": {"start": {"line": 0, "character": 0},
                                            "end": {"line": 1, "character": 0}},
           "instruction": "x", "partialResultToken": 3}
    request = RewriteRequest.from_wire(raw)
    assert request.partial_result_token == 3
    assert RewriteRequest.from_wire(request.to_wire()) == request
    for bad in (True, 1.5, {"a": 1}):
        with pytest.raises(Refused, match="partialResultToken must be a string or an integer"):
            RewriteRequest.from_wire({**raw, "partialResultToken": bad})


# -- the engine thread: decoding only for streamed jobs, cancelling between passes -----------

class CountingModel:
    """The real tiny model, counting its forward passes."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def tiny_job(stream_text: bool, on_event: Any) -> RewriteJob:
    lines = SAMPLE.splitlines(keepends=True)
    return RewriteJob(spec=SPEC, code="".join(lines[8:10]), instruction="Add comments",
                      language="python", method="greedy", max_new_tokens=400,
                      stream_text=stream_text, on_event=on_event)


def test_cancel_from_a_report_stops_before_the_next_pass(reference: Reference):
    counting = CountingModel(reference.loaded.model)
    loaded = dataclasses.replace(reference.loaded, model=counting)
    worker = EngineWorker(load=lambda spec, log: loaded)
    reports: list[tuple[Generated, int]] = []

    def on_event(event: Any) -> None:  # on the engine thread, between two passes
        if isinstance(event, Generated) and not reports:
            reports.append((event, counting.calls))
            job.cancel()

    job = tiny_job(True, on_event)
    worker.submit(job)
    with pytest.raises(engine.RewriteCancelled):
        job.future.result(120)
    worker.stop()
    ((event, calls_at_cancel),) = reports
    assert event.text is not None
    assert counting.calls == calls_at_cancel  # not one pass more


def test_text_is_decoded_only_for_streamed_jobs(reference: Reference):
    decoded: list[int] = []

    def text(loaded: Any, job: RewriteJob, tokens: Any) -> str:
        decoded.append(len(tokens))
        return engine.partial_text(loaded, job.code, tokens)

    worker = EngineWorker(load=lambda spec, log: reference.loaded, text=text)
    quiet: list[Any] = []
    job = tiny_job(False, quiet.append)
    job.max_new_tokens = 30
    worker.submit(job).result(120)
    generated = [e for e in quiet if isinstance(e, Generated)]
    assert generated and all(e.text is None for e in generated)
    assert decoded == []
    streamed: list[Any] = []
    job = tiny_job(True, streamed.append)
    job.max_new_tokens = 30
    worker.submit(job).result(120)
    worker.stop()
    generated = [e for e in streamed if isinstance(e, Generated)]
    assert generated and all(e.text is not None for e in generated)
    assert len(decoded) == len(generated)  # one decode per report, none between reports

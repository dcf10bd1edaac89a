"""The drafting bound (engine/bench/drafting_bound.py): its replay makes the real loop's passes,
its cost model fits timed passes, and its oracle never drafts a token greedy does not keep."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bench.drafting_bound import (
    PassCostModel,
    _engine_proposer,
    bound_task,
    fit_cost_model,
    main,
    oracle_proposer,
    record_task,
)
from engine.bench.replay import RecordedPass, replay_passes
from engine.bench.run import warm_up
from engine.model.loading import load_model
from engine.model.pass_cost import pass_cost
from tests.helpers.scripted_edits import PROMPT, flat, random_lines
from tests.helpers.tiny_gguf import write_tiny_gguf

CODE = ("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
        "def mul(a, b):\n    return a * b\n")


def test_replay_makes_exactly_the_passes_a_real_rewrite_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = load_model(str(write_tiny_gguf(tmp_path / "t.gguf", "qwen2", matrix_type="Q8_0")),
                        "cpu", "auto", threads=1)
    warm_up(loaded, ["speculative"], None)
    recorded = record_task(loaded, CODE, "rename a to x", "python", "tiny")
    assert recorded.passes[0].cached == 0 and len(recorded.passes) > 3
    assert recorded.passes[0].tokens >= len(recorded.prompt_ids)
    assert all(p.seconds > 0 for p in recorded.passes)
    proposer = _engine_proposer(recorded, pass_cost(loaded))
    assert replay_passes(proposer(), len(recorded.prompt_ids), recorded.output_ids,
                         recorded.max_new_tokens) == recorded.passes
    model = PassCostModel({k: (0.01, 0.001, 0.0005, 0.0001) for k in ("one", "direct",
                                                                    "panel")})
    bound = bound_task(recorded, model, proposer)
    assert bound.replayed_same
    assert bound.speculative_seconds == pytest.approx(bound.model_seconds)
    assert bound.passes == len(recorded.passes)
    # Recorded passes read back (--from) replay the same: every pass as recorded.
    saved = tmp_path / "passes.json"
    saved.write_text(json.dumps({"model": "tiny", "threads": 1,
                                 "curve": asdict(pass_cost(loaded)),
                                 "tasks": [asdict(recorded)]}))
    assert main(["--from", str(saved)]) == 0
    row = capsys.readouterr().out.splitlines()[-2].split(",")
    assert row[0] == "tiny" and row[6] == "True"


def test_the_fit_recovers_the_lines_the_passes_were_timed_with() -> None:
    truth = PassCostModel({"one": (0.03, 0.0, 0.0, 0.004),
                           "direct": (0.025, 0.006, 0.0, 0.002),
                           "panel": (0.015, 0.003, 0.002, 0.0006)})
    rng = random.Random(1)
    passes = []
    for _ in range(300):
        tokens = rng.choice([1, 1, 2, 3, 5, 6, 17, 64, 300])
        shape = RecordedPass(rng.randrange(0, 2000), tokens, rng.randint(1, tokens))
        if tokens <= 5:  # one-token and direct passes keep every row
            shape = RecordedPass(shape.cached, tokens, tokens)
        passes.append(RecordedPass(shape.cached, shape.tokens, shape.keep,
                                   truth.seconds(shape)))
    fitted = fit_cost_model(passes)
    for k, line in truth.coefficients.items():
        assert fitted.coefficients[k] == pytest.approx(line, abs=1e-9)
    assert fitted.total(passes) == pytest.approx(sum(p.seconds for p in passes))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_oracle_keeps_every_token_it_drafts(seed: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, rng.randint(1, 20))
    edited = [line for line in lines if rng.random() > 0.2]
    for _ in range(rng.randint(0, 3)):
        edited.insert(rng.randint(0, len(edited)), [rng.randrange(40, 60) for _ in range(5)])
    original, output = flat(lines), flat(edited)
    if not output:
        return
    passes = replay_passes(oracle_proposer(PROMPT, original, output), len(PROMPT), output)
    drafted = passes[0].tokens - len(PROMPT) + sum(p.tokens - 1 for p in passes[1:])
    # Each pass keeps its whole draft and adds the model's own token (the last may run past
    # the end of the output, as the real loop's does).
    assert drafted + len(passes) in (len(output), len(output) + 1)
    # Unchanged code is confirmed in one pass.
    unchanged = replay_passes(oracle_proposer(PROMPT, original, original), len(PROMPT),
                              original)
    assert len(unchanged) == 1

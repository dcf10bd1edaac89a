"""The laptop estimate's two halves: random files of a model's shape, and recorded passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.bench.laptop import PassRecorder, record_passes, replay
from engine.bench.random_gguf import ModelShape, more_bits, write_random_gguf
from engine.bench.run import warm_up
from engine.model.gguf.decoder import NativeDecoder
from engine.model.gguf.reader import GGUFFile
from engine.model.loading import load_model
from tests.helpers.tiny_gguf import write_tiny_gguf

TINY = ModelShape("tiny", hidden=256, intermediate=512, layers=8, heads=4, kv_heads=2,
                  vocab=300, tied=False)


def test_more_bits_matches_the_catalog_q4_k_m_layout() -> None:
    # The 1.5B catalog file (28 layers) keeps 14 attn_v / ffn_down matrices in Q6_K: these.
    wide = [i for i in range(28) if more_bits(i, 28)]
    assert wide == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]


@pytest.mark.parametrize("tied", [False, True])
def test_random_file_has_the_shape_and_q4_k_m_types(tmp_path: Path, tied: bool) -> None:
    shape = ModelShape(**{**TINY.__dict__, "tied": tied})
    file = GGUFFile(write_random_gguf(tmp_path / "m.gguf", shape))
    s = file.shape
    assert (s.hidden, s.intermediate, s.layers, s.heads, s.kv_heads, s.vocab_size) == (
        256, 512, 8, 4, 2, 300)
    assert file.has("output.weight") is not tied
    assert file.tensors["token_embd.weight"].type_name == ("Q6_K" if tied else "Q4_K")
    types = [file.tensors[f"blk.{i}.ffn_down.weight"].type_name for i in range(8)]
    assert types == ["Q6_K" if more_bits(i, 8) else "Q4_K" for i in range(8)]
    logits = NativeDecoder(file)(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, 300) and torch.isfinite(logits).all()


def test_recorded_passes_are_the_rewrites_passes_and_replay_runs_them(tmp_path: Path) -> None:
    loaded = load_model(str(write_tiny_gguf(tmp_path / "t.gguf", "qwen2", matrix_type="Q8_0")),
                        "cpu", "auto", threads=1)
    code = "def add(a, b):\n    return a + b\n"
    warm_up(loaded, ["speculative"], None)
    recording = record_passes(loaded, code, "rename a to x", "python", "speculative")
    passes = recording.passes
    assert len(passes) == recording.forward_passes
    assert passes and passes[0].cached == 0  # the prefill, on an empty cache
    # Every pass starts where the kept cache ends, never past what was fed before it.
    fed = 0
    for p in passes:
        assert p.tokens > 0 and 0 < p.keep <= p.tokens and p.cached <= fed
        fed = p.cached + p.tokens
    decoder = NativeDecoder(GGUFFile(write_random_gguf(tmp_path / "r.gguf", TINY)))
    recorder = PassRecorder(decoder.kernel_pass)
    decoder.kernel_pass = recorder
    total, prefill = replay(decoder, passes, TINY.vocab)
    assert total >= prefill > 0
    # One warm-up pass on an empty cache, then the recorded passes as they were.
    assert recorder.passes[0].cached == 0
    assert tuple(recorder.passes[1:]) == passes

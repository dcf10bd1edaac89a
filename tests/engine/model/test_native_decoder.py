"""The native decoder on tiny GGUF files written in the test: it computes what transformers
computes on the same file, and every position's logits and K/V are bit-identical whatever
the pass that computed it (its size, where it starts, the thread count), for the file's own
blocks and for dense float32 and bfloat16 copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from gguf import GGUFWriter

from engine.contract import SpecEditError, UnsupportedModelError
from engine.model.gguf.decoder import NativeDecoder
from engine.model.gguf.reader import GGUFFile
from engine.model.loading import load_model
from engine.rewriting.rewrite import rewrite
from tests.helpers.tiny_gguf import reference_model, write_tiny_gguf

PASS_SIZES = (1, 2, 3, 7, 16, 64)
PREFIX = 9


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    return {
        "qwen2-F32": write_tiny_gguf(folder / "qwen2-F32.gguf", "qwen2", matrix_type="F32"),
        "llama-F32": write_tiny_gguf(folder / "llama-F32.gguf", "llama", matrix_type="F32",
                                     tied=True),
        "qwen2-mixed": write_tiny_gguf(folder / "qwen2-mixed.gguf", "qwen2",
                                       matrix_type="Q4_K", embedding_type="Q5_0",
                                       output_type="Q6_K"),
        "llama-Q8_0": write_tiny_gguf(folder / "llama-Q8_0.gguf", "llama", matrix_type="Q8_0"),
    }


def ids(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, 400, (1, count), generator=generator)


@pytest.mark.parametrize("name", ["qwen2-F32", "llama-F32"])
def test_the_decoder_computes_what_transformers_computes(files: dict[str, Path],
                                                          name: str) -> None:
    tokens = ids(40)
    native = NativeDecoder(GGUFFile(files[name]), "float32")(tokens).logits[0]
    with torch.no_grad():
        expected = reference_model(files[name])(tokens).logits[0]
    assert torch.allclose(native, expected, atol=2e-3, rtol=1e-3)
    assert torch.equal(native.argmax(-1), expected.argmax(-1))


def passes(decoder: NativeDecoder, tokens: torch.Tensor, size: int) -> tuple[torch.Tensor, Any]:
    """Logits of every position after PREFIX, fed in passes of `size` tokens."""
    out = decoder(tokens[:, :PREFIX], logits_to_keep=1)
    cache, rows = out.cache, []
    for start in range(PREFIX, tokens.shape[1], size):
        chunk = tokens[:, start:start + size]
        out = decoder(chunk, cache=cache)
        cache, rows = out.cache, rows + [out.logits[0]]
    return torch.cat(rows), cache


@pytest.mark.parametrize(("name", "storage"), [
    ("qwen2-mixed", "gguf"), ("llama-Q8_0", "gguf"), ("qwen2-mixed", "float32"),
    ("qwen2-mixed", "bfloat16"), ("llama-F32", "bfloat16")])
def test_a_position_is_the_same_in_every_pass_size(files: dict[str, Path], name: str,
                                                   storage: str) -> None:
    decoder = NativeDecoder(GGUFFile(files[name]), storage)
    tokens = ids(PREFIX + 64, seed=1)
    one_by_one, cache = passes(decoder, tokens, 1)
    for size in PASS_SIZES[1:]:
        logits, other = passes(decoder, tokens, size)
        assert torch.equal(logits, one_by_one), f"pass size {size}"
        length = cache.length
        for layer in range(decoder.shape.layers):
            assert torch.equal(other.keys[layer][:, :length], cache.keys[layer][:, :length])
            assert torch.equal(other.values[layer][:, :length], cache.values[layer][:, :length])


@pytest.mark.parametrize(("name", "storage"), [
    ("qwen2-mixed", "gguf"), ("llama-Q8_0", "gguf"), ("llama-F32", "float32"),
    ("qwen2-mixed", "bfloat16")])
def test_the_whole_pass_in_c_is_its_composition_bit_for_bit(files: dict[str, Path], name: str,
                                                             storage: str) -> None:
    # A pass is one C call; `composed` runs the same operations one kernel call at a time,
    # with torch between them: the specification the single call must match in every bit.
    decoder = NativeDecoder(GGUFFile(files[name]), storage)
    tokens = ids(PREFIX + 20, seed=3)
    whole, by_op = decoder.new_cache(), decoder.new_cache()
    for start, stop in ((0, PREFIX), (PREFIX, PREFIX + 1), (PREFIX + 1, PREFIX + 8),
                        (PREFIX + 8, PREFIX + 20)):
        chunk = tokens[:, start:stop]
        a = decoder(chunk, cache=whole).logits
        b = decoder.composed(chunk, cache=by_op).logits
        assert torch.equal(a, b), f"tokens {start}-{stop}"
    for layer in range(decoder.shape.layers):
        assert torch.equal(whole.keys[layer][:, :whole.length], by_op.keys[layer][:, :by_op.length])
        assert torch.equal(whole.values[layer][:, :whole.length],
                           by_op.values[layer][:, :by_op.length])


def test_the_thread_count_changes_no_bit(files: dict[str, Path]) -> None:
    decoder = NativeDecoder(GGUFFile(files["qwen2-mixed"]), "gguf")
    tokens = ids(80, seed=2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decoder(tokens).logits
        torch.set_num_threads(2)
        two = decoder(tokens).logits
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_a_rejected_draft_is_cropped_and_recomputed_the_same(files: dict[str, Path]) -> None:
    decoder = NativeDecoder(GGUFFile(files["llama-Q8_0"]), "gguf")
    tokens = ids(30, seed=3)
    first = decoder(tokens[:, :20])
    cache = first.cache
    cache.crop(-5)  # five draft tokens rejected
    again = decoder(tokens[:, 15:30], cache=cache)
    whole = decoder(tokens)
    assert torch.equal(again.logits[0], whole.logits[0, 15:])


def test_an_architecture_the_decoder_lacks_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gpt2.gguf"
    writer = GGUFWriter(str(path), "gpt2")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UnsupportedModelError, match="architecture 'gpt2' is not supported"):
        GGUFFile(path)


def test_a_block_type_the_kernels_lack_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "q2.gguf", "qwen2", matrix_type="Q2_K")
    with pytest.raises(UnsupportedModelError, match="is Q2_K") as info:
        GGUFFile(path)
    assert "\n" not in str(info.value)


def test_a_gguf_path_loads_on_the_native_decoder_and_rewrites(files: dict[str, Path],
                                                               tmp_path: Path) -> None:
    # A file without the suffix, as Ollama keeps its models, is found by its header.
    blob = tmp_path / "sha256-0123"
    blob.symlink_to(files["qwen2-mixed"])
    loaded = load_model(str(blob), "cpu", "auto", threads=1)
    assert loaded.dtype == "gguf" and isinstance(loaded.model, NativeDecoder)
    code = "def add(a, b):\n    return a + b\n"
    greedy = rewrite(loaded, code, "Add type hints", method="greedy", max_new_tokens=30)
    fast = rewrite(loaded, code, "Add type hints", method="speculative", max_new_tokens=30)
    assert fast.output_ids == greedy.output_ids
    assert fast.stats.forward_passes <= greedy.stats.forward_passes


def test_dense_copies_and_missing_files_and_wrong_dtypes(files: dict[str, Path],
                                                         tiny_chat_model_dir: Path) -> None:
    dense = load_model(str(files["qwen2-mixed"]), "cpu", "bfloat16", threads=1)
    assert dense.dtype == "bfloat16" and dense.model.storage == "bfloat16"
    with pytest.raises(SpecEditError, match="no GGUF file at"):
        load_model(str(files["qwen2-mixed"].with_name("nothing.gguf")), "cpu", "auto")
    not_gguf = files["qwen2-mixed"].with_name("text.gguf")
    not_gguf.write_text("hello")
    with pytest.raises(SpecEditError, match="is not a GGUF file"):
        load_model(str(not_gguf), "cpu", "auto")
    with pytest.raises(SpecEditError, match="--dtype gguf computes on a GGUF file"):
        load_model(str(tiny_chat_model_dir), "cpu", "gguf")

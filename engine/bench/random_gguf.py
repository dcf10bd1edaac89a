"""GGUF files of a real model's shape holding random weights, for timing what cannot travel.

The native decoder's cost depends on the shape and the block types, not on the values, so a
file with valid random blocks times a pass as a real file of that shape would. `Q4_K_M` lays
the types out as llama.cpp's quantizer does for that name: Q4_K everywhere, Q6_K for the
output matrix (the embeddings when they are tied to it) and for attn_v and ffn_down in the
layers llama.cpp gives more bits (the first and last eighth, every third between).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter


@dataclass(frozen=True)
class ModelShape:
    """What a pass's cost depends on: a qwen2 decoder's dimensions."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool  # the output matrix is the embeddings (no output.weight in the file)


# Qwen2.5-Coder's published configurations (config.json of each instruct model).
QWEN25_CODER = {
    "1.5b": ModelShape("qwen2.5-coder-1.5b", 1536, 8960, 28, 12, 2, 151936, False),
    "3b": ModelShape("qwen2.5-coder-3b", 2048, 11008, 36, 16, 2, 151936, True),
    "7b": ModelShape("qwen2.5-coder-7b", 3584, 18944, 28, 28, 4, 152064, False),
}


def random_blocks(rng: np.random.Generator, type_name: str, rows: int, cols: int) -> np.ndarray:
    """Valid blocks of a k-quant: random quants and scales, small fp16 super-block scales
    (gguf's own quantize() does not implement the k-quants)."""
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    data = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    scale = rng.uniform(0.002, 0.02, (rows, cols // block)).astype(np.float16).view(np.uint8)
    if type_name in ("Q6_K", "Q3_K"):  # quants and scales, then d
        data[..., -2:] = scale.reshape(rows, cols // block, 2)
    elif type_name == "Q2_K":  # scales and quants, then d and dmin
        data[..., -4:-2] = scale.reshape(rows, cols // block, 2)
        data[..., -2:] = scale.reshape(rows, cols // block, 2)
    else:  # d and dmin first
        data[..., 0:2] = scale.reshape(rows, cols // block, 2)
        data[..., 2:4] = scale.reshape(rows, cols // block, 2)
    return data.reshape(rows, cols // block * size)


def more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's use_more_bits: the layers whose attn_v and ffn_down Q4_K_M keeps in Q6_K."""
    return (layer < layers // 8 or layer >= 7 * layers // 8
            or (layer - layers // 8) % 3 == 2)


def write_random_gguf(path: Path, shape: ModelShape, seed: int = 0) -> Path:
    """A Q4_K_M-typed qwen2 GGUF of `shape` with random weights (no tokenizer: the decoder
    alone reads it). One random matrix per (type, rows, cols) is written for every tensor of
    that kind, which keeps generating a 7B's 4.5 GB fast; each tensor still has its own
    bytes in the file, so a pass reads as much memory as a real file's."""
    rng = np.random.default_rng(seed)
    made: dict[tuple[str, int, int], np.ndarray] = {}

    def matrix(type_name: str, rows: int, cols: int) -> np.ndarray:
        key = (type_name, rows, cols)
        if key not in made:
            made[key] = random_blocks(rng, type_name, rows, cols)
        return made[key]

    s = shape
    head_dim = s.hidden // s.heads
    writer = GGUFWriter(str(path), "qwen2")
    writer.add_block_count(s.layers)
    writer.add_context_length(32768)
    writer.add_embedding_length(s.hidden)
    writer.add_feed_forward_length(s.intermediate)
    writer.add_head_count(s.heads)
    writer.add_head_count_kv(s.kv_heads)
    writer.add_rope_freq_base(1e6)
    writer.add_layer_norm_rms_eps(1e-6)

    def put(name: str, data: np.ndarray, type_name: str = "F32") -> None:
        writer.add_tensor(name, data, raw_dtype=GGMLQuantizationType[type_name])

    ones = np.ones(s.hidden, dtype=np.float32)  # every norm weight
    put("token_embd.weight", matrix("Q6_K" if s.tied else "Q4_K", s.vocab, s.hidden),
        "Q6_K" if s.tied else "Q4_K")
    if not s.tied:
        put("output.weight", matrix("Q6_K", s.vocab, s.hidden), "Q6_K")
    put("output_norm.weight", ones)
    for i in range(s.layers):
        p = f"blk.{i}."
        wide = "Q6_K" if more_bits(i, s.layers) else "Q4_K"
        put(p + "attn_norm.weight", ones)
        put(p + "attn_q.weight", matrix("Q4_K", s.hidden, s.hidden), "Q4_K")
        put(p + "attn_k.weight", matrix("Q4_K", s.kv_heads * head_dim, s.hidden), "Q4_K")
        put(p + "attn_v.weight", matrix(wide, s.kv_heads * head_dim, s.hidden), wide)
        put(p + "attn_q.bias", np.zeros(s.hidden, dtype=np.float32))
        put(p + "attn_k.bias", np.zeros(s.kv_heads * head_dim, dtype=np.float32))
        put(p + "attn_v.bias", np.zeros(s.kv_heads * head_dim, dtype=np.float32))
        put(p + "attn_output.weight", matrix("Q4_K", s.hidden, s.hidden), "Q4_K")
        put(p + "ffn_norm.weight", ones)
        put(p + "ffn_gate.weight", matrix("Q4_K", s.intermediate, s.hidden), "Q4_K")
        put(p + "ffn_up.weight", matrix("Q4_K", s.intermediate, s.hidden), "Q4_K")
        put(p + "ffn_down.weight", matrix(wide, s.hidden, s.intermediate), wide)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

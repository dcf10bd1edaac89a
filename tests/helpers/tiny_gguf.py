"""Tiny GGUF files written in the tests: random weights in any block type, a real tokenizer.

The weights are a tiny transformers model's, written under llama.cpp's tensor names (q and
k permuted for llama as its converter does) and quantized to the requested GGUF types; for
the k-quants, which the gguf package cannot quantize, random valid blocks are written
instead. transformers can load the same file (`from_pretrained(..., gguf_file=...)`), which
gives an independent reference for the native decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter, quantize

from engine.bench.random_gguf import random_blocks
from tests.helpers.tiny_models import CHAT_TEMPLATE, chat_tokenizer, tiny_model

# The k-quants: blocks of 256 whose scales gguf cannot compute; written as random blocks.
K_QUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """transformers' q/k layout to llama.cpp's (rotary on adjacent pairs)."""
    rows = w.shape[0]
    return (w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2)
            .reshape(w.shape))


def _encode(rng: np.random.Generator, w: np.ndarray, type_name: str) -> tuple[np.ndarray,
                                                                               GGMLQuantizationType]:
    kind = GGMLQuantizationType[type_name]
    if type_name == "F32":
        return np.ascontiguousarray(w, dtype=np.float32), kind
    if type_name in K_QUANTS:
        return random_blocks(rng, type_name, *w.shape), kind
    return quantize(np.ascontiguousarray(w, dtype=np.float32), kind), kind


def write_tiny_gguf(path: Path, arch: str = "qwen2", *, matrix_type: str = "Q8_0",
                    embedding_type: str | None = None, output_type: str | None = None,
                    hidden: int = 256, layers: int = 2, seed: int = 0,
                    tied: bool = False) -> Path:
    """A tiny `arch` (qwen2 or llama) GGUF at `path`; every matrix in `matrix_type` unless
    `embedding_type` / `output_type` say otherwise (hidden must be a multiple of 256 for
    k-quants). `tied`: no output matrix, the embeddings are the output (as small Qwen2s)."""
    tokenizer = chat_tokenizer()
    model = tiny_model(arch, seed=seed, vocab_size=len(tokenizer), hidden=hidden, layers=layers)
    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"])
                              if getattr(config, "rope_parameters", None)
                              else float(getattr(config, "rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    _add_tokenizer(writer, tokenizer)

    def put(name: str, value: np.ndarray, type_name: str = "F32") -> None:
        data, kind = _encode(rng, value, type_name)
        writer.add_tensor(name, data, raw_dtype=kind)

    put("token_embd.weight", state["model.embed_tokens.weight"], embedding_type or matrix_type)
    if not tied:
        put("output.weight", state["lm_head.weight"], output_type or matrix_type)
    put("output_norm.weight", state["model.norm.weight"])
    for i in range(layers):
        p, h = f"blk.{i}.", f"model.layers.{i}."
        q, k = state[h + "self_attn.q_proj.weight"], state[h + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = _permute(q, heads), _permute(k, kv_heads)
        put(p + "attn_norm.weight", state[h + "input_layernorm.weight"])
        put(p + "attn_q.weight", q, matrix_type)
        put(p + "attn_k.weight", k, matrix_type)
        put(p + "attn_v.weight", state[h + "self_attn.v_proj.weight"], matrix_type)
        if arch == "qwen2":
            for proj in "qkv":
                put(p + f"attn_{proj}.bias", state[h + f"self_attn.{proj}_proj.bias"])
        put(p + "attn_output.weight", state[h + "self_attn.o_proj.weight"], matrix_type)
        put(p + "ffn_norm.weight", state[h + "post_attention_layernorm.weight"])
        put(p + "ffn_gate.weight", state[h + "mlp.gate_proj.weight"], matrix_type)
        put(p + "ffn_up.weight", state[h + "mlp.up_proj.weight"], matrix_type)
        put(p + "ffn_down.weight", state[h + "mlp.down_proj.weight"], matrix_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer: GGUFWriter, tokenizer: object) -> None:
    """The tiny byte-level BPE as llama.cpp's "gpt2" tokenizer model, with its chat template."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())  # type: ignore[attr-defined]
    vocab: dict[str, int] = spec["model"]["vocab"]
    for added in spec["added_tokens"]:
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    specials = {a["content"] for a in spec["added_tokens"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in specials else 1 for t in tokens])  # 3: control, 1: normal
    writer.add_token_merges(merges)
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def reference_model(path: Path) -> torch.nn.Module:
    """transformers' own reading of the file (its weights dequantized to float32)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                dtype=torch.float32).eval()

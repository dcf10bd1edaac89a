"""The native decoder: a llama-family transformer computed on a GGUF file's own weights.

Every operation whose result could depend on how many tokens a pass holds runs in the
engine's kernels (engine/model/kernels), which compute each row the same way whatever the
pass size and thread count: the matrix products (on the file's 4-8 bit blocks, or on dense
float32/bfloat16 copies), RMS norm, attention over the KV cache, SiLU. What stays in torch is
elementwise arithmetic (rotary, residual adds), exact per element. So a position's logits and
the K/V it writes are bit-identical in a one-token pass and in a pass of any length, which is
what makes speculative output equal greedy's token for token.

It presents the slice of transformers' interface the engine uses: `model(input_ids=...,
use_cache=True, logits_to_keep=n, cache=...)` returning `.logits` and `.cache`, a KV cache with
`get_seq_length()` and `crop()`, `.config`, `.generation_config` and `.device`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from engine.model.kernels import ops

from .reader import DENSE_TYPES, DecoderShape, GGUFFile, _dense

# How the weights are held: the file's own blocks, or dense copies made at load.
STORAGES = ("gguf", "float32", "bfloat16")
# Cache capacity is grown by doubling from this many positions.
INITIAL_CACHE = 512


class KVCache:
    """Keys and values of every layer, float32 [kv_heads, capacity, head_dim] each.

    Capacity grows by doubling; cropping (a rejected draft) only moves the length back.
    """

    def __init__(self, shape: DecoderShape, capacity: int = INITIAL_CACHE) -> None:
        self.shape = shape
        self.length = 0
        self.capacity = 0
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.pointers: tuple[Any, Any] | None = None  # the tensors' addresses, for the kernels
        self.reserve(capacity)

    def reserve(self, positions: int) -> None:
        if positions <= self.capacity:
            return
        capacity = max(positions, 2 * self.capacity, INITIAL_CACHE)
        s = self.shape
        for layer in range(s.layers):
            for store in (self.keys, self.values):
                grown = torch.zeros(s.kv_heads, capacity, s.head_dim)
                if self.capacity:
                    grown[:, :self.length] = store[layer][:, :self.length]
                    store[layer] = grown
                else:
                    store.append(grown)
        self.capacity = capacity
        self.pointers = None

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, keep: int) -> None:
        """transformers' convention: a negative `keep` removes that many positions."""
        self.length = self.length + keep if keep < 0 else min(keep, self.length)


class RotaryTable:
    """cos and sin of every position up to the capacity, each computed on its own (in float64,
    then rounded once), so a position's values never depend on how far the table reaches."""

    def __init__(self, head_dim: int, base: float) -> None:
        self.inverse = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
        self.cos = torch.empty(0, head_dim // 2)
        self.sin = torch.empty(0, head_dim // 2)

    def upto(self, positions: int) -> tuple[torch.Tensor, torch.Tensor]:
        if positions > self.cos.shape[0]:
            size = max(positions, 2 * self.cos.shape[0], INITIAL_CACHE)
            angles = np.outer(np.arange(size, dtype=np.float64), self.inverse)
            self.cos = torch.from_numpy(np.cos(angles).astype(np.float32))
            self.sin = torch.from_numpy(np.sin(angles).astype(np.float32))
        return self.cos, self.sin


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, style: str) -> torch.Tensor:
    """Rotary position embedding of x [M, heads, head_dim]; cos, sin [M, head_dim/2]."""
    cos, sin = cos[:, None, :], sin[:, None, :]
    half = x.shape[-1] // 2
    if style == "halves":
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)


class Activations:
    """A normed hidden state that several products read (q, k, v; gate, up): quantized once,
    on first use by a quantized weight (dense weights take the floats)."""

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values
        self._quantized: ops.QuantizedRows | None = None

    def times(self, weight: ops.GGUFMatrix, bias: torch.Tensor | None = None) -> torch.Tensor:
        if weight.ggml_type.name in DENSE_TYPES:
            return ops.matmul(self.values, weight, bias)
        if self._quantized is None:
            self._quantized = ops.quantize_rows(self.values)
        return ops.matmul(self._quantized, weight, bias)


Layer = ops.LayerWeights


def _weight(file: GGUFFile, name: str, storage: str) -> ops.GGUFMatrix:
    """A weight matrix as the kernels take it: the file's own bytes, or a dense copy."""
    from gguf import GGMLQuantizationType

    tensor = file.tensors[name]
    rows, cols = tensor.shape
    if storage == "gguf":
        return ops.GGUFMatrix.from_bytes(tensor.data, GGMLQuantizationType[tensor.type_name],
                                         rows, cols)
    dense = torch.from_numpy(np.array(_dense(tensor), dtype=np.float32))  # a copy, writable
    if storage == "bfloat16":
        return ops.GGUFMatrix.from_bytes(dense.reshape(rows, cols).to(torch.bfloat16),
                                         GGMLQuantizationType.BF16, rows, cols)
    return ops.GGUFMatrix.from_bytes(dense.reshape(rows, cols), GGMLQuantizationType.F32,
                                     rows, cols)


class NativeDecoder:
    """A llama-family decoder on the kernels; one instance serves every request."""

    def __init__(self, file: GGUFFile, storage: str = "gguf", eos_token_ids: tuple[int, ...] = (),
                 context_length: int | None = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage {storage!r}: use one of {', '.join(STORAGES)}")
        self.file = file  # keeps the mapping alive: quantized weights are views of it
        self.shape = s = file.shape
        self.storage = storage
        self.device = torch.device("cpu")
        self.config = SimpleNamespace(vocab_size=s.vocab_size, model_type=s.architecture,
                                      max_position_embeddings=context_length or s.context_length,
                                      num_hidden_layers=s.layers)
        self.generation_config = SimpleNamespace(eos_token_id=list(eos_token_ids))
        self.embeddings = _weight(file, "token_embd.weight", storage)
        self.layers = [self._layer(i) for i in range(s.layers)]
        self.final_norm = file.vector("output_norm.weight")
        # Models that tie the output to the embeddings have no output matrix in the file.
        self.output = (_weight(file, "output.weight", storage) if file.has("output.weight")
                       else self.embeddings)
        self.rotary = RotaryTable(s.head_dim, s.rope_base)
        self.scale = s.head_dim ** -0.5
        self.kernel_pass = ops.DecoderPass(
            embeddings=self.embeddings, layers=self.layers, final_norm=self.final_norm,
            output=self.output, heads=s.heads, kv_heads=s.kv_heads, head_dim=s.head_dim,
            eps=s.norm_eps, rope_style=s.rope_style)

    def _layer(self, i: int) -> Layer:
        f, st = self.file, self.storage
        p = f"blk.{i}."

        def bias(name: str) -> torch.Tensor | None:
            return f.vector(p + name) if f.has(p + name) else None

        return Layer(
            attn_norm=f.vector(p + "attn_norm.weight"),
            q=_weight(f, p + "attn_q.weight", st), k=_weight(f, p + "attn_k.weight", st),
            v=_weight(f, p + "attn_v.weight", st),
            q_bias=bias("attn_q.bias"), k_bias=bias("attn_k.bias"), v_bias=bias("attn_v.bias"),
            out=_weight(f, p + "attn_output.weight", st),
            ffn_norm=f.vector(p + "ffn_norm.weight"),
            gate=_weight(f, p + "ffn_gate.weight", st), up=_weight(f, p + "ffn_up.weight", st),
            down=_weight(f, p + "ffn_down.weight", st))

    def new_cache(self) -> KVCache:
        return KVCache(self.shape)

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, use_cache: bool = True,
                 logits_to_keep: int = 0, cache: KVCache | None = None,
                 **_: Any) -> SimpleNamespace:
        """Logits of the last `logits_to_keep` positions (all when 0) after feeding
        input_ids [1, n] on top of `cache` (a new one when None), which is extended. The
        whole pass is one kernel call (ops.DecoderPass); `composed` computes the same bits
        one operation at a time."""
        ids = input_ids.reshape(-1)
        if ids.dtype != torch.int64 or not ids.is_contiguous():
            ids = ids.to(torch.int64).contiguous()
        if cache is None:
            cache = self.new_cache()
        start, n = cache.length, ids.numel()
        cache.reserve(start + n)
        if cache.pointers is None:
            self.kernel_pass.check_cache(cache.keys, cache.values)
            cache.pointers = (ops.DecoderPass.cache_pointers(cache.keys),
                              ops.DecoderPass.cache_pointers(cache.values))
        cos, sin = self.rotary.upto(start + n)
        keep = n if logits_to_keep <= 0 else min(logits_to_keep, n)
        logits = self.kernel_pass(ids, start, *cache.pointers, cache.capacity,
                                  cos[start:start + n], sin[start:start + n], keep)
        cache.length = start + n
        return SimpleNamespace(logits=logits.unsqueeze(0), cache=cache)

    @torch.inference_mode()
    def composed(self, input_ids: torch.Tensor, logits_to_keep: int = 0,
                 cache: KVCache | None = None) -> SimpleNamespace:
        """The pass of __call__ composed of one kernel call per operation: its executable
        specification (tests hold __call__ to the same bits), and a profile's unit."""
        ids = input_ids.reshape(-1)
        if cache is None:
            cache = self.new_cache()
        s = self.shape
        start, n = cache.length, ids.numel()
        cache.reserve(start + n)
        cos, sin = self.rotary.upto(start + n)
        cos, sin = cos[start:start + n], sin[start:start + n]
        x = ops.get_rows(self.embeddings, ids)
        for index, layer in enumerate(self.layers):
            h = Activations(ops.rms_norm(x, layer.attn_norm, s.norm_eps))
            q = h.times(layer.q, layer.q_bias).view(n, s.heads, s.head_dim)
            k = h.times(layer.k, layer.k_bias).view(n, s.kv_heads, s.head_dim)
            v = h.times(layer.v, layer.v_bias).view(n, s.kv_heads, s.head_dim)
            q = rotate(q, cos, sin, s.rope_style).contiguous()
            keys, values = cache.keys[index], cache.values[index]
            keys[:, start:start + n] = rotate(k, cos, sin, s.rope_style).transpose(0, 1)
            values[:, start:start + n] = v.transpose(0, 1)
            attended = ops.attention(q, keys, values, start, self.scale)
            x = x + ops.matmul(attended.view(n, s.heads * s.head_dim), layer.out)
            h = Activations(ops.rms_norm(x, layer.ffn_norm, s.norm_eps))
            x = x + ops.matmul(ops.silu_mul(h.times(layer.gate), h.times(layer.up)), layer.down)
        cache.length = start + n
        keep = n if logits_to_keep <= 0 else min(logits_to_keep, n)
        last = ops.rms_norm(x[n - keep:].contiguous(), self.final_norm, s.norm_eps)
        logits = ops.matmul(last, self.output)
        return SimpleNamespace(logits=logits.unsqueeze(0), cache=cache)

    forward = __call__


    @property
    def weight_bytes(self) -> int:
        """Bytes of weights held (the file's mapping counts only where it is used)."""
        weights = [self.embeddings, self.output]
        for layer in self.layers:
            weights += [layer.q, layer.k, layer.v, layer.out, layer.gate, layer.up, layer.down]
        unique = {id(w): w for w in weights}
        return sum(w.data.numel() for w in unique.values())

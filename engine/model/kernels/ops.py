"""Torch-facing wrappers of the native kernels (kernels.c).

Every function takes float32 CPU tensors (contiguous, else ValueError) and returns a new
float32 tensor, or writes into ``out=``. The thread count is ``torch.get_num_threads()`` at
call time; it never changes a result. ctypes releases the GIL for the duration of a call.

Row results do not depend on how many rows a call holds: row i of ``matmul(x, w)`` has the
same bits as ``matmul(x[i:i+1], w)``, and an attention position has the same bits whatever
pass computed it (see kernels.c for how).
"""

from __future__ import annotations

import contextlib
import ctypes
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from .build import load

T = GGMLQuantizationType
SUPPORTED_TYPES = frozenset({T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                             T.Q4_K, T.Q5_K, T.Q6_K})
DENSE_TYPES = frozenset({T.F32, T.F16, T.BF16})

_ERRORS = {-1: "unsupported ggml type", -2: "bad shape", -3: "out of memory",
           -4: "bad argument"}


def _check(rc: int, what: str) -> None:
    if rc == 0:
        return
    message = f"{what}: {_ERRORS.get(rc, f'error {rc}')}"
    if rc == -3:
        raise MemoryError(message)
    raise ValueError(message)


def _type(ggml_type: int | GGMLQuantizationType) -> GGMLQuantizationType:
    try:
        t = GGMLQuantizationType(int(ggml_type))
    except ValueError:
        raise ValueError(f"unknown ggml type {ggml_type!r}") from None
    if t not in SUPPORTED_TYPES:
        raise ValueError(f"ggml type {t.name} is not supported by the native kernels "
                         f"(supported: {', '.join(sorted(x.name for x in SUPPORTED_TYPES))})")
    return t


def row_bytes(ggml_type: int | GGMLQuantizationType, cols: int) -> int:
    """Bytes of one row of `cols` values in a ggml type (cols a multiple of its block)."""
    t = _type(ggml_type)
    block, size = GGML_QUANT_SIZES[t]
    if cols <= 0 or cols % block:
        raise ValueError(f"a {t.name} row holds a multiple of {block} values, not {cols}")
    return cols // block * size


@dataclass(frozen=True)
class GGUFMatrix:
    """A [rows, cols] matrix in a GGUF tensor's own bytes (row-major, each row cols/block
    blocks as in the file). `data` is a flat or [rows, row_bytes] uint8 CPU tensor."""

    data: torch.Tensor
    ggml_type: GGMLQuantizationType
    rows: int
    cols: int
    # what every call passes, looked up once (the bytes never move: data is never resized)
    _ptr: int = field(init=False, repr=False, compare=False)
    _type_id: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ggml_type", _type(self.ggml_type))
        d = self.data
        if not isinstance(d, torch.Tensor) or d.dtype != torch.uint8 or d.device.type != "cpu":
            raise ValueError("GGUFMatrix.data must be a uint8 CPU tensor")
        if not d.is_contiguous():
            raise ValueError("GGUFMatrix.data must be contiguous")
        expected = self.rows * row_bytes(self.ggml_type, self.cols)
        if self.rows <= 0 or d.numel() != expected:
            raise ValueError(f"GGUFMatrix: {self.rows} x {self.cols} {self.ggml_type.name} "
                             f"takes {expected} bytes, data has {d.numel()}")
        object.__setattr__(self, "_ptr", d.data_ptr())
        object.__setattr__(self, "_type_id", int(self.ggml_type))

    @classmethod
    def from_bytes(cls, data, ggml_type: int | GGMLQuantizationType, rows: int,
                   cols: int) -> GGUFMatrix:
        """From anything torch.as_tensor/numpy can view as bytes (a numpy array of any
        dtype, e.g. gguf's reader data, is reinterpreted, not converted)."""
        if isinstance(data, torch.Tensor):
            t = data.contiguous().view(torch.uint8).reshape(-1)
        else:
            import numpy as np

            array = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            with warnings.catch_warnings():  # a read-only memmap (gguf's reader): never written
                warnings.filterwarnings("ignore", message=".*not writable.*")
                t = torch.from_numpy(array)
        return cls(t, ggml_type, rows, cols)


@dataclass(frozen=True)
class QuantizedRows:
    """Activations quantized by `quantize_rows` (int8 blocks of 32, a float scale each), to
    share between several matmuls of the same input (q/k/v, gate/up)."""

    data: torch.Tensor  # uint8 [rows, row_bytes]
    rows: int
    cols: int
    shape: tuple[int, ...]  # the leading shape of the input (for the output's shape)


class _Lib:
    """The loaded library's functions, looked up once."""

    def __init__(self, variant: str = "native") -> None:
        lib = load(variant)
        self.lib = lib
        self.quantize = lib.sek_quantize_rows_q8
        self.q8_row_bytes = lib.sek_q8_row_bytes
        self.matmul = lib.sek_matmul
        self.matmul_q8 = lib.sek_matmul_q8
        self.attention = lib.sek_attention
        self.rms_norm = lib.sek_rms_norm
        self.silu_mul = lib.sek_silu_mul
        self.get_rows = lib.sek_get_rows
        self.exp = lib.sek_exp
        self.forward = lib.sek_forward


_lib: _Lib | None = None


def _k() -> _Lib:
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


@contextlib.contextmanager
def variant(name: str) -> Iterator[None]:
    """Run the wrappers on another build of the kernels within the block ("scalar": the
    portable path, for tests that compare it with the AVX2 one). Not thread-safe."""
    global _lib
    saved = _lib
    _lib = _Lib(name)
    try:
        yield
    finally:
        _lib = saved


_F32 = torch.float32
_threads = torch.get_num_threads


def _ok(t: torch.Tensor) -> bool:
    """A float32 contiguous CPU tensor (the cheap test every call makes)."""
    return t.dtype is _F32 and t.is_cpu and t.is_contiguous()


def _f32(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor")
    if t.dtype != torch.float32 or t.device.type != "cpu":
        raise ValueError(f"{name} must be a float32 CPU tensor, not {t.dtype} on {t.device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")


def _out(out: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    if out is None:
        return torch.empty(shape, dtype=_F32)
    _f32(out, "out")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")
    return out


def quantize_rows(x: torch.Tensor) -> QuantizedRows:
    """x [..., K] float32 -> its rows quantized as matmul quantizes them (K % 32 == 0)."""
    _f32(x, "x")
    k = _k()
    cols = x.shape[-1] if x.dim() else 0
    rb = k.q8_row_bytes(cols)
    if rb == 0:
        raise ValueError(f"activations are quantized in blocks of 32: K={cols} is not a multiple")
    rows = x.numel() // cols
    data = torch.empty((rows, rb), dtype=torch.uint8)
    _check(k.quantize(x.data_ptr(), rows, cols, cols, data.data_ptr(), _threads()),
           "quantize_rows")
    return QuantizedRows(data, rows, cols, tuple(x.shape[:-1]))


def matmul(x: torch.Tensor | QuantizedRows, w: GGUFMatrix, bias: torch.Tensor | None = None,
           *, out: torch.Tensor | None = None) -> torch.Tensor:
    """x [..., K] @ W^T (+ bias) -> [..., N] for W a GGUFMatrix of N rows of K values.
    Quantized W: x is quantized per row to int8 blocks of 32 (or given as QuantizedRows);
    dense W (F32, F16, BF16): float products, x unquantized."""
    k = _lib or _k()
    n = w.rows
    bias_ptr = None
    if bias is not None:
        if not _ok(bias):
            _f32(bias, "bias")
        if bias.numel() != n:
            raise ValueError(f"bias has {bias.numel()} values, W has {n} rows")
        bias_ptr = bias.data_ptr()
    if type(x) is QuantizedRows:
        if w.ggml_type in DENSE_TYPES:
            raise ValueError("quantized activations need a quantized weight type")
        if x.cols != w.cols:
            raise ValueError(f"x has {x.cols} columns, W has {w.cols}")
        y = _out(out, (*x.shape, n))
        rc = k.matmul_q8(x.data.data_ptr(), x.rows, x.cols, w._ptr, w._type_id, n, bias_ptr,
                         y.data_ptr(), n, _threads())
    else:
        if not _ok(x):
            _f32(x, "x")
        shape = x.shape
        if not shape or shape[-1] != w.cols:
            raise ValueError(f"x has shape {tuple(shape)}, W has {w.cols} columns")
        if out is None:
            y = torch.empty((*shape[:-1], n), dtype=_F32)
        else:
            y = _out(out, (*shape[:-1], n))
        rc = k.matmul(x.data_ptr(), x.numel() // w.cols, w.cols, w.cols, w._ptr, w._type_id, n,
                      bias_ptr, y.data_ptr(), n, _threads())
    if rc:
        _check(rc, "matmul")
    return y


def attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start: int,
              scale: float, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Causal attention of q [M, Hq, D] (rotated) at positions start..start+M-1 over the
    cache k, v [Hkv, capacity, D] (positions 0..start+M-1 filled). The caches may be views
    (unit stride along D, equal strides for k and v); Hq must be a multiple of Hkv."""
    _f32(q, "q")
    if q.dim() != 3:
        raise ValueError(f"q must be [M, Hq, D], not {tuple(q.shape)}")
    for name, c in (("k_cache", k_cache), ("v_cache", v_cache)):
        if not isinstance(c, torch.Tensor) or c.dtype != torch.float32 or c.device.type != "cpu":
            raise ValueError(f"{name} must be a float32 CPU tensor")
        if c.dim() != 3 or c.stride(2) != 1:
            raise ValueError(f"{name} must be [Hkv, capacity, D] with unit stride along D")
    if k_cache.shape != v_cache.shape or k_cache.stride() != v_cache.stride():
        raise ValueError("k_cache and v_cache must have the same shape and strides")
    m, hq, d = q.shape
    hkv, capacity, dk = k_cache.shape
    if dk != d:
        raise ValueError(f"q has head size {d}, the cache {dk}")
    if start < 0 or start + m > capacity:
        raise ValueError(f"positions {start}..{start + m - 1} do not fit a cache of {capacity}")
    y = _out(out, (m, hq, d))
    rc = (_lib or _k()).attention(q.data_ptr(), m, hq, d, k_cache.data_ptr(), v_cache.data_ptr(),
                                  hkv, capacity, k_cache.stride(0), k_cache.stride(1), start,
                                  scale, y.data_ptr(), _threads())
    if rc:
        _check(rc, "attention")
    return y


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, *,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dimension."""
    k = _lib or _k()
    if not (_ok(x) and _ok(weight)):
        _f32(x, "x")
        _f32(weight, "weight")
    h = x.shape[-1] if x.dim() else 0
    if h == 0 or weight.numel() != h:
        raise ValueError(f"weight has {weight.numel()} values, x rows {h}")
    y = torch.empty(x.shape, dtype=_F32) if out is None else _out(out, tuple(x.shape))
    rc = k.rms_norm(x.data_ptr(), x.numel() // h, h, weight.data_ptr(), eps, y.data_ptr(),
                    _threads())
    if rc:
        _check(rc, "rms_norm")
    return y


def silu_mul(gate: torch.Tensor, up: torch.Tensor, *,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """silu(gate) * up, elementwise."""
    k = _lib or _k()
    if not (_ok(gate) and _ok(up)):
        _f32(gate, "gate")
        _f32(up, "up")
    if gate.shape != up.shape or gate.dim() == 0:
        raise ValueError(f"gate {tuple(gate.shape)} and up {tuple(up.shape)} differ")
    f = gate.shape[-1]
    m = gate.numel() // f if f else 0
    y = torch.empty(gate.shape, dtype=_F32) if out is None else _out(out, tuple(gate.shape))
    rc = k.silu_mul(gate.data_ptr(), f, up.data_ptr(), f, m, f, y.data_ptr(), f, _threads())
    if rc:
        _check(rc, "silu_mul")
    return y


def get_rows(w: GGUFMatrix, ids: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """The rows `ids` of W dequantized to float32: [*ids.shape, cols]."""
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError("ids must be an int64 or int32 tensor")
    flat = ids.reshape(-1).to(torch.int64).contiguous()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= w.rows):
        raise IndexError(f"a row id is out of range 0..{w.rows - 1}")
    y = _out(out, (*ids.shape, w.cols))
    _check(_k().get_rows(w._ptr, w._type_id, w.rows, w.cols, flat.data_ptr(), flat.numel(),
                         y.data_ptr(), _threads()), "get_rows")
    return y


def exp(x: torch.Tensor) -> torch.Tensor:
    """The kernels' own exp (as attention and silu_mul use it), for tests."""
    _f32(x, "x")
    y = torch.empty_like(x)
    _check(_k().exp(x.data_ptr(), y.data_ptr(), x.numel()), "exp")
    return y


# --- a whole decoder pass in one call (kernels.c, g.) ---------------------------------------


class _Mat(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("type", ctypes.c_int64), ("rows", ctypes.c_int64),
                ("cols", ctypes.c_int64), ("bias", ctypes.c_void_p)]


class _Layer(ctypes.Structure):
    _fields_ = [*((name, _Mat) for name in ("q", "k", "v", "o", "gate", "up", "down")),
                ("attn_norm", ctypes.c_void_p), ("ffn_norm", ctypes.c_void_p)]


class _Model(ctypes.Structure):
    _fields_ = [*((name, ctypes.c_int64) for name in (
                    "layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab",
                    "rope_pairs")),
                ("eps", ctypes.c_float), ("scale", ctypes.c_float), ("embed", _Mat),
                ("output", _Mat), ("final_norm", ctypes.c_void_p),
                ("layer", ctypes.POINTER(_Layer))]


@dataclass(frozen=True)
class LayerWeights:
    """One transformer layer's weights, as DecoderPass takes them."""

    attn_norm: torch.Tensor
    q: GGUFMatrix
    k: GGUFMatrix
    v: GGUFMatrix
    q_bias: torch.Tensor | None
    k_bias: torch.Tensor | None
    v_bias: torch.Tensor | None
    out: GGUFMatrix
    ffn_norm: torch.Tensor
    gate: GGUFMatrix
    up: GGUFMatrix
    down: GGUFMatrix


def _vector(t: torch.Tensor, n: int, name: str) -> int:
    _f32(t, name)
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} values, expected {n}")
    return t.data_ptr()


def _mat(w: GGUFMatrix, rows: int, cols: int, name: str,
         bias: torch.Tensor | None = None) -> _Mat:
    if (w.rows, w.cols) != (rows, cols):
        raise ValueError(f"{name} is {w.rows} x {w.cols}, expected {rows} x {cols}")
    return _Mat(w._ptr, w._type_id, rows, cols,
                None if bias is None else _vector(bias, rows, f"{name} bias"))


class DecoderPass:
    """A llama-family decoder's whole pass in one kernel call (kernels.c, sek_forward): the
    same operations, in the same order, as composing rms_norm, matmul, rotary, attention and
    silu_mul one call at a time, so the same bits, without a Python step per operation.

    The tensors given stay referenced here (the kernels hold their addresses)."""

    def __init__(self, *, embeddings: GGUFMatrix, layers: list[LayerWeights],
                 final_norm: torch.Tensor, output: GGUFMatrix, heads: int, kv_heads: int,
                 head_dim: int, eps: float, rope_style: str) -> None:
        hidden = embeddings.cols
        ffn = layers[0].gate.rows if layers else 0
        qd, kd = heads * head_dim, kv_heads * head_dim
        if rope_style not in ("halves", "pairs"):
            raise ValueError(f"rope style {rope_style!r}: halves or pairs")
        if head_dim % 2 or head_dim > 512 or heads % kv_heads:
            raise ValueError(f"unsupported heads {heads}/{kv_heads} x {head_dim}")
        structs = []
        for i, layer in enumerate(layers):
            p = f"layer {i} "
            structs.append(_Layer(
                q=_mat(layer.q, qd, hidden, p + "q", layer.q_bias),
                k=_mat(layer.k, kd, hidden, p + "k", layer.k_bias),
                v=_mat(layer.v, kd, hidden, p + "v", layer.v_bias),
                o=_mat(layer.out, hidden, qd, p + "out"),
                gate=_mat(layer.gate, ffn, hidden, p + "gate"),
                up=_mat(layer.up, ffn, hidden, p + "up"),
                down=_mat(layer.down, hidden, ffn, p + "down"),
                attn_norm=_vector(layer.attn_norm, hidden, p + "attn_norm"),
                ffn_norm=_vector(layer.ffn_norm, hidden, p + "ffn_norm")))
        self._layers = (_Layer * max(1, len(structs)))(*structs)
        self._model = _Model(
            layers=len(structs), hidden=hidden, ffn=ffn, heads=heads, kv_heads=kv_heads,
            head_dim=head_dim, vocab=output.rows, rope_pairs=int(rope_style == "pairs"),
            eps=eps, scale=head_dim ** -0.5, embed=_mat(embeddings, embeddings.rows, hidden,
                                                        "embeddings"),
            output=_mat(output, output.rows, hidden, "output"),
            final_norm=_vector(final_norm, hidden, "final_norm"),
            layer=ctypes.cast(self._layers, ctypes.POINTER(_Layer)))
        self._keep_alive = (embeddings, layers, final_norm, output)
        self.layers, self.hidden, self.vocab = len(structs), hidden, output.rows
        self.kv_shape = (kv_heads, head_dim)

    @staticmethod
    def cache_pointers(tensors: list[torch.Tensor]) -> ctypes.Array:
        """The addresses of a cache's per-layer tensors, as __call__ takes them."""
        return (ctypes.c_void_p * len(tensors))(*(t.data_ptr() for t in tensors))

    def check_cache(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> int:
        """The cache's capacity, after checking every layer's keys and values are float32
        [kv_heads, capacity, head_dim] contiguous tensors."""
        if len(keys) != self.layers or len(values) != self.layers:
            raise ValueError(f"the cache has {len(keys)} layers, the model {self.layers}")
        capacity = keys[0].shape[1] if keys else 0
        for t in (*keys, *values):
            _f32(t, "cache")
            if t.shape != (self.kv_shape[0], capacity, self.kv_shape[1]):
                raise ValueError(f"a cache tensor has shape {tuple(t.shape)}")
        return capacity

    def __call__(self, ids: torch.Tensor, start: int, keys: ctypes.Array, values: ctypes.Array,
                 capacity: int, cos: torch.Tensor, sin: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits [keep, vocab] of the last `keep` of the tokens `ids` (int64, contiguous) at
        positions start.. on top of a cache (pointers from cache_pointers, checked by
        check_cache) whose positions 0..start-1 are filled; writes their K and V there.
        cos, sin: [len(ids), head_dim/2] contiguous float32, the rows of those positions."""
        n = ids.numel()
        if ids.dtype != torch.int64 or not ids.is_contiguous():
            raise ValueError("ids must be a contiguous int64 tensor")
        if n and (int(ids.min()) < 0 or int(ids.max()) >= self._model.embed.rows):
            raise IndexError(f"a token id is out of range 0..{self._model.embed.rows - 1}")
        half = self.kv_shape[1] // 2
        for t, name in ((cos, "cos"), (sin, "sin")):
            if not _ok(t) or tuple(t.shape) != (n, half):
                raise ValueError(f"{name} must be a contiguous float32 [{n}, {half}] tensor")
        if not 1 <= keep <= n or start < 0 or start + n > capacity:
            raise ValueError(f"bad pass: {n} tokens at {start}, keep {keep}, capacity {capacity}")
        logits = torch.empty((keep, self.vocab), dtype=_F32)
        rc = (_lib or _k()).forward(ctypes.byref(self._model), ids.data_ptr(), n, start, keys,
                                    values, capacity, cos.data_ptr(), sin.data_ptr(), keep,
                                    logits.data_ptr(), _threads())
        if rc:
            _check(rc, "forward")
        return logits

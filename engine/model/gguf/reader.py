"""A GGUF file as the native decoder needs it: its architecture's shape and its tensors.

The file is memory-mapped: a quantized weight stays the file's own bytes (no copy, no
dequantized twin), and the kernels compute on its blocks directly. Only the architectures the
decoder implements, and the block types the kernels compute on, are accepted; anything else
is refused in one line that names what is missing.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.contract import UnsupportedModelError

# The decoder implements these llama-family layouts. Llama's GGUF stores q and k permuted for
# rotary on adjacent pairs (llama.cpp's "normal" rope); Qwen2's for rotary on halves ("neox").
ROPE_STYLES = {"llama": "pairs", "qwen2": "halves"}

# Block types the kernels compute on (gguf.GGMLQuantizationType names).
QUANTIZED_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K")
DENSE_TYPES = ("F32", "F16", "BF16")


@dataclass(frozen=True)
class DecoderShape:
    """What the decoder needs to know of a model, from the GGUF's metadata."""

    architecture: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    rope_base: float
    rope_style: str  # "pairs" or "halves"
    norm_eps: float
    context_length: int
    vocab_size: int


@dataclass(frozen=True)
class Tensor:
    """One tensor of the file: its bytes (a view of the mapped file) and how to read them."""

    name: str
    type_name: str  # gguf.GGMLQuantizationType name: Q4_K, F32, ...
    shape: tuple[int, ...]  # rows first (torch order): (N, K) for a matrix of N rows of K
    data: np.ndarray  # uint8 [N, bytes per row] for block types; the values for F32/F16

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


def _field(reader: Any, key: str, default: Any = None) -> Any:
    from transformers.modeling_gguf_pytorch_utils import read_field

    if key not in reader.fields:
        if default is not None:
            return default
        raise UnsupportedModelError(f"the GGUF file has no {key!r}: it does not describe a "
                                    "model this engine can run")
    value = read_field(reader, key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class GGUFFile:
    """The parts of a GGUF file the decoder reads; the file stays mapped while this lives."""

    def __init__(self, path: Path) -> None:
        from gguf import GGUFReader

        self.path = path
        try:
            reader = GGUFReader(path, "r")
        except (ValueError, OSError) as exc:
            raise UnsupportedModelError(f"{path} is not a readable GGUF file ({exc})") from exc
        self._read(reader)
        # The reader is not kept: it holds the tokenizer's vocabulary and merges as hundreds of
        # thousands of small arrays (about 0.5 GB for a Qwen vocabulary), which the tokenizer
        # reads for itself. The tensors keep the file mapped.
        del reader
        gc.collect()

    def _read(self, reader: Any) -> None:
        path = self.path
        architecture = str(_field(reader, "general.architecture"))
        if architecture not in ROPE_STYLES:
            raise UnsupportedModelError(
                f"{path.name}: architecture {architecture!r} is not supported by the native "
                f"decoder (it runs {', '.join(sorted(ROPE_STYLES))}); use a transformers folder "
                "or hub id of that model instead")
        self.tensors = {t.name: self._tensor(t) for t in reader.tensors}
        a = architecture
        heads = int(_field(reader, f"{a}.attention.head_count"))
        hidden = int(_field(reader, f"{a}.embedding_length"))
        embeddings = self.tensors["token_embd.weight"]
        self.shape = DecoderShape(
            architecture=a,
            layers=int(_field(reader, f"{a}.block_count")),
            hidden=hidden,
            intermediate=int(_field(reader, f"{a}.feed_forward_length")),
            heads=heads,
            kv_heads=int(_field(reader, f"{a}.attention.head_count_kv", heads)),
            head_dim=int(_field(reader, f"{a}.attention.key_length", hidden // heads)),
            rope_base=float(_field(reader, f"{a}.rope.freq_base", 10000.0)),
            rope_style=ROPE_STYLES[a],
            norm_eps=float(_field(reader, f"{a}.attention.layer_norm_rms_epsilon")),
            context_length=int(_field(reader, f"{a}.context_length")),
            vocab_size=embeddings.shape[0],
        )
        eos = "tokenizer.ggml.eos_token_id"
        self.eos_token_ids: tuple[int, ...] = ()
        if eos in reader.fields:
            from transformers.modeling_gguf_pytorch_utils import read_field

            self.eos_token_ids = tuple(int(v) for v in read_field(reader, eos))
        self._check_types()

    @staticmethod
    def _tensor(raw: Any) -> Tensor:
        # gguf lists dimensions innermost first; torch order is rows first.
        shape = tuple(int(d) for d in reversed(raw.shape))
        return Tensor(raw.name, raw.tensor_type.name, shape, raw.data)

    def _check_types(self) -> None:
        for tensor in self.tensors.values():
            if len(tensor.shape) == 2 and tensor.type_name not in QUANTIZED_TYPES + DENSE_TYPES:
                raise UnsupportedModelError(
                    f"{self.path.name}: tensor {tensor.name} is {tensor.type_name}, a block type "
                    f"the kernels do not compute on (they take {', '.join(QUANTIZED_TYPES)} and "
                    f"{', '.join(DENSE_TYPES)}); use a Q4_K_M, Q5_K_M, Q6_K or Q8_0 file")

    def vector(self, name: str) -> torch.Tensor:
        """A 1-D tensor (norm weights, biases) as float32."""
        tensor = self.tensors[name]
        return torch.from_numpy(np.array(_dense(tensor), dtype=np.float32)).contiguous()

    def has(self, name: str) -> bool:
        return name in self.tensors

    @property
    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def _dense(tensor: Tensor) -> np.ndarray:
    from gguf import GGMLQuantizationType, dequantize

    return dequantize(tensor.data, GGMLQuantizationType[tensor.type_name])

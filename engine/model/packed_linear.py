"""Linear layers with weights packed once for oneDNN: cheaper passes on the CPU.

PyTorch's CPU `linear` in float32 (MKL) reads the whole weight again for every input row
while a pass has fewer than about four rows, so a pass that verifies 2 or 3 tokens costs 2-3
one-token passes, and every short draft is dear. oneDNN with the weight reordered once into
its blocked layout reads it once for any row count, and in bfloat16 it runs the CPU's native
bf16 instructions. This is what torch.compile's weight freezing does on the CPU, without the
minutes of compiling; measured in engine/bench/results/README.md ("What a pass costs").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from typing import Any

import torch
from torch import nn

from .devices import cpu_has_native_bf16

# SPECEDIT_PACKED_LINEAR=0 keeps transformers' own Linear layers (for comparisons).
ENV_SWITCH = "SPECEDIT_PACKED_LINEAR"


class PackedLinear(nn.Module):
    """An `nn.Linear` for inference whose weight lives in oneDNN's blocked layout."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        # A plain attribute, not a parameter: a oneDNN tensor has no strides, and nothing
        # may train, save or move it. The dense weight goes with the replaced module (unless
        # it is tied to another one, as a language-model head to the embeddings).
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        if x.dtype == torch.float32 and x.numel() == 2 * self.in_features:
            # oneDNN's float32 kernel for exactly two rows is slower than its kernel for
            # three (results: "What a pass costs"): one padding row is cheaper.
            rows = torch.cat([x.reshape(2, -1), x.new_zeros(1, self.in_features)])
            out = self._linear(rows)[:2]
            return out.reshape(*x.shape[:-1], self.out_features)
        return self._linear(x)

    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none",
                                                  [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed"


def packing_applies(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether load_model packs: on the CPU with oneDNN, in float32, and in bfloat16 where the
    CPU computes bf16 natively (elsewhere oneDNN emulates it, unmeasured), unless switched off."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return dtype == torch.float32 or (dtype == torch.bfloat16 and cpu_has_native_bf16())


def pack_linears(model: Any) -> int:
    """Replace every `nn.Linear` in `model` by a PackedLinear; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear(child))
                replaced += 1
    _return_freed_memory()
    return replaced


def _return_freed_memory() -> None:
    """Hand the replaced dense weights' memory back to the system. glibc keeps freed memory
    in its heap: without this a packed model keeps its dense weights' memory too."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        trim = ctypes.CDLL(libc_name).malloc_trim
    except (OSError, AttributeError):
        return  # not glibc (macOS, musl): nothing to trim
    trim(0)


def is_packed(model: Any) -> bool:
    return any(isinstance(m, PackedLinear) for m in model.modules())

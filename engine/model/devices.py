"""Which device and dtype a model runs on: the names of contract.DEVICES and DTYPES, resolved."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.contract import DEVICES, DTYPES, SpecEditError

# The torch dtype of each name in contract.DTYPES but `auto`.
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    if device not in DEVICES:
        raise SpecEditError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecEditError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise SpecEditError("--device mps asked for, but MPS is not available; use --device cpu")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: without them torch emulates bf16 matmuls, slowly."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a GPU that has it, float16 on other GPUs; on the CPU, bfloat16 only
    where the CPU computes it natively, else float32."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if dtype not in TORCH_DTYPES:
        raise SpecEditError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return TORCH_DTYPES[dtype]

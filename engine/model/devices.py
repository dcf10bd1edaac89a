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


# What the native decoder holds weights as (a GGUF's own blocks, or dense copies).
NATIVE_DTYPES = ("gguf", "float32", "bfloat16")


def resolve_weights(dtype: str, device: torch.device, gguf: bool = False) -> str:
    """The contract name of how weights are held, for `dtype` (maybe auto) on `device`.

    auto: on the CPU, a GGUF model's own blocks (the native kernels read 4-8 bits a weight
    where a dense copy reads 16-32, and a one-token pass is bound by those reads); other
    models bfloat16 where the CPU computes it natively, else float32. On a GPU bfloat16 where
    supported, else float16.
    """
    if dtype not in DTYPES:
        raise SpecEditError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype == "auto":
        if device.type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if device.type == "mps":
            return "float16"
        if gguf:
            return "gguf"
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    if dtype == "gguf" and not gguf:
        raise SpecEditError("--dtype gguf computes on a GGUF file's own weights: name a catalog "
                            "model or a .gguf file, or pick float32 or bfloat16")
    if dtype == "gguf" and device.type != "cpu":
        raise SpecEditError(f"--dtype gguf runs on the CPU only; use --device cpu, or "
                            f"--dtype bfloat16 on {device.type}")
    return dtype


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The torch dtype of a dense model (transformers' or a synthetic one) for `dtype`."""
    weights = resolve_weights(dtype, device)
    if weights not in TORCH_DTYPES:
        raise SpecEditError(f"dtype {weights!r} is for GGUF models only")
    return TORCH_DTYPES[weights]

"""Native CPU kernels that compute on GGUF weights in their own block formats, with results
per row that do not depend on how many rows a pass holds (see kernels.c)."""

from .build import KernelsUnavailable
from .ops import (
    GGUFMatrix,
    QuantizedRows,
    attention,
    get_rows,
    matmul,
    quantize_rows,
    rms_norm,
    silu_mul,
)

__all__ = ["GGUFMatrix", "KernelsUnavailable", "QuantizedRows", "attention", "get_rows",
           "matmul", "quantize_rows", "rms_norm", "silu_mul"]

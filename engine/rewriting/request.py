"""One check of a rewrite request and one way to cut a selection out of its lines.

Shared by the CLI, the Python API, the language server and the HTTP API. Each front end
splits its text into lines by its own rules (LSP's line endings, a file's) and names things
its own way: it passes `names` and gets errors that speak its language, while what is
checked, and in what order, lives here. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.contract import InvalidRequestError, PromptTooLongError

# A model's tokens average well under this many characters; a request whose text exceeds
# context_length * MAX_CHARS_PER_TOKEN cannot fit, and is refused before it is tokenised
# (tokenising megabytes takes seconds and hundreds of MB).
MAX_CHARS_PER_TOKEN = 16

# What each front end calls the parts of a request; the Python API's names by default.
DEFAULT_NAMES: Mapping[str, str] = {
    "selection": "the selection",
    "instruction": "the instruction",
    "max_new_tokens": "max_new_tokens",
}


@dataclass(frozen=True)
class Region:
    """The lines to rewrite, and the lines around them the model sees as context."""

    start_line: int  # first line rewritten (0-based)
    end_line: int  # one past the last line rewritten
    text: str  # those lines, with their line endings
    context_before: str
    context_after: str


def region_of_lines(lines: Sequence[str], start: int, end: int, context_lines: int) -> Region:
    """Lines [start, end) with up to `context_lines` lines of context on each side."""
    ctx = max(context_lines, 0)
    start, end = max(start, 0), min(end, len(lines))
    return Region(
        start_line=start,
        end_line=end,
        text="".join(lines[start:end]),
        context_before="".join(lines[max(0, start - ctx):start]),
        context_after="".join(lines[end:end + ctx]),
    )


def check_rewrite_request(code: str, instruction: str, *, max_new_tokens: int | None = None,
                          names: Mapping[str, str] = DEFAULT_NAMES) -> str:
    """Raise InvalidRequestError for an unusable request; return the instruction, stripped.

    The error's `field` is the part at fault ("selection", "instruction", "max_new_tokens"),
    for front ends that report it (the HTTP API's `param`).
    """
    names = {**DEFAULT_NAMES, **names}
    if not code.strip():
        raise InvalidRequestError(
            f"{names['selection']} is empty: select the code to rewrite", field="selection")
    if not instruction.strip():
        raise InvalidRequestError(
            f"{names['instruction']} is empty: say how to rewrite the code", field="instruction")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise InvalidRequestError(f"{names['max_new_tokens']} must be at least 1",
                                  field="max_new_tokens")
    return instruction.strip()


def check_fits_roughly(chars: int, context_length: int | None, what: str = "the request") -> None:
    """Refuse, before tokenising, text that cannot fit the model's context whatever it says."""
    if context_length is not None and chars > context_length * MAX_CHARS_PER_TOKEN:
        raise PromptTooLongError(
            f"{what} ({chars:,} characters) cannot fit the model's context of "
            f"{context_length:,} tokens: select less code")

"""Where an output ends (stop tokens, stop text) and how its text is streamed.

The decoding loop calls a StopCondition with the whole output after every pass. `TextStop` is
the one stop-text helper: stop tokens, plus stop strings (OpenAI's `stop`) or a pattern (the
closing fence of a rewrite). `Watched` wraps a condition to pass each new stretch of output
to a callback as well, so streaming needs no change to the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class StopCondition(Protocol):
    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        """Length of the output if it ends within tokens[start:], else None.

        A stop token (EOS) is excluded; stop text keeps the token that completes it, so the
        text can be cut at the right character.
        """
        ...


@dataclass
class StopTokens:
    """Stop at any of these token ids (EOS, end of turn)."""

    ids: frozenset[int] = field(default_factory=frozenset)

    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        for i in range(start, len(tokens)):
            if tokens[i] in self.ids:
                return i
        return None


@dataclass
class TextStop:
    """Stops at a stop token, or at the first token whose text completes a stop string or
    matches `pattern`.

    The completing token is kept; `cut_at_stop` removes a stop string itself from the text,
    as OpenAI's `stop` does, and a rewrite cuts at its closing fence. Text only grows with
    the tokens decoded, so the completing token is found by binary search.
    """

    tokenizer: Any
    stop_tokens: StopTokens
    strings: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        end = self.stop_tokens.first_stop(tokens, start)
        limit = len(tokens) if end is None else end
        if limit <= start or not self._stops(tokens, limit):
            return end
        lo, hi = start + 1, limit
        while lo < hi:
            mid = (lo + hi) // 2
            if self._stops(tokens, mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _stops(self, tokens: Sequence[int], n: int) -> bool:
        if not self.strings and self.pattern is None:
            return False
        text = self.tokenizer.decode(list(tokens[:n]), skip_special_tokens=True)
        return (any(s in text for s in self.strings)
                or (self.pattern is not None and self.pattern.search(text) is not None))


def cut_at_stop(text: str, strings: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in strings if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


@dataclass
class StreamedText:
    """Turns a growing list of tokens into text deltas that are never taken back.

    Held back: a trailing incomplete UTF-8 character (decoded as U+FFFD), and a tail that
    could be the start of a stop string (it may yet be cut).
    """

    tokenizer: Any
    strings: tuple[str, ...] = ()
    sent: int = 0  # characters already handed out
    _hold: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._hold = max((len(s) for s in self.strings), default=1) - 1

    def text_of(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    def delta(self, tokens: Sequence[int]) -> str:
        """New text that is safe to send now."""
        text, found = cut_at_stop(self.text_of(tokens), self.strings)
        if not found:
            safe = len(text.rstrip("\ufffd"))
            if self._hold:
                for k in range(min(self._hold, safe), 0, -1):
                    if any(s.startswith(text[safe - k:safe]) for s in self.strings):
                        safe -= k
                        break
            text = text[:safe]
        return self._take(text)

    def final(self, tokens: Sequence[int]) -> str:
        """The rest of the text once decoding has ended."""
        return self._take(cut_at_stop(self.text_of(tokens), self.strings)[0])

    def _take(self, text: str) -> str:
        if len(text) <= self.sent:
            return ""
        new, self.sent = text[self.sent:], len(text)
        return new


@dataclass
class Watched:
    """A StopCondition that also reports the output so far (capped) after every pass."""

    inner: StopCondition
    max_new_tokens: int
    on_output: Callable[[list[int]], None]

    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        end = self.inner.first_stop(tokens, start)
        upto = len(tokens) if end is None else end
        self.on_output(list(tokens[: min(upto, self.max_new_tokens)]))
        return end

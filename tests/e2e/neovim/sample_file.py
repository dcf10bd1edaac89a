"""A tokens/s progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Any

from .decoding import Progress


class TerminalProgress:
    def __init__(self, total: int | None = None, desc: str = "rewriting") -> None:
        self.total = total
        self.desc = desc
        self._bar: Any = None

    def __enter__(self) -> TerminalProgress:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit="tok", file=sys.stderr,
                             leave=False, dynamic_ncols=True)
        return self

    def update(self, progress: Progress) -> None:
        if self._bar is None:
            return
        self._bar.n = progress.output_tokens
        rate = progress.output_tokens / progress.elapsed if progress.elapsed > 0 else 0.0
        self._bar.set_postfix(passes=progress.forward_passes, tok_s=f"{rate:.1f}", refresh=False)
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

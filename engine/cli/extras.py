"""Parts of the product whose dependencies come with an extra of the package."""

from __future__ import annotations

import importlib.util

from engine.contract import SpecEditError


def require_extra(extra: str, *modules: str) -> None:
    """Raise a one-line SpecEditError naming the extra to install when a module is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SpecEditError(f"this needs {', '.join(missing)}, which come with the [{extra}] "
                            f"extra: pip install 'speculative-edits[{extra}]'")

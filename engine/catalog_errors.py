"""The catalog's error type, apart so that every catalog module can raise it."""

from __future__ import annotations

from .errors import SpecEditError


class CatalogError(SpecEditError):
    """A catalog pull failed (download, verification, conversion); the message is one line."""

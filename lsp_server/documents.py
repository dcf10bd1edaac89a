"""The documents the editor opened: the only text the server ever reads.

pygls' `workspace.get_text_document(uri)` answers for any URI: a document the client never
opened is read from the URI's path on disk, whatever its scheme. A request naming
`file:///project/../secret.py`, `untitled:/etc/passwd`, a FIFO or /dev/zero would then read
it, block the event loop or exhaust memory. Every rewrite and code action reads through
`OpenDocuments` instead, which knows only the text that came with didOpen and didChange.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from pygls.workspace import Workspace


@dataclass(frozen=True)
class OpenDocument:
    """A snapshot of an opened document (its text is the editor's, never the disk's)."""

    uri: str
    text: str
    version: int | None
    language_id: str | None
    path: str | None  # the URI's path, only to guess a language from its extension; never read


class Documents(Protocol):
    """What the rewrite service may read: opened documents, None for any other URI."""

    def opened(self, uri: str) -> OpenDocument | None: ...


class OpenDocuments:
    """The opened documents of a pygls workspace."""

    def __init__(self, workspace: Callable[[], Workspace]) -> None:
        # A callable: pygls makes the workspace at `initialize`, after the server exists.
        self._workspace = workspace

    def opened(self, uri: str) -> OpenDocument | None:
        # Keyed as pygls keys them in didOpen (unquoted), so a quoted URI finds its document.
        doc = self._workspace().text_documents.get(unquote(uri))
        if doc is None:
            return None
        return OpenDocument(uri=doc.uri, text=doc.source, version=doc.version,
                            language_id=doc.language_id, path=doc.path)

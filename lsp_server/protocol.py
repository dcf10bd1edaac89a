"""pygls' LSP protocol with what this server needs on top: a hook for `$/cancelRequest`.

Kept apart from the server so the protocol never reaches back into the server object: the
server hands it the one callable it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pygls.protocol import LanguageServerProtocol


class SpecEditProtocol(LanguageServerProtocol):
    # Called with the id of every request the client cancels (set by the server).
    on_cancel_request: Callable[[Any], None] | None = None

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        # pygls cancels the request's future, but for workspace/executeCommand that future is
        # not the task running our command: the hook stops the engine job itself.
        super()._handle_cancel_notification(msg_id)
        if self.on_cancel_request is not None:
            self.on_cancel_request(msg_id)

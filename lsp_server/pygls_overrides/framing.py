"""LSP's base protocol: bytes in, message bodies (or framing errors) out.

pygls' reader trusts every header: a `Content-Length` it cannot parse leaves it waiting for
a header that never comes (deaf for good), and an absurd one makes it allocate that many
bytes. This parser never trusts the stream: it bounds headers and bodies, reports each
framing error once, and resynchronises on the next `Content-Length` header, so one bad frame
costs that frame only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# A header block longer than this is not a header block (real ones are under 100 bytes).
MAX_HEADER_BYTES = 8 * 1024
# The largest body accepted: a whole document in didOpen, with room to spare. Bigger ones are
# refused without ever being held in memory.
MAX_BODY_BYTES = 64 * 1024 * 1024

# Headers end at an empty line; LF-only line endings are accepted (some clients send them).
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_LINE = re.compile(rb"([!#-'*+.0-9A-Z^-z|~-]+)[ \t]*:[ \t]*(.*?)[ \t]*")
# The unfinished last line of a header block still being received.
_PARTIAL_LINE = re.compile(rb"[!#-'*+.0-9A-Z^-z|~-]*(?:[ \t]*:[^\r\n]*)?\r?")
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_WHITESPACE = b" \t\r\n"
# Kept when junk is dropped, so a header split across two reads is still found.
_TAIL = len(b"content-length:") - 1


@dataclass(frozen=True)
class Body:
    data: bytes


@dataclass(frozen=True)
class FramingError:
    """A frame that could not be read; answered with an error whose id is null."""

    message: str


Frame = Body | FramingError


class FrameParser:
    """Feed it bytes as they arrive; it returns the complete frames they finish."""

    def __init__(self, max_body: int = MAX_BODY_BYTES,
                 max_header: int = MAX_HEADER_BYTES) -> None:
        self.max_body = max_body
        self.max_header = max_header
        self._buffer = bytearray()
        self._body_length: int | None = None  # set while reading a body
        self._in_junk = False  # junk already reported: the rest of it is dropped quietly

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while (frame := self._next(len(data))) is not None:
            frames.append(frame)
        return frames

    def _next(self, fed: int) -> Frame | None:
        if self._body_length is not None:
            return self._body(fed)
        return self._header()

    def _header(self) -> Frame | None:
        buffer = self._buffer
        start = len(buffer) - len(buffer.lstrip(_WHITESPACE))
        del buffer[:start]  # blank lines between messages are harmless
        end = _HEADER_END.search(buffer)
        if end is None:
            if len(buffer) > self.max_header or (buffer and not _looks_like_header(buffer)):
                return self._resync("bytes that are not a message header")
            return None
        glued = _CONTENT_LENGTH.search(buffer, 0, end.start())
        if glued is not None and glued.start() > 0 and buffer[glued.start() - 1] != ord("\n"):
            # Junk glued to the front of a real header ("xxxContent-Length: 5").
            return self._resync("bytes that are not a message header")
        fields = {}
        for line in re.split(rb"\r?\n", bytes(buffer[:end.start()])):
            match = _HEADER_LINE.fullmatch(line)
            if match is None:
                return self._resync("bytes that are not a message header")
            fields[match[1].lower()] = match[2]
        del buffer[:end.end()]
        length = fields.get(b"content-length")
        # On a bad header the body that follows (if any) is junk to the resynchronisation,
        # dropped quietly as it comes: one error per bad frame.
        self._in_junk = True
        if length is None:
            return FramingError("a message header without Content-Length")
        if not length.isdigit():
            shown = length[:40].decode("ascii", "replace")
            return FramingError(f"Content-Length {shown!r} is not a number of bytes")
        if len(length) > 18 or int(length) > self.max_body:
            return FramingError(f"Content-Length {length[:40].decode()} is over the limit of "
                                f"{self.max_body} bytes: message refused")
        self._in_junk = False
        self._body_length = int(length)
        return self._body(len(buffer))

    def _body(self, fed: int) -> Frame | None:
        length = self._body_length
        assert length is not None
        buffer = self._buffer
        end = self._short_body_end(length, fed)
        if end is None:
            if len(buffer) < length:
                return None
            end = length
        body = bytes(buffer[:end])
        del buffer[:end]
        self._body_length = None
        return Body(body)

    def _short_body_end(self, length: int, fed: int) -> int | None:
        """Where the body ends when Content-Length overstates it, if that is certain.

        An overstated length would swallow the next message, or hold this one and every later
        one until enough bytes came. A JSON object or array ends where its bracket closes and
        only whitespace may follow it in a valid body, so a complete value followed by the
        next header (or, for a body still incomplete, by nothing) ends the body there.
        """
        buffer = self._buffer
        complete = len(buffer) >= length
        window = buffer[:length] if complete else buffer
        if complete:
            if not _CONTENT_LENGTH.search(window):
                return None
        elif not (window[:1] in (b"{", b"[") and window.rstrip(_WHITESPACE)[-1:] in (b"}", b"]")
                  or _CONTENT_LENGTH.search(window, max(0, len(window) - fed - _TAIL))):
            return None
        end = _json_end(window)
        if end is None:
            return None
        rest = buffer[end:].lstrip(_WHITESPACE)
        if _CONTENT_LENGTH.match(rest) or (not complete and not rest):
            return end
        return None

    def _resync(self, what: str) -> Frame | None:
        """Drop bytes up to the next Content-Length header; report the junk once."""
        buffer = self._buffer
        found = _CONTENT_LENGTH.search(buffer, 1)
        dropped = found.start() if found is not None else max(0, len(buffer) - _TAIL)
        if found is None and dropped == 0:
            return None
        del buffer[:dropped]
        if self._in_junk:
            return None if found is None else self._header()
        self._in_junk = True
        return FramingError(f"skipped {what}: expected 'Content-Length: N' and an empty line")


def _looks_like_header(buffer: bytearray) -> bool:
    """Could `buffer` (no empty line yet) still become a header block?"""
    *lines, last = re.split(rb"\r?\n", bytes(buffer))
    return (all(_HEADER_LINE.fullmatch(line) for line in lines)
            and _PARTIAL_LINE.fullmatch(last) is not None)


def _json_end(buffer: bytearray) -> int | None:
    """The byte offset where the JSON value at the start of `buffer` ends, if it is complete."""
    try:
        # surrogateescape: the buffer may end inside a character, or hold invalid UTF-8.
        text = buffer.decode("utf-8", "surrogateescape")
        _, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return len(text[:end].encode("utf-8", "surrogateescape"))

"""Content-decoding with a bounded output: what the engine accepts and how it inflates it.

The engine asks for the codings in :data:`ACCEPT_ENCODING` (RFC 9110
§12.5.3) and decodes the body itself, chunk by chunk as it arrives, with a
:class:`ContentDecoder` whose output never exceeds the configured limit, so a
gzip bomb is cut before its output exists (the body is then ``truncated``).
"""

from __future__ import annotations

import zlib
from typing import Any, Final

__all__ = ["ACCEPT_ENCODING", "ContentDecoder"]

ACCEPT_ENCODING: Final = "gzip, deflate"
"""The content-codings the engine can decode with a bounded output (RFC 9110 §12.5.3)."""


class ContentDecoder:
    """Streaming content-decoder whose output never exceeds ``limit`` bytes.

    ``identity`` passes bytes through; ``gzip``/``x-gzip`` (RFC 9110 §8.4.1.3,
    several members allowed) and ``deflate`` (§8.4.1.2: the zlib format; the
    raw deflate some servers send is accepted too, as browsers and httpx do)
    go through :mod:`zlib` with ``max_length``, so a bomb is stopped before its
    output exists.

    Attributes:
        over: True once more output than ``limit`` was available.
    """

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.total = 0
        self.over = False
        self._fed = 0
        self._done = False
        self._first = True
        self._z: Any = None
        if coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)

    @classmethod
    def for_header(cls, value: str | None, limit: int) -> ContentDecoder | None:
        """Return a decoder for a ``Content-Encoding`` value, or None when unsupported.

        Args:
            value: the field value (``"gzip"``, ``"identity"``, None when absent).
            limit: the decoded-size limit in bytes.
        """
        codings = [c.strip().lower() for c in (value or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return cls("identity", limit)
        if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
            return cls(codings[0], limit)
        return None

    def _take(self, chunk: bytes) -> bytes:
        room = self.limit - self.total
        if len(chunk) > room:
            self.over = True
            chunk = chunk[:room]
        self.total += len(chunk)
        return chunk

    def feed(self, data: bytes) -> bytes:
        """Decode the next received bytes.

        Returns:
            The decoded bytes, at most up to the limit (``over`` says if cut).

        Raises:
            zlib.error: the bytes are not valid for the coding.
        """
        self._fed += len(data)
        if self._z is None:
            return self._take(data)
        out = bytearray()
        while data and not self.over and not self._done:
            room = self.limit - self.total
            try:
                chunk = self._z.decompress(data, room + 1)
            except zlib.error:
                if self.coding == "deflate" and self._first:
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
                    self._first = False
                    continue
                raise
            self._first = False
            out += self._take(chunk)
            data = self._z.unconsumed_tail
            if self._z.eof:
                rest = self._z.unused_data
                if self.coding != "deflate" and rest.strip(b"\0"):
                    self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # next gzip member
                    data = rest
                else:
                    self._done = True  # trailing zero padding or garbage is ignored
        return bytes(out)

    def finish(self) -> bytes:
        """Return what the decoder still holds at the end of the body.

        Raises:
            zlib.error: the compressed stream is corrupt.
        """
        if self._z is None or self._done or self.over or not self._fed:
            return b""
        tail = self._take(self._z.flush())
        if not self._z.eof:
            raise zlib.error("compressed stream ends before its end marker")
        return tail

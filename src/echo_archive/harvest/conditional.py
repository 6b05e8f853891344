"""Conditional requests: the validators kept per URL, sent back, and refreshed.

RFC 9110 §13.1: a representation's ``ETag`` (§8.8.3) is sent back as
``If-None-Match`` (§13.1.2) and its ``Last-Modified`` (§8.8.2) as
``If-Modified-Since`` (§13.1.3); a ``304 Not Modified`` (§15.4.5) means the
stored representation is still current. The fetch engine
(:mod:`echo_archive.harvest.engine`) asks a :class:`ConditionalCache` for the
validators of a ``GET``/``HEAD`` URL, adds them with :func:`conditional_headers`
unless the request carries its own, and stores what the answer says with
:func:`refreshed_validators`.

Terms:

validators
    The ``ETag`` and ``Last-Modified`` values of the representation last
    received whole for a URL (:class:`Validators`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from echo_archive.model import Exchange, header

__all__ = [
    "ConditionalCache",
    "MemoryConditionalCache",
    "Validators",
    "conditional_headers",
    "refreshed_validators",
]


@dataclass(frozen=True, slots=True)
class Validators:
    """The validators of a stored representation (RFC 9110 §8.8).

    Attributes:
        etag: the ``ETag`` field value as received (quotes and ``W/`` kept),
            sent back as ``If-None-Match`` (RFC 9110 §13.1.2).
        last_modified: the ``Last-Modified`` HTTP-date as received, sent back
            as ``If-Modified-Since`` (RFC 9110 §13.1.3).
    """

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        """True when at least one validator is known."""
        return self.etag is not None or self.last_modified is not None


class ConditionalCache(Protocol):
    """Where the engine keeps validators per request URL (the vault's feed state, or memory).

    The engine keys entries by the request URL with secret query values
    masked (:func:`~echo_archive.redaction.redact_url`), so a persisted
    cache never holds an API key.
    """

    def get(self, url: str) -> Validators | None:
        """Return the validators stored for ``url`` (the request URL), or None."""
        ...

    def put(self, url: str, validators: Validators) -> None:
        """Store ``validators`` for ``url``, replacing what was there."""
        ...


class MemoryConditionalCache:
    """A :class:`ConditionalCache` in a dict (tests, one-off runs)."""

    def __init__(self) -> None:
        self.entries: dict[str, Validators] = {}

    def get(self, url: str) -> Validators | None:
        """Return the validators stored for ``url``, or None."""
        return self.entries.get(url)

    def put(self, url: str, validators: Validators) -> None:
        """Store ``validators`` for ``url``."""
        self.entries[url] = validators


def conditional_headers(
    headers: Sequence[tuple[str, str]], old: Validators | None
) -> tuple[list[tuple[str, str]], bool]:
    """Add ``If-None-Match`` / ``If-Modified-Since`` from ``old`` (RFC 9110 §13.1.2, §13.1.3).

    A header the request already carries wins (it is not replaced).

    Args:
        headers: the request's own headers ``(name, value)``.
        old: the validators stored for the URL, or None.

    Returns:
        The headers to send, and whether a validator was added.
    """
    out = list(headers)
    sent = False
    if old is None:
        return out, sent
    if old.etag is not None and header(tuple(out), "if-none-match") is None:
        out.append(("If-None-Match", old.etag))
        sent = True
    if old.last_modified is not None and header(tuple(out), "if-modified-since") is None:
        out.append(("If-Modified-Since", old.last_modified))
        sent = True
    return out, sent


def refreshed_validators(old: Validators | None, exchange: Exchange) -> Validators | None:
    """The validators to store after ``exchange``, or None when nothing changes.

    A whole ``200`` replaces them (an answer without validators clears them);
    a ``304`` refreshes those it carries (RFC 9110 §15.4.5: it sends the
    fields a 200 would have); a cut body or any other status keeps them.

    Args:
        old: the validators stored before the request (None: none).
        exchange: the answer.
    """
    etag = exchange.header("etag")
    modified = exchange.header("last-modified")
    if exchange.status == 304:
        previous = old or Validators()
        fresh = Validators(etag or previous.etag, modified or previous.last_modified)
        return fresh if fresh != old and fresh else None
    if exchange.status == 200 and not exchange.truncated:
        fresh = Validators(etag, modified)
        return fresh if fresh != old and (fresh or old) else None
    return None

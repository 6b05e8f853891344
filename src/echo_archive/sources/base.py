"""The contract every source module implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from echo_archive.model import Exchange, ParseResult, Request

__all__ = ["Feed", "Source"]


@dataclass(frozen=True, slots=True)
class Feed:
    """One configured feed.

    Attributes:
        name: unique feed name (``hn-top``, ``r-python-new``...).
        source: the source kind (``rss``, ``hn``, ``reddit``, ``github``, ``fred``).
        params: source-specific parameters (``url``, ``subreddit``, ``listing``,
            ``repo``, ``series_id``...), as written in ``echo.toml``.
        interval: seconds between harvests of this feed.
    """

    name: str
    source: str
    params: Mapping[str, Any] = field(default_factory=dict)
    interval: float = 3600.0


class Source(Protocol):
    """A source kind: plans requests for a feed and parses what comes back.

    Implementations are pure: no network, no clock reads beyond what the
    exchange carries, no vault access.
    """

    kind: ClassVar[str]

    def plan(self, feed: Feed) -> list[Request]:
        """Return the first requests of one harvest cycle of ``feed``.

        Raises:
            SourceError: the feed's parameters are missing or invalid (names which).
        """
        ...

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse one exchange answering ``request`` into items, follow-ups and tombstones.

        Raises:
            ParseError: the body is malformed (names the URL and position).
        """
        ...

"""The source registry: every source kind by name, and a lookup that names the known kinds.

A feed in ``echo.toml`` names its source kind (``source = "reddit"``); the
harvester and ``echoctl feeds add`` find the implementation here. The kinds
are the same as :data:`echo_archive.config.SOURCE_KINDS`, the list the
configuration model checks ``source`` against without importing any source
module (the vault reads ``echo.toml`` and must not depend on the sources
layer); a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from echo_archive.errors import SourceError
from echo_archive.sources.base import Source
from echo_archive.sources.fred import FredSource
from echo_archive.sources.github import GithubSource
from echo_archive.sources.hn import HnSource
from echo_archive.sources.reddit import RedditSource
from echo_archive.sources.rss import RssSource

__all__ = ["SOURCES", "get_source"]

SOURCES: Final[Mapping[str, Source]] = MappingProxyType(
    {
        "rss": RssSource(),
        "hn": HnSource(),
        "reddit": RedditSource(),
        "github": GithubSource(),
        "fred": FredSource(),
    }
)
"""Source kind → its (stateless, pure) implementation. Read-only."""


def get_source(kind: str) -> Source:
    """Return the implementation of a source kind.

    Args:
        kind: the source kind as written in ``echo.toml`` (``rss``, ``hn``...).

    Returns:
        The source (its ``plan`` and ``parse`` are pure; one instance serves every feed).

    Raises:
        SourceError: no source of that kind; the message lists the known kinds.

    """
    try:
        return SOURCES[kind]
    except KeyError:
        raise SourceError(
            f"unknown source {kind!r} (known: {', '.join(sorted(SOURCES))})"
        ) from None

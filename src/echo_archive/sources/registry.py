"""The source registry: the only list of source kinds, and what derives from it.

A feed in ``echo.toml`` names its source kind (``source = "reddit"``); the
harvester, the importer and ``echoctl feeds add`` find the implementation
here. Adding a source is one module and one line in :data:`SOURCES`
(``docs/sources.md``). Everything a source describes about itself is read
from it through this module:

* :data:`DEFAULT_INTERVALS` (the ``interval`` of a feed that names none;
  :mod:`echo_archive.config` uses it);
* :data:`LIMIT_PROFILES` and :data:`PROFILE_HOSTS` (the fetch engine's
  per-host limits, :mod:`echo_archive.harvest.limits`);
* :func:`source_for_url` (which source reads a recorded response,
  :mod:`echo_archive.harvest.importer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from echo_archive.errors import SourceError
from echo_archive.sources.base import Source, host_matches, url_host
from echo_archive.sources.fred import FredSource
from echo_archive.sources.github import GithubSource
from echo_archive.sources.hn import HnSource
from echo_archive.sources.ratelimits import LimitConfig
from echo_archive.sources.reddit import RedditSource
from echo_archive.sources.rss import RssSource

__all__ = [
    "DEFAULT_INTERVALS",
    "DEFAULT_PROFILE",
    "LIMIT_PROFILES",
    "PROFILE_HOSTS",
    "SOURCES",
    "get_source",
    "limit_profiles",
    "source_for_url",
]

SOURCES: Final[Mapping[str, Source]] = MappingProxyType(
    {
        source.kind: source
        for source in (
            RssSource(),
            HnSource(),
            RedditSource(),
            GithubSource(),
            FredSource(),
        )
    }
)
"""Source kind → its (stateless, pure) implementation. Read-only; the only list."""

DEFAULT_PROFILE: Final = "rss"
"""The limit profile of a host no profile names (a generic feed host)."""


def limit_profiles(
    sources: Mapping[str, Source],
) -> tuple[dict[str, LimitConfig], dict[str, str]]:
    """Collect the host profiles of ``sources``: ``(profile name → limits, host → profile name)``.

    Args:
        sources: source kind → source (:data:`SOURCES`, or a registry under test).

    Returns:
        The two maps :class:`~echo_archive.harvest.limits.HostLimits` takes
        (``profiles`` and ``hosts``); hosts are lowercase.

    Raises:
        SourceError: two profiles share a name or a host, or no source
            declares :data:`DEFAULT_PROFILE` (a wrong registry, found at import).
    """
    limits: dict[str, LimitConfig] = {}
    hosts: dict[str, str] = {}
    for source in sources.values():
        for profile in source.host_profiles:
            if profile.name in limits:
                raise SourceError(f"limit profile {profile.name!r} is declared twice")
            limits[profile.name] = profile.limits
            for host in (h.lower() for h in profile.hosts):
                if host in hosts:
                    raise SourceError(
                        f"host {host} is in limit profiles {hosts[host]!r} and {profile.name!r}"
                    )
                hosts[host] = profile.name
    if DEFAULT_PROFILE not in limits:
        raise SourceError(f"no source declares the default limit profile {DEFAULT_PROFILE!r}")
    return limits, hosts


_LIMITS, _HOSTS = limit_profiles(SOURCES)

LIMIT_PROFILES: Final[Mapping[str, LimitConfig]] = MappingProxyType(_LIMITS)
"""Limit profile name → limits, from every source's ``host_profiles``."""

PROFILE_HOSTS: Final[Mapping[str, str]] = MappingProxyType(_HOSTS)
"""Host name → the limit profile that applies to it (other hosts: :data:`DEFAULT_PROFILE`)."""

DEFAULT_INTERVALS: Final[Mapping[str, int]] = MappingProxyType(
    {kind: source.default_interval for kind, source in SOURCES.items()}
)
"""Source kind → seconds between harvests of a feed that names no ``interval``."""


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


def source_for_url(url: str, sources: Mapping[str, Source] | None = None) -> Source | None:
    """The source whose ``recorded_hosts`` hold the host of ``url``, or None.

    Args:
        url: the request URL of a recorded exchange.
        sources: the sources to ask (default: :data:`SOURCES`, looked up at
            each call).

    Returns:
        The first source (in registry order) that reads that host; None for
        any other host (the response may still be a feed document).
    """
    host = url_host(url)
    for source in (SOURCES if sources is None else sources).values():
        if host_matches(host, source.recorded_hosts):
            return source
    return None

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
from echo_archive.sources.base import Feed, Source, check_params, host_matches, url_host
from echo_archive.sources.fred import FredSource
from echo_archive.sources.github import GithubSource
from echo_archive.sources.hn import HnSource
from echo_archive.sources.ratelimits import LimitConfig
from echo_archive.sources.reddit import RedditSource
from echo_archive.sources.rss import RssSource

__all__ = [
    "CREDENTIAL_PLACEHOLDER",
    "DEFAULT_INTERVALS",
    "DEFAULT_PROFILE",
    "LIMIT_PROFILES",
    "PROFILE_HOSTS",
    "SOURCES",
    "check_feed",
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


CREDENTIAL_PLACEHOLDER: Final = "<credential>"
"""The value :func:`check_feed` gives each credential a feed names, to check its plan."""


def check_feed(feed: Feed) -> None:
    """Check a feed's parameters as its source will use them, without any I/O.

    First the keys: every parameter must be one the source declares
    (:func:`~echo_archive.sources.base.check_params`, the message lists the
    known ones). Then the values: the source's ``plan()`` must accept the
    feed (types and values, as each source checks them). A feed whose plan
    depends on credentials read at harvest time (FRED's API-only parameters
    need ``FRED_API_KEY``) is valid when planning succeeds with every
    credential it names (:meth:`Source.credential_env`) set to
    :data:`CREDENTIAL_PLACEHOLDER`: a missing credential is a harvest-time
    failure, not a configuration error.

    Args:
        feed: the feed as configured (no credentials applied).

    Raises:
        SourceError: the source kind is unknown, a parameter is not declared,
            or the source's ``plan()`` refuses the parameters (the message
            names the feed and the parameter).
    """
    source = get_source(feed.source)
    check_params(source, feed)
    try:
        source.plan(feed)
    except SourceError:
        names = source.credential_env(feed)
        if not names:
            raise
        # Valid if it plans once its credentials are set (else that error is raised).
        placeholders = dict.fromkeys(names, CREDENTIAL_PLACEHOLDER)
        source.plan(source.with_credentials(feed, placeholders))


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

"""The contract every source module implements: the one description of a source kind.

A source kind is described once, by its module, and listed once, in
:data:`echo_archive.sources.registry.SOURCES`. Everything else derives from
that description (``docs/sources.md`` shows how to add a source):

``kind``
    The name a feed names in ``echo.toml`` (``source = "rss"``).
``default_interval``
    Seconds between harvests of a feed that names no ``interval``
    (:data:`echo_archive.config.DEFAULT_INTERVALS` is built from it).
``host_profiles``
    How hard ECHO may hit the source's hosts (:class:`HostProfile`: hosts,
    rate, burst, requests in flight, rate-limit header dialect); the fetch
    engine's per-host limits (:mod:`echo_archive.harvest.limits`) are built
    from them, and ``[limits."<host>"]`` in ``echo.toml`` overrides them.
``params``
    The feed parameters the source accepts, name → what it means; any other
    key is refused (:func:`check_params`).
``recorded_hosts`` and :meth:`Source.import_feed`
    Which recorded responses the source reads when a recording is imported
    (:mod:`echo_archive.harvest.importer` asks the registry).
credentials
    The environment variables a feed needs (:meth:`Source.credential_env`)
    and how their values are applied: to the feed's parameters before
    planning (:meth:`Source.with_credentials`), to each request
    (:meth:`Source.authorize`), and through a token exchange planned and
    parsed by the source like any other request (:meth:`Source.token_request`,
    :meth:`Source.parse_token`; Reddit's application-only OAuth). The harvest
    layer reads the environment and runs the exchange; a token exchange is
    never archived and no credential is ever logged.

``document_window``
    True when each parsed response is the feed's whole current document, a
    window of its latest entries (RSS, Atom, JSON Feed): the harvester then
    records an entry taken out of it while older ones stay as ``withdrawn``
    and fetches its link once to confirm a deletion
    (:mod:`echo_archive.pipeline.withdrawals`). False for paged APIs.
known items (:data:`IF_ARCHIVED`)
    A follow-up request whose ``purpose`` holds ``"if_archived": NATIVE_ID``
    is sent only when the feed already archived an item of that native id
    (the harvester looks it up in the item index, one query per response):
    how a source re-fetches only items it knows (Hacker News ``updates``)
    without reading the vault itself.

Sources are pure: no network, no clock reads beyond what the exchange
carries, no vault, no HTTP or database module. :class:`BaseSource` gives the
defaults (no credentials, no recordings read), so a minimal source is a
``kind``, its profile, its parameters, ``plan`` and ``parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit

from echo_archive.errors import ParseError, SourceError
from echo_archive.model import Exchange, ParseResult, Request
from echo_archive.sources.ratelimits import LimitConfig

__all__ = [
    "IF_ARCHIVED",
    "BaseSource",
    "Feed",
    "HostProfile",
    "Secrets",
    "Source",
    "check_params",
    "host_matches",
    "url_host",
]

IF_ARCHIVED: Final = "if_archived"
"""The ``Request.purpose`` key of a follow-up sent only when the feed already
archived an item of that native id (a string); see the module docstring."""

Secrets = Mapping[str, str]
"""Environment variable name → value, only those a source named and that are set."""


@dataclass(frozen=True, slots=True)
class Feed:
    """One configured feed.

    Attributes:
        name: unique feed name (``hn-top``, ``r-python-new``...).
        source: the source kind (``rss``, ``hn``, ``reddit``, ``github``, ``fred``).
        params: source-specific parameters (``url``, ``subreddit``, ``listing``,
            ``repo``, ``series_id``...), as written in ``echo.toml``.
        interval: seconds between harvests of this feed.
        error: why the feed's ``[[feeds]]`` table is not a usable feed (a
            wrong key, type or parameter, named with the feed), or None. A
            harvest plans nothing for such a feed and reports it failed
            with this error; the other feeds run as usual.
        allow_private: the feed's requests may connect to private addresses
            (its ``allow_private`` in ``echo.toml``; the engine's SSRF guard
            refuses them otherwise). Sources never read it.
    """

    name: str
    source: str
    params: Mapping[str, Any] = field(default_factory=dict)
    interval: float = 3600.0
    error: str | None = None
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class HostProfile:
    """A named limit profile of a source and the hosts it applies to.

    Attributes:
        name: the profile name (``fred``, ``reddit-oauth``...), unique across sources.
        hosts: the host names it applies to, lowercase (``api.stlouisfed.org``).
            The profile named ``rss`` (the generic feed host) applies to any
            host no profile names and lists none.
        limits: rate (requests/s), burst, requests in flight and the
            rate-limit header dialect, with the rule they follow cited where
            the profile is declared.
    """

    name: str
    hosts: tuple[str, ...]
    limits: LimitConfig


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """True when ``host`` is one of ``patterns``.

    A pattern with a leading dot (``.reddit.com``) matches every subdomain;
    others match exactly. Host names compare case-insensitively (RFC 4343).

    Args:
        host: a host name (no port).
        patterns: host names and ``.domain`` suffixes.

    Returns:
        Whether any pattern matches.
    """
    host = host.lower().rstrip(".")
    return any(host.endswith(p) if p.startswith(".") else host == p for p in patterns)


class Source(Protocol):
    """A source kind: plans requests for a feed and parses what comes back.

    Implementations are pure: no network, no clock reads beyond what the
    exchange carries, no vault access. See the module docstring for what
    each attribute feeds; :class:`BaseSource` implements the optional parts.
    """

    kind: ClassVar[str]
    default_interval: ClassVar[int]
    host_profiles: ClassVar[tuple[HostProfile, ...]]
    params: ClassVar[Mapping[str, str]]
    recorded_hosts: ClassVar[tuple[str, ...]]
    document_window: ClassVar[bool]

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

    def import_feed(self, url: str) -> Feed | None:
        """The synthetic feed a recorded response from ``url`` is imported into, or None.

        Only asked for URLs whose host is in :attr:`recorded_hosts`; None
        means the source does not read that endpoint.
        """
        ...

    def credential_env(self, feed: Feed) -> tuple[str, ...]:
        """The environment variables ``feed`` reads credentials from (names, never values)."""
        ...

    def with_credentials(self, feed: Feed, secrets: Secrets) -> Feed:
        """Return ``feed`` with credentials that change the plan (FRED's API key) applied."""
        ...

    def token_request(self, feed: Feed, secrets: Secrets) -> Request | None:
        """Plan the token exchange ``feed`` needs before its requests, or None.

        Raises:
            SourceError: the feed needs a token and the credentials are missing.
        """
        ...

    def parse_token(self, feed: Feed, request: Request, exchange: Exchange) -> str:
        """Read the access token from the answer to :meth:`token_request`.

        Raises:
            ParseError: the answer holds no token (never quotes the body).
        """
        ...

    def authorize(
        self, feed: Feed, request: Request, secrets: Secrets, token: str | None
    ) -> Request:
        """Return ``request`` with the feed's credentials applied (an Authorization header)."""
        ...


class BaseSource:
    """Defaults for the optional parts of :class:`Source`: no credentials, no recordings read.

    A subclass sets ``kind``, ``default_interval``, ``host_profiles`` and
    ``params`` and implements ``plan`` and ``parse``; it overrides the rest
    only when the source has credentials or reads recordings.
    """

    kind: ClassVar[str]
    default_interval: ClassVar[int] = 3600
    host_profiles: ClassVar[tuple[HostProfile, ...]] = ()
    params: ClassVar[Mapping[str, str]] = {}
    recorded_hosts: ClassVar[tuple[str, ...]] = ()
    document_window: ClassVar[bool] = False

    def import_feed(self, url: str) -> Feed | None:
        """No recorded endpoint is read (see :meth:`Source.import_feed`)."""
        return None

    def credential_env(self, feed: Feed) -> tuple[str, ...]:
        """No credentials (see :meth:`Source.credential_env`)."""
        return ()

    def with_credentials(self, feed: Feed, secrets: Secrets) -> Feed:
        """The feed unchanged (see :meth:`Source.with_credentials`)."""
        return feed

    def token_request(self, feed: Feed, secrets: Secrets) -> Request | None:
        """No token exchange (see :meth:`Source.token_request`)."""
        return None

    def parse_token(self, feed: Feed, request: Request, exchange: Exchange) -> str:
        """Never called when :meth:`token_request` plans none.

        Raises:
            ParseError: always (this source exchanges no token).
        """
        raise ParseError(f"the {self.kind} source exchanges no token", request.url)

    def authorize(
        self, feed: Feed, request: Request, secrets: Secrets, token: str | None
    ) -> Request:
        """The request unchanged (see :meth:`Source.authorize`)."""
        return request


def check_params(source: Source, feed: Feed) -> None:
    """Refuse parameters ``source`` does not declare.

    Args:
        source: the feed's source.
        feed: the feed.

    Raises:
        SourceError: ``feed.params`` holds a key not in ``source.params``
            (the message names the feed, the keys and the known ones).
    """
    unknown = sorted(str(key) for key in feed.params if key not in source.params)
    if unknown:
        known = ", ".join(sorted(source.params)) or "none"
        raise SourceError(
            f"feed {feed.name!r}: unknown parameter(s) {', '.join(unknown)} "
            f"for source {source.kind!r} (known: {known})"
        )


def url_host(url: str) -> str:
    """The lowercased host name of ``url`` (``""`` when it has none)."""
    return (urlsplit(url).hostname or "").lower()

"""The ``github`` source: repository, organisation and user activity from the GitHub REST API.

A feed of this source is one listing of the GitHub REST API (API version
``2022-11-28``, https://docs.github.com/rest). The module is pure: it builds
:class:`~echo_archive.model.Request` objects and turns recorded or received
:class:`~echo_archive.model.Exchange` objects into items. The token (``GITHUB_TOKEN``) is
applied by :meth:`GithubSource.authorize`; ETags / ``If-None-Match``,
redirects, rate-limit pauses and retries belong to the fetch engine.

Feed parameters (``echo.toml``):

``repo`` / ``org`` / ``user``
    What to follow: ``"owner/name"``, an organisation login, or a user login.
    Exactly one. ``issues`` and ``releases`` need ``repo``.
``kind``
    ``events`` (default), ``issues`` or ``releases``.
``state``
    For ``issues``: ``open`` (default, as GitHub's), ``closed`` or ``all``.
``per_page``
    Objects per page, 1..100 (default 100: GitHub's maximum, the fewest
    requests; "Using pagination in the REST API").
``pages``
    How many pages one harvest may read, following ``rel="next"`` (default 1).
``base_url``
    The API root (default ``https://api.github.com``; GitHub Enterprise
    Server: ``https://HOST/api/v3``).

Endpoints planned (GitHub REST docs, "REST API endpoints for events",
"... for issues", "... for releases"):

=========  ========================================================================
events     ``/repos/{owner}/{repo}/events``, ``/orgs/{org}/events``,
           ``/users/{user}/events/public``
issues     ``/repos/{owner}/{repo}/issues?state=S&sort=updated&direction=desc``
releases   ``/repos/{owner}/{repo}/releases``
=========  ========================================================================

Every request carries ``Accept: application/vnd.github+json`` and
``X-GitHub-Api-Version: 2022-11-28`` (GitHub REST docs, "Getting started":
media types and API versions) and ``per_page``.

Responses (:meth:`GithubSource.parse`):

* ``200`` with a JSON array: one item per usable object. An object that cannot
  become an item (no ``id``/``type`` for an event, no ``number`` for an
  issue, no ``id`` for a release; upstream test suites trim bodies to
  ``[{"id": ...}]``) is skipped and counted in :attr:`GithubPage.skipped`,
  never fatal: the page's other objects are kept (DESIGN.md invariant 7).
  The search envelope ``{"total_count", "items": [...]}`` and a single object
  of the feed's kind (``/releases/latest``, ``/issues/{n}``) are read too.
* ``Link`` header (RFC 8288; GitHub REST docs, "Using pagination in the REST
  API"): ``rel="next"`` is followed while the feed's ``pages`` allow it, and
  is always returned as the ``cursor``. A ``next`` link to another origin than
  ``base_url`` is never followed (the engine would send the token there).
* ``304 Not Modified`` (a conditional request that matched; it does not count
  against the rate limit, "Best practices for using the REST API"), ``202
  Accepted`` (``{}`` while statistics are computed) and ``204 No Content``:
  an empty result.
* Errors raise :class:`~echo_archive.errors.ParseError`: ``403``/``429`` with
  ``x-ratelimit-remaining: 0`` → ``"rate limit exceeded: ..."`` (primary rate
  limit; the engine pauses until ``x-ratelimit-reset``, epoch seconds); a
  ``403``/``429`` that names a secondary or abuse rate limit →
  ``"secondary rate limit exceeded: ..."``; any other status names the status
  and GitHub's ``message``; a body that is not JSON names its content type
  and what it looks like (a ``503`` HTML page); malformed JSON gives the line
  and column.

Item rules per kind are documented on :func:`event_item`, :func:`issue_item`
and :func:`release_item`. :func:`event_item` is also what
:mod:`echo_archive.sources.gharchive` uses for GH Archive hour files, whose
events have the same schema as the events API.

Helpers for the engine: :func:`renamed_to` (the ``Location`` of a ``301`` for
a renamed or transferred repository, to record as an alias) and
:func:`poll_interval` (``X-Poll-Interval``, the events API's minimum seconds
between polls).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, Final
from urllib.parse import quote, unquote, urljoin, urlsplit

from echo_archive.errors import ParseError, SourceError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, Item, ParseResult, Request, header_values
from echo_archive.sources.base import BaseSource, Feed, HostProfile, Secrets, url_host
from echo_archive.sources.ratelimits import LimitConfig, parse_poll_interval, parse_rate_limit

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "KINDS",
    "REQUEST_HEADERS",
    "TOKEN_ENV",
    "GithubPage",
    "GithubSource",
    "Link",
    "event_item",
    "issue_item",
    "pagination_links",
    "parse_link_header",
    "parse_page",
    "poll_interval",
    "release_item",
    "renamed_to",
]

API_VERSION: Final = "2022-11-28"
"""The REST API version requested (``X-GitHub-Api-Version``)."""

DEFAULT_BASE_URL: Final = "https://api.github.com"
"""The API root used when a feed names no ``base_url``."""

REQUEST_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("Accept", "application/vnd.github+json"),
    ("X-GitHub-Api-Version", API_VERSION),
)
"""Headers of every request (GitHub REST docs, "Getting started with the REST API")."""

KINDS: Final[tuple[str, ...]] = ("events", "issues", "releases")
"""The listings a feed can follow (``params.kind``)."""

TOKEN_ENV: Final = "GITHUB_TOKEN"  # noqa: S105 - a variable name, not a secret
"""The environment variable a GitHub token is read from."""

_SOURCE: Final = "github"
_API_HOST: Final = "api.github.com"
_RECORDED_REPO: Final = r"^/(?:repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|repositories/(?P<rid>\d+))"
_RECORDED_ISSUES_RE: Final = re.compile(_RECORDED_REPO + r"/issues(?:/\d+)?/?$")
_RECORDED_RELEASES_RE: Final = re.compile(
    _RECORDED_REPO + r"/releases(?:/latest|/\d+|/tags/[^/]+)?/?$"
)
_RECORDED_EVENTS_RE: Final = re.compile(
    r"/(?:events(?:/public)?|received_events(?:/public)?|events/orgs/[^/]+)/?$"
)
_RECORDED_ISSUE_EVENTS_RE: Final = re.compile(r"/issues(?:/\d+)?/events/?$")
_HTML_ROOT: Final = "https://github.com"
_STATES: Final = ("open", "closed", "all")
_MAX_PER_PAGE: Final = 100
_REPO_RE: Final = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
_LOGIN_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_SHA_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_RENAMED_PATH_RE: Final = re.compile(r"^(?:/api/v3)?/repositories/\d+(?:/.*)?$")
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_EMPTY_STATUSES: Final = frozenset({202, 204, 304})
_SECONDARY_RE: Final = re.compile(r"secondary rate limit|abuse", re.IGNORECASE)
_UTC_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
# The members of a GitHub error object ("Troubleshooting the REST API").
_ERROR_KEYS: Final = frozenset({"message", "documentation_url", "errors", "status", "error"})


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True, slots=True)
class _Settings:
    """A feed's validated parameters (see the module docstring)."""

    kind: str
    path: str
    query: str
    pages: int
    base_url: str


class GithubSource(BaseSource):
    """The ``github`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters are listed in the module docstring. Credentials: a token
    in ``GITHUB_TOKEN`` is sent as ``Authorization: Bearer`` to
    ``api.github.com`` only (:meth:`authorize`). Recordings: events, issues
    and releases listings from ``api.github.com`` are imported
    (:meth:`import_feed`).
    """

    kind: ClassVar[str] = _SOURCE
    # The events API asks for >= 60 s between polls (X-Poll-Interval); 60 requests/h keyless.
    default_interval: ClassVar[int] = 300
    host_profiles: ClassVar[tuple[HostProfile, ...]] = (
        # GitHub has no fixed request rate: the x-ratelimit-* budget paces us
        # (60/h anonymous, 5000/h authenticated). 1 req/s is only the ceiling until
        # the first response; GitHub best practices: "make requests serially
        # instead of concurrently" → 1 in flight.
        HostProfile(
            "github",
            (_API_HOST,),
            LimitConfig(rate=1.0, burst=1.0, concurrency=1, rate_limit_headers="github"),
        ),
    )
    params: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "repo": "owner/name (one of repo, org, user)",
            "org": "an organisation login (events only)",
            "user": "a user login (events only)",
            "kind": "events (default), issues or releases",
            "state": "for issues: open (default), closed or all",
            "per_page": "objects per page, 1..100 (default 100)",
            "pages": "pages one harvest may read (default 1)",
            "base_url": f"the API root (default {DEFAULT_BASE_URL})",
        }
    )
    recorded_hosts: ClassVar[tuple[str, ...]] = (_API_HOST,)

    def import_feed(self, url: str) -> Feed | None:
        """The import feed of a recorded GitHub response by its path, or None (endpoint not read).

        Events listings go to ``import-github``, releases too (their ids are
        unique across GitHub); issues are numbered per repository, so they go
        to ``import-github/<owner>/<repo>`` (lowercased), one feed per
        repository as a configured issues feed is.

        Args:
            url: the recorded request URL (its host is in ``recorded_hosts``).

        Returns:
            The synthetic feed, or None (``/rate_limit``, issue events...).
        """
        path = urlsplit(url).path
        for kind, pattern in (("issues", _RECORDED_ISSUES_RE), ("releases", _RECORDED_RELEASES_RE)):
            match = pattern.match(path)
            if match is None:
                continue
            if match["rid"]:
                repo = f"repositories/{match['rid']}"
            else:
                repo = f"{match['owner']}/{match['repo']}".lower()
            name = f"import-github/{repo}" if kind == "issues" else "import-github"
            # A recording's placeholder (Octokit's <GITHUB_TEST_REPOSITORY>) is no
            # repository name; the parse needs a valid one only to check the
            # feed, so a stand-in keeps what was recorded (issue 9).
            return Feed(name, self.kind, {"repo": _valid_repo(repo), "kind": kind})
        if _RECORDED_EVENTS_RE.search(path) and not _RECORDED_ISSUE_EVENTS_RE.search(path):
            return Feed("import-github", self.kind, {"user": "echo-import", "kind": "events"})
        return None

    def credential_env(self, feed: Feed) -> tuple[str, ...]:
        """``GITHUB_TOKEN``: a token raises the rate limit from 60 to 5,000 requests an hour."""
        return (TOKEN_ENV,)

    def authorize(
        self, feed: Feed, request: Request, secrets: Secrets, token: str | None
    ) -> Request:
        """Add ``Authorization: Bearer <GITHUB_TOKEN>`` to requests to ``api.github.com``.

        GitHub REST docs, "Authenticating to the REST API". The token goes to
        the public API host only, never to a ``base_url`` elsewhere nor to a
        followed link on another host.

        Args:
            feed: the feed.
            request: a planned or follow-up request.
            secrets: the variables named by :meth:`credential_env` that are set.
            token: unused (GitHub needs no token exchange).

        Returns:
            The request, with the header when a token is set and the host is the API's.
        """
        value = secrets.get(TOKEN_ENV)
        if not value or url_host(request.url) != _API_HOST:
            return request
        return replace(request, headers=(*request.headers, ("Authorization", f"Bearer {value}")))

    def plan(self, feed: Feed) -> list[Request]:
        """Return the request of the listing's first page.

        Args:
            feed: the configured feed.

        Returns:
            One ``GET`` with the GitHub media type and API version headers;
            its ``purpose`` is ``{"kind": kind, "page": 1}``.

        Raises:
            SourceError: a parameter is missing, of the wrong type or out of
                range (the message names the feed and the parameter).
        """
        settings = _settings(feed)
        url = f"{settings.base_url}{settings.path}?{settings.query}"
        return [Request(url=url, headers=REQUEST_HEADERS, purpose=_purpose(settings.kind, 1))]

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse one page of the feed's listing.

        Args:
            feed: the feed the request was planned for (items carry its name).
            request: the request answered; ``purpose["page"]`` is its page number.
            exchange: the final response (after redirects).

        Returns:
            The page's items; a follow-up request for ``rel="next"`` while the
            feed's ``pages`` allow (same origin as ``base_url`` only); the
            ``next`` URL as ``cursor`` (None on the last page). An empty
            result for ``202``, ``204`` and ``304``.

        Raises:
            SourceError: the feed's parameters are invalid.
            ParseError: an error status (rate limit, 4xx, 5xx, an unfollowed
                redirect) or a body that is not a JSON listing; the message
                names the status, GitHub's message or the content type, and
                the position for malformed JSON.
        """
        settings = _settings(feed)
        url = exchange.final_url or exchange.url or request.url
        if exchange.status in _EMPTY_STATUSES:
            return ParseResult()
        if not 200 <= exchange.status < 300:
            raise _status_error(exchange, url)
        page = parse_page(
            exchange.body,
            url,
            settings.kind,
            feed.name,
            content_type=exchange.header("content-type") or "",
        )
        next_url = pagination_links(exchange, base=url).get("next")
        if next_url is not None and not _same_origin(next_url, settings.base_url):
            next_url = None
        number = _page_number(request)
        follow: tuple[Request, ...] = ()
        if next_url is not None and number < settings.pages and next_url != url:
            follow = (
                Request(
                    url=next_url,
                    headers=REQUEST_HEADERS,
                    purpose=_purpose(settings.kind, number + 1),
                ),
            )
        return ParseResult(items=page.items, follow=follow, cursor=next_url)

    def renamed_to(self, exchange: Exchange) -> str | None:
        """Return :func:`renamed_to` of ``exchange`` (for engines holding a source object)."""
        return renamed_to(exchange)

    def poll_interval(self, exchange: Exchange) -> float | None:
        """Return :func:`poll_interval` of ``exchange`` (for engines holding a source object)."""
        return poll_interval(exchange)


def _purpose(kind: str, page: int) -> dict[str, Any]:
    """Return the ``purpose`` of a listing request."""
    return {"kind": kind, "page": page}


def _page_number(request: Request) -> int:
    """Return the request's page number (``purpose["page"]``, 1 when absent or invalid)."""
    number = request.purpose.get("page", 1)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        return 1
    return number


def _settings(feed: Feed) -> _Settings:
    """Validate a feed's parameters and build its endpoint.

    Raises:
        SourceError: a parameter is missing or invalid (names the feed and the parameter).
    """
    params = feed.params
    where = f"feed {feed.name!r}"
    kind = params.get("kind", "events")
    if kind not in KINDS:
        raise SourceError(f"{where}: params.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    per_page = _int_param(params, "per_page", _MAX_PER_PAGE, where)
    if not 1 <= per_page <= _MAX_PER_PAGE:
        raise SourceError(f"{where}: params.per_page must be 1..{_MAX_PER_PAGE}, got {per_page}")
    pages = _int_param(params, "pages", 1, where)
    if pages < 1:
        raise SourceError(f"{where}: params.pages must be >= 1, got {pages}")
    base_url = params.get("base_url", DEFAULT_BASE_URL)
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{where}: params.base_url {base_url!r} is not an http(s) URL")
    base_url = base_url.rstrip("/")

    targets = [name for name in ("repo", "org", "user") if params.get(name) is not None]
    if len(targets) != 1:
        raise SourceError(
            f"{where}: give exactly one of params.repo, params.org, params.user "
            f"(got {', '.join(targets) or 'none'})"
        )
    target = targets[0]
    value = params[target]
    if not isinstance(value, str):
        raise SourceError(f"{where}: params.{target} must be a string, got {value!r}")
    value = value.strip()
    if kind != "events" and target != "repo":
        raise SourceError(f"{where}: kind {kind!r} needs params.repo, not params.{target}")
    query = f"per_page={per_page}"
    if target == "repo":
        match = _REPO_RE.match(value)
        if match is None or match.group(2) in (".", ".."):
            raise SourceError(f"{where}: params.repo must be 'owner/name', got {value!r}")
        owner, name = (quote(part, safe="") for part in match.groups())
        path = f"/repos/{owner}/{name}/{kind}"
        if kind == "issues":
            state = params.get("state", "open")
            if state not in _STATES:
                raise SourceError(
                    f"{where}: params.state must be one of {', '.join(_STATES)}, got {state!r}"
                )
            query = f"state={state}&sort=updated&direction=desc&{query}"
    else:
        if _LOGIN_RE.match(value) is None:
            raise SourceError(f"{where}: params.{target} {value!r} is not a GitHub login")
        login = quote(value, safe="")
        path = f"/orgs/{login}/events" if target == "org" else f"/users/{login}/events/public"
    return _Settings(kind=kind, path=path, query=query, pages=pages, base_url=base_url)


def _valid_repo(recorded: str) -> str:
    """``owner/name`` of a recorded URL, placeholders (``<GITHUB_TEST_REPOSITORY>``) made valid.

    Characters a repository name cannot hold (RFC 3986 percent-escapes,
    ``<``, ``>``) become ``_``; ``repositories/123`` and valid names are kept.
    """
    if recorded.startswith("repositories/") or _REPO_RE.match(recorded):
        return recorded
    owner, _, name = unquote(recorded).partition("/")
    return "/".join(re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_" for part in (owner, name))


def _int_param(params: Mapping[str, Any], name: str, default: int, where: str) -> int:
    """Return integer parameter ``name`` (``default`` when absent).

    Raises:
        SourceError: the value is not an integer.
    """
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"{where}: params.{name} must be an integer, got {value!r}")
    return value


def _same_origin(url: str, base_url: str) -> bool:
    """Return True when ``url`` has the scheme and host (and port) of ``base_url``."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower())


# --------------------------------------------------------------------------- engine helpers


def poll_interval(exchange: Exchange) -> float | None:
    """Return the response's ``X-Poll-Interval`` in seconds, or None.

    GitHub REST docs, "REST API endpoints for events": the events API is
    optimised for polling, and ``X-Poll-Interval`` says how many seconds to
    wait before polling again; a feed must not be polled more often. This is
    :func:`echo_archive.sources.ratelimits.parse_poll_interval`.

    Args:
        exchange: a response of the events API (any response is accepted).

    Returns:
        The interval (> 0), or None when the header is absent or malformed.
    """
    return parse_poll_interval(exchange.headers)


def renamed_to(exchange: Exchange) -> str | None:
    """Return where a renamed or transferred repository now lives, from a redirect.

    GitHub REST docs, "Getting started with the REST API" (HTTP redirects,
    "Permanent redirection"): a request for a renamed or transferred
    repository answers ``301`` with ``Location: .../repositories/{id}`` (and
    the same URL in the JSON body's ``url``). The engine follows the redirect;
    this helper lets it record the old URL as an alias of the new one.

    Args:
        exchange: a redirect response (``301``, or ``308``, ``302``, ``307``).

    Returns:
        The absolute ``/repositories/{id}...`` URL, or None when the exchange
        is not a redirect or does not point to a repository by id (a
        ``/api/v3`` prefix redirect, for example).
    """
    if exchange.status not in _REDIRECTS:
        return None
    base = exchange.final_url or exchange.url
    location = exchange.header("location")
    if not location:
        doc = _loads_quietly(exchange.body)
        location = doc.get("url") if isinstance(doc, dict) else None
        if not isinstance(location, str) or not location:
            return None
    target = urljoin(base, location.strip())
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https") or not _RENAMED_PATH_RE.match(parts.path):
        return None
    return target


def _loads_quietly(body: bytes) -> Any:
    """Return the decoded JSON body (:func:`~echo_archive.jsondecode.decode_json`), or None."""
    try:
        return decode_json(body, "")
    except ParseError:
        return None


# --------------------------------------------------------------------------- errors


def _status_error(exchange: Exchange, url: str) -> ParseError:
    """Build the :class:`ParseError` of a non-2xx response.

    GitHub REST docs, "Rate limits for the REST API" → "Exceeding the rate
    limit": a primary limit answers ``403`` or ``429`` with
    ``x-ratelimit-remaining: 0`` (wait until ``x-ratelimit-reset``, epoch
    seconds); a secondary limit answers ``403`` or ``429`` with a message that
    says so, maybe with ``retry-after``.
    """
    status = exchange.status
    reason = _reason(status)
    doc = _loads_quietly(exchange.body)
    message = _error_message(doc)
    if status in _REDIRECTS:
        location = exchange.header("location") or "(no Location)"
        return ParseError(f"HTTP {status} {reason}: redirect to {location} was not followed", url)
    if status in (403, 429):
        info = parse_rate_limit(exchange.headers, _SOURCE, 0.0, status=status)
        if info is not None and info.remaining <= 0:
            reset = "" if info.reset_assumed else f"; resets at {_epoch_text(info.reset_at_epoch)}"
            said = f": {message}" if message else ""
            return ParseError(f"rate limit exceeded (HTTP {status}{said}{reset})", url)
        retry_after = exchange.header("retry-after")
        if _SECONDARY_RE.search(message) or (retry_after is not None and status == 429):
            wait = f"; retry after {retry_after.strip()} s" if retry_after else ""
            said = f": {message}" if message else ""
            return ParseError(f"secondary rate limit exceeded (HTTP {status}{said}{wait})", url)
    if message:
        return ParseError(f"HTTP {status} {reason}: {message}", url)
    if isinstance(doc, dict | list):
        shown = json.dumps(doc, ensure_ascii=False)
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        return ParseError(f"HTTP {status} {reason}: JSON body without a message: {shown}", url)
    return ParseError(f"HTTP {status} {reason}: {_describe_body(exchange)}", url)


def _error_message(doc: Any) -> str:
    """Return the message of a GitHub error body.

    GitHub REST docs, "Troubleshooting the REST API": errors are
    ``{"message": ..., "documentation_url": ...}``; some front-end errors
    (``500``, ``502``) say ``{"error": "Server Error"}`` instead.
    """
    if not isinstance(doc, dict):
        return ""
    return (_text(doc.get("message")) or _text(doc.get("error"))).strip()


def _reason(status: int) -> str:
    """Return the standard reason phrase of ``status`` (``""`` when unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _epoch_text(epoch: float) -> str:
    """Render POSIX seconds as ``"1538660372 (2018-10-04T13:39:32Z)"``."""
    try:
        moment = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{epoch:g}"
    return f"{epoch:.0f} ({moment})"


def _describe_body(exchange: Exchange) -> str:
    """Say what a non-JSON body is, naming the declared content type."""
    declared = exchange.header("content-type") or "(none)"
    return f"{_body_kind(exchange.body)} (Content-Type: {declared})"


def _body_kind(body: bytes) -> str:
    """Describe a body that is not the JSON expected: empty, HTML, XML, text."""
    head = body.removeprefix(_UTF8_BOM).lstrip()[:512].lower()
    if not head:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "the body is HTML, not JSON"
    if head.startswith(b"<"):
        return "the body is markup (XML), not JSON"
    return "the body is not JSON"


# --------------------------------------------------------------------------- Link header


@dataclass(frozen=True, slots=True)
class Link:
    """One link of an HTTP ``Link`` header (RFC 8288 §3).

    Attributes:
        target: the target URI, resolved against the base given to the parser.
        rels: the relation types, lowercased (``rel="next prev"`` gives two).
        params: every target attribute as written (first occurrence wins),
            names lowercased, quoted strings unquoted.
    """

    target: str
    rels: tuple[str, ...]
    params: Mapping[str, str] = field(default_factory=dict)


def parse_link_header(value: str, base: str = "") -> list[Link]:
    """Parse the value of ``Link`` header fields (RFC 8288 §3).

    ``Link = #link-value``, ``link-value = "<" URI-Reference ">" *( OWS ";"
    OWS link-param )``, ``link-param = token BWS [ "=" BWS ( token /
    quoted-string ) ]``. Commas and semicolons inside ``<...>`` and inside
    quoted strings are data, not separators; backslash escapes in quoted
    strings are honoured (RFC 9110 §5.6.4). Per RFC 8288 §3.3 a ``rel`` given
    twice in one link-value keeps the first. A malformed link-value is
    skipped up to the next top-level comma; the rest is still read.

    Args:
        value: the field value (several ``Link`` fields joined with ``", "``).
        base: the URL relative targets are resolved against (RFC 8288 §3.1:
            the request URL); ``""`` keeps them as written.

    Returns:
        The links in order (links without ``rel`` get ``rels=()``).
    """
    links: list[Link] = []
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and value[pos] in " \t,":
            pos += 1
        if pos >= end:
            break
        if value[pos] != "<":
            pos = _skip_link_value(value, pos)
            continue
        close = value.find(">", pos + 1)
        if close < 0:
            break
        target = value[pos + 1 : close].strip()
        params, pos = _link_params(value, close + 1)
        rels = tuple(part.lower() for part in params.get("rel", "").split())
        links.append(
            Link(target=urljoin(base, target) if base else target, rels=rels, params=params)
        )
    return links


def _skip_link_value(value: str, pos: int) -> int:
    """Return the position of the next top-level comma (or the end) from ``pos``."""
    quoted = escaped = False
    bracket = False
    for index in range(pos, len(value)):
        char = value[index]
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif bracket:
            bracket = char != ">"
        elif char == '"':
            quoted = True
        elif char == "<":
            bracket = True
        elif char == ",":
            return index + 1
    return len(value)


def _link_params(value: str, pos: int) -> tuple[dict[str, str], int]:
    """Read ``*( OWS ";" OWS link-param )`` from ``pos``; return the params and the end."""
    params: dict[str, str] = {}
    end = len(value)
    while True:
        while pos < end and value[pos] in " \t":
            pos += 1
        if pos >= end or value[pos] != ";":
            break
        pos += 1
        while pos < end and value[pos] in " \t":
            pos += 1
        start = pos
        while pos < end and value[pos] not in "=;, \t":
            pos += 1
        name = value[start:pos].lower()
        while pos < end and value[pos] in " \t":
            pos += 1
        param = ""
        if pos < end and value[pos] == "=":
            pos += 1
            while pos < end and value[pos] in " \t":
                pos += 1
            if pos < end and value[pos] == '"':
                param, pos = _quoted_string(value, pos)
            else:
                start = pos
                while pos < end and value[pos] not in ";,":
                    pos += 1
                param = value[start:pos].strip()
        if name and name not in params:
            params[name] = param
    if pos < end and value[pos] != ",":
        pos = _skip_link_value(value, pos)
    return params, pos


def _quoted_string(value: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at ``value[pos] == '"'`` (RFC 9110 §5.6.4)."""
    out: list[str] = []
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == "\\" and pos + 1 < len(value):
            out.append(value[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos


def pagination_links(exchange: Exchange, base: str = "") -> dict[str, str]:
    """Return the response's ``Link`` relations (``next``, ``last``, ``first``, ``prev``...).

    GitHub REST docs, "Using pagination in the REST API": the ``link`` header
    holds ``rel="next"``, ``"prev"``, ``"first"`` and ``"last"`` URLs (some
    omitted on the first or last page). Several ``Link`` fields are combined
    (RFC 9110 §5.3); the first link of each relation wins.

    Args:
        exchange: the response.
        base: the URL relative targets are resolved against (default: the
            exchange's final URL).

    Returns:
        Relation type → absolute URL.
    """
    values = header_values(exchange.headers, "link")
    if not values:
        return {}
    resolved_base = base or exchange.final_url or exchange.url
    out: dict[str, str] = {}
    for link in parse_link_header(", ".join(values), resolved_base):
        for rel in link.rels:
            out.setdefault(rel, link.target)
    return out


# --------------------------------------------------------------------------- page bodies


@dataclass(frozen=True, slots=True)
class GithubPage:
    """One listing page, parsed.

    Attributes:
        items: the items, in document order, later duplicates of a native id dropped.
        skipped: objects that could not become an item (their reasons are in ``problems``).
        problems: one message per skipped object, naming its JSON position (``$[3]``).
        duplicates: objects dropped because an earlier one had the same native id.
    """

    items: tuple[Item, ...]
    skipped: int = 0
    problems: tuple[str, ...] = ()
    duplicates: int = 0


def parse_page(
    body: bytes, url: str, kind: str, feed_name: str, *, content_type: str = ""
) -> GithubPage:
    """Parse a ``200`` body of a GitHub listing into items.

    Accepts a JSON array of objects (the listing endpoints), the search
    envelope ``{"items": [...]}`` and a single object of ``kind`` (an event
    with ``type``, an issue with ``number``, a release with ``tag_name``).

    Args:
        body: the response body (UTF-8 JSON, RFC 8259 §8.1; a BOM is tolerated).
        url: the response URL, named in errors.
        kind: ``events``, ``issues`` or ``releases``.
        feed_name: the feed the items are made for.
        content_type: the ``Content-Type`` header, named in errors.

    Returns:
        The items and what was skipped.

    Raises:
        SourceError: ``kind`` is unknown.
        ParseError: the body is empty, not JSON (names the content type),
            malformed JSON (``line L column C``), not UTF-8 (``byte N``), an
            error object (names GitHub's ``message``) or another JSON value
            than a listing.
    """
    convert = _CONVERTERS.get(kind)
    if convert is None:
        raise SourceError(f"unknown github kind {kind!r} (one of {', '.join(KINDS)})")
    doc = _load_json(body, url, content_type)
    objects: list[Any]
    prefix = "$"
    if isinstance(doc, list):
        objects = doc
    elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
        objects, prefix = doc["items"], "$.items"
    elif isinstance(doc, dict) and _is_single(doc, kind):
        objects = [doc]
        prefix = ""
    elif isinstance(doc, dict) and _ERROR_KEYS.issuperset(doc) and _error_message(doc):
        raise ParseError(f"GitHub error object instead of a listing: {doc['message']}", url, "$")
    else:
        what = "an object" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise ParseError(f"expected a JSON array of {kind}, got {what}", url, "$")

    items: list[Item] = []
    problems: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for index, obj in enumerate(objects):
        position = f"{prefix}[{index}]" if prefix else "$"
        try:
            item = convert(obj, feed_name, url=url, position=position)
        except ParseError as exc:
            problems.append(str(exc))
            continue
        if item.native_id in seen:
            duplicates += 1
            continue
        seen.add(item.native_id)
        items.append(item)
    return GithubPage(
        items=tuple(items), skipped=len(problems), problems=tuple(problems), duplicates=duplicates
    )


def _is_single(doc: Mapping[str, Any], kind: str) -> bool:
    """Return True when a JSON object is itself one object of ``kind``."""
    if kind == "events":
        return "type" in doc and "actor" in doc and "id" in doc
    if kind == "issues":
        return "number" in doc and "title" in doc and "user" in doc
    return "tag_name" in doc and "id" in doc


def _load_json(body: bytes, url: str, content_type: str) -> Any:
    """Decode a JSON body.

    Raises:
        ParseError: see :func:`parse_page`.
    """
    text = body.removeprefix(_UTF8_BOM)
    stripped = text.lstrip()
    if not stripped:
        raise ParseError("empty body", url, "byte 0")
    if stripped[:1] == b"<":
        declared = content_type or "(none)"
        raise ParseError(
            f"not JSON: {_body_kind(stripped)} (Content-Type: {declared})", url, "line 1 column 1"
        )
    return decode_json(body, url)


# --------------------------------------------------------------------------- shared value helpers


def _rfc3339(value: Any) -> str:
    """Normalize a GitHub timestamp to RFC 3339 UTC with microseconds.

    Accepts ISO 8601 (``2012-05-26T20:10:46Z``, ``...+02:00``) and the
    ``2012/03/10 14:46:07 -0800`` form of the 2011-2014 timeline API.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, or ``""`` when ``value`` is not a date.
    """
    if not isinstance(value, str) or not value.strip():
        return ""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.strptime(text, "%Y/%m/%d %H:%M:%S %z")
        except ValueError:
            return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_UTC_FORMAT)


def _text(value: Any) -> str:
    """Return ``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def _obj(value: Any) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object, else an empty mapping."""
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    """Return ``value`` if it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _http_url(value: Any) -> str:
    """Return ``value`` if it is an absolute http(s) URL, else ``""``."""
    text = _text(value).strip()
    return text if text.lower().startswith(("https://", "http://")) else ""


def _login(value: Any) -> str:
    """Return the ``login`` of a user object (``""`` when absent)."""
    return _text(_obj(value).get("login"))


def _native_id(value: Any, what: str, url: str, position: str) -> str:
    """Return an id (string or integer) as text.

    Raises:
        ParseError: the id is missing or of another type.
    """
    if isinstance(value, str) and value.strip():
        return value.strip()
    number = _int(value)
    if number is not None:
        return str(number)
    raise ParseError(f"{what} has no usable id ({value!r})", url, position)


def _first_line(text: str) -> str:
    """Return the first non-empty line of ``text``, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _join(*parts: str) -> str:
    """Join the non-empty parts with a blank line."""
    return "\n\n".join(part for part in parts if part)


# --------------------------------------------------------------------------- events


def _repo_name(event: Mapping[str, Any]) -> str:
    """Return the event's ``repo.name`` when it is ``owner/name`` (2012 events use ``"/"``)."""
    name = _text(_obj(event.get("repo")).get("name")).strip()
    owner, _, repo = name.partition("/")
    return name if owner and repo else ""


def _event_url(kind: str, payload: Mapping[str, Any], repo: str, actor: str) -> str:
    """Return the HTML URL an event is about (see :func:`event_item`)."""
    candidates: list[Any] = []
    comment, issue = _obj(payload.get("comment")), _obj(payload.get("issue"))
    pull = _obj(payload.get("pull_request"))
    if kind == "PushEvent":
        head = _text(payload.get("head"))
        if repo and _SHA_RE.match(head):
            return f"{_HTML_ROOT}/{repo}/commit/{head}"
    elif kind == "CreateEvent":
        ref, ref_type = _text(payload.get("ref")), _text(payload.get("ref_type"))
        if repo and ref and ref_type in ("branch", "tag"):
            return f"{_HTML_ROOT}/{repo}/tree/{quote(ref, safe='/')}"
    elif kind in ("IssueCommentEvent", "CommitCommentEvent", "PullRequestReviewCommentEvent"):
        candidates = [comment.get("html_url"), issue.get("html_url"), pull.get("html_url")]
    elif kind == "IssuesEvent":
        candidates = [issue.get("html_url")]
    elif kind == "PullRequestEvent":
        candidates = [pull.get("html_url")]
    elif kind == "PullRequestReviewEvent":
        candidates = [_obj(payload.get("review")).get("html_url"), pull.get("html_url")]
    elif kind == "ReleaseEvent":
        candidates = [_obj(payload.get("release")).get("html_url")]
    elif kind == "ForkEvent":
        candidates = [_obj(payload.get("forkee")).get("html_url")]
    elif kind == "GollumEvent":
        pages = payload.get("pages")
        if isinstance(pages, list) and pages:
            candidates = [_obj(pages[0]).get("html_url")]
    elif kind == "GistEvent":
        candidates = [_obj(payload.get("gist")).get("html_url")]
    elif kind == "DownloadEvent":
        candidates = [_obj(payload.get("download")).get("html_url")]
    elif kind == "FollowEvent":
        candidates = [_obj(payload.get("target")).get("html_url")]
    for candidate in candidates:
        found = _http_url(candidate)
        if found:
            return found
    if repo:
        return f"{_HTML_ROOT}/{repo}"
    return f"{_HTML_ROOT}/{quote(actor, safe='')}" if actor else ""


def _event_number(payload: Mapping[str, Any]) -> int | None:
    """Return the issue or pull request number an event is about, if any."""
    for value in (
        payload.get("number"),
        _obj(payload.get("issue")).get("number"),
        _obj(payload.get("pull_request")).get("number"),
    ):
        number = _int(value)
        if number is not None:
            return number
    return None


def _numbered(number: int | None, title: str) -> str:
    """Return ``"#12: title"`` (parts left out when absent)."""
    head = f"#{number}" if number is not None else ""
    if head and title:
        return f"{head}: {title}"
    return head or title


def _event_detail(kind: str, payload: Mapping[str, Any], number: int | None) -> str:
    """Return what follows ``"{type} {repo}"`` in an event's title."""
    if kind in ("PushEvent", "CreateEvent", "DeleteEvent"):
        return _text(payload.get("ref"))
    if kind in ("IssuesEvent", "IssueCommentEvent"):
        return _numbered(number, _text(_obj(payload.get("issue")).get("title")))
    if kind in ("PullRequestEvent", "PullRequestReviewCommentEvent", "PullRequestReviewEvent"):
        return _numbered(number, _text(_obj(payload.get("pull_request")).get("title")))
    if kind == "ReleaseEvent":
        release = _obj(payload.get("release"))
        return _text(release.get("name")) or _text(release.get("tag_name"))
    if kind == "ForkEvent":
        return _text(_obj(payload.get("forkee")).get("full_name"))
    if kind == "MemberEvent":
        return _login(payload.get("member"))
    if kind == "FollowEvent":
        return _login(payload.get("target"))
    if kind == "GollumEvent":
        pages = payload.get("pages")
        titles = [_text(_obj(p).get("title")) for p in pages] if isinstance(pages, list) else []
        return ", ".join(t for t in titles if t)
    if kind == "GistEvent":
        return _text(_obj(payload.get("gist")).get("description"))
    if kind == "DownloadEvent":
        return _text(_obj(payload.get("download")).get("name"))
    if kind == "TeamAddEvent":
        return _text(_obj(payload.get("team")).get("name"))
    return ""


def _push_text(payload: Mapping[str, Any]) -> str:
    """One line per commit: ``"{sha7} {first line of message}"``."""
    commits = payload.get("commits")
    if not isinstance(commits, list):
        return ""
    lines = []
    for commit in commits:
        data = _obj(commit)
        sha = _text(data.get("sha"))[:7]
        message = _first_line(_text(data.get("message")))
        line = f"{sha} {message}".strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def _event_text(kind: str, payload: Mapping[str, Any], number: int | None) -> str:
    """Return an event's compact summary (see :func:`event_item`)."""
    action = _text(payload.get("action"))
    comment = _obj(payload.get("comment"))
    if kind == "PushEvent":
        return _push_text(payload)
    if kind in ("IssueCommentEvent", "CommitCommentEvent", "PullRequestReviewCommentEvent"):
        return _text(comment.get("body"))
    if kind in ("IssuesEvent", "PullRequestEvent"):
        key = "issue" if kind == "IssuesEvent" else "pull_request"
        obj = _obj(payload.get(key))
        head = " ".join(p for p in (action, _numbered(number, _text(obj.get("title")))) if p)
        body = _text(obj.get("body")) if action == "opened" else ""
        return _join(head, body)
    if kind == "PullRequestReviewEvent":
        review = _obj(payload.get("review"))
        return _join(_text(review.get("state")), _text(review.get("body")))
    if kind == "ReleaseEvent":
        release = _obj(payload.get("release"))
        tag = _text(release.get("tag_name"))
        head = " ".join(p for p in (action, tag) if p)
        return _join(head, _text(release.get("body")))
    if kind in ("CreateEvent", "DeleteEvent"):
        verb = "created" if kind == "CreateEvent" else "deleted"
        what = " ".join(p for p in (_text(payload.get("ref_type")), _text(payload.get("ref"))) if p)
        return _join(f"{verb} {what}".strip(), _text(payload.get("description")))
    if kind == "ForkEvent":
        forkee = _text(_obj(payload.get("forkee")).get("full_name"))
        return f"forked to {forkee}" if forkee else "forked"
    if kind == "WatchEvent":
        return action or "started"
    if kind == "MemberEvent":
        return " ".join(p for p in (action, _login(payload.get("member"))) if p)
    if kind == "PublicEvent":
        return "made public"
    if kind == "GollumEvent":
        pages = payload.get("pages")
        lines = []
        for page in pages if isinstance(pages, list) else []:
            data = _obj(page)
            line = " ".join(p for p in (_text(data.get("action")), _text(data.get("title"))) if p)
            if line:
                lines.append(line)
        return "\n".join(lines)
    if kind == "GistEvent":
        gist = _obj(payload.get("gist"))
        head = " ".join(p for p in (action, "gist", _text(gist.get("id"))) if p)
        return _join(head, _text(gist.get("description")))
    if kind == "DownloadEvent":
        download = _obj(payload.get("download"))
        return _join(_text(download.get("name")), _text(download.get("description")))
    if kind == "FollowEvent":
        target = _login(payload.get("target"))
        return f"followed {target}" if target else "followed"
    if kind == "TeamAddEvent":
        team = _text(_obj(payload.get("team")).get("name"))
        added = _login(payload.get("user")) or _text(_obj(payload.get("repo")).get("full_name"))
        return f"added {added} to team {team}".strip() if added or team else ""
    return action


def event_item(
    event: Any, feed_name: str, *, url: str = "", position: str = "", source: str = _SOURCE
) -> Item:
    """Turn one GitHub event object (events API or GH Archive) into an item.

    The event schema is the one of GitHub REST docs, "GitHub event types"
    (``id``, ``type``, ``actor``, ``repo``, ``payload``, ``public``,
    ``created_at`` and, for events in an organisation, ``org``). Fields
    drifted between 2012 and today (``display_login``, ``org``, ``node_id``,
    ``repo.id`` and ``payload.before`` come and go; 2012 gist, follow and
    team events have the placeholder repository ``"/"``); only ``id``,
    ``type`` and ``actor`` are required.

    Item fields:

    ``native_id``
        The event ``id`` as text.
    ``url``
        The HTML page the event is about: the comment's, issue's, pull
        request's, review's, release's, fork's, wiki page's, gist's,
        download's or followed user's ``html_url``; for a push the head
        commit, for a branch or tag creation its tree; else
        ``https://github.com/{repo}``, else the actor's profile.
    ``title``
        ``"{type} {repo}"`` plus the ref (push, create, delete), ``#n: title``
        (issue and pull request events), the release name, the fork's name,
        the member, the wiki pages or the gist description, when present.
    ``text``
        A compact summary: for a push one line per commit (``sha7`` and the
        message's first line), a comment's body, ``action #n: title`` (plus
        the body when ``opened``) for issues and pull requests, the release
        tag and notes, ``created branch x``, ``forked to owner/name``...
    ``author``
        ``actor.login`` (``actor.display_login`` when ``login`` is absent).
    ``published_at``
        ``created_at`` as RFC 3339 UTC with microseconds (``""`` when not a
        date; the raw value is then kept as ``extra["created_at_raw"]``).
    ``extra``
        ``type``, ``repo`` (None when the event has no repository),
        ``public``, and when present ``org`` (login), ``action``, ``ref``,
        ``ref_type`` and ``number`` (issue or pull request).
    ``counters``
        None: an event does not change once emitted.

    Args:
        event: the decoded event (any JSON value; non-objects are rejected).
        feed_name: the feed the item is made for.
        url: the URL or file the event came from, named in errors.
        position: where the event is in that document (``$[3]``, ``line 17``).
        source: the item's source kind.

    Returns:
        The item.

    Raises:
        ParseError: the event is not an object, or has no usable ``id`` or
            ``type``, or no ``actor`` (names ``url`` and ``position``).
    """
    if not isinstance(event, Mapping):
        raise ParseError(f"event is a JSON {type(event).__name__}, not an object", url, position)
    kind = _text(event.get("type")).strip()
    if not kind:
        raise ParseError("event has no type", url, position)
    native_id = _native_id(event.get("id"), "event", url, position)
    if "actor" not in event:
        raise ParseError(f"event {native_id} has no actor (not an event object)", url, position)
    payload = _obj(event.get("payload"))
    actor = _obj(event.get("actor"))
    author = _text(actor.get("login")) or _text(actor.get("display_login"))
    repo = _repo_name(event)
    number = _event_number(payload)

    extra: dict[str, Any] = {"type": kind, "repo": repo or None}
    org = _login(event.get("org"))
    if org:
        extra["org"] = org
    for key in ("action", "ref", "ref_type"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            extra[key] = value
    if number is not None:
        extra["number"] = number
    public = event.get("public")
    extra["public"] = public if isinstance(public, bool) else None
    published = _rfc3339(event.get("created_at"))
    if not published and event.get("created_at") is not None:
        extra["created_at_raw"] = event.get("created_at")

    detail = _event_detail(kind, payload, number)
    title = " ".join(part for part in (kind, repo, detail) if part)
    return Item(
        source=source,
        feed=feed_name,
        native_id=native_id,
        url=_event_url(kind, payload, repo, author),
        title=title,
        text=_event_text(kind, payload, number),
        author=author,
        published_at=published,
        extra=extra,
    )


# --------------------------------------------------------------------------- issues


def _is_pull_request(issue: Mapping[str, Any]) -> bool:
    """Return True when an issue object is a pull request.

    GitHub REST docs, "REST API endpoints for issues": "GitHub's REST API
    considers every pull request an issue ... identify pull requests by the
    ``pull_request`` key". Before 2014 every issue had ``pull_request:
    {"html_url": null, ...}``; only a non-null URL in it means a pull request.
    An object of the pulls API (``merged_at`` and ``diff_url`` at the top) is
    one too.
    """
    if "merged_at" in issue and "diff_url" in issue:  # a pull request object itself
        return True
    pull = issue.get("pull_request")
    if not isinstance(pull, Mapping):
        return False
    return any(value is not None for value in pull.values())


def issue_item(
    issue: Any, feed_name: str, *, url: str = "", position: str = "", source: str = _SOURCE
) -> Item:
    """Turn one issue (or pull request) object of the issues API into an item.

    Item fields: ``native_id`` ``issue:{number}`` or ``pr:{number}`` (see
    :func:`_is_pull_request`); ``url`` ``html_url``; ``title``; ``text`` the
    ``body`` (Markdown as sent); ``author`` ``user.login``; ``published_at``
    ``created_at``; ``extra`` ``number``, ``state``, ``state_reason`` (when
    sent), ``labels`` (names), ``updated_at``, ``closed_at`` (normalized, or
    None), ``locked``, ``assignees`` (logins; the single ``assignee`` of old
    payloads), ``milestone`` (title or None), ``is_pr``; ``counters``
    ``comments`` and ``reactions`` (``reactions.total_count``) when sent.

    Args:
        issue: the decoded object.
        feed_name: the feed the item is made for.
        url: the response URL, named in errors.
        position: where the object is in the body (``$[3]``).
        source: the item's source kind.

    Returns:
        The item.

    Raises:
        ParseError: not an object, or no integer ``number``.
    """
    if not isinstance(issue, Mapping):
        raise ParseError(f"issue is a JSON {type(issue).__name__}, not an object", url, position)
    number = _int(issue.get("number"))
    if number is None:
        raise ParseError(f"issue has no number ({issue.get('number')!r})", url, position)
    is_pr = _is_pull_request(issue)
    labels = issue.get("labels")
    label_names = [
        name
        for name in (
            _text(_obj(label).get("name")) if isinstance(label, Mapping) else _text(label)
            for label in (labels if isinstance(labels, list) else [])
        )
        if name
    ]
    assignees_raw = issue.get("assignees")
    if isinstance(assignees_raw, list):
        assignees = [login for login in (_login(a) for a in assignees_raw) if login]
    else:
        single = _login(issue.get("assignee"))
        assignees = [single] if single else []
    milestone = _text(_obj(issue.get("milestone")).get("title")) or None
    locked = issue.get("locked")
    extra: dict[str, Any] = {
        "number": number,
        "state": _text(issue.get("state")) or None,
        "labels": label_names,
        "updated_at": _rfc3339(issue.get("updated_at")) or None,
        "closed_at": _rfc3339(issue.get("closed_at")) or None,
        "locked": locked if isinstance(locked, bool) else None,
        "assignees": assignees,
        "milestone": milestone,
        "is_pr": is_pr,
    }
    state_reason = _text(issue.get("state_reason"))
    if state_reason:
        extra["state_reason"] = state_reason
    counters: dict[str, int | float] = {}
    comments = _int(issue.get("comments"))
    if comments is not None:
        counters["comments"] = comments
    reactions = _int(_obj(issue.get("reactions")).get("total_count"))
    if reactions is not None:
        counters["reactions"] = reactions
    return Item(
        source=source,
        feed=feed_name,
        native_id=f"{'pr' if is_pr else 'issue'}:{number}",
        url=_http_url(issue.get("html_url")),
        title=_text(issue.get("title")),
        text=_text(issue.get("body")),
        author=_login(issue.get("user")),
        published_at=_rfc3339(issue.get("created_at")),
        extra=extra,
        counters=counters,
    )


# --------------------------------------------------------------------------- releases


def release_item(
    release: Any, feed_name: str, *, url: str = "", position: str = "", source: str = _SOURCE
) -> Item:
    """Turn one release object of the releases API into an item.

    Item fields: ``native_id`` ``release:{id}``; ``url`` ``html_url``;
    ``title`` the ``name``, or the ``tag_name`` when the name is empty or
    null; ``text`` the ``body``; ``author`` ``author.login``;
    ``published_at`` ``published_at`` (a draft has none: ``created_at``);
    ``extra`` ``tag_name``, ``target_commitish``, ``draft``, ``prerelease``,
    ``published_at``, ``created_at`` and ``assets`` (``name``, ``size``,
    ``content_type`` each); ``counters`` ``downloads`` (the sum of the assets'
    ``download_count``), ``downloads:{asset name}`` for each asset, and
    ``reactions`` when sent.

    Args:
        release: the decoded object.
        feed_name: the feed the item is made for.
        url: the response URL, named in errors.
        position: where the object is in the body (``$[3]``).
        source: the item's source kind.

    Returns:
        The item.

    Raises:
        ParseError: not an object, or no usable ``id`` or ``tag_name``.
    """
    if not isinstance(release, Mapping):
        raise ParseError(
            f"release is a JSON {type(release).__name__}, not an object", url, position
        )
    native_id = _native_id(release.get("id"), "release", url, position)
    tag = _text(release.get("tag_name"))
    if not tag:
        raise ParseError(
            f"release {native_id} has no tag_name (not a release object)", url, position
        )
    assets: list[dict[str, Any]] = []
    counters: dict[str, int | float] = {}
    total = 0
    raw_assets = release.get("assets")
    for asset in raw_assets if isinstance(raw_assets, list) else []:
        data = _obj(asset)
        name = _text(data.get("name"))
        assets.append(
            {
                "name": name,
                "size": _int(data.get("size")),
                "content_type": _text(data.get("content_type")) or None,
            }
        )
        downloads = _int(data.get("download_count"))
        if downloads is not None:
            total += downloads
            if name:
                counters[f"downloads:{name}"] = downloads
    if assets:
        counters["downloads"] = total
    reactions = _int(_obj(release.get("reactions")).get("total_count"))
    if reactions is not None:
        counters["reactions"] = reactions
    published = _rfc3339(release.get("published_at"))
    created = _rfc3339(release.get("created_at"))
    draft, prerelease = release.get("draft"), release.get("prerelease")
    extra: dict[str, Any] = {
        "tag_name": tag or None,
        "target_commitish": _text(release.get("target_commitish")) or None,
        "draft": draft if isinstance(draft, bool) else None,
        "prerelease": prerelease if isinstance(prerelease, bool) else None,
        "published_at": published or None,
        "created_at": created or None,
        "assets": assets,
    }
    return Item(
        source=source,
        feed=feed_name,
        native_id=f"release:{native_id}",
        url=_http_url(release.get("html_url")),
        title=_text(release.get("name")).strip() or tag,
        text=_text(release.get("body")),
        author=_login(release.get("author")),
        published_at=published or created,
        extra=extra,
        counters=counters,
    )


_Converter = Callable[..., Item]
_CONVERTERS: Final[Mapping[str, _Converter]] = {
    "events": event_item,
    "issues": issue_item,
    "releases": release_item,
}

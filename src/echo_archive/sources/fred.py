"""The ``fred`` source: FRED economic series (Federal Reserve Bank of St. Louis).

A feed of this source is one series (or a few) of observations. Two ways in:

* **The FRED API** when the engine supplies an API key (``params.api_key``,
  read by the engine from the environment variable named by
  ``params.api_key_env``; this module never reads the environment):
  ``GET https://api.stlouisfed.org/fred/series/observations?series_id=...&api_key=...&file_type=json``
  (https://fred.stlouisfed.org/docs/api/fred/series_observations.html). The
  response is ``{"realtime_start", "realtime_end", "observation_start",
  "observation_end", "units", "output_type", "file_type", "order_by",
  "sort_order", "count", "offset", "limit", "observations": [{"realtime_start",
  "realtime_end", "date", "value"}]}``. Pages hold at most ``limit``
  observations (1 to 100000, the API's default 100000); while ``offset +
  len(observations) < count`` the next page is requested with ``offset``
  advanced (the same URL otherwise). The same page in XML (``file_type=xml``,
  the API's default, which clients such as fredapi read) is read as well:
  its attributes are the JSON keys. ``realtime_start``/``realtime_end`` ask
  for the vintage history (ALFRED, https://alfred.stlouisfed.org): every value
  an observation ever had, each with the real-time period it was current.
* **The keyless CSV download** otherwise:
  ``GET https://fred.stlouisfed.org/graph/fredgraph.csv?id=SERIES[,SERIES2...]``
  (``cosd``/``coed`` bound the dates). Header ``DATE,<SERIES>`` before 2024,
  ``observation_date,<SERIES>[,<SERIES2>...]`` since; no quoting. It has no
  vintages, units or output types, so asking for them without a key is a
  :class:`~echo_archive.errors.SourceError`.

One item per observation (per series and date), values as strings exactly as
sent, ``"."`` (or an empty CSV cell) meaning *missing*:

``native_id``
    ``"{series_id}:{date}"``; with a vintage request (``realtime_start``
    asked for), ``"{series_id}:{date}@{realtime_start}"``, one item per
    vintage. A revised value under the same native id is a new version
    downstream (the value is content).
``url`` / ``title`` / ``text``
    ``https://fred.stlouisfed.org/series/{series_id}``, ``"{series_id} {date}"``
    and the value string.
``extra``
    ``series_id``, ``date``, ``value`` (``"."`` kept), ``missing`` (bool),
    ``units`` and ``output_type`` (API only, from the response envelope) and,
    for vintage requests only, ``realtime_start`` and ``realtime_end``.
``published_at``
    For vintage requests, the observation's ``realtime_start`` at midnight
    UTC: the day this value became current. Otherwise ``""``.
``observed_at`` (not content)
    When FRED says the content held (:func:`observed_at`): the row's
    ``realtime_start`` at midnight UTC; for a vintage row whose
    ``realtime_end`` is closed, the day after it. A revised value is thus
    ordered by vintage, not by when a recording was imported; the keyless
    CSV has no real-time period (``""``: the capture's time).

Without a vintage request the API stamps every observation with the request's
real-time window (``realtime_start == realtime_end ==`` the latest vintage or
today), which moves for *all* observations whenever *any* value is revised:
the two GDP recordings in the shared corpus differ in one value but in all 315
``realtime_start`` fields. Such a window is a property of the query, not of the
observation, so it is kept out of the content (``extra``/``published_at``);
otherwise each harvest would version the whole history.

Errors come back as ``{"error_code": 400, "error_message": "Bad Request. ..."}``
under HTTP 400 or 500; :meth:`FredSource.parse` raises
:class:`~echo_archive.errors.ParseError` naming the status, code and message
(whether to retry is the engine's decision). The API key never appears in an
item or an error message: URLs named in errors pass through ECHO's one
redaction (:func:`~echo_archive.redaction.redact_url`) and the key's value is
scrubbed from any text taken from a response.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date
from types import MappingProxyType
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from xml.etree.ElementTree import ParseError as XmlParseError

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from echo_archive.errors import ParseError, SourceError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.redaction import REDACTED, redact_text, redact_url
from echo_archive.sources.base import BaseSource, Feed, HostProfile, Secrets
from echo_archive.sources.ratelimits import LimitConfig

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CSV_BASE_URL",
    "MAX_LIMIT",
    "MISSING",
    "OPEN_END",
    "OUTPUT_TYPES",
    "UNITS",
    "FredSource",
    "observed_at",
    "parse_csv",
    "series_page_url",
]

#: The API root (https://fred.stlouisfed.org/docs/api/fred/).
DEFAULT_BASE_URL: Final = "https://api.stlouisfed.org/fred"

#: The site root that serves ``/graph/fredgraph.csv`` downloads (no key needed).
DEFAULT_CSV_BASE_URL: Final = "https://fred.stlouisfed.org"

#: The environment variable the engine reads the API key from, by default.
DEFAULT_API_KEY_ENV: Final = "FRED_API_KEY"

#: The API's maximum (and default) ``limit`` of ``series/observations``.
MAX_LIMIT: Final = 100000

#: The ``realtime_end`` FRED writes for a vintage still current (an open end).
OPEN_END: Final = "9999-12-31"

#: The value FRED writes for a missing observation.
MISSING: Final = "."

#: ``units`` the API accepts (series_observations.html, "units").
UNITS: Final = frozenset({"lin", "chg", "ch1", "pch", "pc1", "pca", "cch", "cca", "log"})

#: ``output_type`` values whose observations carry ``date`` and ``value``:
#: 1 = observations by real-time period, 4 = initial release only. Types 2 and
#: 3 (by vintage date) put one column per vintage and are not supported.
OUTPUT_TYPES: Final = frozenset({1, 4})

_SERIES_PAGE: Final = "https://fred.stlouisfed.org/series/{id}"
_SERIES_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CSV_DATE_HEADERS: Final = frozenset({"date", "observation_date"})
_ACCEPT_JSON: Final = (("Accept", "application/json"),)
_ACCEPT_CSV: Final = (("Accept", "text/csv, */*;q=0.5"),)


def series_page_url(series_id: str) -> str:
    """Return the series' page on the FRED site (``https://fred.stlouisfed.org/series/GDP``).

    Args:
        series_id: the FRED series id.

    Returns:
        The page URL, used as each observation item's ``url``.
    """
    return _SERIES_PAGE.format(id=series_id)


class FredSource(BaseSource):
    """The ``fred`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters:
        series_id: the series id (``GDP``), or several as a list or a
            comma-separated string (one API request each; one fredgraph CSV
            request for all of them). Required.
        api_key: the FRED API key, put here by the engine at plan time from
            the environment variable named by ``api_key_env``. Without it the
            keyless CSV download is used.
        api_key_env: the name of that environment variable (default
            ``FRED_API_KEY``); only named in messages here.
        observation_start, observation_end: ``YYYY-MM-DD`` bounds of the
            observation dates (TOML dates accepted).
        realtime_start, realtime_end: ``YYYY-MM-DD`` real-time period: ask for
            the vintage history (``realtime_start = 1776-07-04`` for all of it).
            API only.
        units: a transformation (``lin``, ``chg``, ``pch``...). API only.
        output_type: 1 (by real-time period) or 4 (initial release only). API only.
        limit: page size, 1 to 100000 (API only; default: the API's 100000).
        base_url: the API root (default ``https://api.stlouisfed.org/fred``).
        csv_base_url: the site root for CSV downloads (default
            ``https://fred.stlouisfed.org``).

    Both FRED hosts, the API and the site serving the keyless CSV download,
    share the ``fred`` limit profile. Recorded ``series/observations`` and
    ``.csv`` responses from them are imported into the feed ``import-fred``
    (no parameters: the series and vintage come from the recorded URL).
    """

    kind: ClassVar[str] = "fred"
    # Series are published at most daily.
    default_interval: ClassVar[int] = 86400
    host_profiles: ClassVar[tuple[HostProfile, ...]] = (
        # FRED API terms of use / DESIGN.md "Source API rules": at most 1 request/s,
        # for the API and the fredgraph.csv download alike, one at a time.
        HostProfile(
            "fred",
            ("api.stlouisfed.org", "fred.stlouisfed.org"),
            LimitConfig(rate=1.0, burst=1.0, concurrency=1),
        ),
    )
    params: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "series_id": "a series id, or several (a list or comma-separated) (required)",
            "api_key": "the FRED API key (normally read from api_key_env at harvest time)",
            "api_key_env": f"the environment variable holding the API key ({DEFAULT_API_KEY_ENV})",
            "observation_start": "YYYY-MM-DD: the first observation date",
            "observation_end": "YYYY-MM-DD: the last observation date",
            "realtime_start": "YYYY-MM-DD: ask for vintages from this date (API only)",
            "realtime_end": "YYYY-MM-DD: the end of the real-time period (API only)",
            "units": "a transformation: lin, chg, pch... (API only)",
            "output_type": "1 (by real-time period) or 4 (initial release only) (API only)",
            "limit": "page size, 1 to 100000 (API only)",
            "base_url": f"the API root (default {DEFAULT_BASE_URL})",
            "csv_base_url": f"the site root of CSV downloads (default {DEFAULT_CSV_BASE_URL})",
        }
    )
    recorded_hosts: ClassVar[tuple[str, ...]] = ("api.stlouisfed.org", "fred.stlouisfed.org")

    def import_feed(self, url: str) -> Feed | None:
        """``import-fred`` for ``series/observations`` and ``.csv`` URLs, else None.

        Args:
            url: the recorded request URL (its host is in ``recorded_hosts``).

        Returns:
            The synthetic feed (no parameters), or None for an endpoint not
            read (``series/tags``...).
        """
        reads = urlsplit(url).path.endswith(("/series/observations", ".csv"))
        return Feed("import-fred", self.kind) if reads else None

    def credential_env(self, feed: Feed) -> tuple[str, ...]:
        """The variable holding the API key: ``params.api_key_env``, default ``FRED_API_KEY``.

        Args:
            feed: the configured feed.

        Returns:
            One name; none when the feed carries ``api_key`` itself.
        """
        return () if "api_key" in feed.params else (_api_key_env(feed),)

    def with_credentials(self, feed: Feed, secrets: Secrets) -> Feed:
        """Put the API key in ``params.api_key``, where :meth:`plan` reads it.

        The key goes in the query string (the API takes it nowhere else);
        every URL shown or stored is redacted (:func:`redact_url`).

        Args:
            feed: the configured feed.
            secrets: the variables named by :meth:`credential_env` that are set.

        Returns:
            The feed with ``api_key``, or unchanged when no key is set (the
            keyless CSV download is planned then).
        """
        for name in self.credential_env(feed):
            if secrets.get(name):
                return replace(feed, params={**feed.params, "api_key": secrets[name]})
        return feed

    def plan(self, feed: Feed) -> list[Request]:
        """Return the first observations request of each series.

        Args:
            feed: the configured feed.

        Returns:
            With an API key, one ``series/observations`` JSON request per
            series (purpose ``{"kind": "observations", "format": "json",
            "series_id": ..., "offset": 0}``); without, one ``fredgraph.csv``
            request for all series (purpose ``{"kind": "observations",
            "format": "csv", "series_id": "A,B"}``).

        Raises:
            SourceError: a parameter is missing or invalid, or an API-only
                parameter is set without an API key (the message names the
                feed, the parameter and ``api_key_env``; never the key).
        """
        series = _series_ids(feed)
        key = _api_key(feed)
        dates = {name: _date_param(feed, name) for name in _DATE_PARAMS}
        units = _units(feed)
        output_type = _output_type(feed)
        limit = _limit(feed)
        if key is None:
            api_only = [
                name
                for name, value in (
                    ("realtime_start", dates["realtime_start"]),
                    ("realtime_end", dates["realtime_end"]),
                    ("units", units),
                    ("output_type", output_type),
                    ("limit", limit),
                )
                if value is not None
            ]
            if api_only:
                env = _api_key_env(feed)
                raise SourceError(
                    f"feed {feed.name!r}: {', '.join(api_only)} need the FRED API, and no API "
                    f"key was supplied (set the {env} environment variable); the keyless CSV "
                    "download has no vintages, units, output types or paging"
                )
            return [_csv_request(feed, series, dates)]
        base = _url_param(feed, "base_url", DEFAULT_BASE_URL)
        requests = []
        for series_id in series:
            query: list[tuple[str, str]] = [
                ("series_id", series_id),
                ("api_key", key),
                ("file_type", "json"),
            ]
            for name in _DATE_PARAMS:
                value = dates[name]
                if value is not None:
                    query.append((name, value))
            if units is not None:
                query.append(("units", units))
            if output_type is not None:
                query.append(("output_type", str(output_type)))
            if limit is not None:
                query.append(("limit", str(limit)))
            requests.append(
                Request(
                    url=f"{base}/series/observations?{urlencode(query)}",
                    headers=_ACCEPT_JSON,
                    purpose={
                        "kind": "observations",
                        "format": "json",
                        "series_id": series_id,
                        "offset": 0,
                    },
                )
            )
        return requests

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse an observations page (JSON) or a fredgraph CSV download into items.

        The format comes from ``request.purpose["format"]``; when the purpose
        does not say (replayed traffic), a URL path ending in ``.csv`` means
        CSV and anything else JSON.

        Args:
            feed: the feed the request was planned for (items carry its name;
                its ``api_key`` is scrubbed from messages).
            request: the request that was answered (its URL, key included, is
                the base of the next page's URL).
            exchange: the response.

        Returns:
            The observations as items in document order (row by row, then
            column by column for CSV); for a JSON page that is not the last,
            the next page's request and ``cursor`` = its offset.

        Raises:
            SourceError: the feed's ``api_key`` or ``series_id`` is invalid.
            ParseError: the status is not 200, the body is a FRED error
                (``error_code``/``error_message``), empty, malformed, not an
                observations response, or a CSV that is not a FRED download.
                The message names the redacted URL and the position.
        """
        url = redact_url(exchange.final_url or exchange.url or request.url)
        key = _api_key(feed)
        if exchange.status == 304:
            return ParseResult()
        fmt = request.purpose.get("format")
        if fmt not in ("json", "csv"):
            fmt = "csv" if urlsplit(request.url or url).path.endswith(".csv") else "json"
        if fmt == "csv":
            if exchange.status != 200:
                raise ParseError(f"HTTP {exchange.status} response, expected 200", url)
            return ParseResult(items=parse_csv(exchange.body, url, feed_name=feed.name))
        return _parse_json_page(feed, request, exchange, url, key)


# --------------------------------------------------------------------------- parameters

_DATE_PARAMS: Final = ("observation_start", "observation_end", "realtime_start", "realtime_end")


def _series_ids(feed: Feed) -> list[str]:
    """``params.series_id`` as a list of valid, distinct series ids."""
    raw = feed.params.get("series_id")
    values: Sequence[object]
    if isinstance(raw, str):
        values = raw.split(",")
    elif isinstance(raw, list | tuple):
        values = raw
    else:
        raise SourceError(f"feed {feed.name!r}: params.series_id is missing (a FRED series id)")
    out: list[str] = []
    for value in values:
        text = value.strip() if isinstance(value, str) else value
        if not isinstance(text, str) or not _SERIES_ID_RE.match(text):
            raise SourceError(f"feed {feed.name!r}: params.series_id {value!r} is not a series id")
        if text not in out:
            out.append(text)
    if not out:
        raise SourceError(f"feed {feed.name!r}: params.series_id is empty")
    return out


def _api_key(feed: Feed) -> str | None:
    """The API key the engine put in ``params.api_key``, or None (never echoed)."""
    key = feed.params.get("api_key")
    if key is None or key == "":
        return None
    if not isinstance(key, str):
        raise SourceError(f"feed {feed.name!r}: params.api_key must be a string")
    return key


def _api_key_env(feed: Feed) -> str:
    """``params.api_key_env`` (default ``FRED_API_KEY``)."""
    env = feed.params.get("api_key_env", DEFAULT_API_KEY_ENV)
    return env if isinstance(env, str) and env else DEFAULT_API_KEY_ENV


def _date_param(feed: Feed, name: str) -> str | None:
    """A ``YYYY-MM-DD`` parameter (string or TOML date), or None when absent."""
    value = feed.params.get(name)
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise SourceError(f"feed {feed.name!r}: params.{name} {value!r} is not a YYYY-MM-DD date")


def _units(feed: Feed) -> str | None:
    """``params.units``, one of :data:`UNITS`, or None."""
    value = feed.params.get("units")
    if value is None:
        return None
    if not isinstance(value, str) or value not in UNITS:
        choices = ", ".join(sorted(UNITS))
        raise SourceError(f"feed {feed.name!r}: params.units must be one of {choices}")
    return value


def _output_type(feed: Feed) -> int | None:
    """``params.output_type``, one of :data:`OUTPUT_TYPES`, or None."""
    value = feed.params.get("output_type")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in OUTPUT_TYPES:
        raise SourceError(
            f"feed {feed.name!r}: params.output_type must be 1 or 4 (got {value!r}); "
            "types 2 and 3 (one column per vintage) are not supported"
        )
    return value


def _limit(feed: Feed) -> int | None:
    """``params.limit``, 1 to :data:`MAX_LIMIT`, or None."""
    value = feed.params.get("limit")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise SourceError(
            f"feed {feed.name!r}: params.limit must be an integer from 1 to {MAX_LIMIT}"
        )
    return value


def _url_param(feed: Feed, name: str, default: str) -> str:
    """An http(s) base URL parameter without a trailing slash."""
    value = feed.params.get(name, default)
    if not isinstance(value, str):
        raise SourceError(f"feed {feed.name!r}: params.{name} must be a string")
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SourceError(
            f"feed {feed.name!r}: params.{name} {redact_url(value)!r} is not an http(s) URL"
        )
    return value.strip().rstrip("/")


def _csv_request(feed: Feed, series: list[str], dates: Mapping[str, str | None]) -> Request:
    """The keyless ``fredgraph.csv`` request of all series."""
    base = _url_param(feed, "csv_base_url", DEFAULT_CSV_BASE_URL)
    query = [("id", ",".join(series))]
    if dates["observation_start"] is not None:
        query.append(("cosd", dates["observation_start"]))
    if dates["observation_end"] is not None:
        query.append(("coed", dates["observation_end"]))
    return Request(
        url=f"{base}/graph/fredgraph.csv?{urlencode(query, safe=',', quote_via=quote)}",
        headers=_ACCEPT_CSV,
        purpose={"kind": "observations", "format": "csv", "series_id": ",".join(series)},
    )


# --------------------------------------------------------------------------- JSON


def _scrub(text: str, key: str | None) -> str:
    """``text`` without the API key's value (and with any ``api_key=`` redacted)."""
    text = redact_text(text)
    return text.replace(key, REDACTED) if key else text


def _error_text(doc: Any) -> str | None:
    """``"FRED error 400: Bad Request. ..."`` for an error body, else None."""
    if isinstance(doc, dict) and ("error_code" in doc or "error_message" in doc):
        code = doc.get("error_code")
        message = doc.get("error_message")
        return f"FRED error {code}: {message if isinstance(message, str) else '(no message)'}"
    return None


def _query(url: str) -> dict[str, str]:
    """The query parameters of a URL (last value wins)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _with_offset(url: str, offset: int) -> str:
    """``url`` with its ``offset`` query parameter set (other parameters kept in order)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "offset"]
    query.append(("offset", str(offset)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _parse_json_page(
    feed: Feed, request: Request, exchange: Exchange, url: str, key: str | None
) -> ParseResult:
    """Parse one ``series/observations`` JSON page (or its error body)."""
    if exchange.status != 200:
        doc: Any = None
        try:
            doc = _load_page(exchange.body, url)
        except ParseError:
            doc = None
        error = _error_text(doc)
        detail = f": {_scrub(error, key)}" if error else ""
        raise ParseError(f"HTTP {exchange.status} response{detail}", url)
    doc = _load_page(exchange.body, url)
    error = _error_text(doc)
    if error:
        raise ParseError(_scrub(error, key), url, "$.error_code")
    if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
        keys = ", ".join(sorted(doc)) if isinstance(doc, dict) else type(doc).__name__
        raise ParseError(f"not an observations response ({keys})", url, "$.observations")

    asked = _query(request.url or exchange.url)
    series_id = asked.get("series_id") or request.purpose.get("series_id")
    if not isinstance(series_id, str) or not series_id:
        series_id = _series_ids(feed)[0]
    vintage = "realtime_start" in asked or feed.params.get("realtime_start") is not None
    envelope: dict[str, Any] = {}
    for name in ("units", "output_type"):
        if name in doc:
            envelope[name] = doc[name]

    observations: list[Any] = doc["observations"]
    items = [
        _json_item(feed.name, series_id, obs, index, vintage, envelope, url)
        for index, obs in enumerate(observations)
    ]

    count, offset = doc.get("count"), doc.get("offset", 0)
    follow: tuple[Request, ...] = ()
    cursor = None
    if (
        _is_count(count)
        and _is_count(offset)
        and observations
        and offset + len(observations) < count
    ):
        next_offset = offset + len(observations)
        purpose = {**request.purpose, "offset": next_offset}
        follow = (
            Request(
                url=_with_offset(request.url or exchange.url, next_offset),
                method=request.method,
                headers=request.headers,
                purpose=purpose,
            ),
        )
        cursor = str(next_offset)
    return ParseResult(items=tuple(items), follow=follow, cursor=cursor)


_XML_INTS: Final = frozenset({"count", "offset", "limit", "output_type"})


def _load_page(body: bytes, url: str) -> Any:
    """An observations page as the JSON structure, whether sent as JSON or XML.

    ``file_type=xml`` is the API's default when a client does not ask for
    JSON (https://fred.stlouisfed.org/docs/api/fred/series_observations.html):
    ``<observations count=".." offset=".." ...><observation date=".."
    value=".." realtime_start=".." realtime_end=".."/>...</observations>``,
    and errors as ``<error code="400" message="..."/>``. The attributes map
    to the JSON keys one to one (``count``, ``offset``, ``limit`` and
    ``output_type`` as integers, as in JSON). It is read with ``defusedxml``:
    a document declaring a DTD or entities is refused (FRED sends none;
    entity expansion is an attack).

    Raises:
        ParseError: the body is neither JSON nor such XML (position named).
    """
    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return decode_json(body, url)
    try:
        root = defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(f"XML with a DTD or entities, not a FRED response ({exc})", url) from exc
    except XmlParseError as exc:
        line, column = exc.position
        raise ParseError(f"malformed XML: {exc}", url, f"line {line} column {column + 1}") from exc
    if root.tag == "error":
        code = root.get("code")
        return {
            "error_code": int(code) if code and code.isdigit() else code,
            "error_message": root.get("message") or "",
        }

    def typed(attributes: Mapping[str, str]) -> dict[str, Any]:
        return {
            name: int(value) if name in _XML_INTS and value.isdigit() else value
            for name, value in attributes.items()
        }

    doc = typed(root.attrib)
    if root.tag == "observations":
        doc["observations"] = [typed(child.attrib) for child in root if child.tag == "observation"]
    else:
        doc[root.tag] = None  # named in the "not an observations response" message
    return doc


def _is_count(value: object) -> bool:
    """True for a non-negative int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_item(
    feed_name: str,
    series_id: str,
    obs: Any,
    index: int,
    vintage: bool,
    envelope: Mapping[str, Any],
    url: str,
) -> Item:
    """One JSON observation as an item."""
    where = f"$.observations[{index}]"
    if not isinstance(obs, dict):
        raise ParseError("an observation must be a JSON object", url, where)
    fields: dict[str, str] = {}
    for name in ("date", "value", "realtime_start", "realtime_end"):
        value = obs.get(name)
        if value is None and name.startswith("realtime") and not vintage:
            continue
        if not isinstance(value, str):
            raise ParseError(f"observation {name} must be a string", url, f"{where}.{name}")
        fields[name] = value
    for name in ("date", "realtime_start", "realtime_end"):
        if name in fields and not _DATE_RE.match(fields[name]):
            raise ParseError(
                f"observation {name} {fields[name]!r} is not YYYY-MM-DD", url, f"{where}.{name}"
            )
    obs_date, value = fields["date"], fields["value"]
    extra: dict[str, Any] = {
        "series_id": series_id,
        "date": obs_date,
        "value": value,
        "missing": value.strip() == MISSING,
        **envelope,
    }
    native_id = f"{series_id}:{obs_date}"
    published_at = ""
    start = fields.get("realtime_start")
    if vintage:
        assert start is not None  # required above for a vintage request
        native_id = f"{native_id}@{start}"
        published_at = f"{start}T00:00:00.000000Z"
        extra["realtime_start"] = start
        extra["realtime_end"] = fields["realtime_end"]
    return Item(
        source=FredSource.kind,
        feed=feed_name,
        native_id=native_id,
        url=series_page_url(series_id),
        title=f"{series_id} {obs_date}",
        text=value,
        published_at=published_at,
        extra=extra,
        observed_at=observed_at(start, fields.get("realtime_end") if vintage else None),
    )


def observed_at(realtime_start: str | None, realtime_end: str | None = None) -> str:
    """The time from which FRED states an observation's content held (``Item.observed_at``).

    FRED versions are ordered by vintage (ALFRED, "real-time periods",
    https://alfred.stlouisfed.org/help#real_time_periods): an observation
    row is valid from ``realtime_start``. Without a vintage request the API
    stamps every row with the request's real-time window (the latest vintage),
    so that is when the value was current. With a vintage request the row's
    ``realtime_end`` is content too (one item per vintage), and a vintage is
    first seen open (``9999-12-31``) and later closed by the next vintage: the
    closed row could be known only from the day after its ``realtime_end``
    (the next vintage's ``realtime_start``), so that day is its observed time.
    This orders the open and the closed row of a vintage the way they were
    observed whatever order the recordings arrive in.

    Args:
        realtime_start: ``YYYY-MM-DD``, or None when the row has none (CSV).
        realtime_end: ``YYYY-MM-DD`` of a vintage row (content), or None when
            it is not content (no vintage request).

    Returns:
        ``YYYY-MM-DDT00:00:00.000000Z`` (RFC 3339 UTC), or ``""`` when the row
        has no real-time period (the capture's time is used then).
    """
    if not realtime_start:
        return ""
    day = realtime_start
    if realtime_end and realtime_end != OPEN_END:
        try:
            end = date.fromisoformat(realtime_end)
        except ValueError:
            end = None
        if end is not None and end < date.max:
            after = date.fromordinal(end.toordinal() + 1).isoformat()
            day = max(day, after)
    return f"{day}T00:00:00.000000Z"


# --------------------------------------------------------------------------- CSV


def parse_csv(body: bytes, url: str = "", *, feed_name: str = "") -> tuple[Item, ...]:
    """Parse a FRED CSV download (``fredgraph.csv`` or a series CSV) into items.

    Both header generations are read: ``DATE,<SERIES>`` (before 2024) and
    ``observation_date,<SERIES>[,<SERIES2>...]`` (2024 on). Each cell of a
    series column is one item; ``"."`` (or an empty cell, which the 2024
    download writes for a missing value) is kept as the API sends a missing
    value, ``"."``, and marked ``missing``.

    ALFRED vintage downloads (https://alfred.stlouisfed.org, "Download
    data": one column per vintage, named ``<SERIES>_<YYYYMMDD>``) are read
    as the API's vintage observations are: the column's date is the
    ``realtime_start`` (native id ``SERIES:DATE@YYYY-MM-DD``,
    ``published_at`` that day), ``realtime_end`` the day before the series'
    next vintage column (``9999-12-31`` for the last, as the API writes the
    open end). An empty cell of a vintage column is an observation that
    vintage does not have (no item); ``"."`` is a missing value in it.

    Args:
        body: the CSV bytes (UTF-8, an optional BOM).
        url: the download URL, named in errors (redact it first).
        feed_name: the feed the items are made for (``Item.feed``).

    Returns:
        The items, row by row and, within a row, column by column.

    Raises:
        ParseError: the body is empty, not UTF-8, not a FRED CSV (the first
            column is not ``DATE``/``observation_date``, as for an HTML error
            page), or a row has the wrong number of fields or a bad date
            (position ``line N``).
    """
    if not body.strip():
        raise ParseError("empty body, expected a FRED CSV", url, "byte 0")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"CSV is not UTF-8 ({exc.reason})", url, f"byte {exc.start}") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    series: list[str] = []
    vintages: dict[str, tuple[str, str, str]] = {}
    items: list[Item] = []
    for row in _csv_rows(reader, url):
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if header is None:
            if cells[0].lower() not in _CSV_DATE_HEADERS or len(cells) < 2:
                raise ParseError(
                    f"not a FRED CSV download: header {_clip(','.join(cells))!r}",
                    url,
                    f"line {line}",
                )
            header = cells
            series = cells[1:]
            for column, name in enumerate(series, start=2):
                if not _SERIES_ID_RE.match(name):
                    raise ParseError(
                        f"header column {column} {name!r} is not a series id", url, f"line {line}"
                    )
            vintages = _csv_vintages(series)
            continue
        if len(cells) != len(header):
            raise ParseError(
                f"expected {len(header)} fields, found {len(cells)}", url, f"line {line}"
            )
        obs_date = cells[0]
        if not _DATE_RE.match(obs_date):
            raise ParseError(f"date {obs_date!r} is not YYYY-MM-DD", url, f"line {line}")
        for heading, value in zip(series, cells[1:], strict=True):
            vintage = vintages.get(heading)
            series_id = heading if vintage is None else vintage[0]
            if vintage is not None and value == "":
                continue  # not an observation of this vintage
            value = value or MISSING
            extra: dict[str, Any] = {
                "series_id": series_id,
                "date": obs_date,
                "value": value,
                "missing": value == MISSING,
            }
            native_id, published_at, observed = f"{series_id}:{obs_date}", "", ""
            if vintage is not None:
                native_id = f"{native_id}@{vintage[1]}"
                published_at = f"{vintage[1]}T00:00:00.000000Z"
                extra["realtime_start"], extra["realtime_end"] = vintage[1], vintage[2]
                observed = observed_at(vintage[1], vintage[2])
            items.append(
                Item(
                    source=FredSource.kind,
                    feed=feed_name,
                    native_id=native_id,
                    url=series_page_url(series_id),
                    title=f"{series_id} {obs_date}",
                    text=value,
                    published_at=published_at,
                    extra=extra,
                    observed_at=observed,
                )
            )
    if header is None:
        raise ParseError("empty CSV, expected a header", url, "line 1")
    return tuple(items)


_VINTAGE_COLUMN_RE: Final = re.compile(r"^(?P<series>.+)_(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")


def _csv_vintages(columns: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """ALFRED vintage columns: ``{column: (series_id, realtime_start, realtime_end)}``.

    A column ``GDP_20200730`` is a vintage of ``GDP`` when ``20200730`` is a
    real date; ``realtime_end`` is the day before the series' next vintage
    (``9999-12-31`` for its last, as the API writes it).
    """
    found: dict[str, tuple[str, date]] = {}
    for column in columns:
        match = _VINTAGE_COLUMN_RE.match(column)
        if match is None:
            continue
        try:
            day = date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            continue
        found[column] = (match["series"], day)
    out: dict[str, tuple[str, str, str]] = {}
    for column, (series_id, day) in found.items():
        later = sorted(d for s, d in found.values() if s == series_id and d > day)
        end = date.fromordinal(later[0].toordinal() - 1).isoformat() if later else OPEN_END
        out[column] = (series_id, day.isoformat(), end)
    return out


def _csv_rows(reader: Any, url: str) -> Iterator[list[str]]:
    """The rows of a CSV reader; a ``csv.Error`` (a field over the limit, a NUL) is a ParseError.

    Raises:
        ParseError: the CSV module refused a row (position ``line N``).
    """
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ParseError(f"unreadable CSV row ({exc})", url, f"line {reader.line_num}") from exc
        yield row


def _clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

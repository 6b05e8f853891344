"""Replay transport: answer HTTP requests from recordings instead of the network.

The fetch engine talks to the network through an :class:`httpx.AsyncBaseTransport`
(encode/httpx's one-method transport interface, ``handle_async_request``), so
the live transport, this replay transport and test transports are
interchangeable: :class:`~echo_archive.harvest.engine.Fetcher` takes any of them.

Terms:

recording
    A file of recorded exchanges (cassette, replay text, HAR, WARC), read with
    :func:`~echo_archive.harvest.recordings.read_recording`.
secret parameter
    A query parameter that carries a credential (``api_key``, ``access_token``,
    ``token``...; :data:`~echo_archive.redaction.SECRET_PARAMS`). Recorders
    strip or mask them, so matching ignores them, and
    :func:`~echo_archive.redaction.redact_url` masks them in every URL the
    engine stores or shows (ECHO's one redaction, :mod:`echo_archive.redaction`).
placeholder
    A value a recorder put in place of a secret or an account-specific name:
    ``<ACCESS_TOKEN>``, ``<TEST_SUBREDDIT>``, ``MOCK_API_KEY``,
    ``private_token_removed`` (:func:`is_placeholder`). A recorded query value
    or path segment that is a placeholder matches any value.

Matching rules (:meth:`ReplayTransport.match`): same method (case-insensitive);
same scheme, host (case-insensitive) and port (default ports made explicit);
the same path, compared segment by segment after percent-decoding, a recorded
placeholder segment matching any one segment; the same query parameters as a
multiset (order-insensitive), secret parameters ignored and recorded
placeholder values matching any value. Repeated identical requests are
answered by the matching exchanges in recording order; once all have been
served, the last one answers every further request (a poll loop keeps
working). Request bodies are not compared (ECHO sends none).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from echo_archive.harvest.recordings import read_recording
from echo_archive.model import Exchange
from echo_archive.redaction import is_secret_param, redact_url

__all__ = [
    "RECORDED_AT_EXTENSION",
    "NotRecordedError",
    "ReplayTransport",
    "is_placeholder",
]

RECORDED_AT_EXTENSION: Final = "echo_recorded_at"
"""Response extension key under which :class:`ReplayTransport` passes the
recording's own timestamp (RFC 3339 string or None); the engine copies it to
:attr:`~echo_archive.model.Exchange.recorded_at`."""

_PLACEHOLDER_VALUES: Final = frozenset(
    {"MOCK_API_KEY", "private_token_removed", "REDACTED", "FILTERED", "<redacted>"}
)
_ANGLE_PLACEHOLDER: Final = re.compile(r"<[^<>]+>")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Framing and coding headers describe the recorded wire bytes, not the decoded
# body served here: httpx would decode twice or expect a different length.
_WIRE_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class NotRecordedError(httpx.TransportError):
    """No recorded exchange matches the request.

    The message is ``"not recorded: <METHOD> <url>"`` with secret query values
    masked (:func:`~echo_archive.redaction.redact_url`). The engine reports it
    as the outcome's error and never retries it (the answer would not change).
    """


def is_placeholder(value: str) -> bool:
    """Return True when ``value`` is a recorder's placeholder (``<TOKEN>``, ``MOCK_API_KEY``).

    Args:
        value: a percent-decoded query value or path segment.
    """
    return value in _PLACEHOLDER_VALUES or _ANGLE_PLACEHOLDER.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class _Key:
    """A URL taken apart for matching (see the module docstring)."""

    method: str
    origin: tuple[str, str, int]
    segments: tuple[str, ...]
    params: tuple[tuple[str, str], ...]


def _key(method: str, url: str) -> _Key:
    """Normalize a method and URL into a :class:`_Key`.

    Raises:
        ValueError: the URL has an invalid port.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme, 0)
    path = parts.path or "/"
    segments = tuple(unquote(segment) for segment in path.split("/"))
    params = tuple(
        sorted(
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if not is_secret_param(name)
        )
    )
    return _Key(method.upper(), (scheme, host, port), segments, params)


def _params_match(recorded: tuple[tuple[str, str], ...], live: tuple[tuple[str, str], ...]) -> bool:
    """Compare query multisets; a recorded placeholder value matches any value of its name."""
    fixed = Counter(pair for pair in recorded if not is_placeholder(pair[1]))
    wild = Counter(name for name, value in recorded if is_placeholder(value))
    live_pairs = Counter(live)
    if fixed - live_pairs:
        return False  # a recorded parameter the live request lacks
    rest = live_pairs - fixed
    rest_names: Counter[str] = Counter()
    for (name, _), count in rest.items():
        rest_names[name] += count
    return rest_names == wild


def _matches(recorded: _Key, live: _Key) -> bool:
    """Return True when a recorded request key matches a live one."""
    if recorded.method != live.method or recorded.origin != live.origin:
        return False
    if len(recorded.segments) != len(live.segments):
        return False
    for want, got in zip(recorded.segments, live.segments, strict=True):
        if want != got and not is_placeholder(want):
            return False
    return _params_match(recorded.params, live.params)


def _header_bytes(text: str) -> bytes:
    """Encode a recorded header name or value for the wire (latin-1, else UTF-8)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


class ReplayTransport(httpx.AsyncBaseTransport):
    """An httpx transport that answers from recorded exchanges (see the module docstring).

    The response carries the recorded status and headers, and the recorded
    body as decoded by the recording reader; ``Content-Encoding``,
    ``Content-Length`` and ``Transfer-Encoding`` are dropped and a
    ``Content-Length`` of the decoded body appended, so httpx neither decodes
    twice nor expects the recorded wire length. The recording's timestamp is
    passed in the response extension :data:`RECORDED_AT_EXTENSION`.

    Not thread-safe: serve one event loop.

    Args:
        exchanges: the recorded exchanges, in recording order (several
            recordings concatenated keep their order).
    """

    def __init__(self, exchanges: Iterable[Exchange]) -> None:
        self._entries: list[tuple[_Key, Exchange]] = []
        for exchange in exchanges:
            try:
                key = _key(exchange.method, exchange.url)
            except ValueError:
                continue  # an unusable recorded URL can never be requested
            self._entries.append((key, exchange))
        self._served = [0] * len(self._entries)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> ReplayTransport:
        """Build a transport from recording files, each read with ``read_recording``.

        Args:
            paths: recording files (any format ``read_recording`` detects), in
                the order their exchanges should be preferred.

        Returns:
            The transport.

        Raises:
            RecordingError: a file is not a readable recording.
        """
        exchanges: list[Exchange] = []
        for path in paths:
            exchanges.extend(read_recording(Path(path)).exchanges)
        return cls(exchanges)

    def __len__(self) -> int:
        """The number of recorded exchanges available."""
        return len(self._entries)

    def served(self) -> int:
        """Return how many requests have been answered so far."""
        return sum(self._served)

    def match(self, method: str, url: str) -> Exchange | None:
        """Find the recorded exchange that answers ``method url`` and count it as served.

        Args:
            method: the request method.
            url: the absolute request URL.

        Returns:
            The first matching exchange not yet served, else the last matching
            one (repeated), or None when nothing matches.
        """
        try:
            live = _key(method, url)
        except ValueError:
            return None
        last: int | None = None
        for index, (key, _) in enumerate(self._entries):
            if not _matches(key, live):
                continue
            if self._served[index] == 0:
                self._served[index] += 1
                return self._entries[index][1]
            last = index
        if last is None:
            return None
        self._served[last] += 1
        return self._entries[last][1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the recordings.

        Args:
            request: the request httpx wants sent.

        Returns:
            The recorded response (see the class docstring).

        Raises:
            NotRecordedError: no recorded exchange matches
                (``"not recorded: GET <url>"``).
        """
        url = str(request.url)
        exchange = self.match(request.method, url)
        if exchange is None:
            raise NotRecordedError(
                f"not recorded: {request.method.upper()} {redact_url(url)}", request=request
            )
        headers = [
            (_header_bytes(name), _header_bytes(value))
            for name, value in exchange.headers
            if name.lower() not in _WIRE_HEADERS
        ]
        headers.append((b"Content-Length", str(len(exchange.body)).encode("ascii")))
        return httpx.Response(
            exchange.status,
            headers=headers,
            stream=httpx.ByteStream(exchange.body),
            request=request,
            extensions={RECORDED_AT_EXTENSION: exchange.recorded_at},
        )

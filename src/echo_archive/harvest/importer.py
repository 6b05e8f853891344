"""Backfill the vault from files: recordings, GH Archive hour files and saved feed documents.

:func:`import_files` reads each file, recognizes what it is from its content,
turns what it holds into *sightings* (an exchange, its feed and what the
source made of it) and archives them through the same code path as a live
harvest (:func:`~echo_archive.harvest.commit.commit_batch`): raw captures
first, then item, version and tombstone entries decided by the same
versioning rules, observations, and a signed checkpoint per commit. So
importing a file twice adds captures but no new items, and an item recorded
once and harvested live later is one item.

What a file can be (tried in this order):

``gharchive``
    A GH Archive hour (https://www.gharchive.org/): gzip JSON Lines of GitHub
    events, recognized by the gzip magic and a first line that is an event
    object, or by the ``YYYY-MM-DD-H.json.gz`` name with JSON Lines inside.
    The hour file itself is the capture (its bytes exactly, URL
    ``file:<name>``, ``Content-Type: application/gzip``, ``recorded_at`` the
    hour the name gives); every event becomes a ``github`` item of feed
    ``import-github`` via :func:`~echo_archive.sources.gharchive.items_from_hour`,
    the function the events API uses too. Broken lines are counted, the first
    few line numbers reported and noted on the capture (``parse_warning``);
    they never stop the file.
``recording``
    A cassette, HAR or WARC (:func:`~echo_archive.harvest.recordings.sniff_format`:
    ``betamax``, ``pygithub``, ``ruby-vcr``, ``vcrpy``, ``exvcr``, ``har``,
    ``warc``), read one exchange at a time
    (:func:`~echo_archive.harvest.recordings.iter_exchanges`). Each ``GET``
    response is routed by its URL (:func:`route`, :func:`feed_for`) to the
    source that reads it and parsed as a live harvest would; a response the
    source cannot parse (a 5xx, truncated JSON, a rate-limit 403) is still
    archived, with the parse error on its capture (raw first). Follow-up
    requests a parse asks for are ignored: a recording holds what it holds.
    Requests other than ``GET`` (Reddit's OAuth token ``POST``) and ``304
    Not Modified`` answers are skipped and counted, as a live harvest stores
    nothing for a 304. A response is *not recognized* (counted, its reason
    reported, nothing written) when it comes from an endpoint of a known host
    that no source reads (GitHub ``/rate_limit``, FRED ``series/tags``, a
    Reddit ``t5`` subreddit object), or from another host and is not a feed
    document.
``feed``
    A saved RSS, RDF, Atom or JSON Feed document
    (:func:`~echo_archive.sources.rss.parse_document` reads it and finds its
    version). The file is the capture (URL ``file:<name>``, the media type of
    its format) and its entries are ``rss`` items.
not recognized
    Anything else (an HTML page, a CSV, an OPML list, garbage): reported with
    the reasons each reader gave, nothing written. A file that cannot be read
    at all is reported with the reason; the other files carry on.

Feeds of imported items. Items belong to a feed; imported ones to a
synthetic :class:`~echo_archive.sources.base.Feed` whose parameters are the
minimum its source's ``parse`` needs:

* ``import-hn`` (``hn``): no parameters (the defaults; a list response gives
  follow-ups only, which are ignored).
* ``import-reddit`` (``reddit``): ``front = true`` and a ``user_agent`` table
  (``RedditConfig`` insists on both; neither changes how a response parses).
* ``import-github`` (``github``): events (``kind = "events"``) and releases,
  whose ids are unique across GitHub. Issues and pull requests are numbered
  per repository (``issue:7``), so they go to ``import-github/<owner>/<repo>``
  (lowercased), one feed per repository, as a configured issues feed is;
  otherwise issue 7 of two repositories would look like two versions of one
  item.
* ``import-fred`` (``fred``): no parameters (no ``api_key``: the series id
  and vintage come from the recorded URL).
* ``import-rss/<host>`` (``rss``): the host of the feed's own home link
  (else of the document URL), as RSS guids are only unique within a feed;
  ``import-rss`` when neither names a host.

Times. An imported capture keeps two different times, and they mean
different things:

* ``recorded_at`` (capture metadata): when the *recording* says the response
  was received (a cassette's ``recorded_at``, HAR ``startedDateTime``,
  ``WARC-Date``, the hour of a GH Archive file). It is a claim made by the
  file, not checked by anyone. ``fetched_at`` (and so the time items and
  observations were "seen") is set to it; when the file keeps no time
  (ExVCR, vcrpy, PyGithub replay files, saved feed documents)
  ``recorded_at`` is null and ``fetched_at`` is the time of the import.
* ``logged_at`` (every entry): when the entry joined the log. Only this time
  is covered by a signed checkpoint, so only this is attested by the log.
  An import of 2015 data done today proves the data was in the archive
  today, not that it existed in 2015.

Commits. Recordings are archived ``batch_size`` exchanges per commit (a
WARC is streamed record by record; the other formats are single documents
their reader parses whole), and a failure late in a file keeps what was
committed before it. A GH Archive hour and a saved feed document are one
commit each, the capture with all its items, because an item names its
capture by the leaf hash that :func:`~echo_archive.pipeline.batch.build_batch`
computes in the batch holding the capture; so an hour file's bytes and its
items are in memory at once (2.6 MB and 7,702 items for an hour of 2015).
An item that cannot be represented as canonical JSON (an integer beyond
2^53...) is left out of its batch, noted on its capture, and the rest is
archived (DESIGN.md invariant 7).
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from echo_archive.errors import (
    EntryError,
    ParseError,
    RecordingError,
    SourceError,
    VaultError,
)
from echo_archive.harvest.commit import commit_batch
from echo_archive.harvest.recordings import DetectedRecording, detect_recording
from echo_archive.harvest.saved import Hints, SavedBody, recognize
from echo_archive.harvest.workers import parse_pool
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.pipeline.batch import BatchCounts, Sighting, with_contents
from echo_archive.pipeline.versioning import content_document
from echo_archive.redaction import redact_exchange, redact_text, redact_url
from echo_archive.sources import gharchive
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import get_source, source_for_url
from echo_archive.sources.rss import MAX_DECOMPRESSED_BYTES, ParsedFeed, parse_document
from echo_archive.vault.entry import canonical_json, format_timestamp
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "KINDS",
    "STREAM_ABOVE",
    "FileReport",
    "Hints",
    "ImportReport",
    "default_workers",
    "feed_for",
    "import_files",
    "route",
]

DEFAULT_BATCH_SIZE: Final = 200
"""Exchanges of a recording archived per commit."""

STREAM_ABOVE: Final = 64 * 1024 * 1024
"""Files above this size (bytes) are streamed by the importing process, not read by a worker."""

KINDS: Final = ("gharchive", "recording", "body", "feed")
"""What a recognized file is (``FileReport.kind``); else ``unrecognized`` or ``error``."""

log = structlog.get_logger("echo_archive.harvest.importer")

_SAMPLES: Final = 5
_HEAD_SIZE: Final = 64 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_EVENT_START_RE: Final = re.compile(rb'\s*\{\s*"id"\s*:\s*"\d+"')
_LINE_RE: Final = re.compile(r"\bline (\d+)")
_FEED_TYPES: Final = (
    ("atom", "application/atom+xml"),
    ("rss090", "application/rdf+xml"),
    ("rss10", "application/rdf+xml"),
    ("rss", "application/rss+xml"),
    ("json", "application/feed+json"),
)


def _now() -> str:
    return format_timestamp(time.time_ns())


# --------------------------------------------------------------------------- reports


@dataclass
class FileReport:
    """What importing one file did.

    Attributes:
        path: the file, as given.
        kind: ``gharchive``, ``recording`` or ``feed`` (recognized);
            ``unrecognized`` (nothing written) or ``error`` (unreadable).
        format: the recording format (``betamax``, ``har``, ``warc``...), the
            feed format (``rss20``, ``atom10``, ``json11``...), ``gharchive``,
            or ``""``.
        exchanges: responses read (a feed document or an hour file is one).
        sources: exchanges routed to each source kind.
        captures, new, versions, duplicates, tombstones, observations,
            parse_errors, bytes: what was archived
            (:class:`~echo_archive.pipeline.batch.BatchCounts`).
        items: items the sources found (new, versions and duplicates together).
        not_modified: ``304`` responses skipped (nothing to archive).
        skipped: responses to requests other than ``GET`` skipped.
        unrecognized: responses (or the whole file) no reader recognized.
        reasons: why, for the first few (plain words).
        parse_error_samples: the first few parse errors kept on captures.
        problems: what was wrong inside the file but worked around (malformed
            interactions skipped, broken lines of an hour file, items left out).
        problem_count: how many problems in all (``problems`` holds the first few).
        broken_lines: lines of an hour file that could not be read.
        broken_line_numbers: the first few of them.
        recorded_from, recorded_to: the earliest and latest ``recorded_at``
            of what was imported (RFC 3339), or None when the file keeps no time.
        error: why the file could not be read or read to the end, or None.
        seconds: wall time spent on the file.
    """

    path: str
    kind: str = "unrecognized"
    format: str = ""
    exchanges: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    captures: int = 0
    new: int = 0
    versions: int = 0
    duplicates: int = 0
    tombstones: int = 0
    observations: int = 0
    parse_errors: int = 0
    bytes: int = 0
    items: int = 0
    not_modified: int = 0
    skipped: int = 0
    unrecognized: int = 0
    reasons: list[str] = field(default_factory=list)
    parse_error_samples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    broken_lines: int = 0
    broken_line_numbers: list[int] = field(default_factory=list)
    recorded_from: str | None = None
    recorded_to: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def recognized(self) -> bool:
        """True when the file was recognized (and readable) as one of :data:`KINDS`."""
        return self.kind in KINDS

    def absorb(self, counts: BatchCounts) -> None:
        """Add a committed batch's counts."""
        counts.add_to(self)

    def problem(self, text: str) -> None:
        """Record a problem worked around (the first few are kept)."""
        self.problem_count += 1
        if len(self.problems) < _SAMPLES:
            self.problems.append(text)

    def parse_error(self, text: str) -> None:
        """Keep the first few parse errors (kept on captures) as samples."""
        if len(self.parse_error_samples) < _SAMPLES:
            self.parse_error_samples.append(text)

    def not_recognized(self, reason: str) -> None:
        """Count something not recognized, keeping the first few distinct reasons."""
        self.unrecognized += 1
        if len(self.reasons) < _SAMPLES and reason not in self.reasons:
            self.reasons.append(reason)

    def saw_time(self, recorded_at: str | None) -> None:
        """Widen ``recorded_from``/``recorded_to`` to include ``recorded_at``."""
        if not recorded_at:
            return
        if self.recorded_from is None or recorded_at < self.recorded_from:
            self.recorded_from = recorded_at
        if self.recorded_to is None or recorded_at > self.recorded_to:
            self.recorded_to = recorded_at

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the report (with ``recognized``)."""
        data = asdict(self)
        data["recognized"] = self.recognized
        return data

    def redact(self) -> None:
        """Redact, in place, every message of the report (:mod:`echo_archive.redaction`).

        :func:`import_files` does it before it returns the report, so what is
        printed, logged or saved of it shows no credential.
        """
        self.error = None if self.error is None else redact_text(self.error)
        for texts in (self.reasons, self.parse_error_samples, self.problems):
            texts[:] = [redact_text(t) for t in texts]


_TOTALS: Final = (
    "exchanges",
    "captures",
    "new",
    "versions",
    "duplicates",
    "tombstones",
    "observations",
    "parse_errors",
    "bytes",
    "items",
    "not_modified",
    "skipped",
    "unrecognized",
    "broken_lines",
)


@dataclass
class ImportReport:
    """The outcome of :func:`import_files`: one :class:`FileReport` per path, in order.

    Attributes:
        started_at, finished_at: RFC 3339 UTC times of the import.
        seconds: wall time.
        files: the per-file reports.
        checkpoint_size: the log size covered by the latest checkpoint afterwards.
    """

    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    files: list[FileReport] = field(default_factory=list)
    checkpoint_size: int = 0

    @property
    def all_recognized(self) -> bool:
        """True when every file was read and recognized (``echoctl import`` exits 0)."""
        return all(f.recognized for f in self.files)

    def totals(self) -> dict[str, int]:
        """The counts summed over every file, plus ``files`` and ``recognized_files``."""
        sums = {name: sum(getattr(f, name) for f in self.files) for name in _TOTALS}
        sums["files"] = len(self.files)
        sums["recognized_files"] = sum(f.recognized for f in self.files)
        return sums

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping: times, files, totals and ``all_recognized``."""
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "checkpoint_size": self.checkpoint_size,
            "all_recognized": self.all_recognized,
            "totals": self.totals(),
            "files": [f.to_json() for f in self.files],
        }


# --------------------------------------------------------------------------- routing


def route(url: str) -> str | None:
    """Return the source kind that reads responses from ``url``, by its host.

    The registry answers (:func:`~echo_archive.sources.registry.source_for_url`:
    each source's ``recorded_hosts``).

    Args:
        url: the request URL of a recorded exchange.

    Returns:
        ``hn`` for ``hacker-news.firebaseio.com``, ``reddit`` for
        ``reddit.com`` and its subdomains, ``github`` for ``api.github.com``,
        ``fred`` for ``api.stlouisfed.org`` and ``fred.stlouisfed.org``; None
        for any other host (the response may still be a feed document).
    """
    source = source_for_url(url)
    return None if source is None else source.kind


def feed_for(url: str) -> Feed | None:
    """The synthetic import feed whose source reads responses from ``url``, if any.

    The host picks the source (:func:`route`); the source says whether it
    reads that endpoint and into which feed (its ``import_feed``): an item or
    a story list (``hn``); an events, issues or releases listing
    (``github``); ``series/observations`` or a ``.csv`` download (``fred``);
    any path (``reddit``, whose responses are told apart by their shape).
    Parameters are the minimum each source's ``parse`` needs (see the module
    docstring).

    Args:
        url: the request URL of a recorded exchange.

    Returns:
        The feed, or None when no source reads that URL (another host, or an
        endpoint of a known host that no source reads: ``/rate_limit``,
        ``fred/series/tags``...).
    """
    source = source_for_url(url)
    return None if source is None else source.import_feed(url)


def _rss_feed(parsed: ParsedFeed | None, url: str) -> Feed:
    """The import feed of a feed document: ``import-rss/<host>`` of its home link, else its URL."""
    for candidate in (parsed.link if parsed else "", url):
        parts = urlsplit(candidate or "")
        if parts.scheme.lower() in ("http", "https") and parts.hostname:
            return Feed(f"import-rss/{parts.hostname.lower()}", "rss", {"url": url})
    return Feed("import-rss", "rss", {"url": url})


def _message(exc: ParseError) -> str:
    """A parse error's message without the URL and position prefix."""
    text = str(exc)
    prefix = exc.url + (f" at {exc.position}" if exc.position else "") + ": "
    return text[len(prefix) :] if exc.url and text.startswith(prefix) else text


def _unexpected(exc: Exception, url: str) -> str:
    """The parse error kept on a capture when a parser raised something else than ParseError."""
    log.warning("import.parser_failed", url=url, error=repr(exc))
    return redact_text(f"{url}: parser failed: {type(exc).__name__}: {exc}")


def _media_type(version: str, body: bytes) -> str:
    """The ``Content-Type`` of a saved feed document of ``version``."""
    if body[:2] == _GZIP_MAGIC:
        return "application/gzip"
    for prefix, media in _FEED_TYPES:
        if version.startswith(prefix):
            return media
    return "application/xml"


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Options:
    """How files are read (picklable, for the worker processes)."""

    batch_size: int
    hints: Hints


class _FileReader:
    """Reads one file into batches of sightings, touching no vault (so it can run in a worker).

    ``report`` is filled in while :meth:`batches` is iterated: kind, format,
    exchanges, sources, items and the not-recognized, parse-error and
    problem samples. What the batches add to the vault is counted by whoever
    commits them (:meth:`_Importer.commit`).
    """

    def __init__(self, path: Path, options: _Options) -> None:
        self.path = path
        self.batch_size = options.batch_size
        self.hints = options.hints
        self.report = FileReport(str(path))
        self.seconds = 0.0

    def batches(self) -> Iterator[list[Sighting]]:
        """Yield the file's sightings, a commit's worth at a time, in log order.

        A recording yields ``batch_size`` exchanges per batch (a WARC is
        streamed); an hour file or a feed document yields one batch, the
        capture with all its items. A file that is unreadable or not
        recognized yields nothing (its report says why).
        """
        started = time.perf_counter()
        try:
            yield from self._dispatch()
        except Exception as exc:  # the file fails alone (DESIGN.md invariant 7)
            report = self.report
            if report.exchanges == 0:
                report.kind = "error"
            report.error = redact_text(f"reading stopped: {type(exc).__name__}: {exc}")
            log.warning("import.file_failed", path=str(self.path), error=repr(exc))
        finally:
            self.seconds += time.perf_counter() - started

    def _dispatch(self) -> Iterator[list[Sighting]]:
        """Recognize the file (hour file, recording, feed document) and read it as that."""
        path, report = self.path, self.report
        try:
            with path.open("rb") as fh:
                head = fh.read(_HEAD_SIZE)
        except OSError as exc:
            report.kind, report.error = "error", f"cannot read: {exc.strerror or exc}"
            return
        if _is_hour_file(path, head):
            report.kind = report.format = "gharchive"
            yield from self._hour()
            return
        try:
            detected = detect_recording(path)
        except RecordingError as exc:
            report.kind, report.error = "error", str(exc)
            return
        if detected.format is not None:
            report.kind, report.format = "recording", detected.format
            yield from self._recording(detected)
            return
        yield from self._document(detected.why)

    # ----------------------------------------------------------------- GH Archive
    def _hour(self) -> Iterator[list[Sighting]]:
        """Read a GH Archive hour: the file as one capture, every event as an item.

        The items are read in full first (so the capture can carry the broken
        lines as its ``parse_warning``) and yielded with the capture as one
        batch: an item names its capture's leaf hash, which
        :func:`~echo_archive.pipeline.batch.build_batch` computes in the batch
        holding the capture.
        """
        path, report = self.path, self.report
        recorded_at = gharchive.recorded_at_from_name(path)
        feed = Feed("import-github", "github")
        items: list[Item] = []
        try:
            data = path.read_bytes()
            for found in gharchive.items_from_hour(path, feed.name):
                if isinstance(found, ParseError):
                    report.broken_lines += 1
                    match = _LINE_RE.search(found.position)
                    if match and len(report.broken_line_numbers) < _SAMPLES:
                        report.broken_line_numbers.append(int(match[1]))
                    report.problem(str(found))
                else:
                    items.append(found)
        except OSError as exc:
            report.kind, report.error = "error", f"cannot read: {exc.strerror or exc}"
            return
        warning = None
        if report.broken_lines:
            lines = ", ".join(map(str, report.broken_line_numbers))
            more = ", ..." if report.broken_lines > len(report.broken_line_numbers) else ""
            warning = (
                f"{report.broken_lines} broken line(s) skipped (line {lines}{more}); "
                f"first: {report.problems[0]}"
            )
        media = "application/gzip" if data[:2] == _GZIP_MAGIC else "application/x-ndjson"
        exchange = _file_exchange(path, data, media, recorded_at)
        report.exchanges = 1
        report.sources["github"] = 1
        report.items = len(items)
        report.saw_time(recorded_at)
        yield [
            Sighting(
                feed,
                Request(url=exchange.url),
                exchange,
                ParseResult(items=tuple(items), warning=warning),
            )
        ]

    # ----------------------------------------------------------------- recordings
    def _recording(self, detected: DetectedRecording) -> Iterator[list[Sighting]]:
        """Read a recording, ``batch_size`` exchanges per batch, streaming."""
        report = self.report
        problems: list[str] = []
        pending: list[Sighting] = []
        now = _now()
        try:
            for exchange in detected.exchanges(problems):
                report.exchanges += 1
                sighting = self._sighting(exchange, now)
                if sighting is None:
                    continue
                pending.append(sighting)
                if len(pending) >= self.batch_size:
                    yield pending
                    pending = []
        except RecordingError as exc:
            report.error = str(exc)
            if report.exchanges == 0:
                report.kind = "error"
        if pending:  # what was read before a failure is archived too
            yield pending
        for text in problems:
            report.problem(text)

    def _sighting(self, exchange: Exchange, now: str) -> Sighting | None:
        """Route and parse one recorded exchange.

        Args:
            exchange: the exchange as the recording holds it.
            now: the time of the import, the ``fetched_at`` of an exchange
                whose recording keeps no time.

        Returns:
            The sighting to archive (with the parse error when the source
            could not read the response), or None for what is not archived:
            a request other than ``GET``, a ``304``, or a response no source
            recognizes.
        """
        report = self.report
        exchange = redact_exchange(exchange)  # nothing from a recording keeps its credentials
        url = exchange.url
        if exchange.method != "GET":
            report.skipped += 1
            return None
        if exchange.status == 304:
            report.not_modified += 1
            return None
        report.saw_time(exchange.recorded_at)
        if not exchange.fetched_at:
            exchange = replace(exchange, fetched_at=now)
        request = Request(url=url, method=exchange.method)
        source = source_for_url(url)
        if source is None:
            return self._feed_exchange(exchange, request)
        kind = source.kind
        feed = source.import_feed(url)
        if feed is None:
            report.not_recognized(
                f"GET {redact_url(url)}: an endpoint the {kind} source does not read"
            )
            return None
        try:
            result = source.parse(feed, request, exchange)
        except SourceError as exc:  # ParseError included: kept on the capture, raw first
            if kind == "reddit" and 200 <= exchange.status < 300 and isinstance(exc, ParseError):
                message = _message(exc)
                if message.startswith("not a Reddit listing"):
                    report.not_recognized(f"GET {redact_url(url)}: {message}")
                    return None
            report.sources[kind] = report.sources.get(kind, 0) + 1
            report.parse_error(str(exc))
            return Sighting(feed, request, exchange, None, str(exc))
        except Exception as exc:  # a parser bug: this response fails alone, kept with the error
            message = _unexpected(exc, url)
            report.sources[kind] = report.sources.get(kind, 0) + 1
            report.parse_error(message)
            return Sighting(feed, request, exchange, None, message)
        report.sources[kind] = report.sources.get(kind, 0) + 1
        report.items += len(result.items)
        return Sighting(feed, request, exchange, result)

    def _feed_exchange(self, exchange: Exchange, request: Request) -> Sighting | None:
        """A response from a host no source reads: archived only if it is a feed document."""
        report = self.report
        url = exchange.final_url or exchange.url
        where = f"GET {redact_url(url)}"
        if not 200 <= exchange.status < 300:
            report.not_recognized(f"{where}: HTTP {exchange.status} from a host no source reads")
            return None
        try:
            parsed = parse_document(exchange.body, url, exchange.header("content-type") or "")
        except ParseError as exc:
            message = _message(exc)
            if not message.startswith("malformed feed"):
                report.not_recognized(f"{where}: no source reads this host, and {message}")
                return None
            report.sources["rss"] = report.sources.get("rss", 0) + 1
            report.parse_error(str(exc))
            return Sighting(_rss_feed(None, url), request, exchange, None, str(exc))
        except Exception as exc:  # a parser bug: this response fails alone, kept with the error
            message = _unexpected(exc, url)
            report.sources["rss"] = report.sources.get("rss", 0) + 1
            report.parse_error(message)
            return Sighting(_rss_feed(None, url), request, exchange, None, message)
        report.sources["rss"] = report.sources.get("rss", 0) + 1
        feed = _rss_feed(parsed, url)
        items = tuple(replace(item, feed=feed.name) for item in parsed.items)
        report.items += len(items)
        return Sighting(feed, request, exchange, ParseResult(items=items, warning=parsed.warning))

    # ----------------------------------------------------------------- documents
    def _document(self, why_not_recording: str) -> Iterator[list[Sighting]]:
        """A file neither an hour file nor a recording: a saved body, a feed, or nothing."""
        path, report = self.path, self.report
        url = f"file:{path.name}"
        try:
            size = path.stat().st_size
            data = path.read_bytes() if size <= MAX_DECOMPRESSED_BYTES else None
        except OSError as exc:
            report.kind, report.error = "error", f"cannot read: {exc.strerror or exc}"
            return
        why_not = f"{size} bytes, too large for a feed document"
        parsed: ParsedFeed | None = None
        if data is not None:
            saved = recognize(path, data, self.hints)
            if isinstance(saved, SavedBody):
                yield from self._saved(saved, data)
                return
            try:
                parsed = parse_document(data, url)
            except ParseError as exc:
                why_not = _message(exc)
            if isinstance(saved, str) and (parsed is None or not parsed.version):
                report.not_recognized(saved)  # JSON that is no feed: what it looks like
                return
        if data is None or parsed is None or not parsed.version:
            report.not_recognized(
                f"not a GH Archive hour file, not a recording ({why_not_recording}), "
                f"not a feed document ({why_not if parsed is None else 'no feed format found'}), "
                "not a saved API body; use `echoctl add` to archive it as a file"
            )
            return
        report.kind, report.format = "feed", parsed.version
        feed = _rss_feed(parsed, "")
        exchange = _file_exchange(path, data, _media_type(parsed.version, data), None)
        if parsed.truncated:
            exchange = replace(exchange, truncated=True)
        items = tuple(replace(item, feed=feed.name) for item in parsed.items)
        report.exchanges = 1
        report.sources["rss"] = 1
        report.items = len(items)
        yield [
            Sighting(
                feed,
                Request(url=url),
                exchange,
                ParseResult(items=items, warning=parsed.warning),
            )
        ]

    def _saved(self, saved: SavedBody, data: bytes) -> Iterator[list[Sighting]]:
        """A saved API body: the file as one capture, parsed by its source's own ``parse``.

        A body the source cannot parse is still archived, with the parse
        error on its capture (raw first), as a recorded response is.
        """
        report = self.report
        report.kind, report.format = "body", saved.format
        exchange = _file_exchange(self.path, data, saved.media_type, None)
        source = get_source(saved.source)
        report.exchanges = 1
        report.sources[saved.source] = 1
        try:
            result = source.parse(saved.feed, saved.request, exchange)
        except SourceError as exc:
            report.parse_error(str(exc))
            yield [Sighting(saved.feed, saved.request, exchange, None, str(exc))]
            return
        except Exception as exc:  # a parser bug: this file fails alone, kept with the error
            message = _unexpected(exc, exchange.url)
            report.parse_error(message)
            yield [Sighting(saved.feed, saved.request, exchange, None, message)]
            return
        report.items = len(result.items)
        yield [Sighting(saved.feed, saved.request, exchange, replace(result, follow=()))]


@dataclass
class _ReadFile:
    """A file read whole by a worker: its report so far, its batches and the seconds spent."""

    report: FileReport
    batches: list[list[Sighting]]
    seconds: float


def _read_whole(path: Path, options: _Options) -> _ReadFile:
    """Read ``path`` into all its batches (runs in a worker process; touches no vault)."""
    reader = _FileReader(path, options)
    batches = [[with_contents(s) for s in batch] for batch in reader.batches()]
    return _ReadFile(reader.report, batches, reader.seconds)


# --------------------------------------------------------------------------- committing


class _Importer:
    """Commits the batches read from files into one vault, in file order, through its writer."""

    def __init__(self, writer: VaultWriter) -> None:
        self.writer = writer

    def _commit_batch(self, sightings: list[Sighting]) -> BatchCounts:
        """One batch, built and committed on the writer (holding the lock); its counts."""
        counts, _ = self.writer.submit(_commit_now, sightings).result()
        return counts

    def commit(self, sightings: list[Sighting], report: FileReport) -> None:
        """Archive ``sightings`` in one commit; isolate and salvage an unrepresentable item.

        Raises:
            StorageError: the vault failed (nothing of this commit is acknowledged).
        """
        if not sightings:
            return
        try:
            counts = self._commit_batch(sightings)
        except EntryError:
            if len(sightings) > 1:  # find the culprit: commit one by one
                for sighting in sightings:
                    self.commit([sighting], report)
                return
            self._salvage(sightings[0], report)
            return
        report.absorb(counts)

    def _salvage(self, sighting: Sighting, report: FileReport) -> None:
        """Commit one sighting without its unrepresentable items, or as a bare capture."""
        result = sighting.result
        if result is not None:
            kept: list[Item] = []
            for item in result.items:
                try:
                    canonical_json({**content_document(item), "counters": dict(item.counters)})
                except EntryError as exc:
                    report.problem(f"{item.source} item {item.native_id!r} left out: {exc}")
                    continue
                kept.append(item)
            if len(kept) < len(result.items):
                dropped = len(result.items) - len(kept)
                note = f"{dropped} item(s) left out: not representable as canonical JSON"
                warning = f"{result.warning}; {note}" if result.warning else note
                fixed = replace(
                    sighting, result=replace(result, items=tuple(kept), warning=warning)
                )
                try:
                    counts = self._commit_batch([fixed])
                except EntryError:
                    pass
                else:
                    report.absorb(counts)
                    return
        bare = replace(sighting, result=None, error="result not representable as canonical JSON")
        try:
            counts = self._commit_batch([bare])
        except EntryError as exc:
            report.problem(f"{redact_url(sighting.exchange.url)} not archived: {exc}")
            return
        report.absorb(counts)


def _commit_now(vault: Vault, sightings: list[Sighting]) -> tuple[BatchCounts, object]:
    """A writer job: commit one batch, ``logged_at`` the time it commits."""
    return commit_batch(vault, sightings, _now())


def _file_exchange(path: Path, data: bytes, media_type: str, recorded_at: str | None) -> Exchange:
    """The exchange standing for a whole file: ``GET file:<name>``, 200, its bytes as the body."""
    url = f"file:{path.name}"
    return Exchange(
        method="GET",
        url=url,
        status=200,
        headers=(("content-type", media_type), ("content-length", str(len(data)))),
        body=data,
        final_url=url,
        fetched_at=recorded_at or _now(),
        recorded_at=recorded_at,
    )


def _is_hour_file(path: Path, head: bytes) -> bool:
    """Whether a file is a GH Archive hour: JSON Lines of events, gzip or named like one.

    Args:
        path: the file (its name is checked against ``YYYY-MM-DD-H.json[.gz]``).
        head: its first bytes.
    """
    named = gharchive.recorded_at_from_name(path) is not None
    if head[:2] == _GZIP_MAGIC:
        try:
            text = zlib.decompressobj(wbits=31).decompress(head, _HEAD_SIZE)
        except zlib.error:
            return False
    elif named:
        text = head
    else:
        return False
    text = text.lstrip(b" \t\r\n\x00")
    if not text.startswith(b"{"):
        return False
    if named or _EVENT_START_RE.match(text):
        return True
    first = text.split(b"\n", 1)[0]
    try:
        doc = decode_json(first, str(path))
    except ParseError:
        return False
    return isinstance(doc, dict) and "type" in doc and "actor" in doc


def default_workers() -> int:
    """Worker processes :func:`import_files` reads files with by default: one per CPU, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def import_files(
    vault: Vault | VaultWriter,
    paths: Sequence[Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    hints: Hints | None = None,
) -> ImportReport:
    """Import recordings, GH Archive hours, saved API bodies and feed documents into ``vault``.

    Each file is recognized from its content (see the module docstring),
    archived through :func:`~echo_archive.harvest.commit.commit_batch` and
    reported; a file that is not recognized or cannot be read is reported and
    the others carry on.

    Reading (decompressing, detecting, parsing: most of the work, and
    feedparser holds the GIL) runs in ``workers`` worker processes, a few
    files ahead of the commits; this process versions and commits every
    batch in file order, so the log order is that of ``paths`` whatever the
    number of workers. A file above :data:`STREAM_ABOVE` bytes is read here,
    streamed batch by batch, never whole in a worker. With ``workers=0``, or
    a single file, or when no worker process can be started, everything is
    read here.

    Every batch commits through the vault's
    :class:`~echo_archive.vault.writer.VaultWriter`, which holds the writer
    lock only while a batch commits (other processes write in between).

    Args:
        vault: the vault's writer; or a writer
            :class:`~echo_archive.vault.vault.Vault`, for which a writer is
            opened on the same vault for the import.
        paths: the files, imported in this order.
        batch_size: exchanges of a recording per commit (at least 1).
        workers: worker processes reading files (0: none); None means
            :func:`default_workers`.
        hints: what the user said about saved API bodies (``--source``,
            ``--series``: :class:`~echo_archive.harvest.saved.Hints`); None: none.

    Returns:
        The report: one :class:`FileReport` per path, in order, and totals.

    Raises:
        ValueError: ``batch_size`` is less than 1 or ``workers`` is negative.
        VaultError: the vault is read-only.
        StorageError: the vault failed; what was committed before stays
            acknowledged, the rest of the import is not done.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers}")
    if isinstance(vault, VaultWriter):
        return _import(vault, paths, _Options(batch_size, hints or Hints()), workers)
    if vault.readonly:
        raise VaultError(f"vault {vault.path} is open read-only; importing needs the writer")
    with VaultWriter.open(
        vault.path, wait=vault.wait, break_stale=vault.break_stale, derived=vault.derived
    ) as writer:
        return _import(writer, paths, _Options(batch_size, hints or Hints()), workers)


def _import(
    writer: VaultWriter, paths: Sequence[Path], options: _Options, workers: int | None
) -> ImportReport:
    started = time.perf_counter()
    report = ImportReport(started_at=_now())
    importer = _Importer(writer)
    files = [Path(p) for p in paths]
    count = default_workers() if workers is None else workers
    for read in _read_in_order(files, options, count if len(files) > 1 else 0):
        commit_started = time.perf_counter()
        if isinstance(read, _ReadFile):
            for batch in read.batches:
                importer.commit(batch, read.report)
            file_report, seconds = read.report, read.seconds
        else:  # streamed here, committed batch by batch
            for batch in read.batches():
                importer.commit(batch, read.report)
            file_report, seconds = read.report, 0.0
        file_report.seconds = seconds + time.perf_counter() - commit_started
        file_report.redact()
        report.files.append(file_report)
    report.finished_at = _now()
    report.seconds = time.perf_counter() - started
    report.checkpoint_size = writer.submit(_size).result()
    return report


def _size(vault: Vault) -> int:
    """A writer job: the size of the latest checkpoint."""
    return vault.size


def _read_in_order(
    paths: list[Path], options: _Options, workers: int
) -> Iterator[_ReadFile | _FileReader]:
    """Yield each file's reading, in order: read whole by a worker, or a reader to stream here.

    The next ``32 * workers`` files form a window; at most ``2 * workers`` of
    them are with the workers at a time (handed out in file order, topped up
    whenever one comes back). This process never idles while there is reading
    left: when the next file's turn comes and it was not handed out (the
    workers are behind), it is read here; while a worker is still reading it,
    the last file of the window not handed out is read here, its batches kept
    until their turn. A handed-out file is never taken back: cancelling a
    queued future races the pool's own bookkeeping when a worker dies
    (CPython 3.11, ``InvalidStateError`` in the executor's manager thread,
    which then leaves the other workers running and the interpreter hanging
    at exit). A worker that fails (a crash, a pickling problem) costs nothing
    but time: its file is read here instead, and so is every later one once
    the pool is broken.
    """
    if workers == 0:
        for path in paths:
            yield _FileReader(path, options)
        return
    try:
        pool = parse_pool(workers)
    except (OSError, RuntimeError, ValueError, NotImplementedError) as exc:
        log.warning("import.workers_unavailable", error=str(exc))
        yield from _read_in_order(paths, options, 0)
        return
    window: deque[_Slot] = deque()
    queue = deque(paths)
    try:
        while queue or window:
            while queue and len(window) < 32 * workers:
                window.append(_Slot.of(queue.popleft()))
            _hand_out(pool, window, 2 * workers, options)
            slot = window.popleft()
            job = slot.job
            if isinstance(job, Future):
                while not job.done():
                    if not _steal(window, options):
                        wait([job, *_with_workers(window)], return_when=FIRST_COMPLETED)
                    _hand_out(pool, window, 2 * workers, options)
                try:
                    job = job.result()
                except Exception as exc:  # the worker failed, not the file: read it here
                    log.warning("import.worker_failed", path=str(slot.path), error=repr(exc))
                    job = None
            yield _FileReader(slot.path, options) if not isinstance(job, _ReadFile) else job
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


_UNSENT: Final = "unsent"
"""A window slot's job before the file is handed to a worker or read here."""


@dataclass
class _Slot:
    """One file of the reading window and its job.

    ``job`` is :data:`_UNSENT` (may go to a worker or be stolen), a Future (a
    worker has it), a :class:`_ReadFile` (read here ahead of its turn), or
    None (to be streamed here when its turn comes: large or unstatable).
    """

    path: Path
    job: Future[_ReadFile] | _ReadFile | str | None

    @classmethod
    def of(cls, path: Path) -> _Slot:
        """The slot of ``path``: streamed here when above :data:`STREAM_ABOVE` or unstatable."""
        try:
            small = path.stat().st_size <= STREAM_ABOVE
        except OSError:  # reported when it is read
            small = False
        return cls(path, _UNSENT if small else None)


def _hand_out(
    pool: ProcessPoolExecutor, window: deque[_Slot], limit: int, options: _Options
) -> None:
    """Hand the window's first unsent files to workers until ``limit`` are with them."""
    busy = len(_with_workers(window))
    for slot in window:
        if busy >= limit:
            return
        if slot.job is _UNSENT:
            slot.job = _submit(pool, slot.path, options)
            busy += slot.job is not None


def _with_workers(window: deque[_Slot]) -> list[Future[_ReadFile]]:
    """The futures of the window's files a worker is still reading (or has queued)."""
    return [s.job for s in window if isinstance(s.job, Future) and not s.job.done()]


def _steal(window: deque[_Slot], options: _Options) -> bool:
    """Read here the last file of the window not handed out; False when there is none."""
    for slot in reversed(window):
        if slot.job is _UNSENT:
            slot.job = _read_whole(slot.path, options)
            return True
    return False


def _submit(pool: ProcessPoolExecutor, path: Path, options: _Options) -> Future[_ReadFile] | None:
    """Hand ``path`` to a worker, or return None to read it here (the pool broke)."""
    try:
        return pool.submit(_read_whole, path, options)
    except RuntimeError:  # BrokenProcessPool, or shut down
        return None

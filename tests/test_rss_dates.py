"""Feed dates: no silent wrong dates (issue 9).

A ``pubDate`` written ``2020/1/10 14:33:00`` was stored as 2020-12-01
(feedparser's guess) with no warning. These tests read dates in every
supported form, check that a library's reading never wins against the raw
fields, and that an unreadable date is empty, warned about on the capture,
and kept raw.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import feedparser.datetimes
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.model import Exchange
from echo_archive.sources.base import Feed
from echo_archive.sources.rss import RssSource
from echo_archive.sources.rss.dates import _agrees, read_date

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
FULL = ["January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December"]  # fmt: skip


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020/1/10 14:33:00", "2020-01-10T14:33:00.000000Z"),  # the reported case
        ("2020/01/10", "2020-01-10T00:00:00.000000Z"),
        ("2020-1-10 9:05", "2020-01-10T09:05:00.000000Z"),
        ("2020-01-10 14:33", "2020-01-10T14:33:00.000000Z"),
        ("2020-01-10T14:33:00", "2020-01-10T14:33:00.000000Z"),  # no zone: UTC
        ("2020-01-10", "2020-01-10T00:00:00.000000Z"),
        ("10 Jan 2020", "2020-01-10T00:00:00.000000Z"),
        ("Jan 10, 2020", "2020-01-10T00:00:00.000000Z"),
        ("January 10, 2020 14:33", "2020-01-10T14:33:00.000000Z"),
        ("Fri, 10 Jan 2020 14:33:00 +0100", "2020-01-10T13:33:00.000000Z"),
        ("Fri, 10 Jan 2020 14:33:00 EST", "2020-01-10T19:33:00.000000Z"),
        ("Mon, 2 Mar 2020 1:55 PM GMT", "2020-03-02T13:55:00.000000Z"),
        ("Seg, 24 Set 2018 19:42:40 -0300", "2018-09-24T22:42:40.000000Z"),
        ("1578666780", "2020-01-10T14:33:00.000000Z"),
    ],
)
def test_common_forms_are_read(raw: str, expected: str) -> None:
    reading = read_date(raw, feedparser.datetimes._parse_date(raw))
    assert (reading.value, reading.warning) == (expected, None)


def test_feedparser_guesses_wrong_on_the_reported_date() -> None:
    # the defect: feedparser's own reading of the reported date is another day
    guess = feedparser.datetimes._parse_date("2020/1/10 14:33:00")
    assert guess is not None
    assert guess[:3] != (2020, 1, 10)
    assert read_date("2020/1/10 14:33:00", guess).value.startswith("2020-01-10T14:33")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("01/10/2020", "ambiguous"),
        ("10.01.2020 14:33", "ambiguous"),
        ("garbage 2020", "could not be read"),
        ("Sat, 32 Jan 2020 10:00:00 GMT", "could not be read"),
        ("2024-02-30T10:00:00Z", "could not be read"),
    ],
)
def test_an_unreadable_date_is_empty_with_a_warning(raw: str, why: str) -> None:
    reading = read_date(raw, feedparser.datetimes._parse_date(raw))
    assert reading.value == ""
    assert reading.warning is not None
    assert why in reading.warning
    assert raw in reading.warning


def test_a_library_reading_that_disagrees_with_the_raw_fields_is_refused() -> None:
    wrong = datetime(2020, 12, 1, tzinfo=UTC).timetuple()
    reading = read_date("Fri, 10 Jan 2020 14:33:00 +0100", wrong)
    assert reading.value == "2020-01-10T13:33:00.000000Z"  # read here: the guess is not used
    reading = read_date("Friday the 10th of Jan 2020", wrong)  # no form of ours: the guess alone
    assert reading.value == ""
    assert reading.warning is not None
    assert "disagrees" in reading.warning


def _format(moment: datetime, form: int) -> tuple[str, datetime]:
    """``moment`` written in supported form ``form``, and the instant that text means."""
    m = moment
    if form == 0:
        return f"{m.year}/{m.month}/{m.day} {m.hour}:{m.minute:02d}:{m.second:02d}", m
    if form == 1:
        return f"{m:%Y-%m-%d %H:%M}", m.replace(second=0)
    if form == 2:
        return f"{m.day} {MONTHS[m.month - 1]} {m.year}", m.replace(hour=0, minute=0, second=0)
    if form == 3:
        return f"{FULL[m.month - 1]} {m.day}, {m.year} {m:%H:%M}", m.replace(second=0)
    if form == 4:
        return f"{m:%Y-%m-%dT%H:%M:%S}", m
    if form == 5:
        return f"{m:%a, %d} {MONTHS[m.month - 1]} {m:%Y %H:%M:%S} +0000", m
    if form == 6:
        return f"{m:%Y/%m/%d}", m.replace(hour=0, minute=0, second=0)
    if form == 7:
        return f"{MONTHS[m.month - 1]} {m.day}, {m.year}", m.replace(hour=0, minute=0, second=0)
    return f"{m:%Y-%m-%d}", m.replace(hour=0, minute=0, second=0)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31)),
    st.integers(0, 8),
)
def test_a_date_written_in_any_supported_form_round_trips(moment: datetime, form: int) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    text, meant = _format(moment, form)
    parsed = feedparser.datetimes._parse_date(text)
    reading = read_date(text, parsed)
    assert reading.value == rfc3339(meant), text
    assert reading.warning is None


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31)),
    st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15),
)
def test_an_rfc822_date_with_any_offset_round_trips(moment: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    local = moment.replace(microsecond=0, tzinfo=zone)
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    text = f"{local:%a, %d} {MONTHS[local.month - 1]} {local:%Y %H:%M:%S} {offset}"
    assert read_date(text, feedparser.datetimes._parse_date(text)).value == rfc3339(local)


_TOKENS = st.sampled_from(
    ["2020", "20", "1", "10", "12", "31", "/", "-", " ", ":", ",", "Jan", "Dec", "Mon", "T",
     "14:33", "00", "+0100", "GMT", "EST", "PM", "."]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=10).map("".join))
def test_no_reading_disagrees_with_the_raw_fields(text: str) -> None:
    # Whatever feedparser makes of a date-like string, what is kept has the
    # year, month and day written in it, or nothing is kept (with a warning).
    reading = read_date(text, feedparser.datetimes._parse_date(text))
    if reading.value and not re.fullmatch(r"\s*\d{10}\s*", text):
        assert _agrees(reading.value, text), (text, reading.value)
    if not reading.value and text.strip():
        assert reading.warning is not None


def _rss(pub: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><guid>urn:a</guid><title>a</title><pubDate>{pub}</pubDate></item>"
        "<item><guid>urn:b</guid><title>b</title><pubDate>not a date at all</pubDate></item>"
        "</channel></rss>"
    ).encode()


def test_items_get_checked_dates_and_the_capture_a_warning() -> None:
    source = RssSource()
    feed = Feed("f", "rss", {"url": "https://example.org/f.xml"})
    (request,) = source.plan(feed)
    exchange = Exchange(
        method="GET",
        url=request.url,
        final_url=request.url,
        status=200,
        headers=(("Content-Type", "application/rss+xml"),),
        body=_rss("2020/1/10 14:33:00"),
    )
    result = source.parse(feed, request, exchange)
    a, b = result.items
    assert a.published_at == "2020-01-10T14:33:00.000000Z"
    assert a.extra["published_raw"] == "2020/1/10 14:33:00"  # the raw string is kept
    assert "date_warning" not in a.extra
    assert b.published_at == ""
    assert b.extra["published_raw"] == "not a date at all"
    assert "could not be read" in b.extra["date_warning"]
    assert result.warning is not None
    assert "item 'urn:b': date 'not a date at all' could not be read" in result.warning


def test_a_json_feed_date_is_checked_too() -> None:
    source = RssSource()
    feed = Feed("f", "rss", {"url": "https://example.org/f.json"})
    (request,) = source.plan(feed)
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": ['
        b'{"id": "1", "title": "x", "date_published": "2020/1/10 14:33:00"},'
        b'{"id": "2", "title": "y", "date_published": "yesterday"}]}'
    )
    exchange = Exchange(
        method="GET", url=request.url, final_url=request.url, status=200,
        headers=(("Content-Type", "application/feed+json"),), body=body,
    )  # fmt: skip
    result = source.parse(feed, request, exchange)
    one, two = result.items
    assert one.published_at == "2020-01-10T14:33:00.000000Z"
    assert two.published_at == ""
    assert two.extra["published_raw"] == "yesterday"
    assert result.warning is not None
    assert "'yesterday' could not be read" in result.warning

"""Feed entry dates to RFC 3339 UTC with microseconds, or ``""`` when they cannot be read.

Rules (a wrong date is worse than none; :func:`read_date`):

* RFC 3339 dates are read strictly here (RFC 3339 §5.6), with the forms feeds
  write around it: a space for ``T``, no seconds (``2020-01-10 14:33``),
  ``±hhmm``, ``UTC``/``GMT``, and no zone at all.
* Common non-RFC forms are read here too: ``2020/1/10 14:33:00`` and
  ``2020/01/10`` (year first, slashes), a date alone (``2020-01-10``,
  ``10 Jan 2020``, ``Jan 10, 2020``, ``January 10, 2020 14:33``), ten digits
  (a Unix time), a 12-hour clock (``1:55 PM``). **A date or time without a
  zone is taken as UTC**, and a date without a time as midnight UTC.
* RFC 822 dates (RSS 2.0 ``pubDate``) are feedparser's reading, *checked
  against the raw string*: its year, month and day (within the ±1 day a
  zone offset can move it) must be those written; otherwise it is refused.
  Then RFC 822 with non-English day and month names.
* A day-first or month-first numeric date (``01/10/2020``) is ambiguous
  and is not read.

A date that cannot be read this way is empty (``""``) with a warning saying
so (recorded on the capture); the raw string is always kept beside it
(``extra["published_raw"]``).
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser.datetimes

__all__ = ["DateReading", "read_date"]


@dataclass(frozen=True, slots=True)
class DateReading:
    """A date as read from a feed.

    Attributes:
        value: RFC 3339 UTC with microseconds (``2020-01-10T14:33:00.000000Z``), or ``""``.
        warning: why a non-empty raw date gave no value, or None.
    """

    value: str
    warning: str | None = None


_RFC3339_RE = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


_ISO_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)


_EPOCH_RE = re.compile(r"\d{10}")  # Unix seconds, 2001-09-09 to 2286-11-20

# Year first with slashes or hyphens, one or two digit month and day, optional time and zone.
_YMD_RE = re.compile(
    r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})"
    r"(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)

# "10 Jan 2020", "Jan 10, 2020", "January 10, 2020 14:33" (English month names; no zone: UTC).
_DAY_MONTH_YEAR_RE = re.compile(
    r"(?:[A-Za-z]+\.?,?\s+)?(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})"
    r"(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(Z|UT|UTC|GMT|[+-]\d{2}:?\d{2})?"
)
_MONTH_DAY_YEAR_RE = re.compile(
    r"(?:[A-Za-z]+\.?,?\s+)?([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})"
    r"(?:,?\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(Z|UT|UTC|GMT|[+-]\d{2}:?\d{2})?"
)
_AMBIGUOUS_RE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:\D.*)?")
_NUMBER_RE = re.compile(r"\d+")
_WORD_RE = re.compile(r"[^\W\d_]+")


_TWELVE_HOUR_RE = re.compile(
    r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp])\.?\s?[Mm]\.?(?![A-Za-z])"
)


# RFC 822 dates with localized day and month names, a fallback for what
# feedparser cannot read ("Seg, 24 Set 2018 19:42:40 -0300" is Portuguese).
_LOCAL_DATE_RE = re.compile(
    r"^\s*(?:[^\W\d_]+\.?,?\s+)?(\d{1,2})\s+([^\W\d_]+)\.?\s+(\d{4}|\d{2})"
    r"\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(Z|UT|UTC|GMT|[+-]\d{2}:?\d{2})?\s*$"
)


_MONTHS = {
    "jan": 1, "ene": 1, "gen": 1,
    "feb": 2, "fev": 2,
    "mar": 3, "mrt": 3,
    "apr": 4, "abr": 4, "avr": 4,
    "may": 5, "mai": 5, "mag": 5, "mei": 5,
    "jun": 6, "juin": 6, "giu": 6,
    "jul": 7, "juil": 7, "lug": 7,
    "aug": 8, "ago": 8, "aou": 8,
    "sep": 9, "set": 9,
    "oct": 10, "out": 10, "okt": 10, "ott": 10,
    "nov": 11,
    "dec": 12, "dez": 12, "dic": 12,
}  # fmt: skip


_ENGLISH_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_ENGLISH_MONTHS = {name[:3]: i for i, name in enumerate(_ENGLISH_MONTH_NAMES, start=1)}


def _format_utc(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds (``2026-11-22T01:41:19.000000Z``), or ``""``.

    ``""`` when the moment falls outside years 1-9999 once moved to UTC.
    """
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return ""
    # four-digit years always (strftime's %Y gives "901" for the year 901 on glibc)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def _struct_time_to_rfc3339(value: Any) -> str:
    """Convert feedparser's ``*_parsed`` (a UTC ``struct_time``) to RFC 3339, or ``""``."""
    if not isinstance(value, time.struct_time):
        return ""
    try:
        return _format_utc(datetime.fromtimestamp(calendar.timegm(value), tz=UTC))
    except (OverflowError, ValueError, OSError):
        return ""


def _normalize_date(raw: str, parsed: Any) -> str:
    """:func:`read_date`'s value alone (``""`` when the date cannot be read)."""
    return read_date(raw, parsed).value


def read_date(raw: str, parsed: Any = None) -> DateReading:
    """Read an entry date as written, to RFC 3339 UTC; never a silent wrong date.

    In order (see the module docstring for the forms):

    * a date shaped like RFC 3339 (``YYYY-MM-DDTHH:MM``...) is read here and
      only here (:func:`_iso_to_rfc3339`): fractional seconds survive, and
      an impossible one (``2024-02-30``) gives ``""``;
    * ten digits are a Unix time in seconds;
    * year-first (``2020/1/10 14:33:00``, ``2020-1-10``) and month-name forms
      without a zone or time (``10 Jan 2020``, ``Jan 10, 2020``) are read
      here, as UTC (midnight when there is no time);
    * a 12-hour time (``1:55 PM``) is turned into 24-hour time first;
    * anything else is feedparser's parse (``parsed``, or its parse of
      ``raw``), kept only when its year, month and day are those written in
      ``raw`` (:func:`_agrees`), then the localized RFC 822 fallback.

    Args:
        raw: the date as written in the document.
        parsed: feedparser's ``*_parsed`` value for it (a UTC ``struct_time``), or None.

    Returns:
        The value (``""`` when unreadable) and, for a non-empty ``raw`` that
        gave ``""``, a warning quoting it (and saying when a library's
        reading was refused as disagreeing with it).
    """
    text = raw.strip()
    if not text:
        return DateReading("")
    if _RFC3339_RE.match(text):
        return _reading(_iso_to_rfc3339(text), text)
    if _EPOCH_RE.fullmatch(text):
        return _reading(_format_utc(datetime.fromtimestamp(int(text), tz=UTC)), text)
    own = _common_form(text)
    if own is not None:
        return _reading(own, text)
    if _AMBIGUOUS_RE.fullmatch(text):
        return DateReading("", f"date {text!r} is ambiguous (day/month order unknown): not read")
    if _TWELVE_HOUR_RE.search(text):
        text = _TWELVE_HOUR_RE.sub(_to_24h, text)
        parsed = _feedparser_date(text)
    elif not isinstance(parsed, time.struct_time):
        parsed = _feedparser_date(text)
    guess = _struct_time_to_rfc3339(parsed)
    if guess and not _agrees(guess, text):
        local = _localized_date(raw)
        if local:
            return DateReading(local)
        return DateReading(
            "",
            f"date {raw.strip()!r}: the feed parser read it as {guess}, which disagrees "
            "with the date written; not read",
        )
    return _reading(guess or _localized_date(raw), raw.strip())


def _reading(value: str, raw: str) -> DateReading:
    """``value``, with the "unreadable" warning when it is empty."""
    return DateReading(value, None if value else f"date {raw!r} could not be read")


def _agrees(value: str, raw: str) -> bool:
    """Whether the RFC 3339 ``value`` has the year, month and day written in ``raw``.

    The written date may differ from the UTC one by a day (a zone offset of
    up to ±14 h), so the day before and after count too. The year must be a
    number in ``raw`` (four digits, or two), the day a number in it, and the
    month a number in it or a month name (English or the localized names).
    """
    numbers = {int(n) for n in _NUMBER_RE.findall(raw) if len(n) <= 4}
    words = {_month_of(w) for w in _WORD_RE.findall(raw)} - {None}
    moment = datetime.fromisoformat(value)
    for shift in (-1, 0, 1):
        try:
            day = moment + timedelta(days=shift)
        except OverflowError:
            continue
        year_ok = day.year in numbers or day.year % 100 in numbers
        month_ok = day.month in words or (not words and day.month in numbers)
        if year_ok and month_ok and day.day in numbers:
            return True
    return False


def _month_of(word: str) -> int | None:
    """The month a (possibly localized) month name means, or None."""
    folded = unicodedata.normalize("NFKD", word.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    if len(folded) < 3:
        return None
    return _MONTHS.get(folded[:4]) or _MONTHS.get(folded[:3])


def _zone_offset(zone: str | None) -> timedelta:
    """``±hh[:]mm`` as an offset; Z, UT, UTC, GMT and no zone are UTC."""
    if not zone or zone[0] not in "+-":
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return -offset if zone[0] == "-" else offset


def _common_form(text: str) -> str | None:
    """Read a year-first or month-name date (no zone: UTC); None when it is not one.

    Returns:
        The RFC 3339 value, ``""`` for one of these forms naming a date that
        does not exist, or None when ``text`` is none of them.
    """
    match = _YMD_RE.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return _moment(year, month, day, hour, minute, second, micro, zone)
    match = _DAY_MONTH_YEAR_RE.fullmatch(text)
    if match is not None:
        day, name, year, hour, minute, second, zone = match.groups()
    else:
        match = _MONTH_DAY_YEAR_RE.fullmatch(text)
        if match is None:
            return None
        name, day, year, hour, minute, second, zone = match.groups()
    month = _ENGLISH_MONTHS.get(name.lower()[:3])
    if month is None or (len(name) > 3 and not _is_month_name(name)):
        return None
    return _moment(year, str(month), day, hour, minute, second, 0, zone)


def _is_month_name(name: str) -> bool:
    """``Jan``, ``Sept``, ``January``: an English month name or abbreviation."""
    lowered = name.lower()
    return any(full.startswith(lowered) for full in _ENGLISH_MONTH_NAMES)


def _moment(
    year: str,
    month: str,
    day: str,
    hour: str | None,
    minute: str | None,
    second: str | None,
    micro: int,
    zone: str | None,
) -> str:
    """The RFC 3339 UTC value of these fields (no zone: UTC), or ``""`` for no such date."""
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),
            micro,
            tzinfo=timezone(_zone_offset(zone)),
        )
    except ValueError:
        return ""
    return _format_utc(moment)


def _to_24h(match: re.Match[str]) -> str:
    """``1:55 PM`` as ``13:55:00`` (12 AM is 00, 12 PM is 12)."""
    hour, minute, second, half = match.groups()
    hour24 = int(hour) % 12 + (12 if half.lower() == "p" else 0)
    return f"{hour24:02d}:{minute}:{second or '00'}"


def _feedparser_date(text: str) -> Any:
    """The date feedparser reads in ``text`` (a UTC ``struct_time``), or None."""
    try:
        return feedparser.datetimes._parse_date(text)
    except Exception:  # a third-party parser on hostile text: no date, never a crash
        return None


def _iso_to_rfc3339(raw: str) -> str:
    """Convert an RFC 3339 / ISO 8601 date-time to RFC 3339 UTC, or ``""``.

    RFC 3339 §5.6: ``T`` and ``Z`` may be lowercase (its NOTE), the
    fraction may have any number of digits (microseconds are kept), a
    leap second (``:60``) is read as ``:59``. Also accepted, as feeds write
    them: a space for ``T``, ``±hhmm`` offsets, ``UTC``/``GMT`` for ``Z``,
    and no offset at all (taken as UTC, as JSON Feed producers mean it).
    Anything else, or a date that does not exist, gives ``""``.
    """
    match = _ISO_DATETIME_RE.fullmatch(raw.strip())
    if match is None:
        return _localized_date(raw)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second or 0), 59),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return ""
    return _format_utc(moment)


def _localized_date(raw: str) -> str:
    """Read an RFC 822 date with non-English day/month names; ``""`` when it is not one.

    Only numeric offsets and GMT/UTC/Z are accepted as zones (no zone means UTC).
    """
    match = _LOCAL_DATE_RE.match(raw)
    if match is None:
        return ""
    day, month_name, year, hour, minute, second, zone = match.groups()
    folded = unicodedata.normalize("NFKD", month_name.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    month = _MONTHS.get(folded[:4]) or _MONTHS.get(folded[:3])
    if month is None:
        return ""
    full_year = int(year)
    if len(year) == 2:
        full_year += 2000 if full_year < 50 else 1900
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            full_year,
            month,
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return ""
    return _format_utc(moment)

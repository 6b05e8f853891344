"""Feed entry dates to RFC 3339 UTC with microseconds, or ``""`` when they cannot be read.

Rules (a wrong date is worse than none): RFC 3339 dates are read strictly
here (RFC 3339 §5.6), RFC 822 dates by feedparser, then with non-English day
and month names as a fallback; ten digits are a Unix time; a 12-hour clock
is turned into 24-hour time first. See :func:`_normalize_date`.
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser.datetimes

_RFC3339_RE = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


_ISO_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)


_EPOCH_RE = re.compile(r"\d{10}")  # Unix seconds, 2001-09-09 to 2286-11-20


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


def _format_utc(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds (``2026-11-22T01:41:19.000000Z``), or ``""``.

    ``""`` when the moment falls outside years 1-9999 once moved to UTC.
    """
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        return ""


def _struct_time_to_rfc3339(value: Any) -> str:
    """Convert feedparser's ``*_parsed`` (a UTC ``struct_time``) to RFC 3339, or ``""``."""
    if not isinstance(value, time.struct_time):
        return ""
    try:
        return _format_utc(datetime.fromtimestamp(calendar.timegm(value), tz=UTC))
    except (OverflowError, ValueError, OSError):
        return ""


def _normalize_date(raw: str, parsed: Any) -> str:
    """Normalise an entry date to RFC 3339 UTC, or ``""`` when it cannot be read.

    A wrong date is worse than none, so feedparser's reading is used only
    where it is reliable:

    * a date shaped like RFC 3339 (``YYYY-MM-DDTHH:MM``...) is read here and
      only here (:func:`_iso_to_rfc3339`): its fractional seconds survive,
      and an impossible one (``2024-02-30``, ``...-05:00Z``) gives ``""``
      where feedparser would roll it into March or drop the offset;
    * ten digits are a Unix time in seconds (feedparser reads them as an
      ISO 8601 ordinal date);
    * a 12-hour time (``1:55 PM``, ``07:02:38 pm``) is turned into 24-hour
      time before feedparser reads the date (it ignores AM/PM);
    * anything else is feedparser's parse, then the localized RFC 822
      fallback (:func:`_localized_date`).

    Args:
        raw: the date as written in the document.
        parsed: feedparser's ``*_parsed`` value for it (a UTC ``struct_time``) or None.
    """
    text = raw.strip()
    if not text:
        return ""
    if _RFC3339_RE.match(text):
        return _iso_to_rfc3339(text)
    if _EPOCH_RE.fullmatch(text):
        return _format_utc(datetime.fromtimestamp(int(text), tz=UTC))
    if _TWELVE_HOUR_RE.search(text):
        return _struct_time_to_rfc3339(_feedparser_date(_TWELVE_HOUR_RE.sub(_to_24h, text)))
    return _struct_time_to_rfc3339(parsed) or _localized_date(raw)


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

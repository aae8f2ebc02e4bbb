"""Publication dates as news records and pages give them, normalised to ISO ``YYYY-MM-DD``.

python-dateutil does the parsing (ISO 8601 with or without time and zone, ``YYYY/MM/DD``,
``DD.MM.YYYY``, "March 24, 2026", "24 Mar 2026 10:00 GMT", RFC 2822); epoch seconds or
milliseconds are numbers. A date keeps the calendar day it was written with (no conversion to
UTC: "2026-03-24T23:30-05:00" is the 24th where it was published). Anything without a year, month
and day — "yesterday", "12", "March 2026" — is not a date: None, never a guess.
"""
from __future__ import annotations

import datetime as dt
import re

# epoch values between 1990 and 2100, in seconds or milliseconds
_EPOCH_S = (631_152_000, 4_102_444_800)
# a date in a news URL: /2026/03/24/ or /2026-03-24/ (dateutil cannot pick it out of a path)
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](0?[1-9]|1[0-2])[/-](0?[1-9]|[12]\d|3[01])(?:/|-|\.|$)")
_DOTTED = re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}\b")
_SENTINELS = (dt.datetime(1904, 1, 1), dt.datetime(1908, 2, 2))  # two defaults: a part both fill is missing


def parse_date(value) -> str | None:
    """``value`` (str, int/float epoch, date or datetime) as ``YYYY-MM-DD``, or None."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return _from_epoch(float(value))
        except OverflowError:  # a JSON integer too large for a float is no epoch
            return None
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s or len(s) > 80:
        return None
    if re.fullmatch(r"\d{9,13}(?:\.\d+)?", s):
        return _from_epoch(float(s))
    return _from_text(s)


def date_from_url(url: str | None) -> str | None:
    """The date a news URL carries in its path (``/2026/03/24/``), or None."""
    if not url:
        return None
    m = _URL_DATE.search(url)
    if not m:
        return None
    try:
        return dt.date(*(int(g) for g in m.groups())).isoformat()
    except ValueError:
        return None


def _from_epoch(x: float) -> str | None:
    if x > _EPOCH_S[1]:
        x /= 1000.0  # milliseconds
    if not _EPOCH_S[0] <= x <= _EPOCH_S[1]:
        return None
    return dt.datetime.fromtimestamp(x, tz=dt.timezone.utc).date().isoformat()


def _from_text(s: str) -> str | None:
    from dateutil import parser

    dayfirst = bool(_DOTTED.match(s))  # 24.03.2026 is European: day first
    got = []
    for default in _SENTINELS:
        try:
            # ignoretz: only the calendar day is kept, and a zone name dateutil does not know
            # ("EST", "CEST") warns now and is to raise in a later dateutil
            d = parser.parse(s, default=default, dayfirst=dayfirst, fuzzy=False, ignoretz=True)
        except (ValueError, OverflowError, TypeError, parser.ParserError):
            return None
        got.append(d)
    a, b = got
    if a.year != b.year or a.month != b.month or a.day != b.day:
        return None  # a part came from the default, not from the text
    if not 1900 <= a.year <= 2100:
        return None
    return a.date().isoformat()

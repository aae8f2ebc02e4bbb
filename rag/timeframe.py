"""What "this week", "yesterday", "latest" mean: a window of publication dates ending at ``as_of``.

A question with such words prefers articles dated inside the window (retrieval adds date-filtered
dense and BM25 lists to the fusion: a soft preference, so an undated or older article can still
answer when it is the only one that does). Without time words there is no window and nothing
changes. ``as_of`` is the "now" of the question: today unless the caller says otherwise (a quiz
date, an archive's day).

The windows are wider than the words (a "this week" story is often reported a few days before or
after the week itself); they were checked on rtqa-dev's quiz questions, which all carry their date.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_NUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
        "eight": 8, "nine": 9, "ten": 10, "few": 3, "several": 4, "couple of": 2}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}

# (pattern, days back from as_of); checked in order, the first match wins
_RULES: list[tuple[re.Pattern, int]] = [
    (re.compile(r"\b(?:today|tonight|this morning|this afternoon|this evening)\b", re.I), 2),
    (re.compile(r"\byesterday\b", re.I), 3),
    (re.compile(r"\b(?:this|past|last) weekend\b", re.I), 8),
    (re.compile(r"\b(?:this week|past week|past few days|past seven days|days ago|earlier this week|"
                r"this past week|over the weekend)\b", re.I), 10),
    (re.compile(r"\blast week\b", re.I), 17),
    (re.compile(r"\b(?:this month|past month|past few weeks|earlier this month|last month)\b", re.I), 45),
    # lower-case only: "New York" and "Current Affairs" are names, not time words
    (re.compile(r"\b(?:[Rr]ecent(?:ly)?|[Ll]atest|[Cc]urrent(?:ly)?|[Nn]ewly|just|now|new|this season)\b"), 45),
]
_AGO = re.compile(r"\b(a|an|one|two|three|four|five|six|seven|eight|nine|ten|few|several|couple of|\d+)\s+"
                  r"(day|week|month|year)s?\s+ago\b", re.I)
_THIS_YEAR = re.compile(r"\b(?:so far this year|this year|earlier this year|year to date)\b", re.I)


@dataclass(frozen=True)
class TimeWindow:
    since: str  # ISO dates, inclusive
    until: str
    phrase: str  # the words that set it, for debugging and the UI

    def contains(self, date: str | None) -> bool:
        return bool(date) and self.since <= date <= self.until


def parse_as_of(value: str | dt.date | None) -> dt.date:
    """``as_of`` as a date; None means today."""
    if value is None or value == "":
        return dt.date.today()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def time_window(question: str, as_of: str | dt.date | None = None) -> TimeWindow | None:
    """The window of publication dates the question's time words point to, or None."""
    now = parse_as_of(as_of)
    m = _AGO.search(question)
    if m:
        word = m.group(1).lower()
        n = int(word) if word.isdigit() else _NUM.get(word, 1)
        back = n * _UNIT_DAYS[m.group(2).lower()]
        return _window(now, back + max(3, back // 2), m.group(0))
    m = _THIS_YEAR.search(question)
    if m:
        return TimeWindow(dt.date(now.year, 1, 1).isoformat(), now.isoformat(), m.group(0))
    for rx, days in _RULES:
        m = rx.search(question)
        if m:
            return _window(now, days, m.group(0))
    return None


def _window(now: dt.date, days_back: int, phrase: str) -> TimeWindow:
    # a day of slack after as_of: a story dated the quiz day itself, or written in another time zone
    return TimeWindow((now - dt.timedelta(days=days_back)).isoformat(),
                      (now + dt.timedelta(days=1)).isoformat(), phrase)

"""Where sources disagree: different values for the same quantity in different articles.

News about one event changes and conflicts: one article says a strike killed "at least 22", another
"dozens"; a toll rises from 18 to 49 over three days; two reports put an event on different days.
Picking one value silently misleads, so the overview (and ``Answer.conflicts``) says "Reports
differ" and cites each value.

What counts as the same quantity is decided by cheap rules that err towards silence:
* a casualty count (killed / injured) or an event's calendar date, read from the sentence with
  patterns ("killing at least 22 people", "110 people injured", "the death toll rose to 49");
* about the same thing: the name standing nearest to the value is one of the question's names
  (the *anchor*, e.g. "Belgorod"), or, when the question names nothing, the same name in both;
* the same event: the articles are dated within a few days of each other — a toll months apart is
  another attack, not a disagreement, and an undated report cannot be placed at all;
* different values: numbers that differ ("22" vs "25"; "at least 22" and "22" agree), or a number
  outside a vague word's range ("22" vs "dozens"). A sentence giving two counts of one kind
  ("49 nationwide, 27 of them in Erie County") has two scopes, so neither is compared.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .textutil import STOP, stem
from .types import Citation, Claim, Conflict

TOLL_WINDOW_DAYS = 3  # articles this close in time can report on the same event's toll
DATE_WINDOW_DAYS = 30
MAX_CLAIMS = 4

_WORD_NUM = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                        "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_VAGUE = {"dozens": (24, 99), "scores": (40, 99), "hundreds": (200, 999), "thousands": (2000, 9999)}
_QUAL = (r"(?:(?:at least|more than|over|nearly|almost|about|around|roughly|some|up to|as many as|an estimated|"
         r"approximately|fewer than|less than)\s+)?")
_NUM = (r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s+(?:million|billion))?|a dozen|dozens|scores|hundreds|thousands|"
        + "|".join(sorted(_WORD_NUM, key=len, reverse=True)))
_VALUE = rf"(?<![\w-])(?P<value>{_QUAL}(?:{_NUM}))"
_KILLED = r"(?:killed|dead|died|deaths?|lives|fatalities|slain|bodies)"
_INJURED = r"(?:injured|wounded|hurt|injury|injuries)"
# "<value> (people) (were) killed", "<value> lives", "dozens of fatalities"
_AFTER = r"\s+(?:(?!(?:and|but|while|or)\b)[\w'’-]+\s+){{0,4}}?{kind}\b"
# "killing <value>", "the death toll rose to <value>", "claimed the lives of <value>"
_BEFORE_KILLED = (r"\b(?:killing|killed|kills|claim(?:ed|ing|s)? the lives of|"
                  r"(?:death )?toll\b(?:\s+[\w'’,-]+){0,16}?\s+"
                  r"(?:to|of|at|is|was|reached|hit|stood at|rose to|climbed to))\s+")
_BEFORE_INJURED = r"\b(?:injuring|injured|wounding|wounded|hurting)\s+"
_PATTERNS = {
    "killed": [re.compile(_VALUE + _AFTER.format(kind=_KILLED), re.I),
               re.compile(_BEFORE_KILLED + _VALUE + r"\b(?!\s*(?:injured|wounded|hurt|percent|%|years?|miles?|inches))",
                          re.I)],
    "injured": [re.compile(_VALUE + _AFTER.format(kind=_INJURED), re.I),
                re.compile(_BEFORE_INJURED + _VALUE + r"\b(?!\s*(?:dead|killed|percent|%|years?|miles?|inches))",
                           re.I)],
}

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_MONTH = r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|" \
         r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_DATES = [re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>(?:19|20)\d{{2}}))?"),
          re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<year>(?:19|20)\d{{2}}))?")]
# what happened on a date: a date only conflicts with another date of the same kind of event
_EVENTS = {stem(w) for w in ("died dies death killed attack attacked struck strike held began begin started start "
                             "ended escaped escape captured arrested announced signed released launched elected "
                             "funeral crashed crash opened closed happened occurred resigned collapsed".split())}
_CAP = re.compile(r"\b[A-Z][a-zA-Z\u00C0-\u024F’'-]+(?:\s+[A-Z][a-zA-Z\u00C0-\u024F’'-]+)*")
_GENERIC = frozenset("The A An In On At For From By With As And Or But If This That These Those It Its He She They "
                     "We I His Her Their Our After Before During While When Where Who What Which Why How According However "
                     "Meanwhile Also Officials Police Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())


@dataclass(frozen=True)
class Statement:
    """A sentence the finder reads: its text and where it comes from."""

    text: str
    doc_id: str
    date: str | None  # the article's ISO date


@dataclass(frozen=True)
class Fact:
    quantity: str  # "killed" | "injured" | "date"
    value: str  # as written ("at least 22", "December 29")
    key: tuple  # what is compared: (low, high) for counts, (month, day) for dates
    event: str = ""  # for dates: the event word's stem
    pos: int = 0  # where the value stands in the sentence


@dataclass(frozen=True)
class Disagreement:
    quantity: str
    subject: str
    claims: tuple[tuple[int, str], ...]  # (statement index, value as written), one per distinct value


def _count(value: str) -> tuple[float, float] | None:
    """(low, high) of a count as written; the qualifier is left out on purpose (see module doc)."""
    v = re.sub(_QUAL, "", value.lower()).strip()
    if v in _VAGUE:
        return _VAGUE[v]
    if v == "a dozen":
        return (12, 12)
    if v in _WORD_NUM:
        n = float(_WORD_NUM[v])
        return (n, n)
    m = re.fullmatch(r"([\d,.]+)(?:\s+(million|billion))?", v)
    if not m:
        return None
    try:
        n = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    n *= {"million": 1e6, "billion": 1e9}.get(m.group(2) or "", 1)
    if 1900 <= n <= 2099 and "," not in m.group(1) and not m.group(2):
        return None  # a bare year, not a count
    return (n, n)


def facts(text: str) -> list[Fact]:
    """Casualty counts and event dates stated in one sentence."""
    out: list[Fact] = []
    for quantity, patterns in _PATTERNS.items():
        found: dict[tuple, tuple[str, int]] = {}
        for rx in patterns:
            for m in rx.finditer(text):
                value = m.group("value").strip()
                key = _count(value)
                if key is not None:
                    found.setdefault(key, (value, m.start("value")))
        # two counts of one kind in a sentence are two scopes (a total and a part): compare neither
        if len(found) == 1:
            (key, (value, pos)), = found.items()
            out.append(Fact(quantity, value, key, pos=pos))
    # an event's date: one calendar date in the sentence, tied to the event word nearest to it
    dates: dict[tuple[int, int], tuple[int, str]] = {}
    for rx in _DATES:
        for m in rx.finditer(text):
            day = int(m.group("day"))
            if 1 <= day <= 31:
                dates.setdefault((_MONTHS.index(m.group("month").lower()[:3]) + 1, day), (m.start(), m.group().strip()))
    events = [(m.start(), stem(m.group())) for m in re.finditer(r"[a-z]+", text.lower()) if stem(m.group()) in _EVENTS]
    if len(dates) == 1 and events:
        (key, (pos, value)), = dates.items()
        out.append(Fact("date", value, key, min(events, key=lambda e: abs(e[0] - pos))[1], pos=pos))
    return out


def _days_apart(a: str | None, b: str | None) -> float:
    try:
        return abs((dt.date.fromisoformat(a) - dt.date.fromisoformat(b)).days)
    except ValueError:
        return 0.0


def _differ(q: str, a: tuple, b: tuple) -> bool:
    if q == "date":
        return a != b
    (alo, ahi), (blo, bhi) = a, b
    if alo == ahi and blo == bhi:
        return alo != blo
    return ahi < blo or bhi < alo  # a number against a vague range: differ when outside it


_DEMONYM = re.compile(r"(?:ians?|eans?|ese|ish|ans)$", re.I)


def _not_a_name(token: str) -> bool:
    t = token.strip(".,’'")
    low = t.lower()
    return (t in _GENERIC or low in STOP or bool(_DEMONYM.search(t)) or low in _WORD_NUM or low in _VAGUE
            or bool(re.fullmatch(_MONTH, t + ".")) or bool(re.fullmatch(_MONTH, t)))


def _name_spans(text: str) -> list[tuple[int, int, str]]:
    """Capitalised names in a sentence (not demonyms, not capitalised common words)."""
    out = []
    for m in _CAP.finditer(text):
        toks = [t for t in m.group().split() if not _not_a_name(t)]
        if toks:
            out.append((m.start(), m.end(), " ".join(toks)))
    return out


def _subject(text: str, pos: int, anchors: list[str]) -> str | None:
    """What a value at ``pos`` is about: the name standing nearest to it. With anchors (the
    question's names) only an anchor counts — "17 wounded in Parkland" in a sentence that also
    mentions Michigan is not a Michigan count."""
    names = _name_spans(text)
    if not names:
        return None
    s, e, name = min(names, key=lambda n: n[0] - pos if n[0] >= pos else max(0, pos - n[1]))
    if not anchors:
        return name
    return next((a for a in anchors if re.search(rf"\b{re.escape(a)}\b", name, re.I)), None)


def find(statements: list[Statement], anchors: list[str] = ()) -> list[Disagreement]:
    """Disagreements among ``statements`` (different articles only), most claims first.

    ``anchors``: the question's names; a value counts only in a sentence that names one of them."""
    # "Russian" names no place or event: two Russian tolls are two attacks, not one disagreement
    anchors = [a for a in anchors if a.strip() and not _DEMONYM.search(a)]
    per: dict[tuple[str, str, str], list[tuple[int, Fact]]] = {}
    for i, st in enumerate(statements):
        if not st.date:
            continue  # an undated report cannot be placed next to another: same event or not, unknown
        for f in facts(st.text):
            subject = _subject(st.text, f.pos, anchors)
            if subject is not None:
                per.setdefault((f.quantity, f.event, subject.lower()), []).append((i, f))
    out: list[Disagreement] = []
    used: set[tuple[str, int]] = set()
    for (quantity, _event, subject), items in per.items():
        window = DATE_WINDOW_DAYS if quantity == "date" else TOLL_WINDOW_DAYS
        by_value: dict[tuple, list[tuple[int, Fact]]] = {}  # statements come best first
        for i, f in items:
            by_value.setdefault(f.key, []).append((i, f))
        if len(by_value) < 2:
            continue
        claims: list[tuple[int, Fact]] = []
        for group in by_value.values():
            if not all(_differ(quantity, group[0][1].key, g.key) for _, g in claims):
                continue
            docs = {statements[j].doc_id for j, _ in claims}
            pick = next(((i, f) for i, f in group if statements[i].doc_id not in docs and (
                not claims or _days_apart(statements[i].date, statements[claims[0][0]].date) <= window)), None)
            if pick is not None:
                claims.append(pick)
        if len(claims) < 2 or any((quantity, i) in used for i, _ in claims):
            continue
        used.update((quantity, i) for i, _ in claims)
        lead_i, lead = claims[0]
        shown = _subject(statements[lead_i].text, lead.pos, anchors) or subject  # as the article spells it
        names = [n for _s, _e, n in _name_spans(statements[lead_i].text) if n.lower() == shown.lower()]
        claims.sort(key=lambda c: (statements[c[0]].date or "9999", c[0]))
        out.append(Disagreement(quantity, names[0] if names else shown,
                                tuple((i, f.value) for i, f in claims[:MAX_CLAIMS])))
    out.sort(key=lambda d: -len(d.claims))
    return out


def describe(d: Disagreement, numbers: dict[int, int], dates: dict[int, str | None]) -> str:
    """"Reports differ on the death toll (Belgorod): at least 22 [1] (2024-01-01); dozens [3]
    (2024-01-02)." ``numbers``: statement index -> citation number."""
    what = {"killed": "the death toll", "injured": "the number injured"}.get(d.quantity, "the date")
    subject = f" ({d.subject})" if d.subject else ""
    parts = []
    for i, value in d.claims:
        if re.match(_QUAL, value, re.I).end():
            value = value[0].lower() + value[1:]  # "As many as 2,000" mid-sentence
        when = f" ({dates[i]})" if dates.get(i) else ""
        parts.append(f"{value} [{numbers[i]}]{when}")
    return f"Reports differ on {what}{subject}: " + "; ".join(parts) + "."


def from_citations(citations: list[Citation], anchors: list[str] = ()) -> list[Conflict]:
    """``Conflict`` records among an answer's citations (the LLM path: its cited spans are the
    statements); each claim points at the citation quoting it."""
    cites = list(citations)
    found = find([Statement(c.snippet, c.doc_id, c.date) for c in cites], anchors)
    return [Conflict(quantity=d.quantity, subject=d.subject, claims=tuple(
        Claim(value=v, n=cites[i].n, doc_id=cites[i].doc_id, date=cites[i].date) for i, v in d.claims))
        for d in found]

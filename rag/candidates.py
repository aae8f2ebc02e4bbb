"""Candidate answers: the typed spans a question asks for (names, dates, places, numbers) and their
votes across the retrieved passages.

A span's vote is its sentence's score, shaped by how specific the span is, how close it stands to
the question's relation words, whether it looks like a person's name, and whether the sentence is
about the question's names; per article a span counts once, so agreement between articles beats
repetition inside one. The votes are features of the fitted sentence scorer (rag/features.py).
"""
from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .question import _key_terms
from .textutil import QUESTION_WORDS, STOP, stem, words

if TYPE_CHECKING:
    from .extractive import Sentence


_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")


_DATE_RES = [
    re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"),
    re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b"),
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),
    re.compile(rf"\b{_MONTH},?\s+\d{{4}}\b"),
    re.compile(rf"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),?\s+{_MONTH}\s+\d{{1,2}}\b"),
    re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"),
    re.compile(r"\b(?:1[89]|20)\d{2}\b"),
]


_NUMBER = re.compile(
    r"\b\d+(?:st|nd|rd|th)\b"
    r"|(?:[$€£]\s?)?\b\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|bn|m|k))?"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)teen|"
    r"(?:twen|thir|for|fif|six|seven|eigh|nine)ty(?:-\w+)?|single|dozens?|hundreds?|thousands?)\b",
    re.I)


# a capitalised word; an apostrophe may continue it (O'Brien) but a possessive 's ends the name
_CAP_TOKEN = r"(?:[A-Z\u00C0-\u00DE][\w\u00C0-\u024F\-]*(?:['’](?!s\b)[\w\u00C0-\u024F\-]+)?\.?|[A-Z]\.)"


_PARTICLE = r"(?:de|da|di|del|der|van|von|la|le|bin|al|of|the|&)"


_NAME = re.compile(rf"{_CAP_TOKEN}(?:\s+(?:{_PARTICLE}\s+)*{_CAP_TOKEN})*")


_NAME_NUM = re.compile(_NAME.pattern + r"(?:\s+\d{1,2}\b)?")  # "Toy Story 4"


_LEADING_DATE = re.compile(rf"^\s*{_MONTH}\s+\d{{1,2}},\s+\d{{4}}\b")


_CAP_STOP = frozenset(
    "The A An In On At For From By With As And Or But If This That These Those It Its He She They We I "
    "His Her Their Our Your You After Before During While When Where Who What Which Why How According "
    "Meanwhile However Also Here There Today Yesterday Tomorrow Monday Tuesday Wednesday Thursday Friday "
    "Saturday Sunday Mr Mrs Ms Dr President Prime Minister Sir Madam Read More Advertisement Advertisment "
    "Jan January Feb February Mar March Apr April May Jun June Jul July Aug August Sep Sept September Oct "
    "October Nov November Dec December Despite Although Since Until Over Under Amid Amidst Following".split())


def typed_spans(text: str, qtype: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if qtype == "when":
        taken: list[tuple[int, int]] = []
        for rank, rx in enumerate(_DATE_RES):
            for m in rx.finditer(text):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                taken.append((m.start(), m.end()))
        spans = taken
    elif qtype == "number":
        dates = [(m.start(), m.end()) for rx in _DATE_RES[:5] for m in rx.finditer(text)]
        spans = [(m.start(), m.end()) for m in _NUMBER.finditer(text)
                 if not re.fullmatch(r"(?:19|20)\d{2}", m.group())
                 and not any(a <= m.start() < b for a, b in dates)]
    elif qtype in ("who", "where", "entity", "name"):
        if qtype == "where":  # "Tampa, Florida": a place and its region together
            spans += [(m.start(), m.end()) for m in re.finditer(rf"{_CAP_TOKEN}(?:\s+{_CAP_TOKEN})?,\s+{_CAP_TOKEN}(?:\s+{_CAP_TOKEN})?", text)]
        for m in (_NAME_NUM if qtype in ("entity", "name") else _NAME).finditer(text):
            toks = list(re.finditer(r"\S+", m.group()))
            i = 0
            while i < len(toks) and toks[i].group().rstrip(".,") in _CAP_STOP:
                i += 1
            if i == len(toks):
                continue
            s = m.start() + toks[i].start()
            seg = text[s:m.end()].rstrip(".,'’")
            if seg and re.search(r"[A-Za-z]", seg):
                spans.append((s, s + len(seg)))
    return spans


_CALENDAR = frozenset("january february march april may june july august september october november december "
                      "monday tuesday wednesday thursday friday saturday sunday".split())


_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def _date_key(span: str) -> str | None:
    """Canonical "YYYY-MM-DD" with "??" for missing parts, so "Nov. 15", "15 November 2020" and
    "November 15, 2020" vote together."""
    low = span.lower()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", low)
    if m:
        return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    month = next((i for name, i in _MONTHS.items() if re.search(rf"\b{name}", low)), None)
    year = re.search(r"\b(1[89]\d{2}|20\d{2})\b", low)
    day = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", re.sub(r"\b\d{4}\b", "", low))
    if month is None and year is None:
        return None
    y = year.group(1) if year else "????"
    mo = f"{month:02d}" if month else "??"
    d = f"{int(day.group(1)):02d}" if (day and month) else "??"
    return f"{y}-{mo}-{d}"


def _date_within(general: str, specific: str) -> bool:
    return general != specific and all(a == b or a.strip("?") == "" for a, b in zip(general.split("-"), specific.split("-")))


def _norm(span: str) -> str:
    return re.sub(r"[^\w]+", " ", re.sub(r"['’]s\b", "", span.lower())).strip()


_LOST = re.compile(r"^\W{0,3}\s*(?:lost|loses|losing|fell|falls|was defeated|were defeated)\b", re.I)


_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


_DEFEAT = re.compile(r"\b(?:beat|beats|beating|defeated|defeats|defeating|over|against|versus|vs)\.?\s+$", re.I)


def _specificity(key: str, qtype: str) -> float:
    if qtype == "when":
        has_year = bool(re.search(r"\b\d{4}\b", key))
        has_day = bool(re.search(r"\b\d{1,2}\b", key))
        has_month = bool(re.search(r"[a-z]", key))
        return 1.0 + 0.35 * has_day + 0.35 * has_month + 0.1 * has_year
    if qtype == "number":
        return 1.4 if re.search(r"[$€£%]|million|billion|percent", key) else 1.0
    return 1.0


def _strip_question_words(span: str, q_stems: set[str], common: set[str] = frozenset()) -> str:
    """Drop question words and capitalised common words ("Similarly", "Meanwhile") from the ends."""
    def drop(t: str) -> bool:
        w = t.strip(".,;:'’\"").lower()
        return stem(t) in q_stems or w in STOP or w in common or t.rstrip(",.") in _CAP_STOP
    toks = span.split()
    while toks and drop(toks[0]):
        toks = toks[1:]
    while toks and drop(toks[-1]):
        toks = toks[:-1]
    return " ".join(toks).rstrip(",.;:")


def _cover(sentences: list[Sentence], keys: list[str]) -> dict[int, float]:
    """Share of the question's names in each sentence or the one before it (same passage)."""
    cover: dict[int, float] = {}
    for i, s in enumerate(sentences):
        ctx = s.text.lower()
        if i > 0 and sentences[i - 1].hit_index == s.hit_index:
            ctx = sentences[i - 1].text.lower() + " " + ctx
        cover[id(s)] = sum(k in ctx for k in keys) / len(keys) if keys else 1.0
    return cover


_RELATION_ALIASES = {"won": "win", "wins": "win", "winner": "win", "winning": "win", "bought": "buy",
                     "acquisition": "acquir", "directed": "direct", "director": "direct", "founded": "found",
                     "founder": "found", "released": "releas", "release": "releas", "premiere": "premier"}


_TOKEN = re.compile(r"\S+")


def _relation_stems(question: str) -> set[str]:
    """The question's relation words (lower-case content words like "won", "director", "CEO"):
    the answer usually stands right next to one of them in a sentence."""
    out = set()
    for w in words(question):
        lw = w.lower()
        if lw in STOP or lw in QUESTION_WORDS:
            continue
        if w.islower() or lw in ("ceo", "cfo", "cto", "coo"):
            out.add(_concept(_RELATION_ALIASES.get(lw, stem(lw))))
    return out


def _rel_positions(text: str, rel: set[str]) -> list[int]:
    return [m.start() for m in _TOKEN.finditer(text)
            if (lambda t: _concept(_RELATION_ALIASES.get(t, stem(t))))(re.sub(r"\W+$|^\W+", "", m.group().lower())) in rel]


def _split_headline(text: str, a: int, b: int, lower_words: set[str]) -> list[tuple[int, int]]:
    """A long Title Case run is a headline, not a name: cut it at its common words."""
    toks = list(_TOKEN.finditer(text[a:b]))
    if len(toks) <= 3:
        return [(a, b)]
    out, cur = [], []
    for t in toks:
        w = t.group().strip(".,:;'’\"").lower()
        if w in lower_words or w in STOP:
            if cur:
                out.append((a + cur[0].start(), a + cur[-1].end()))
            cur = []
        else:
            cur.append(t)
    if cur:
        out.append((a + cur[0].start(), a + cur[-1].end()))
    return [(x, y) for x, y in out if len(_TOKEN.findall(text[x:y])) <= 4]


@lru_cache(maxsize=1)
def _name_detector():
    try:  # a first-name dictionary (gender-guesser's data; we only ask "is this a first name?")
        import gender_guesser.detector as gd

        return gd.Detector(case_sensitive=False)
    except ImportError:
        return None


def _looks_like_person(key: str) -> bool:
    toks = key.split()
    det = _name_detector()
    return len(toks) >= 2 and det is not None and det.get_gender(toks[0].capitalize()) != "unknown"


def _vote(question, qtype, q_stems, hits, sentences):
    """Typed spans vote across sentences; each vote is the sentence's score, shaped by how specific
    the span is, how close it stands to the question's relation words, and whether it is a name."""
    votes: dict[str, float] = defaultdict(float)
    surface: dict[str, str] = {}
    docs_for: dict[str, set[str]] = defaultdict(set)
    where_found: dict[str, list[Sentence]] = defaultdict(list)
    lower_words = {w for h in hits for w in words(h.text) if w.islower()}
    winner_q = bool(re.search(r"\b(won|win|wins|winner|champion)\b", question, re.I))
    rel = _relation_stems(question)
    # casualty counts come in pairs (dead / wounded): a number beside the other one is the wrong count
    contrast = (_CASUALTY - rel) if qtype == "number" and len(_CASUALTY & rel) == 1 else set()
    person_q = bool(re.search(r"\b(ceo|director|actor|actress|president|winner|won|star(?:s|ring)?|player|"
                              r"author|singer|coach|chairman|founder|minister|mayor|governor|leader)\b", question, re.I))
    per_doc: dict[tuple[str, str], float] = {}
    cover = _cover(sentences, [k.lower() for k in _key_terms(question)])
    q_years = set(_YEAR.findall(question))
    for s in sentences:
        seen_here = set()
        rel_pos = _rel_positions(s.text, rel) if rel else []
        contrast_pos = _rel_positions(s.text, contrast) if contrast else []
        own_pos = _rel_positions(s.text, rel & _CASUALTY) if contrast else []
        spans = typed_spans(s.text, qtype)
        if qtype in ("who", "where", "entity", "name"):
            spans = [x for a, b in spans for x in _split_headline(s.text, a, b, lower_words)]
        for a, b in spans:
            span = s.text[a:b]
            stripped = False
            if qtype in ("who", "where", "entity", "name"):
                full = span
                span = _strip_question_words(span, q_stems, lower_words)
                stripped = span != full and len(span.split()) == 1
            if "@" in span or "#" in span:
                continue
            key = (_date_key(span) or _norm(span)) if qtype == "when" else _norm(span)
            if not key or key in seen_here or all(stem(t) in q_stems for t in key.split()):
                continue
            if qtype in ("when", "number") and re.search(rf"(?<![\w$€£.,]){re.escape(span)}(?![\w%]|[.,]\d)", question):
                continue  # the question's own date or number ("will not run in 2024. When was she first elected?")
            seen_here.add(key)
            pos = s.text.find(span, a)
            # squared: the most relevant sentences lead; the sentence (with the one before it) must
            # mention the question's names, or it is about something else
            w = max(s.score, 0.0) ** 2 * _specificity(key, qtype) * (0.3 + 0.7 * cover[id(s)])
            if rel_pos:
                d = min(abs(pos - p) for p in rel_pos) / 6.0  # ~ distance in words
                w *= 1.0 + np.exp(-d / 4.0)
            if contrast_pos and min(abs(pos - p) for p in contrast_pos) < min((abs(pos - p) for p in own_pos),
                                                                              default=1 << 30):
                w *= 0.3  # "11 killed" does not answer "how many wounded" (nor the other way round)
            if qtype == "when" and _LEADING_DATE.match(s.text) and pos == 0:
                # a feed snippet's own publication date ("Jun 8, 2020 ... text"), not the answer
                w *= 0.15 if len(words(s.text)) <= 4 else 0.6
            if qtype == "who":
                if _looks_like_person(key):
                    w *= 1.6  # "who" questions are mostly about people
                elif len(key.split()) == 1 and person_q:
                    # a lone first name ("Oscar") or demonym ("Russian") is not the person asked for;
                    # a lone surname ("Zelenskiy") often is
                    det = _name_detector()
                    lone_first = det is not None and det.get_gender(key.capitalize()) != "unknown"
                    w *= 0.35 if (lone_first or re.search(r"(?:ian|ians|ese|ish|ic)$", key)) else 0.5
            if stripped:
                w *= 0.3  # what is left of a phrase from the question ("Best Animated *Feature*")
            if q_years and (sent_years := set(_YEAR.findall(s.text))) and not (sent_years & q_years):
                w *= 0.5  # the sentence is about another year than the one asked about
            if qtype == "when" and not re.search(r"[a-z]", key):
                w *= 0.7  # a bare year is the least precise date
            if qtype in ("who", "entity", "where", "name"):
                if len(key.split()) >= 2:
                    w *= 1.15  # full names over bare surnames
                elif key in lower_words:
                    w *= 0.3  # a capitalised common word ("Followers", "Ladies"), not a name
                if winner_q and ((pos > 0 and _DEFEAT.search(s.text[max(0, pos - 20):pos]))
                                 or _LOST.match(s.text[pos + len(span):])):
                    w *= 0.4  # "X beat Y", "Y lost to X": Y did not win
            # per article, a span counts once (its best mention), so repetition inside one
            # article does not outvote agreement between articles
            doc = hits[s.hit_index].doc_id
            per_doc[(key, doc)] = max(per_doc.get((key, doc), 0.0), w)
            docs_for[key].add(doc)
            where_found[key].append(s)
            surface.setdefault(key, span)
    for (key, _doc), w in per_doc.items():
        votes[key] += w
    # a bare surname or year also supports the fuller span containing it ("Halep" -> "Simona Halep")
    merged = dict(votes)
    for k in votes:
        for k2 in votes:
            if _contains(k2, k, qtype):
                merged[k2] += 0.5 * votes[k]
    return merged, dict(votes), surface, where_found


def _contains(big: str, small: str, qtype: str) -> bool:
    if qtype == "when" and "-" in big and "-" in small:
        return _date_within(small, big)
    if big == small or len(small) >= len(big):
        return False
    # a cut-off name ("Justin Kurze") is a prefix of the full one; a number is not ("11" vs "110")
    return bool(re.search(rf"\b{re.escape(small)}\b", big)) or (qtype != "number" and big.startswith(small))


def _most_specific(winner: str, votes: dict[str, float], own: dict[str, float], qtype: str) -> str:
    """Prefer a fuller span that contains the winner and has support of its own
    ("2015" -> "December 2015", "Halep" -> "Simona Halep")."""
    supers = [k for k in votes if _contains(k, winner, qtype)
              and votes[k] >= 0.5 * votes[winner] and own[k] >= 0.15 * own[winner]]
    return max(supers, key=votes.get) if supers else winner


# what a count is about, however the article words it (compared on 5-letter stem prefixes)
_SYNONYM = {w: "DEATH" for w in ("kill", "die", "dead", "death", "live", "life", "toll", "fatal", "claim")}
_SYNONYM.update({w: "HURT" for w in ("injur", "wound", "hurt")})


_CASUALTY = {"DEATH", "HURT"}


def _concept(stem_: str) -> str:
    return _SYNONYM.get(stem_[:5]) or _SYNONYM.get(stem_) or stem_

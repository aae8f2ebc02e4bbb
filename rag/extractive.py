"""The offline answerer: one or two verbatim sentences from the retrieved passages, each cited.

How it picks (no generative model needed):
1. Every sentence of every retrieved passage is a candidate; it is scored by dense similarity to
   the question (the same MiniLM), by weighted overlap with the question's content words, and by
   its passage's retrieval rank.
2. The question's expected answer type (who / when / where / how many / which) selects typed spans
   in the sentences — names, dates, places, numbers — with the question's own words excluded.
   Spans vote across passages: an answer that several passages agree on beats a lone one.
3. The answer is the best sentence containing the winning span (plus the top sentence when it adds
   a different passage and the answer stays short).
4. When the passages do not cover the question's key terms, or nothing is similar enough, it
   refuses and shows the closest passages instead of guessing.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from .textutil import QUESTION_WORDS, STOP, content_stems, split_sentences, stem, words
from . import features as F
from .ranker import Ranker, default_ranker
from .types import Answer, Citation, Hit

REFUSAL = "The articles don't say."
DENSE_SENTENCES = 24  # sentences embedded per question when the index has no sentence vectors
ALONE_SENTENCES = 4  # the closest sentences (in context) whose similarity alone the refusal tests see
TYPED_SHARE = 0.5  # a sentence holding the asked-for number may replace a likelier one without
W_DENSE, W_LEXICAL, W_RANK = 0.55, 0.35, 0.10  # a sentence's score: similarity, shared terms, passage rank
BACKEND = "extractive"

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
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?)\b",
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


@dataclass
class Sentence:
    hit_index: int
    start: int  # offsets in the article
    end: int
    text: str
    score: float = 0.0
    dense: float = 0.0  # similarity to the question, for ranking (in its article's context when stored)
    lexical: float = 0.0
    alone: float | None = None  # similarity of the sentence embedded on its own: what thresholds use


@dataclass
class Extraction:
    sentences: list[Sentence]
    refused: bool
    qtype: str
    candidate: str | None = None
    debug: dict = field(default_factory=dict)


_WH = r"(?:which|what)\s+(?:\w+\s+){0,2}"  # "which (Russian) city", "what (new) company"


def question_type(q: str) -> str:
    """The expected answer type: who / when / where / number / entity / name (some other "which
    <noun>") / other."""
    ql = q.lower().strip()
    if re.search(r"\b(how many|how much|how old|how long|what percentage|death toll)\b|"
                 r"\bwhat (?:was|is|were|are) the (?:number|amount|total|revenue|price|cost|population|score)\b|"
                 r"\b(?:which|what) day of\b|\brevenue\b", ql):
        return "number"
    if re.search(r"^(?:when|since when)\b|\b(?:what|which) (?:year|date|day|month|time)\b|\b(?:date of|release date|"
                 r"premiere date)\b", ql) or (ql.startswith("what") and re.search(r"\b(released?|premiere[sd]?|founded)\??$", ql)):
        return "when"
    if re.search(rf"^where\b|\bwhere\b|\blocation\b|\b{_WH}(?:city|cities|country|countries|town|state|place|region|"
                 r"venue|stadium|nation)\b|\bhosted?\b", ql):
        return "where"
    if re.search(rf"^(who|whom|whose)\b|\bwho\b|\b{_WH}(?:person|people|actor|actress|player|team|company|singer|"
                 r"artist|director|man|woman|club|organi[sz]ation|party|candidate|leader|official|president|body|"
                 r"group|agency|minister|ministry)\b|\bname of\b", ql):
        return "who"
    if re.search(rf"^{_WH}(?:movie|film|book|song|album|game|show|series|award|prize|product|device|app|brand|"
                 r"model|car|airbase|base|platform|network)\b", ql):
        return "entity"
    # any other "which <noun>" / "what <noun>" asks for a name of that thing ("which chemical",
    # "what animal"); "what is", "what kind of" ask for a description
    if re.search(r"\b(?:which|what)\s+(?!(?:is|was|are|were|did|does|do|has|have|had|will|would|can|could|should|"
                 r"happened|happens|kind|type|sort|if|about|else)\b)[a-z]{3,}", ql):
        return "name"
    return "other"


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


def extract(question: str, hits: list[Hit], embedder, *, max_words: int = 45, debug: bool = False,
            sentence_vectors: dict[str, dict[tuple[int, int], np.ndarray]] | None = None,
            as_of: str | None = None, collect: bool = False, ranker: Ranker | None = None) -> Extraction:
    """``collect``: skip the decision and return every sentence with its feature rows in
    ``debug["X"]`` (what rag/fit.py trains on); the refusal tests' verdict is in ``debug["why"]``."""
    qtype = question_type(question)
    q_stems = content_stems(question) - {stem(w) for w in QUESTION_WORDS}
    key_terms = _key_terms(question)
    sentences: list[Sentence] = []
    for hi, h in enumerate(hits):
        for s, e in split_sentences(h.text):
            txt = h.text[s:e]
            if len(words(txt)) < 3:
                continue
            sentences.append(Sentence(hi, h.start + s, h.start + e, txt))
    if not sentences:
        return Extraction([], True, qtype)

    # lexical: share of the question's content stems in the sentence, rarer terms weigh more
    df = defaultdict(int)
    sent_stems = [content_stems(s.text) for s in sentences]
    for st in sent_stems:
        for t in st:
            df[t] += 1
    n = len(sentences)
    weights = {t: 1.0 + np.log(1 + n / (1 + df.get(t, 0))) for t in q_stems}
    wsum = sum(weights.values()) or 1.0
    for s, st in zip(sentences, sent_stems):
        s.lexical = sum(w for t, w in weights.items() if t in st) / wsum
    rank = [1.0 / (1 + s.hit_index) ** 0.5 for s in sentences]
    alone = _dense(question, hits, sentences, rank, embedder, sentence_vectors or {})
    for i, s in enumerate(sentences):
        s.score = W_DENSE * s.dense + W_LEXICAL * s.lexical + W_RANK * rank[i]

    refused, why = _should_refuse(question, hits, sentences, key_terms, alone)
    if refused and not collect:
        return Extraction([], True, qtype, debug={"why": why})

    candidate = None
    chosen: list[Sentence] = []
    votes: dict[str, float] = {}
    surface: dict[str, str] = {}
    where_found: dict[str, list[Sentence]] = {}
    if qtype != "other":
        votes, own, surface, where_found = _vote(question, qtype, q_stems, hits, sentences)
    ranker = ranker or default_ranker()
    if collect or ranker is not None:
        if votes:
            ranked = sorted(votes, key=votes.get, reverse=True)
            candidate = _most_specific(ranked[0], votes, own, qtype)
        X = _features(question, hits, sentences, sent_stems, q_stems, weights, key_terms, votes, where_found,
                      candidate, as_of)
        if collect:
            return Extraction(sentences, refused, qtype, candidate=surface.get(candidate),
                              debug={"X": X, "why": why, "alone": alone})
        return _decide(question, qtype, hits, sentences, X, ranker.score(X), ranker, alone,
                       surface.get(candidate) if candidate else None, where_found.get(candidate, []), max_words)
    if qtype != "other":
        if votes:
            ranked = sorted(votes, key=votes.get, reverse=True)
            candidate = _most_specific(ranked[0], votes, own, qtype)
            if candidate != ranked[0]:
                own_best = max(where_found[candidate], key=lambda s: s.score)
                if _weak_answer(question, qtype, own_best, surface.get(candidate), hits, alone):
                    candidate = ranked[0]  # the fuller span's own sentence is too far off to stand alone
            ranked = [candidate] + [k for k in ranked if k != candidate]
            chosen.append(max(where_found[candidate], key=lambda s: s.score))
            # a close runner-up is shown too, from its own best sentence: the reader sees both
            # readings instead of a confident wrong one
            for other in ranked[1:3]:
                if votes[other] < 0.4 * votes[candidate] or _contains(other, candidate, qtype) or \
                        _contains(candidate, other, qtype):
                    continue
                budget = max_words - len(words(chosen[0].text))
                alts = [x for x in where_found[other] if x not in where_found[candidate] and len(words(x.text)) <= budget]
                if alts:
                    chosen.append(max(alts, key=lambda s: s.score))
                break
    if chosen:
        weak = _weak_answer(question, qtype, chosen[0], surface.get(candidate), hits, alone)
        if weak:
            return Extraction([], True, qtype, candidate=surface.get(candidate), debug={"why": weak, "votes": dict(votes)})
    top = max(sentences, key=lambda s: s.score)
    if not chosen:
        chosen.append(top)
    elif len(chosen) == 1 and top is not chosen[0] and top.hit_index != chosen[0].hit_index:
        if len(words(chosen[0].text)) + len(words(top.text)) <= max_words:
            chosen.append(top)
    return Extraction(chosen, False, qtype, candidate=surface.get(candidate) if candidate else None,
                      debug={"votes": dict(votes)} if debug else {})


def _features(question, hits, sentences, sent_stems, q_stems, weights, key_terms, votes, where_found,
              candidate, as_of) -> np.ndarray:
    """The rows rag/ranker.py scores (see rag/features.py for what each column means)."""
    from .timeframe import time_window

    window = time_window(question, as_of)
    flags = [0.0 if window is None or not h.date else (1.0 if window.contains(h.date) else -1.0) for h in hits]
    ctx = F.Context(q_stems, weights, [F.title_overlap(q_stems, weights, h.title) for h in hits], flags,
                    question_type(question))
    top = max(votes.values()) if votes else 0.0
    vote = {id(s): 0.0 for s in sentences}
    typed = {id(s): False for s in sentences}
    for key, found in where_found.items():
        for s in found:
            typed[id(s)] = True
            vote[id(s)] = max(vote[id(s)], votes.get(key, 0.0) / top if top else 0.0)
    winners = {id(s) for s in where_found.get(candidate, [])} if candidate else set()
    cover = _cover(sentences, [k.lower() for k in key_terms])
    return F.rows(sentences, ctx, sent_stems=sent_stems, cover=[cover[id(s)] for s in sentences],
                  typed=[typed[id(s)] for s in sentences], vote=[vote[id(s)] for s in sentences],
                  winner=[id(s) in winners for s in sentences], lead=[s.start < 600 for s in sentences])


def _cover(sentences: list[Sentence], keys: list[str]) -> dict[int, float]:
    """Share of the question's names in each sentence or the one before it (same passage)."""
    cover: dict[int, float] = {}
    for i, s in enumerate(sentences):
        ctx = s.text.lower()
        if i > 0 and sentences[i - 1].hit_index == s.hit_index:
            ctx = sentences[i - 1].text.lower() + " " + ctx
        cover[id(s)] = sum(k in ctx for k in keys) / len(keys) if keys else 1.0
    return cover


def _decide(question, qtype, hits, sentences, X, p, ranker, alone, candidate, winner_sents, max_words) -> Extraction:
    """The fitted scorer's pick: the most probable sentence, plus a second one when it is nearly as
    probable and the answer stays short."""
    order = ranker.order(X, p)
    if qtype == "number" and not X[order[0], F.INDEX["has_type"]]:
        # the likeliest sentence holds no number: it cannot say how many; a nearly as likely
        # sentence that does takes its place, else the answer is a refusal
        typed = [j for j in order if X[j, F.INDEX["has_type"]] and p[j] >= TYPED_SHARE * p[order[0]]]
        if typed:
            order = np.array([typed[0]] + [j for j in order if j != typed[0]])
    best = sentences[order[0]]
    for s, pi in zip(sentences, p):
        s.score = float(pi)
    cand = candidate if best in winner_sents else None
    weak = _weak_answer(question, qtype, best, cand, hits, alone)
    if not weak and qtype == "number" and not X[order[0], F.INDEX["has_type"]]:
        # the likeliest sentence holds no number: it cannot say how many (a date can be "on
        # Monday", which is no date span, so "when" questions are not held to this)
        weak = "the closest passage gives no number"
    if weak:
        return Extraction([], True, qtype, candidate=cand, debug={"why": weak})
    chosen = [best]
    # the second sentence: the best one holding the vote winner when the first does not (votes
    # across passages catch what one sentence's score misses), else the next most probable
    second = [j for j in order[1:] if sentences[j] in winner_sents] if best not in winner_sents else []
    for j in second + [j for j in order[1:] if j not in second]:
        if p[j] < ranker.second_ratio * p[order[0]]:
            break
        s = sentences[j]
        if s.text == best.text or len(words(best.text)) + len(words(s.text)) > max_words:
            continue
        chosen.append(s)
        break
    return Extraction(chosen, False, qtype, candidate=cand)


def _dense(question, hits, sentences, rank, embedder, stored) -> Callable[[list[Sentence]], list[float]]:
    """Each sentence's similarity to the question (same encoder as retrieval), for ranking.

    Sentence vectors stored at ingest (rag/sentvec.py) cost nothing now; sentences without one (an
    index built before them) are embedded here, only the lexical+rank shortlist of them, because
    embedding every sentence of 8 passages would be most of a query's time; the rest score at the
    floor. A sentence read in context scores differently from the same sentence alone (flatter: the
    article's topic lifts every sentence), and the refusal thresholds were set on sentences alone,
    so the few sentences they look at are embedded alone too; returns that lookup."""
    qv = embedder.embed_query(question)
    dense: dict[int, float] = {}
    missing = []
    for i, s in enumerate(sentences):
        h = hits[s.hit_index]
        v = stored.get(h.chunk_id, {}).get((s.start - h.start, s.end - h.start))
        if v is None:
            missing.append(i)
        else:
            dense[i] = float(v @ qv)
    if missing:
        # the score without its dense part
        shortlist = sorted(missing, key=lambda i: -(W_LEXICAL * sentences[i].lexical + W_RANK * rank[i]))
        shortlist = shortlist[:DENSE_SENTENCES]
        for i, d in zip(shortlist, embedder.embed([sentences[i].text for i in shortlist]) @ qv):
            sentences[i].alone = dense[i] = float(d)
    floor = min(dense.values())
    for i, s in enumerate(sentences):
        s.dense = dense.get(i, floor)

    def alone(some: list[Sentence]) -> list[float]:
        todo = [t for t in some if t.alone is None]
        if todo:
            for t, d in zip(todo, embedder.embed([t.text for t in todo]) @ qv):
                t.alone = float(d)
        return [t.alone for t in some]

    return alone


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


def _key_terms(question: str) -> list[str]:
    """Names and numbers in the question: terms a passage must mention to answer it."""
    terms = []
    for i, w in enumerate(words(question)):
        if w.lower() in STOP or w.lower() in QUESTION_WORDS:
            continue
        if (w[0].isupper() and i > 0) or any(ch.isdigit() for ch in w):
            terms.append(w)
    return terms


def _flat(text: str) -> str:
    return re.sub(r"[.’']", "", text.lower())


def _should_refuse(question, hits, sentences, key_terms, alone) -> tuple[bool, str]:
    """Before picking: refuse when the passages miss the question's names, or nothing is close."""
    best_lex = max(s.lexical for s in sentences)
    names = [t for t in key_terms if not any(ch.isdigit() for ch in t) and t.lower() not in _CALENDAR]
    if names:
        corpus = _flat(" ".join(h.text for h in hits))
        corpus_stems = content_stems(corpus)
        found = [_flat(t) in corpus or stem(t) in corpus_stems for t in names]
        cover = sum(found) / len(found)
        if cover < 0.75:
            missing = [t for t, f in zip(names, found) if not f]
            return True, f"names not in the passages: {', '.join(missing)}"
    if best_lex < 0.5 and (best_dense := max(alone(_closest(sentences)))) < 0.25:
        return True, f"weak evidence (dense {best_dense:.2f}, lexical {best_lex:.2f})"
    return False, ""


_ROLES = (r"mayor|governor|ceo|president|minister|director|chief|head|leader|chairman|chair|commander|spokesman|"
          r"spokeswoman|spokesperson|secretary|ambassador|coach|captain|founder|owner|author|editor")
_ROLE_Q = re.compile(rf"\bwho (?:is|was|are|were|will be)\b.*?\b(?P<role>{_ROLES})\b|\bname of the\b", re.I)
_ROLE_WORD = re.compile(rf"\b(?:{_ROLES})\b", re.I)


def _with_previous(s: "Sentence", hits: list[Hit]) -> str:
    """The sentence with the text before it in its passage (a role is often named just before)."""
    h = hits[s.hit_index]
    return h.text[max(0, s.start - h.start - 200): s.end - h.start]


# what a count is about, however the article words it (compared on 5-letter stem prefixes)
_SYNONYM = {w: "DEATH" for w in ("kill", "die", "dead", "death", "live", "life", "toll", "fatal", "claim")}
_SYNONYM.update({w: "HURT" for w in ("injur", "wound", "hurt")})
_CASUALTY = {"DEATH", "HURT"}


def _concept(stem_: str) -> str:
    return _SYNONYM.get(stem_[:5]) or _SYNONYM.get(stem_) or stem_


def _closest(sentences: list[Sentence]) -> list[Sentence]:
    return sorted(sentences, key=lambda s: -s.dense)[:ALONE_SENTENCES]


def _weak_answer(question: str, qtype: str, chosen: "Sentence", candidate: str | None, hits: list[Hit],
                 alone: Callable[[list[Sentence]], list[float]]) -> str:
    """After picking: the evidence sentence must be close to the question, and a question about a
    person's role must be answered by a name."""
    if qtype == "number":
        near = {_concept(w) for w in content_stems(chosen.text)}
        asked = {_concept(w) for w in _relation_stems(question) if w not in ("peopl", "mani", "much")}
        if asked and not asked & near:
            said = [w for w in words(question) if _concept(_RELATION_ALIASES.get(w.lower(), stem(w))) in asked]
            return f"the number found is not about {', '.join(dict.fromkeys(w.lower() for w in said))}"
    if qtype not in ("other", "name"):  # "name": a weaker guess at the type, not a reason to refuse
        d = alone([chosen])[0]
        if d < 0.40 or (chosen.lexical < 0.30 and d < 0.50):
            return f"answer sentence too far from the question (dense {d:.2f}, lexical {chosen.lexical:.2f})"
    role = _ROLE_Q.search(question)
    if role and role.group("role"):
        # "Who is the mayor of X?" is not answered by a sentence about X's governor
        roles = {stem(r) for r in _ROLE_WORD.findall(question[role.start():])}
        if not roles & content_stems(_with_previous(chosen, hits)):
            return f"no passage names the {role.group('role').lower()}"
    if candidate and role:
        toks = candidate.split()
        if len(toks) < 2 and not _looks_like_person(_norm(candidate) + " x"):
            return f"no name found for the role asked about (best: {candidate})"
    return ""


_SECOND_PART = re.compile(r"^(?P<first>.+?),?\s+and\s+(?P<second>(?:how many|how much|who|where|when|which|what)\b.+)$", re.I)


def split_question(question: str) -> list[str]:
    """ "How many were killed in Belgorod, and how many in Pokrovsk?" -> two questions, the second
    completed from the first ("How many people were killed in Pokrovsk?")."""
    m = _SECOND_PART.match(question.strip().rstrip("?"))
    if not m:
        return [question]
    first, second = m.group("first").strip(), m.group("second").strip()
    if len(words(second)) < 5:  # elliptic: put its names into the first question's frame
        new_names = [w for w in words(second) if w[0].isupper()]
        old_names = [w for w in words(first)[1:] if w[0].isupper()]
        if new_names and old_names:
            second = re.sub(rf"\b{re.escape(old_names[-1])}\b", " ".join(new_names), first)
    return [first + "?", second[0].upper() + second[1:] + "?"]


def answer(question: str, hits: list[Hit], embedder, *,
           sentence_vectors: dict[str, dict[tuple[int, int], np.ndarray]] | None = None,
           as_of: str | None = None, ranker: Ranker | None = None) -> Answer:
    """``sentence_vectors``: per chunk id, the vectors stored at ingest (Engine.sentence_vectors);
    sentences without one are embedded now."""
    parts = split_question(question)
    if not hits:
        return refusal(question, hits)
    exs = [extract(q, hits, embedder, sentence_vectors=sentence_vectors, as_of=as_of, ranker=ranker) for q in parts]
    if len(parts) > 1:  # a two-part question: each part answered by its own sentence
        sentences = []
        for ex in exs:
            if not ex.refused and ex.sentences and ex.sentences[0] not in sentences:
                sentences.append(ex.sentences[0])
        if not sentences:
            return refusal(question, hits, why=exs[0].debug.get("why", ""))
        ex = Extraction(sentences, False, exs[0].qtype)
    else:
        ex = exs[0]
    if ex.refused:
        return refusal(question, hits, why=ex.debug.get("why", ""))
    citations, parts_text = [], []
    for i, s in enumerate(ex.sentences, 1):
        h = hits[s.hit_index]
        citations.append(Citation(n=i, doc_id=h.doc_id, title=h.title, date=h.date, source=h.source,
                                  snippet=s.text, start=s.start, end=s.end, score=round(s.score, 4)))
        parts_text.append(f"{s.text} [{i}]")
    return Answer(text=" ".join(parts_text), citations=citations, refused=False, backend=BACKEND, question=question,
                  hits=hits)


def missing_note(why: str) -> str:
    """What the refusal tests found missing, as a sentence for the user ("" when nothing specific)."""
    m = re.match(r"names not in the passages: (.+)$", why or "")
    if m:
        names = [n.strip() for n in m.group(1).split(",") if n.strip()]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"No passage found mentions {listed}."
    if why.startswith("the number found is not about"):
        return f"The passages give no number about {why.rsplit('about ', 1)[-1]}."
    if why.startswith("the closest passage gives no"):
        return f"The passages closest to the question give no {why.rsplit(' ', 1)[-1]}."
    if why.startswith("no passage names the "):
        return f"The passages found name no {why.rsplit(' ', 1)[-1]}."
    if why.startswith("no name found for the role"):
        return "The passages name no one in that role."
    if why:
        return "No passage is close enough to the question to answer it."
    return ""


def refusal(question: str, hits: list[Hit], *, backend: str = BACKEND, limit: int = 3, why: str = "") -> Answer:
    """The articles don't answer: say so, say what is missing when the refusal tests know, and show
    the closest passages (as citations) instead."""
    citations = []
    for i, h in enumerate(hits[:limit], 1):
        spans = split_sentences(h.text) or [(0, len(h.text))]
        s, e = spans[0]
        citations.append(Citation(n=i, doc_id=h.doc_id, title=h.title, date=h.date, source=h.source,
                                  snippet=h.text[s:e], start=h.start + s, end=h.start + e, score=h.score))
    note = missing_note(why) if citations else ""
    text = REFUSAL + (f" {note}" if note else "") + \
        (" The closest passages are listed below." if citations else " No article matched.")
    return Answer(text=text, citations=citations, refused=True, backend=backend, question=question, hits=hits)

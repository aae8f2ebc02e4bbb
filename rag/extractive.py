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

import numpy as np

from .textutil import QUESTION_WORDS, STOP, content_stems, split_sentences, stem, words
from .types import Answer, Citation, Hit

REFUSAL = "The articles don't say."
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
    r"(?:[$€£]\s?)?\b\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|bn|m|k))?"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?)\b",
    re.I)
_CAP_TOKEN = r"(?:[A-Z\u00C0-\u00DE][\w\u00C0-\u024F'’\-]*\.?|[A-Z]\.)"
_PARTICLE = r"(?:de|da|di|del|der|van|von|la|le|bin|al|of|the|&)"
_NAME = re.compile(rf"{_CAP_TOKEN}(?:\s+(?:{_PARTICLE}\s+)*{_CAP_TOKEN})*")
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
    dense: float = 0.0
    lexical: float = 0.0


@dataclass
class Extraction:
    sentences: list[Sentence]
    refused: bool
    qtype: str
    candidate: str | None = None
    debug: dict = field(default_factory=dict)


def question_type(q: str) -> str:
    ql = q.lower().strip()
    if re.search(r"\b(when|what year|which year|what date|which date|what day|date of|release date|"
                 r"premiere date|what time)\b", ql) or re.search(r"\b(released?|premiere[sd]?|founded)\??$", ql) and ql.startswith(("when", "what")):
        return "when"
    if re.search(r"\b(how many|how much|what (?:was|is|were|are) the (?:number|amount|total|revenue|price|cost|"
                 r"population|score|death toll|toll)|how old|what percentage|revenue|death toll)\b", ql):
        return "number"
    if re.search(r"^(who|whom|whose)\b|\bwho\b|\bwhich (?:person|actor|actress|player|team|company|singer|artist|"
                 r"director|man|woman|country|club|organi[sz]ation|party|candidate)\b|\bwhat (?:team|company|"
                 r"country|club|organi[sz]ation|party)\b|\bname of\b", ql):
        if re.search(r"\bwhich (?:country)\b|\bwhat country\b", ql):
            return "where"
        return "who"
    if re.search(r"^where\b|\bwhere\b|\blocation\b|\bwhich (?:city|country|town|state|place|region|venue|stadium)\b|"
                 r"\bwhat (?:city|country|town|state|place|region|venue|stadium)\b|\bhosted?\b", ql):
        return "where"
    if re.search(r"^(which|what)\s+(?:movie|film|book|song|album|game|show|series|award|prize|product|"
                 r"device|app|brand|model|player|car)\b", ql):
        return "entity"
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
        spans = [(m.start(), m.end()) for m in _NUMBER.finditer(text) if not re.fullmatch(r"(?:19|20)\d{2}", m.group())]
    elif qtype in ("who", "where", "entity"):
        for m in _NAME.finditer(text):
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


def _norm(span: str) -> str:
    return re.sub(r"[^\w]+", " ", span.lower()).strip()


def _strip_question_words(span: str, q_stems: set[str]) -> str:
    toks = span.split()
    while toks and (stem(toks[0]) in q_stems or toks[0].lower() in STOP):
        toks = toks[1:]
    while toks and (stem(toks[-1]) in q_stems or toks[-1].lower() in STOP):
        toks = toks[:-1]
    return " ".join(toks)


def extract(question: str, hits: list[Hit], embedder, *, max_words: int = 45) -> Extraction:
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

    # dense similarity of each sentence to the question (one batch, same encoder as retrieval)
    qv = embedder.embed_query(question)
    sv = embedder.embed([s.text for s in sentences])
    dense = sv @ qv
    # lexical: share of the question's content stems in the sentence, rarer terms weigh more
    df = defaultdict(int)
    sent_stems = [content_stems(s.text) for s in sentences]
    for st in sent_stems:
        for t in st:
            df[t] += 1
    n = len(sentences)
    weights = {t: 1.0 + np.log(1 + n / (1 + df.get(t, 0))) for t in q_stems}
    wsum = sum(weights.values()) or 1.0
    for s, st, d in zip(sentences, sent_stems, dense):
        s.dense = float(d)
        s.lexical = sum(w for t, w in weights.items() if t in st) / wsum
        rank_bonus = 1.0 / (1 + s.hit_index) ** 0.5
        s.score = 0.55 * s.dense + 0.35 * s.lexical + 0.10 * rank_bonus

    refused, why = _should_refuse(question, hits, sentences, key_terms)
    if refused:
        return Extraction([], True, qtype, debug={"why": why})

    candidate = None
    chosen: list[Sentence] = []
    if qtype != "other":
        votes: dict[str, float] = defaultdict(float)
        docs_for: dict[str, set[str]] = defaultdict(set)
        surface: dict[str, str] = {}
        where_found: dict[str, list[Sentence]] = defaultdict(list)
        for s in sentences:
            seen_here = set()
            for a, b in typed_spans(s.text, qtype):
                span = s.text[a:b]
                if qtype in ("who", "where", "entity"):
                    span = _strip_question_words(span, q_stems)
                if not span or _norm(span) in seen_here:
                    continue
                key = _norm(span)
                if not key or all(stem(t) in q_stems for t in key.split()):
                    continue
                seen_here.add(key)
                w = max(s.score, 0.0)
                if qtype == "when" and _LEADING_DATE.match(s.text) and s.text.startswith(span):
                    w *= 0.6  # a feed snippet's own publication date, not necessarily the answer
                if qtype in ("who", "entity") and len(key.split()) >= 2:
                    w *= 1.15  # full names over bare surnames
                votes[key] += w
                docs_for[key].add(hits[s.hit_index].doc_id)
                where_found[key].append(s)
                surface.setdefault(key, span)
        # merge a bare surname into the full name that contains it ("Halep" -> "Simona Halep")
        for k in list(votes):
            for k2 in list(votes):
                if k != k2 and len(k) < len(k2) and re.search(rf"\b{re.escape(k)}\b", k2) and qtype in ("who", "entity", "where"):
                    votes[k2] += 0.5 * votes[k]
        if votes:
            for k in votes:
                votes[k] *= 1.0 + 0.25 * (len(docs_for[k]) - 1)
            candidate = max(votes, key=votes.get)
            best = max(where_found[candidate], key=lambda s: s.score)
            chosen.append(best)
    top = max(sentences, key=lambda s: s.score)
    if not chosen:
        chosen.append(top)
    elif top is not chosen[0] and top.hit_index != chosen[0].hit_index:
        if len(words(chosen[0].text)) + len(words(top.text)) <= max_words:
            chosen.append(top)
    return Extraction(chosen, False, qtype, candidate=surface.get(candidate) if candidate else None)


def _key_terms(question: str) -> list[str]:
    """Names and numbers in the question: terms a passage must mention to answer it."""
    terms = []
    for i, w in enumerate(words(question)):
        if w.lower() in STOP or w.lower() in QUESTION_WORDS:
            continue
        if (w[0].isupper() and i > 0) or any(ch.isdigit() for ch in w):
            terms.append(w)
    return terms


def _should_refuse(question, hits, sentences, key_terms) -> tuple[bool, str]:
    best_dense = max(s.dense for s in sentences)
    best_lex = max(s.lexical for s in sentences)
    if key_terms:
        found = []
        corpus = " ".join(h.text for h in hits).lower()
        corpus_stems = content_stems(corpus)
        for t in key_terms:
            found.append(t.lower() in corpus or stem(t) in corpus_stems)
        cover = sum(found) / len(found)
        if cover < 0.5:
            return True, f"key terms missing ({cover:.2f})"
    if best_dense < 0.25 and best_lex < 0.5:
        return True, f"weak evidence (dense {best_dense:.2f}, lexical {best_lex:.2f})"
    return False, ""


def answer(question: str, hits: list[Hit], embedder) -> Answer:
    ex = extract(question, hits, embedder) if hits else Extraction([], True, "other")
    if ex.refused:
        return refusal(question, hits)
    citations, parts = [], []
    for i, s in enumerate(ex.sentences, 1):
        h = hits[s.hit_index]
        citations.append(Citation(n=i, doc_id=h.doc_id, title=h.title, date=h.date, source=h.source,
                                  snippet=s.text, start=s.start, end=s.end, score=round(s.score, 4)))
        parts.append(f"{s.text} [{i}]")
    return Answer(text=" ".join(parts), citations=citations, refused=False, backend=BACKEND, question=question,
                  hits=hits)


def refusal(question: str, hits: list[Hit], *, backend: str = BACKEND, limit: int = 3) -> Answer:
    """The articles don't answer: say so and show the closest passages (as citations) instead."""
    citations = []
    for i, h in enumerate(hits[:limit], 1):
        spans = split_sentences(h.text) or [(0, len(h.text))]
        s, e = spans[0]
        citations.append(Citation(n=i, doc_id=h.doc_id, title=h.title, date=h.date, source=h.source,
                                  snippet=h.text[s:e], start=h.start + s, end=h.start + e, score=h.score))
    text = REFUSAL + (" The closest passages are listed below." if citations else " No article matched.")
    return Answer(text=text, citations=citations, refused=True, backend=backend, question=question, hits=hits)

"""The offline answerer: one or two verbatim sentences from the retrieved passages, each cited.

How it picks (no generative model needed):
1. Every sentence of every retrieved passage is a candidate, with its similarity to the question
   (vectors stored at ingest), its share of the question's rarer words and its passage's rank.
2. The question's expected answer type (rag/question.py) selects typed spans in the sentences —
   names, dates, places, numbers — which vote across passages (rag/candidates.py).
3. Each sentence becomes a row of features (rag/features.py) and a model fitted on the dev sets
   (rag/ranker.py, ``python -m rag.fit``) gives the probability that it holds the answer. The answer
   is the likeliest sentence, plus a second one when it is nearly as likely.
4. When the passages do not cover the question's names, nothing is close enough, a count is about
   something else or a role is not named, it refuses, says what is missing, and shows the closest
   passages (rag/refusal.py).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import features as F, typefit
from .candidates import _cover, _most_specific, _vote
from .premise import NEGATION_SENTENCES, contradicted
from .question import _key_terms, question_type, split_question
from .ranker import Ranker, default_ranker
from .refusal import (  # noqa: F401 (ALONE_SENTENCES: re-exported)
    ALONE_SENTENCES,
    _should_refuse,
    _weak_answer,
    counted,
    counts,
    missing_note,
)
from .textutil import ADDRESSED, QUESTION_WORDS, content_stems, split_sentences, stem, words
from .types import Answer, Citation, Hit

REFUSAL = "The articles don't say."
DENSE_SENTENCES = 24  # sentences embedded per question when the index has no sentence vectors
TYPED_SHARE = 0.5  # for "how many": a sentence with a number stands in for a likelier one without, if at
# least this share as likely
W_DENSE, W_LEXICAL, W_RANK = 0.55, 0.35, 0.10  # a sentence's score: similarity, shared terms, passage rank
BACKEND = "extractive"
# a Markdown heading ("# Computational complexity theory") states nothing: it stays among the sentences
# (its words tell what the paragraph after it is about) but is never quoted as an answer
_HEADING = re.compile(r"#{1,6}\s")


def _unquotable(text: str) -> bool:
    """A heading, or text addressed to a model (textutil.ADDRESSED): never an answer, nor its context."""
    return bool(_HEADING.match(text) or ADDRESSED.search(text))


# A one-sentence answer that opens by pointing back ("It was released…", "The company said…") gets the
# sentence before it, which names what it points to (cross-validated: rtqa-dev 0.344 → 0.350, squad2-cct
# 0.751 → 0.761, split-half 0.772 → 0.782, the others unchanged, +1 median word; any "The <noun>"
# opening instead of these few: the same accuracy, 2–6 more words). One without a span of the asked
# type gets a neighbour that has one (squad2-cct 0.761 → 0.772, split-half 0.782 → 0.787; others equal).
_ANAPHOR = re.compile(r"(?:It|Its|This|That|These|Those|They|Their|He|His|She|Her|"
                      r"The (?:company|group|firm|team|show|film|city|country|state|agency|move|decision|bill|law))\b")
WINNER_EXTRA_WORDS = 15  # the sentence holding the vote winner may make a two-sentence answer this much longer
# (cross-validated over 0/15/30: rgb 0.74/0.76/0.76, rtqa-dev 0.331/0.344/0.350 at median 38/39/40 words)


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
    lead: int = 0  # which of ``sentences`` is the pick (the one before it may come first, as context)


def extract(question: str, hits: list[Hit], embedder, *, max_words: int = 45,
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
    votes: dict[str, float] = {}
    surface: dict[str, str] = {}
    where_found: dict[str, list[Sentence]] = {}
    fit_by_key: dict[str, float] = {}
    if qtype != "other":
        votes, own, surface, where_found = _vote(question, qtype, q_stems, hits, sentences)
        fit_by_key = typefit.candidate_fits(question, qtype, votes, surface, embedder.embed)
        if votes:
            candidate = _most_specific(max(votes, key=votes.get), votes, own, qtype)
    X = _features(question, hits, sentences, sent_stems, q_stems, weights, key_terms, votes, where_found,
                  candidate, as_of, fit_by_key)
    if collect:
        return Extraction(sentences, refused, qtype, candidate=surface.get(candidate),
                          debug={"X": X, "why": why, "alone": alone})
    ranker = ranker or default_ranker()
    p = ranker.score(X)
    p[[i for i, s in enumerate(sentences) if _unquotable(s.text)]] = 0.0
    return _decide(question, qtype, hits, sentences, X, p, ranker, alone,
                   surface.get(candidate) if candidate else None, where_found.get(candidate, []), max_words, embedder)


def _features(question, hits, sentences, sent_stems, q_stems, weights, key_terms, votes, where_found,
              candidate, as_of, fit_by_key) -> np.ndarray:
    """The rows rag/ranker.py scores (see rag/features.py for what each column means)."""
    from .timeframe import time_window

    window = time_window(question, as_of)
    flags = [0.0 if window is None or not h.date else (1.0 if window.contains(h.date) else -1.0) for h in hits]
    ctx = F.Context(q_stems, weights, [F.title_overlap(q_stems, weights, h.title) for h in hits], flags,
                    question_type(question), doc_ids=[h.doc_id for h in hits])
    top = max(votes.values()) if votes else 0.0
    vote = {id(s): 0.0 for s in sentences}
    typed = {id(s): False for s in sentences}
    for key, found in where_found.items():
        for s in found:
            typed[id(s)] = True
            vote[id(s)] = max(vote[id(s)], votes.get(key, 0.0) / top if top else 0.0)
    winners = {id(s) for s in where_found.get(candidate, [])} if candidate else set()
    cover = _cover(sentences, [k.lower() for k in key_terms])
    fit = typefit.per_sentence(fit_by_key, where_found, sentences) if fit_by_key else None
    return F.rows(sentences, ctx, sent_stems=sent_stems, cover=[cover[id(s)] for s in sentences],
                  typed=[typed[id(s)] for s in sentences], vote=[vote[id(s)] for s in sentences],
                  winner=[id(s) in winners for s in sentences], lead=[s.start < 600 for s in sentences],
                  type_fit=fit)


def _decide(question, qtype, hits, sentences, X, p, ranker, alone, candidate, winner_sents, max_words,
            embedder) -> Extraction:
    """The fitted scorer's pick: the most probable sentence, plus a second one when it is nearly as
    probable and the answer stays short."""
    order = ranker.order(X, p)
    if not p[order[0]] > 0:  # every sentence is a heading or addressed to a model
        return Extraction([], True, qtype, debug={"why": "nothing quotable"})
    gives = _gives(question, qtype, sentences, X)
    if gives is not None and not gives[order[0]]:
        # the likeliest sentence holds no number (no date, no time): it cannot say how many (when);
        # a nearly as likely sentence that does takes its place, else the answer is a refusal
        typed = [j for j in order if gives[j] and p[j] >= TYPED_SHARE * p[order[0]]]
        if typed:
            order = np.array([typed[0]] + [j for j in order if j != typed[0]])
    best = sentences[order[0]]
    for s, pi in zip(sentences, p):
        s.score = float(pi)
    cand = candidate if best in winner_sents else None
    weak = _weak_answer(question, qtype, best, cand, hits, alone)
    if not weak:
        weak = contradicted(question, best.text, [sentences[j].text for j in order[:NEGATION_SENTENCES]], embedder.embed)
    if not weak and gives is not None and not gives[order[0]]:
        weak = f"the closest passage gives no {'number' if qtype == 'number' else 'date'}"
    if weak:
        return Extraction([], True, qtype, candidate=cand, debug={"why": weak})
    chosen = [best]
    # the second sentence: the best one holding the vote winner when the first does not (votes
    # across passages catch what one sentence's score misses), else the next most probable
    likely = [j for j in order[1:] if p[j] > 0 and p[j] >= ranker.second_ratio * p[order[0]]]
    second = [j for j in likely if sentences[j] in winner_sents] if best not in winner_sents else []
    for j in second + [j for j in likely if j not in second]:
        s = sentences[j]
        cap = max_words + (WINNER_EXTRA_WORDS if j in second else 0)
        if s.text == best.text or len(words(best.text)) + len(words(s.text)) > cap:
            continue
        chosen.append(s)
        break
    if len(chosen) == 1:
        j = _context(qtype, sentences, X, p, order[0], max_words + WINNER_EXTRA_WORDS)
        if j is not None:  # in reading order
            pair = [sentences[j], best] if j < order[0] else [best, sentences[j]]
            return Extraction(pair, False, qtype, candidate=cand, lead=int(j < order[0]))
    return Extraction(chosen, False, qtype, candidate=cand)


def _context(qtype, sentences, X, p, i, max_words) -> int | None:
    """The sentence next to a lone pick ``i`` that it needs: the one before, when the pick opens by
    pointing back ("It sold…"); for a typed question whose pick holds no span of the type, the more
    likely neighbour that does (the answer is often in the sentence next to the one that restates the
    question). None when neither applies or the two would be too long."""
    def fits(j):
        return 0 <= j < len(sentences) and sentences[j].hit_index == sentences[i].hit_index and \
            len(words(sentences[i].text)) + len(words(sentences[j].text)) <= max_words and \
            not _unquotable(sentences[j].text)
    if _ANAPHOR.match(sentences[i].text):
        return i - 1 if fits(i - 1) else None
    typed = X[:, F.INDEX["has_type"]]
    if qtype != "other" and not typed[i]:
        near = [j for j in (i - 1, i + 1) if fits(j) and typed[j]]
        return max(near, key=lambda j: p[j]) if near else None
    return None


# Time phrases beside the date spans of rag/candidates.py. A pattern rather than dateparser's
# search_dates: only presence is needed, for every sentence of every answer, and that parser is slow
# and reads common words ("may", "march", "now") as dates.
_TIME_WORDS = re.compile(
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|today|yesterday|tonight|tomorrow|ago|"
    r"(?:last|this|next|earlier|later) (?:week|month|year|season|spring|summer|fall|autumn|winter|weekend)|"
    r"(?:in|since|until|by|from|during|before|after) (?:the )?(?:early |late |mid-?)?(?:\d{4}s?|\d{1,2}(?:st|nd|rd|th) century)|"
    r"morning|afternoon|evening|overnight|decades?|centur(?:y|ies))\b", re.I)


def _gives(question: str, qtype: str, sentences: list[Sentence], X: np.ndarray) -> list[bool] | None:
    """Per sentence, whether it can answer a "how many" (holds a number and says what the question
    counts: rag/refusal.py ``counted``) or a "when" question (holds a date, a weekday or
    a time phrase like "last week", "two years ago"); None for other types."""
    if qtype == "number":
        asked = counted(question)
        return [bool(x) and counts(asked, s.text) for x, s in zip(X[:, F.INDEX["has_type"]], sentences)]
    if qtype == "when":
        return [bool(x) or bool(_TIME_WORDS.search(s.text)) for x, s in zip(X[:, F.INDEX["has_type"]], sentences)]
    return None


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


def answer(question: str, hits: list[Hit], embedder, *,
           sentence_vectors: dict[str, dict[tuple[int, int], np.ndarray]] | None = None,
           as_of: str | None = None, ranker: Ranker | None = None) -> Answer:
    """``sentence_vectors``: per chunk id, the vectors stored at ingest (Engine.sentence_vectors);
    sentences without one are embedded now."""
    from . import verdict

    stmt = verdict.statement(question)
    if stmt:  # "True or false: …": the statement answered, then called true if the quotes state it
        ans = answer(stmt, hits, embedder, sentence_vectors=sentence_vectors, as_of=as_of, ranker=ranker)
        ans.question = question
        if not ans.refused:
            said = verdict.supported(stmt, [c.snippet for c in ans.citations])
            ans.text = ("True. " if said else "Not confirmed by the articles; the closest they come: ") + ans.text
        return ans
    parts = split_question(question)
    if not hits:
        return refusal(question, hits)
    exs = [extract(q, hits, embedder, sentence_vectors=sentence_vectors, as_of=as_of, ranker=ranker) for q in parts]
    if len(parts) > 1:  # a two-part question: each part answered by its own sentence
        sentences = []
        for ex in exs:
            if not ex.refused and ex.sentences and ex.sentences[ex.lead] not in sentences:
                sentences.append(ex.sentences[ex.lead])
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

"""What the offline answerer knows about each candidate sentence, as numbers a fitted model weighs.

One row per sentence of the retrieved passages. The weights that combine these (rag/ranker.py) are
fitted on the dev sets by ``python -m rag.fit``, not set by hand; a feature earns its place by what
the fit does with it on questions it was not trained on (the script prints cross-validated figures).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .textutil import content_stems, words

NAMES = (
    "bias",
    "dense",  # similarity to the question, the sentence read in its article's context
    "dense_gap",  # how far below the best sentence's similarity (0 for the best)
    "lexical",  # share of the question's content words (rarer ones weigh more)
    "lexical_gap",
    "hit_rank",  # 1/sqrt(1 + rank of its passage)
    "cover",  # share of the question's names in the sentence or the one before it
    "has_type",  # holds a span of the type asked for (a name for who, a number for how many, ...)
    "vote",  # the best vote of a typed span it holds, relative to the winning span (0: it holds none)
    "winner",  # holds the winning span
    "new_words",  # share of its content words that are not in the question (an answer adds something)
    "in_window",  # its article is dated in the question's time window ("this week")
    "out_window",  # dated outside the window
    "title_lexical",  # share of the question's content words in the article's title
    "lead",  # in the first ~600 characters of its article (news put the facts first)
    "log_words",
    "quote",  # opens with a quotation mark: more often colour than fact
    "question_mark",  # is itself a question
    # the vote again, one column per answer type: how far votes can be trusted differs by type
    "vote_who", "vote_when", "vote_where", "vote_number", "vote_entity", "vote_name",
    "echo",  # a question much like the one asked (quizzes quote their own questions)
    "new_name",  # holds a capitalised name the question does not mention (past its first word)
    "near_dense",  # the best similarity of the sentences just before and after it (same passage):
    "near_lexical",  # an answer often follows the sentence that restates the question's topic
    "missing_rare",  # the rarest question word absent from it and its neighbours (1 = the rarest of all):
    # a question that swaps one word of the text ("narrowly" for "broadly") is not answered there
    # how much its article is about the question: the best sentence similarity anywhere in the
    # article's retrieved passages (a sentence that answers often restates nothing; its article's other
    # sentences do). When added, CV: squad2-cct 0.777 → 0.802, rtqa-dev unchanged; split-half rtqa-dev
    # +0.006; the largest weight of all. (The title's similarity too got a weight of ~0: cut.)
    "doc_dense",
    "promo",  # a link to another story ("More:UAW says it will target Ford"): that story's headline.
    # The fit weighs it up, not down (quizzes are written from headlines): rtqa-dev 0.338 → 0.344 in CV
    "type_fit",  # how well its best candidate span fits the noun asked for ("which virus": Covid-19, not
    # Donald Trump; rag/typefit.py), 0 when it holds none or the question names no noun
)
QTYPES = ("who", "when", "where", "number", "entity", "name")
INDEX = {n: i for i, n in enumerate(NAMES)}


@dataclass
class Context:
    """Per-question facts the rows are computed against."""

    q_stems: set[str]
    weights: dict[str, float]  # idf-like weight of each question stem
    titles_lexical: list[float]  # per hit
    window_flags: list[float]  # per hit: 1 in window, -1 outside, 0 no window or undated
    qtype: str = "other"
    doc_ids: list[str] | None = None  # per hit


def title_overlap(q_stems: set[str], weights: dict[str, float], title: str) -> float:
    if not q_stems:
        return 0.0
    t = content_stems(title or "")
    total = sum(weights.values()) or 1.0
    return sum(w for s, w in weights.items() if s in t) / total


def rows(sentences, ctx: Context, *, sent_stems: list[set[str]], cover: list[float], typed: list[bool],
         vote: list[float], winner: list[bool], lead: list[bool], type_fit: list[float] | None = None) -> np.ndarray:
    """The feature matrix, one row per sentence (columns in NAMES order)."""
    n = len(sentences)
    X = np.zeros((n, len(NAMES)), dtype=np.float32)
    if not n:
        return X
    best_dense = max(s.dense for s in sentences)
    best_lex = max(s.lexical for s in sentences)
    top_w = max(ctx.weights.values(), default=1.0)
    doc_of = [ctx.doc_ids[s.hit_index] if ctx.doc_ids else s.hit_index for s in sentences]
    doc_best: dict = {}
    for d, s in zip(doc_of, sentences):
        doc_best[d] = max(doc_best.get(d, -1.0), s.dense)
    for i, s in enumerate(sentences):
        st = sent_stems[i]
        new = len(st - ctx.q_stems) / len(st) if st else 0.0
        wf = ctx.window_flags[s.hit_index]
        r = X[i]
        r[INDEX["bias"]] = 1.0
        r[INDEX["dense"]] = s.dense
        r[INDEX["dense_gap"]] = best_dense - s.dense
        r[INDEX["lexical"]] = s.lexical
        r[INDEX["lexical_gap"]] = best_lex - s.lexical
        r[INDEX["hit_rank"]] = 1.0 / math.sqrt(1 + s.hit_index)
        r[INDEX["cover"]] = cover[i]
        r[INDEX["has_type"]] = float(typed[i])
        r[INDEX["vote"]] = vote[i]
        r[INDEX["winner"]] = float(winner[i])
        r[INDEX["new_words"]] = new
        r[INDEX["in_window"]] = float(wf > 0)
        r[INDEX["out_window"]] = float(wf < 0)
        r[INDEX["title_lexical"]] = ctx.titles_lexical[s.hit_index]
        r[INDEX["lead"]] = float(lead[i])
        r[INDEX["log_words"]] = math.log(1 + len(words(s.text)))
        r[INDEX["quote"]] = float(bool(re.match(r"\s*[\"“‘']", s.text)))
        r[INDEX["question_mark"]] = float(s.text.rstrip().endswith("?"))
        if ctx.qtype in QTYPES:
            r[INDEX["vote_" + ctx.qtype]] = vote[i]
        r[INDEX["echo"]] = float(s.text.rstrip().endswith("?")) * s.lexical
        r[INDEX["new_name"]] = float(_has_new_name(s.text, ctx.q_stems))
        near = [j for j in (i - 1, i + 1) if 0 <= j < n and sentences[j].hit_index == s.hit_index]
        r[INDEX["near_dense"]] = max((sentences[j].dense for j in near), default=s.dense)
        r[INDEX["near_lexical"]] = max((sentences[j].lexical for j in near), default=0.0)
        around = st.union(*(sent_stems[j] for j in near))
        r[INDEX["missing_rare"]] = max((w for t, w in ctx.weights.items() if t not in around), default=0.0) / top_w
        r[INDEX["doc_dense"]] = doc_best[doc_of[i]]
        r[INDEX["promo"]] = float(bool(PROMO.match(s.text)))
        r[INDEX["type_fit"]] = type_fit[i] if type_fit else 0.0
    return X


# a kicker glued to another story's headline, as news sites link related stories inside an article:
# "More:…", "Eye drops recall:Recalled contaminated eye drops…", "► Investigation:If you've rented…"
PROMO = re.compile(r"[^.:!?]{2,45}:(?=[A-Z“\"‘'])")


_NAME = re.compile(r"(?<=\S\s)[A-Z][\w\-’']+(?:\s+[A-Z][\w\-’']+)*")


def _has_new_name(text: str, q_stems: set[str]) -> bool:
    from .textutil import stem

    for m in _NAME.finditer(text):
        if any(stem(w) not in q_stems for w in m.group().split()):
            return True
    return False

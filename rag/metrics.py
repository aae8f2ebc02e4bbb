"""Evaluation metrics as pure functions (no engine, no I/O), so each can be tested by hand.

Gold answers everywhere are *groups*: ``list[list[str]]``. Every group must be matched and a group is
matched by any one of its alternatives — the RGB convention (``"Tampa, Florida"`` ->
``[["Tampa, Florida"]]``; ``[["Dec 1, 2017", "December 1, 2017"]]`` -> one group, two spellings;
``["Kyiv", "Kharkiv"]`` -> two groups, both required). :func:`rag.qa.answer_groups` builds them.

Matching is on normalised text (case, accents, punctuation and ``[n]`` markers ignored) at word
boundaries, so ``"22"`` matches "at least 22 lives" but not "2022".

Retrieval hit rate and MRR are llama-index's ``HitRate`` and ``MRR``; we only decide which retrieved
passages are relevant.
"""
from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

Groups = Sequence[Sequence[str]]

_MARKER = re.compile(r"\[\d+\]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_ARTICLES = {"a", "an", "the"}


def normalize(text: str) -> str:
    """Lower case, accents and ``[n]`` markers removed, every run of non-alphanumerics one space."""
    text = _MARKER.sub(" ", text or "")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text.casefold()).strip()


def contains(text: str, needle: str) -> bool:
    """``needle`` occurs in ``text`` as whole words, after :func:`normalize` of both."""
    n = normalize(needle)
    if not n:
        return False
    return f" {n} " in f" {normalize(text)} "


def group_matched(text: str, group: Sequence[str]) -> bool:
    return any(contains(text, alt) for alt in group)


def answer_correct(text: str, groups: Groups, *, refused: bool = False) -> bool:
    """Correct = not a refusal and every group has an alternative in the text (RGB's rule)."""
    if refused or not groups:
        return False
    return all(group_matched(text, g) for g in groups)


def nugget_recall(text: str, nuggets: Groups, *, refused: bool = False) -> float | None:
    """Share of the nuggets (facts, each a group of alternative spellings) the answer contains;
    None without nuggets, 0 for a refusal."""
    if not nuggets:
        return None
    if refused:
        return 0.0
    return sum(group_matched(text, g) for g in nuggets) / len(nuggets)


def any_answer_in(text: str, groups: Groups) -> bool:
    """Some alternative of some group occurs in ``text`` (is this passage evidence at all?)."""
    return any(group_matched(text, g) for g in groups)


def tokens(text: str) -> list[str]:
    return [t for t in normalize(text).split() if t not in _ARTICLES]


def token_f1(prediction: str, groups: Groups) -> float:
    """SQuAD-style token F1 of the answer against the gold answer.

    The reference is one alternative per group, joined; for each group the alternative sharing the
    most tokens with the prediction is taken (so a spelling variant is not penalised).
    """
    pred = tokens(prediction)
    if not pred or not groups:
        return 0.0
    pred_counts = Counter(pred)
    ref: list[str] = []
    for g in groups:
        best = max(g, key=lambda alt: (sum((Counter(tokens(alt)) & pred_counts).values()), -len(tokens(alt))))
        ref.extend(tokens(best))
    if not ref:
        return 0.0
    common = sum((Counter(ref) & pred_counts).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_words(text: str) -> int:
    """Words in an answer, ``[n]`` citation markers not counted."""
    return len(_MARKER.sub(" ", text or "").split())


# --- retrieval ---------------------------------------------------------------------------------


def gold_article_match(source: str, doc_id: str, gold: Iterable[str]) -> bool:
    """A hit is from a gold article when its doc id, its source, or the source's file name is gold."""
    name = re.split(r"[\\/]", source)[-1]
    for g in gold:
        if g in (doc_id, source, name) or source.endswith("/" + g) or source.endswith("\\" + g):
            return True
    return False


def relevant_flags(passages: Sequence[tuple[str, str, str]], groups: Groups,
                   gold_articles: Sequence[str] = ()) -> list[bool]:
    """For each retrieved ``(text, doc_id, source)``: is it evidence for the question?

    A passage is relevant when it contains one of the gold answer strings; when gold articles are
    given it must also come from one of them (so a common answer like "one" found in an unrelated
    article does not count). With no answer strings (e.g. abstractive gold), the article decides.
    """
    flags = []
    for text, did, src in passages:
        ok = any_answer_in(text, groups) if groups else bool(gold_articles)
        if ok and gold_articles:
            ok = gold_article_match(src, did, gold_articles)
        flags.append(ok)
    return flags


def hit_and_rr(flags: Sequence[bool]) -> tuple[float, float]:
    """(hit rate, reciprocal rank) of one ranked list of relevance flags, via llama-index metrics."""
    if not flags or not any(flags):
        return 0.0, 0.0  # llama-index refuses empty expected ids; nothing relevant retrieved
    from llama_index.core.evaluation.retrieval.metrics import MRR, HitRate

    retrieved = [f"p{i}" for i in range(len(flags))]
    expected = [r for r, f in zip(retrieved, flags) if f]
    hit = HitRate(use_granular_hit_rate=False).compute(expected_ids=expected, retrieved_ids=retrieved).score
    rr = MRR(use_granular_mrr=False).compute(expected_ids=expected, retrieved_ids=retrieved).score
    return float(hit), float(rr)


# --- citations ---------------------------------------------------------------------------------


def citation_exact(snippet: str, start: int, end: int, article_text: str | None) -> bool:
    """The offset invariant: ``article.text[start:end] == snippet``."""
    if article_text is None or start < 0 or end > len(article_text) or start > end:
        return False
    return article_text[start:end] == snippet


def evidence_spans(article_text: str, evidence: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of every occurrence of each evidence quote in the article (exact text)."""
    spans = []
    for quote in evidence:
        q = quote.strip()
        if not q:
            continue
        pos = article_text.find(q)
        while pos != -1:
            spans.append((pos, pos + len(q)))
            pos = article_text.find(q, pos + 1)
    return spans


def citation_supported(snippet: str, start: int, end: int, groups: Groups,
                       evidence: Sequence[tuple[int, int]] = ()) -> bool:
    """A citation supports the answer when its span contains a gold answer string or overlaps a
    gold evidence span of the same article."""
    if any_answer_in(snippet, groups):
        return True
    return any(start < e and s < end for s, e in evidence)


# --- refusals and aggregates ---------------------------------------------------------------------


def refusal_scores(unanswerable: Sequence[bool], refused: Sequence[bool]) -> dict[str, float | None]:
    """Refusal precision/recall (positives = unanswerable questions) and the false-refusal rate
    (answerable questions refused). ``None`` when undefined (nothing to divide by)."""
    pairs = list(zip(unanswerable, refused))
    tp = sum(1 for u, r in pairs if u and r)
    fp = sum(1 for u, r in pairs if not u and r)
    n_unans = sum(1 for u, _ in pairs if u)
    n_ans = len(pairs) - n_unans
    return {
        "refusal_precision": tp / (tp + fp) if tp + fp else None,
        "refusal_recall": tp / n_unans if n_unans else None,
        "false_refusal": fp / n_ans if n_ans else None,
    }


def mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def median(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def percentile(values: Iterable[float | None], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): the smallest value with at least p% of values ≤ it."""
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return None
    rank = max(1, math.ceil(p / 100 * len(vals)))
    return vals[min(rank, len(vals)) - 1]

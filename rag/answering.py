"""From a question (and history) to an Answer: condense, retrieve, answer, verify, fall back.

The backend is chosen here from Settings; an LLM fault ends in a labelled extractive answer.
"""
from __future__ import annotations

from typing import Iterator

from . import extractive, overview
from .condense import condense_offline
from .errors import LLMError
from .question_kind import classify
from .types import Answer, Status


def answer_stream(engine, question: str, history: list[tuple[str, str]], *, top_k: int,
                  filters: dict, status: bool = False) -> Iterator[str | Answer | Status]:
    """Text deltas, then the Answer; with ``status``, also Status items while an LLM reads (the UI
    and `rag chat` show them: a local model may take a minute before its first token)."""
    settings = engine.settings
    llm = engine.llm if settings.answerer == "openai" else None
    standalone = question
    llm_fault: LLMError | None = None
    if history:
        standalone = condense_offline(question, history)
        if llm is not None:
            if status:
                yield Status("condensing", llm.backend)
            try:
                standalone = llm.condense(question, history) or standalone
            except LLMError as e:
                llm_fault = e  # the offline rewrite will do; and don't wait on a failing server twice
    hits = engine.retrieve(standalone, top_k, **filters)
    if llm is not None and llm_fault is not None:
        ans = _offline(engine, standalone, hits, filters.get("as_of"))
        ans.fallback_reason = f"{llm.backend} failed: {llm_fault}"
    elif llm is not None:
        try:
            final = None
            for piece in llm.stream(standalone, hits, status=status):
                if isinstance(piece, Answer):
                    final = piece
                else:
                    yield piece
            final.question, final.standalone_question = question, standalone
            _note_undated(engine, final, filters)
            yield final
            return
        except LLMError as e:
            ans = _offline(engine, standalone, hits, filters.get("as_of"))
            ans.fallback_reason = f"{llm.backend} failed: {e}"
    else:
        ans = _offline(engine, standalone, hits, filters.get("as_of"))
    ans.question, ans.standalone_question = question, standalone
    _note_undated(engine, ans, filters)
    yield ans.text
    yield ans


def _note_undated(engine, ans: Answer, filters: dict) -> None:
    """A refusal under a since/until filter says how many undated articles the filter left out:
    "No article matched" alone hides that they were never searched."""
    if not ans.refused or not (filters.get("since") or filters.get("until")):
        return
    n = engine.manifest.undated_count(filters.get("source"))
    if n:
        ans.text += f" {n} undated article{'s were' if n != 1 else ' was'} left out by the date filter."


def _offline(engine, question: str, hits, as_of: str | None = None) -> Answer:
    """The extractive answer, with the sentence vectors the index stored for these hits; open
    questions ("what happened", "summarize", "latest") get an overview of several articles instead."""
    kind = classify(question)
    if kind.is_overview:
        read = engine.with_leads(hits, overview.LEAD_DOCS)  # + each article's first chunk: where news puts its facts
        return overview.answer(question, hits, engine.embedder, sentence_vectors=engine.sentence_vectors(read),
                               as_of=as_of, order=kind.order, read=read)
    read = factoid_reading(engine, hits)
    ans = extractive.answer(question, read, engine.embedder, sentence_vectors=engine.sentence_vectors(read),
                            as_of=as_of)
    ans.hits = hits
    return ans


# The first chunk of this many top articles is read too for a factoid answer: news put the main fact
# in the lead, which retrieval may not return. Chosen by cross-validation (python -m rag.fit) over
# 0, 3, 5 and 8: rtqa-dev 0.318, 0.325, 0.306, 0.306; squad2-cct 0.746, 0.756, 0.746, 0.746.
FACTOID_LEADS = 3


def factoid_reading(engine, hits: list) -> list:
    """The passages a factoid answer reads: the retrieved ones, then the leads of the top articles."""
    return engine.with_leads(hits, FACTOID_LEADS)

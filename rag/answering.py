"""From a question (and history) to an Answer: condense, retrieve, answer, verify, fall back.

The backend is chosen here from Settings; an LLM fault ends in a labelled extractive answer.
"""
from __future__ import annotations

from typing import Iterator

from . import extractive
from .condense import condense_offline
from .errors import LLMError
from .types import Answer


def answer_stream(engine, question: str, history: list[tuple[str, str]], *, top_k: int,
                  filters: dict) -> Iterator[str | Answer]:
    settings = engine.settings
    llm = engine.llm if settings.answerer == "openai" else None
    standalone = question
    llm_fault: LLMError | None = None
    if history:
        standalone = condense_offline(question, history)
        if llm is not None:
            try:
                standalone = llm.condense(question, history) or standalone
            except LLMError as e:
                llm_fault = e  # the offline rewrite will do; and don't wait on a failing server twice
    hits = engine.retrieve(standalone, top_k, **filters)
    if llm is not None and llm_fault is not None:
        ans = _offline(engine, standalone, hits)
        ans.fallback_reason = f"{llm.backend} failed: {llm_fault}"
    elif llm is not None:
        try:
            final = None
            for piece in llm.stream(standalone, hits):
                if isinstance(piece, Answer):
                    final = piece
                else:
                    yield piece
            final.question, final.standalone_question = question, standalone
            yield final
            return
        except LLMError as e:
            ans = _offline(engine, standalone, hits)
            ans.fallback_reason = f"{llm.backend} failed: {e}"
    else:
        ans = _offline(engine, standalone, hits)
    ans.question, ans.standalone_question = question, standalone
    yield ans.text
    yield ans


def _offline(engine, question: str, hits) -> Answer:
    """The extractive answer, with the sentence vectors the index stored for these hits."""
    return extractive.answer(question, hits, engine.embedder, sentence_vectors=engine.sentence_vectors(hits))

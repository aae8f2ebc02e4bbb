"""Follow-up questions made standalone without an LLM.

Pronouns (he, she, it, they, there...) are replaced by the main name of the previous answer (or
question); elliptic questions ("and in Kharkiv?", "what about Kyiv?") borrow the previous question's
frame. The rewrite feeds retrieval and the extractive answerer; the user still sees their words.
"""
from __future__ import annotations

import re

from .textutil import STOP, words

_PRONOUN = re.compile(r"\b(he|she|him|his|her|they|them|their|it|its|there|this|that)\b", re.I)
_ELLIPTIC = re.compile(r"^\s*(?:and|what about|how about|and what about|what of)\b\s*(.*?)\??\s*$", re.I)
_NAME = re.compile(r"(?:[A-Z][\w'’\-]+)(?:\s+[A-Z][\w'’\-]+)+")


def _names(text: str) -> list[str]:
    out = []
    for m in _NAME.finditer(text):
        toks = [t for t in m.group().split() if t not in ("The", "A", "In", "On")]
        if len(toks) >= 2:
            out.append(" ".join(toks))
    return out


def _new_capitalised(answer: str, known: str) -> str | None:
    """The first capitalised word of the answer (not opening a sentence) that the conversation has
    not named yet: usually the place or name the previous answer introduced."""
    known_words = {w.lower() for w in words(known)}
    for m in re.finditer(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’\-]+", answer):
        w = m.group()
        if w.lower() not in known_words and w.lower() not in STOP:
            return w
    return None


def condense_offline(question: str, history: list[tuple[str, str]]) -> str:
    if not history:
        return question
    prev_q, prev_a = history[-1]
    m = _ELLIPTIC.match(question)
    if m and m.group(1):
        # "and in Kharkiv?" -> previous question with its last named place/entity swapped
        new = m.group(1).strip()
        prev_core = prev_q.rstrip("?")
        caps = [w for w in words(prev_core)[1:] if w[0].isupper()]
        if caps:
            return re.sub(rf"\b{re.escape(caps[-1])}\b", new.split()[-1] if new.split()[0].lower() in ("in", "at", "for", "of") else new, prev_core) + "?"
        return f"{prev_core} {new}?"
    if _PRONOUN.search(question):
        q_names = set(_names(question))
        prev_names = [n for n in _names(re.sub(r"\[\d+\]", "", prev_a)) if n not in q_names and n not in prev_q]
        subject = None
        if re.search(r"\b(he|she|him|his|her)\b", question, re.I) and prev_names:
            subject = prev_names[0]
        context = " ".join(w for w in words(prev_q) if w.lower() not in STOP and w.lower() not in ("who", "what"))
        place = _new_capitalised(re.sub(r"\[\d+\]", "", prev_a), prev_q + " " + question)
        if re.search(r"\bthere\b", question, re.I) and place:
            return re.sub(r"\bthere\b", f"in {place}", question, count=1, flags=re.I) + f" ({context})"
        if subject:
            rewritten = re.sub(r"\b(he|she|him)\b", subject, question, count=1, flags=re.I)
            rewritten = re.sub(r"\b(his|her)\b", subject + "'s", rewritten, count=1, flags=re.I)
            return f"{rewritten} ({context})"
        return f"{question} ({context})"
    return question

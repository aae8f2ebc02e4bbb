"""True-or-false questions ("True or false: Kelly Clarkson will release a new album this year"):
the statement is answered as any question, and called true only when the quoted sentences state it —
every name and number of it, most of its words, its negation if it has one, and no word flipped by a
negating prefix. Otherwise the answer quotes the closest sentences without a verdict: the passages
not saying so is no proof that it is false."""
from __future__ import annotations

import re

from .premise import NEGATION, flipped_term
from .question import _key_terms
from .refusal import _flat, mentioned
from .textutil import QUESTION_WORDS, content_stems, stem

_TRUE_OR_FALSE = re.compile(r"^\s*(?:true\s+or\s+false|true/false|fact\s+or\s+fiction)\s*[:?,.\-–—]\s*(?P<s>\S.*)$",
                            re.I | re.S)
# share of the statement's content words the quoted sentences must hold (the names and numbers: all)
COVER = 2 / 3


def statement(question: str) -> str | None:
    """The statement of a true-or-false question, else None."""
    m = _TRUE_OR_FALSE.match(question or "")
    return m.group("s").strip() if m else None


def supported(stmt: str, quoted: list[str]) -> bool:
    """Whether the quoted sentences state ``stmt`` (see the module docstring)."""
    text = " ".join(quoted)
    if not text:
        return False
    flat, stems = _flat(text), content_stems(text)
    if not all(mentioned(t, flat, stems) for t in _key_terms(stmt)):
        return False  # a name or number it does not state: another team, another score
    want = content_stems(stmt) - {stem(w) for w in QUESTION_WORDS}
    if want and len(want & stems) / len(want) < COVER:
        return False
    if NEGATION.search(stmt) and not NEGATION.search(text):
        return False  # "did not sign" is not stated by "signed" ("ruled out" may well be by "no")
    return not any(flipped_term(stmt, q) for q in quoted)

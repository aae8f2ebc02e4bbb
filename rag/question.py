"""Question analysis for factoid answers: what kind of answer a question asks for, its names, and
two-part questions. (Factoid or open question: rag/question_kind.py.)"""
from __future__ import annotations

import re

from .textutil import QUESTION_WORDS, STOP, words

_WH = r"(?:which|what)\s+(?:[\w.\-]+\s+){0,2}"  # "which (Russian) city", "what (new) company"


def question_type(q: str) -> str:
    """The expected answer type: who / when / where / number / entity / name (some other "which
    <noun>") / other.

    A quiz-style question sets the scene first ("The Kings ended a long playoff drought. When did
    they last make the postseason?"): the type is read from the sentence that asks."""
    ql = _asking_sentence(q).lower().strip()
    lead = _LEAD_CLAUSE.match(ql)
    if lead:  # "When extensive time is required to sort integers, this represents what case complexity?"
        ql = lead.group("rest")
    if re.search(r"\b(how many|how much|how old|how long|what percentage|death toll)\b|"
                 r"\bwhat (?:was|is|were|are) the (?:\w+ )?(?:number|amount|total|revenue|price|cost|population|score)\b|"
                 r"\b(?:which|what) day of\b|\brevenue\b", ql):
        return "number"
    if re.search(r"^(?:when|since when)\b|\bwhen\?$|\b(?:what|which) (?:year|date|day|month|time)\b|\b(?:date of|release date|"
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


# a subordinate clause before the question proper: its "when"/"if" does not ask anything
_LEAD_CLAUSE = re.compile(r"^(?:when|if|while|once|although|though|since|because|after|before)\b[^,?]*,\s*"
                          r"(?P<rest>.*\b(?:what|which|who|whom|whose|where|when|how)\b.*)$")


def _asking_sentence(q: str) -> str:
    """The last sentence that ends with a question mark (or colon, for "… with which of the
    following:"), else the whole text."""
    from .chunking import sentence_spans

    for s, e in reversed(sentence_spans(q)):
        if q[s:e].rstrip().endswith(("?", ":")):
            return q[s:e]
    return q


def _key_terms(question: str) -> list[str]:
    """Names and numbers in the question: terms a passage must mention to answer it."""
    terms = []
    for i, w in enumerate(words(question)):
        if w.lower() in STOP or w.lower() in QUESTION_WORDS:
            continue
        if "-" in w and not any(ch.isdigit() for ch in w):
            # "York-area", "Ohio-Pennsylvania": the names are the capitalised parts
            terms += [p for j, p in enumerate(w.split("-")) if p[:1].isupper() and (i > 0 or j > 0)]
        elif (w[0].isupper() and i > 0) or any(ch.isdigit() for ch in w):
            terms.append(w)
    return terms


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

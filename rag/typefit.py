"""Does a candidate answer fit the kind of thing asked for? "Which virus…" is not answered by "Donald
Trump", "which US state…" not by "Gretchen Whitmer", "which automaker…" not by "UAW". Without a tagger,
the embedding model knows enough: "Covid-19" sits closer to "virus" (0.43) than "Donald Trump" (0.25),
"Michigan" closer to "US state" (0.57) than "Gretchen Whitmer" (0.18). The asked-for noun is read from
"which/what <noun>"; the similarity of each candidate span to it is a feature the ranker weighs."""
from __future__ import annotations

import re

from .textutil import STOP

# "which (Pacific island) nation", "what type of medication" (the noun after "type of"); up to three
# words before the first stopword or verb-looking word
_ASKED = re.compile(r"\b(?:which|what)\s+(?:(?:type|kind|sort|form)s?\s+of\s+)?((?:[\w.’'\-]+\s+){0,2}[\w.’'\-]+)", re.I)
_VERBISH = re.compile(r"(?:ed|ing)$")
_IRREGULAR = frozenset("saw fell met won lost made took gave got hit led left ran set sent went became began broke brought "
                       "built came chose drove found held kept paid put rose sold spent stood struck told wrote grew "
                       "shut cut beat bought caught faced".split())
MAX_CANDIDATES = 24  # the best-voted spans embedded per question (one batch of short strings)


def asked_noun(question: str) -> str | None:
    """The noun phrase a "which/what <noun>" question asks for ("US state", "tech giant"), or None."""
    m = _ASKED.search(question)
    if not m:
        return None
    kept = []
    for w in m.group(1).split():
        low = w.lower()
        if (low in STOP and not w[:1].isupper()) or (kept and (_VERBISH.search(low) or low in _IRREGULAR)):
            break
        kept.append(w)
    return " ".join(kept) or None


def candidate_fits(question: str, qtype: str, votes: dict[str, float], surface: dict[str, str],
                   embed) -> dict[str, float]:
    """The best-voted candidate spans' (keys of ``votes``) similarity to the asked noun; {} when the
    question asks for no named thing. ``embed``: texts → unit vectors. (Reweighting the votes by it
    lost answers in CV: it only feeds the fitted ``type_fit`` column.)"""
    if not votes or qtype not in ("who", "where", "entity", "name") or not (noun := asked_noun(question)):
        return {}
    keys = sorted(votes, key=lambda k: -votes[k])[:MAX_CANDIDATES]
    vecs = embed([noun, *(surface.get(k, k) for k in keys)])
    return dict(zip(keys, (vecs[1:] @ vecs[0]).astype(float)))


def per_sentence(fit: dict[str, float], where_found: dict, sentences) -> list[float]:
    """Per sentence, the best fit of a candidate span it holds (0 when it holds none)."""
    best = {id(s): 0.0 for s in sentences}
    for key, f in fit.items():
        for s in where_found.get(key, []):
            best[id(s)] = max(best[id(s)], f)
    return [best[id(s)] for s in sentences]

"""Overview answers for open questions: several cited sentences from several articles, offline.

"What happened in Belgorod?" wants the facts — 22 dead, 110 injured, missiles and rockets, the
March attacks — not the one sentence a factoid answerer would pick. How the sentences are chosen:

1. Every sentence of the retrieved passages — plus the first chunk of each retrieved article, where
   news puts its main facts — is a candidate, except headings, photo captions, boilerplate and text
   addressed to a reader or a model ("ignore previous instructions…").
2. Relevance: similarity to the question (the sentence vectors stored at ingest, read in their
   article's context; see rag/sentvec.py), the question's own words, *information* (names,
   numbers, casualty counts, dates), and how many other articles repeat its facts. A sentence
   that only editorialises ("The international community must work towards a peaceful
   resolution…"), a quotation, or a long sentence loses to a short one that reports. Articles that
   do not name the question's subject (or lack its words, when it names nothing), or date from
   months before the story, count little; for
   "latest" questions newer articles count more.
3. Maximal marginal relevance picks up to 6 sentences (about 40–150 words, most answers under 120;
   one when nothing else retrieved is nearly as relevant)
   that each add a distinct fact: redundancy is the share of a sentence's numbers, names and
   words already in the answer (the in-context vectors are used only to spot copies, since they
   make any two sentences of one article look alike).
4. Disagreements between articles (rag/conflicts.py) get a "Reports differ: … [1] … [2]" line and
   ``Answer.conflicts``; their sentences are cited even when MMR left them out.
5. The sentences are grouped by article, one line per article with its date, ordered by date
   (newest first for "latest" questions), each followed by its [n]; every citation is the exact
   span ``article.text[start:end]``.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from . import conflicts as C
from .candidates import _CALENDAR
from .extractive import refusal
from .question_kind import CHRONOLOGICAL, OVERVIEW, RECENT
from .textutil import ADDRESSED, QUESTION_WORDS, STOP, content_stems, split_sentences, stem, words
from .types import Answer, Citation, Claim, Conflict, Hit

BACKEND = "extractive"
MAX_SENTENCES, MIN_SENTENCES = 6, 2
MAX_WORDS = 150  # hard cap on the answer (a conflict line may take it there)
SOFT_WORDS = 120  # sentences are added while the answer stays this short (the first two may go to MAX_WORDS)
MIN_SENT_WORDS, MAX_SENT_WORDS = 6, 60
MMR_LAMBDA = 0.7  # relevance against redundancy in the selection
STOP_RATIO = 0.45  # a further sentence, the second too, must score at least this share of the best one
RECENCY_DAYS = 7.0  # for "latest" questions: an article this many days older counts ~1/e less
W_DENSE, W_LEXICAL, W_INFO = 0.40, 0.15, 0.35
# (a bonus for an article's first sentences was cut: the leads are read — LEAD_DOCS — but a bonus on
# top of that cost nugget recall on both halves of both open sets; see note on LONG_WORDS)
W_CENTRAL = 0.20  # facts other articles repeat (see _centrality)
W_FOCUS = 0.05  # the sentence itself names the question's subject
# a sentence about what will or is expected to happen, for a question about what happened (not for
# "latest"): chosen on half a of the open sets (rtqa 0.665 → 0.70; 0.6: 0.68), half b and seeds unchanged
FUTURE_FACTOR = 0.8
QUOTE_FACTOR = 0.75  # a sentence that opens with a quotation, or asks a question
LONG_WORDS = 22  # sentences longer than this score less, by the square root of the excess
# (18–25 without the lead bonus all beat 28 with it on both halves of both open sets; 22 was chosen on
# the first halves — seeds 0.59 → 0.70, rtqa 0.61 → 0.68 — and the second halves moved 0.73 → 0.79
# and 0.42 → 0.45)
W_CUE = 0.30  # for "how did X react" / "why": a sentence that reports a reaction or a cause (0.15 → 0.30:
# better or equal on both halves of both open sets; 0.45 gave the same)
DUP_COS = 0.95  # in-context sentence vectors this close: the same sentence in another article's copy
TERMS_FREE = 0.3  # this share of a sentence's words may repeat earlier ones before it counts as redundant
OFF_TIME_DAYS, OFF_TIME_FACTOR = 150, 0.6  # an article this long before the newest one on the subject
LEAD_DOCS = 8  # articles whose first chunk is read too (Engine.with_leads)

# words of the question that ask for an overview rather than name its topic
_OPEN_WORDS = {stem(w) for w in ("happen happened happening summarize summarise summary overview recap timeline "
                                 "chronology tell about latest new news update updates development developments "
                                 "describe explain outline react reaction respond response background going give "
                                 "know situation events event").split()}
_EDITORIAL = re.compile(
    r"\b(?:must|should|need(?:s)? to|urgent need|it is (?:crucial|important|undeniable|clear)|crucial|"
    r"important to note|"
    r"underscores?|highlights?|signif(?:y|ies)|reminds?|remains? (?:a|to be|dire|complex)|shines? through|"
    r"in conclusion|international community|path (?:to|towards) peace|peaceful resolution|complex dynamics|"
    r"no signs? of|no end in sight|human (?:cost|toll)|worrying|pressing global concern|remains to be seen)\b", re.I)
_BOILERPLATE = re.compile(
    r"sign up|newsletter|subscribe|follow (?:every|live|along|the latest|us)|click here|read more|live updates|"
    r"get live updates|delivered (?:straight )?to your inbox|this content (?:is )?free|all rights reserved|"
    r"^here(?:'s| is| are) (?:the |what |a )|"
    r"/\s?(?:getty images|reuters|afp|ap|ap photo|usa today(?: network| sports)?|shutterstock|bloomberg|epa)\b|"
    r"\b(?:getty images|ap photo|photo by|file photo)\b|"
    r"^\s*(?:related|photos?|video|watch|previously|editor's note)\s*:|^[A-Z0-9 '’&.-]{6,}:|"
    # a sentence that opens with "Read", "Watch", "Listen to", "Check out" addresses the reader: a link
    # to another story ("Read Jarrett Bell's column on…", "Watch the video here."), never a fact
    r"^(?:read|watch|listen to|check out)\b|^see (?:more|below|above|the|our|his|her|\w+['’]s)\b", re.I)
_CAPTION = re.compile(r"(?:\S+\s){0,5}\S*[a-z]/[A-Z]")  # a photo credit "Snyder Fire Department/Facebook" up front
_DATELINE = re.compile(r"(?:[A-Z][A-Za-z.]*,?\s+){1,4}?(?:\((?:AP|Reuters|AFP|CNN|UPI)\)\s+)?[—–−-]{1,2}\s+")
_NUMBER = re.compile(r"(?<![\w-])(?:[$€£]\s?)?\d[\d,.]*%?|"
                     r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"dozens?|hundreds?|thousands?|millions?|billions?)\b", re.I)
_MONTH = re.compile(r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|March|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
                    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|"
                    r"Sunday)\b")
_FUTURE = re.compile(r"\b(?:will|won’t|won't|would|(?:is|are) (?:expected|set|scheduled|likely) to|(?:is|are) (?:preparing|gearing up)|plans? to|predicts?|projected)\b", re.I)
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I’m|I've|I’ve|my|me)\b")
_CAP_WORD = re.compile(r"\b[A-Z][\w\u00C0-\u024F’'-]*")
_NOT_NAMES = frozenset(
    "The A An In On At For From By With As And Or But If This That These Those It Its He She They We I His Her "
    "Their Our You Your After Before During While When Where Who What Which Why How According Meanwhile However "
    "Also Here There Today Yesterday Mr Mrs Ms Dr Despite Although Since Until Over Under Amid Following Additionally "
    "Similarly Still Yet Then Now Some Many Most All Both Each Every No Not One Two Three "
    "OK Okay Hey Hi Hello Thanks Please Yes Well".split())


@dataclass
class Candidate:
    hit_index: int
    doc_id: str
    start: int  # offsets in the article
    end: int
    text: str
    date: str | None
    stored_span: tuple[int, int] = (0, 0)  # the sentence's span in its chunk as split at ingest: its vector's key
    vec: np.ndarray | None = None
    dense: float = 0.0
    lexical: float = 0.0
    info: float = 0.0
    focus: float = 0.0
    relevance: float = 0.0
    facts: frozenset[str] = field(default_factory=frozenset)  # numbers and names it states
    terms: frozenset[str] = field(default_factory=frozenset)  # its content stems, the story's own words left out


def answer(question: str, hits: list[Hit], embedder, *, sentence_vectors=None, as_of: str | None = None,
           order: str = CHRONOLOGICAL, read: list[Hit] | None = None) -> Answer:
    """The overview of ``hits`` for ``question`` (see the module docstring). ``read``: the passages
    to pick sentences from when they are more than the retrieved hits (``Engine.with_leads``)."""
    retrieved = hits
    hits = list(read or hits)
    if order == RECENT and as_of:
        hits = [h for h in hits if not h.date or h.date <= as_of] or hits  # "latest" as of that day
    cands = candidates(hits)
    anchors = anchor_names(question)
    if not cands:
        return _refused(question, retrieved)
    apart = _named_apart(question, anchors, hits, common=_common_words(embedder))
    if apart:
        return _refused(question, retrieved, why="names not in the passages: " + ", ".join(apart))
    score(question, hits, cands, embedder, sentence_vectors or {}, anchors, as_of=as_of, order=order)
    if max(c.dense for c in cands) < 0.15 and max(c.lexical for c in cands) < 0.34:
        return _refused(question, retrieved)  # nothing in the passages is about the question
    chosen = select(cands)
    pool = _conflict_pool(cands, chosen)
    found = C.find([C.Statement(c.text, c.doc_id, c.date) for c in pool], _anchor_words(anchors))
    disagreements = []
    for d in found[:2]:
        extra = [pool[i] for i, _ in d.claims if pool[i] not in chosen]
        if _words(chosen + extra) + 20 > MAX_WORDS and extra:
            # make room: drop the weakest chosen sentences that the disagreement does not need
            keep = {id(pool[i]) for i, _ in d.claims}
            while chosen and _words(chosen + extra) + 20 > MAX_WORDS:
                weakest = min((c for c in chosen if id(c) not in keep), key=lambda c: c.relevance, default=None)
                if weakest is None:
                    break
                chosen.remove(weakest)
        if _words(chosen + extra) + 20 <= MAX_WORDS:
            chosen.extend(extra)
            disagreements.append(d)
    ans = render(question, hits, chosen, pool, disagreements, order)
    ans.hits = retrieved
    return ans


# --- candidates ------------------------------------------------------------------------------------


def candidates(hits: list[Hit]) -> list[Candidate]:
    """Reportable sentences of the hits, each once (chunks overlap), in retrieval order."""
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    seen_text: set[str] = set()
    for hi, h in enumerate(hits):
        for s0, e0 in split_sentences(h.text):
            s, e = _drop_heading(h.text, s0, e0)
            text = h.text[s:e]
            key = (h.doc_id, h.start + s, h.start + e)
            norm = " ".join(words(text.lower()))
            if key in seen or norm in seen_text or not _reportable(text):
                continue  # syndicated copies repeat sentences word for word
            seen.add(key)
            seen_text.add(norm)
            out.append(Candidate(hi, h.doc_id, h.start + s, h.start + e, text, h.date, stored_span=(s0, e0)))
    return out


def _drop_heading(text: str, s: int, e: int) -> tuple[int, int]:
    """A sentence span that starts with a heading or dateline line ("CNN —", "Advertisment") starts
    after it: the span stays verbatim, only its start moves."""
    while True:
        nl = text.find("\n", s, e)
        if nl < 0:
            m = _DATELINE.match(text, s, e)  # "WASHINGTON — ", "SANTOS, Brazil (AP) — "
            return (m.end(), e) if m and len(words(text[m.end():e])) >= MIN_SENT_WORDS else (s, e)
        head = text[s:nl].strip()
        if head and (head[-1] in ".!?\"”" and len(words(head)) >= MIN_SENT_WORDS):
            return s, e  # a real sentence with a line break inside: leave it (it is dropped later)
        s = nl + 1
        while s < e and text[s].isspace():
            s += 1


def _reportable(text: str) -> bool:
    n = len(words(text))
    if not MIN_SENT_WORDS <= n <= MAX_SENT_WORDS or "\n" in text:
        return False
    if not re.match(r"[\"“‘'(]?[A-Z0-9\u00C0-\u00DE$€£]", text) or _CAPTION.match(text):
        return False  # the tail of a sentence split wrongly, or a photo caption ("Name/Agency A car …")
    if not re.search(r"[.!?\"”’)]\s*$", text):
        return False  # headings, captions, cut-off text
    if text.count("(") != text.count(")"):
        return False  # split inside a parenthesis ("…(the 1983 finale of “M.A.S.H.”"): half a sentence
    return not (_BOILERPLATE.search(text) or ADDRESSED.search(text))


# --- scoring --------------------------------------------------------------------------------------


_NAME_RUN = re.compile(r"[A-Z][\w\u00C0-\u024F’'.-]*(?:\s+[A-Z0-9][\w\u00C0-\u024F’'.-]*)*")
_IMPERATIVES = frozenset("Summarize Summarise Give Tell Describe Explain Outline Any Latest News Overview Timeline "
                         "Recap Brief Update Show List Please".split())


def anchor_names(question: str) -> list[str]:
    """The question's names ("Belgorod", "Damar Hamlin"): what the cited articles should be about."""
    out = []
    for m in _NAME_RUN.finditer(question):
        toks: list[str] = []
        for t in m.group().split() + [""]:
            base = re.sub(r"['’]s$", "", t.strip(".,;:?!\"“”()"))
            if base and not (base in _NOT_NAMES or base in _IMPERATIVES or base.lower() in STOP
                             or base.lower() in QUESTION_WORDS or stem(base) in _OPEN_WORDS):
                toks.append(base)
            elif toks:
                out.append(" ".join(toks))
                toks = []
    return list(dict.fromkeys(out))


def _anchor_words(anchors: list[str]) -> list[str]:
    """The distinctive words of the names, each of which may stand for it in an article ("Hamlin")."""
    return list(dict.fromkeys(w for a in anchors for w in a.split() if len(w) >= 3 and not w.isdigit()))


def conflict_anchors(question: str) -> list[str]:
    """What a disagreement must be about, for rag/conflicts.py: the words of the question's names."""
    return _anchor_words(anchor_names(question))


def _mentions(text_words: set[str], anchor: str) -> float:
    """Share of the name's words that ``text_words`` (lower case) contains."""
    toks = [w.lower() for w in words(anchor)]
    return sum(t in text_words for t in toks) / len(toks) if toks else 0.0


def _doc_focus(hits: list[Hit], anchors: list[str], q_stems: set[str] = frozenset()) -> dict[str, float]:
    """0..1 per article: how fully it names the question's names, the rarer names (among the hits)
    weighing more — "East Palestine" says more about an article than "Ohio"; for a question that
    names nothing, how many of its words the article has."""
    doc_text: dict[str, str] = defaultdict(str)
    for h in hits:
        doc_text[h.doc_id] += " " + h.text
    if not anchors:
        # no names ("the writers strike"): the question's own words stand for its subject, so an
        # article retrieved for its likeness alone ("affirmative action", the newest) counts little
        if not q_stems:
            return {d: 1.0 for d in doc_text}
        # (half of them is enough: "the strike" in a story about the writers strike)
        return {d: min(1.0, 2 * len(q_stems & content_stems(t)) / len(q_stems)) for d, t in doc_text.items()}
    doc_words = {d: {w.lower() for w in words(t)} for d, t in doc_text.items()}
    mention = {d: [_phrase(t, a) or 0.5 * (_mentions(doc_words[d], a) >= 0.5) * _mentions(doc_words[d], a)
                   for a in anchors] for d, t in doc_text.items()}
    n = len(doc_text)
    weight = [math.log(1 + n / (1 + sum(m[i] >= 1.0 for m in mention.values()))) + 0.1 for i in range(len(anchors))]
    return {d: sum(w * x for w, x in zip(weight, m)) / sum(weight) for d, m in mention.items()}


def _phrase(text: str, name: str) -> float:
    return 1.0 if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.I) else 0.0


def _off_time(hits: list[Hit], focus: dict[str, float]) -> set[str]:
    """Articles from months before the story: news questions ask about the latest story on their
    subject, so the newest article that names it sets the time; one dated long before it is
    probably an older story with the same names (last season's games, an earlier storm)."""
    dated = [h.date for h in hits if h.date and focus.get(h.doc_id, 0) >= 0.5]
    if not dated:
        return set()
    try:
        newest = dt.date.fromisoformat(max(dated))
        return {h.doc_id for h in hits if h.date and (newest - dt.date.fromisoformat(h.date)).days > OFF_TIME_DAYS}
    except ValueError:
        return set()


PREFIX = 6  # letters of a long name word that stand for it (see _named_apart)


def _named_apart(question: str, anchors: list[str], hits: list[Hit],
                 common: frozenset[str] = frozenset()) -> list[str]:
    """The question's names that no one article read names in full together with the others, or []
    when one does. "Hurricane Idalia" or "Sam Altman" only in part, or one name here and the other
    there, is another story: on rtqa-dev, every open question the articles answer had such an
    article, and 10 of 12 about stories they lack had none.

    A name of three words or more may lack one ("Super Bowl 57" for "Super Bowl LVII"), and so may a
    name of two ``common`` words ("Russian Army" for an article on Russian forces; "Hurricane Idalia"
    still needs "Idalia"). Names the question lists ("Belgorod and Pokrovsk", "A, B or C") are asked
    about each on its own: one of them is enough. A month, weekday or holiday ("in January", "on New
    Year's Eve") is a time, which the articles' dates give, not a name their text must have."""
    anchors = [a for a in anchors if not all(w.lower() in _CALENDAR | _HOLIDAYS for w in a.split())]
    if not anchors:
        return []
    doc_words: dict[str, set[str]] = defaultdict(set)
    for h in hits:
        for w in words(h.text):
            w = _fold(w)
            doc_words[h.doc_id] |= {w, w[:PREFIX]} if len(w) >= PREFIX else {w}
    # a long word counts by its first letters: "Ukrainian" names Ukraine, "Nigerian" Nigeria
    names = [[t if len(t) < PREFIX else t[:PREFIX] for t in map(_fold, words(a))] for a in anchors]
    spare = [int(len(ws) >= 3 or (len(ws) == 2 and all(_fold(w) in common for w in ws)))
             for ws in map(words, anchors)]
    listed = _listed(question, anchors)
    best: list[str] = anchors
    for ws in doc_words.values():
        missing = [a for a, toks, k in zip(anchors, names, spare) if sum(t in ws for t in toks) < len(toks) - k]
        if listed and len(set(missing) & listed) < len(listed):
            missing = [a for a in missing if a not in listed]
        if not missing:
            return []
        if len(missing) < len(best):
            best = missing
    return best


_LIST_GLUE = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|&|vs\.?|versus)\s*(?:the\s+)?", re.I)


def _listed(question: str, anchors: list[str]) -> set[str]:
    """The names the question lists side by side: "Belgorod and Pokrovsk", "Kharkiv, Odesa or Kyiv"."""
    spans = []
    for a in anchors:
        m = re.search(rf"(?<!\w){re.escape(a)}(?:['’]s)?(?!\w)", question)
        if m:
            spans.append((m.start(), m.end(), a))
    spans.sort()
    # a run of names glued by commas and words is a list when some glue is a word ("Kharkiv, Odesa
    # and Kyiv"); a comma alone is a place and its region ("East Palestine, Ohio")
    out: set[str] = set()
    chain: list[str] = []
    joined = False
    for (_, e1, a), (s2, _, b) in zip(spans, spans[1:]):
        glue = question[e1:s2]
        if _LIST_GLUE.fullmatch(glue):
            chain = chain or [a]
            chain.append(b)
            joined = joined or bool(glue.strip(" ,"))
            continue
        if joined:
            out.update(chain)
        chain, joined = [], False
    if joined:
        out.update(chain)
    return out


_HOLIDAYS = frozenset("eve christmas easter thanksgiving halloween hanukkah passover ramadan".split())
_COMMON: dict[int, tuple[object, frozenset[str]]] = {}


def _common_words(embedder) -> frozenset[str]:
    """Common English words: the whole words of the embedding model's vocabulary ("army", "bridge";
    not "idalia" or "tinubu", which it splits into pieces). Empty when the tokenizer will not say."""
    try:
        tok = embedder.tokenizer
        if id(tok) not in _COMMON or _COMMON[id(tok)][0] is not tok:
            _COMMON[id(tok)] = (tok, frozenset(w for w in tok.get_vocab() if len(w) >= 3 and w.isalpha()))
        return _COMMON[id(tok)][1]
    except Exception:  # a remote or test embedder without a vocabulary: no word counts as common
        return frozenset()


def _fold(word: str) -> str:
    """Lower case without accents or dots: "Pelé" is "Pele" in some articles, "U.S." is "US"."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word.lower())
                   if not unicodedata.combining(ch) and ch != ".")


def score(question: str, hits: list[Hit], cands: list[Candidate], embedder, stored: dict, anchors: list[str], *,
          as_of: str | None, order: str) -> None:
    """Set each candidate's ``relevance`` (and the parts it is made of)."""
    qv = embedder.embed_query(question)
    missing = []
    for c in cands:
        h = hits[c.hit_index]
        # a span moved past its heading keeps the vector of the sentence as stored: close enough, and
        # a vector of the sentence alone would not compare with the in-context ones
        c.vec = stored.get(h.chunk_id, {}).get(c.stored_span)
        if c.vec is None:
            missing.append(c)
    if missing:  # an index built before sentence vectors
        for c, v in zip(missing, embedder.embed([c.text for c in missing])):
            c.vec = np.asarray(v, dtype=np.float32)
    for c in cands:
        c.dense = float(c.vec @ qv)
    lo, hi = min(c.dense for c in cands), max(c.dense for c in cands)

    q_stems = content_stems(question) - {stem(w) for w in QUESTION_WORDS} - _OPEN_WORDS
    cues = _expansion(question)
    stems = [content_stems(c.text) for c in cands]
    all_facts = [_facts(c.text) for c in cands]
    stem_df: dict[str, int] = defaultdict(int)
    name_df: dict[str, int] = defaultdict(int)
    doc_stems: dict[str, set[str]] = defaultdict(set)
    for c, st, fs in zip(cands, stems, all_facts):
        doc_stems[c.doc_id] |= st
        for t in st:
            stem_df[t] += 1
        for f in fs:
            if not f.startswith("#"):
                name_df[f] += 1
    weights = {t: 1.0 + math.log(1 + len(cands) / (1 + stem_df.get(t, 0))) for t in q_stems}
    wsum = sum(weights.values()) or 1.0
    # words and names most sentences repeat ("Pelé", "Santos", "storm") are the story itself, not a
    # fact a sentence adds: left out of redundancy and centrality
    topic = {f for f, n in name_df.items() if n >= max(3, len(cands) // 10)} | {
        w.lower() for a in anchors for w in a.split()}
    topic_stems = {t for t, n in stem_df.items() if n >= max(3, len(cands) // 5)} | q_stems
    for c, st, fs in zip(cands, stems, all_facts):
        c.info = _information(c.text, fs)
        c.facts = frozenset(f for f in fs if f not in topic)
        c.terms = frozenset(t for t in st if t not in topic_stems)
    central = _centrality(cands)
    doc_focus = _doc_focus(hits, anchors, q_stems)
    off_time = _off_time(hits, doc_focus)
    ref = _reference_date(hits, as_of) if order == RECENT else None
    for c, st, cent in zip(cands, stems, central):
        # half from the sentence, half from its article: "this attack" is about what the article is about
        c.lexical = 0.5 * sum(w for t, w in weights.items() if t in st) / wsum + \
            0.5 * sum(w for t, w in weights.items() if t in doc_stems[c.doc_id]) / wsum
        sent_words = {w.lower() for w in words(c.text)}
        c.focus = (sum(_mentions(sent_words, a) for a in anchors) / len(anchors)) if anchors else 0.5
        dense = (c.dense - lo) / (hi - lo) if hi > lo else 1.0
        rel = (W_DENSE * dense + W_LEXICAL * c.lexical + W_INFO * c.info + W_FOCUS * c.focus
               + W_CENTRAL * cent + W_CUE * bool(cues & st))
        n_words = len(c.text.split())
        if n_words > LONG_WORDS:
            rel *= (LONG_WORDS / n_words) ** 0.5  # a long sentence spends the budget of two facts
        if _EDITORIAL.search(c.text):
            rel *= 0.5 + 0.5 * c.info  # commentary without facts loses to reporting
        if c.text[:1] in "\"“‘'" or c.text.endswith("?") or _FIRST_PERSON.search(c.text):
            # a quotation, a question, a columnist's "I": how someone feels, rarely what happened
            rel *= QUOTE_FACTOR
        if order != RECENT and _FUTURE.search(c.text):
            rel *= FUTURE_FACTOR  # "what happened": a preview's prediction is not what happened
        rel *= 0.35 + 0.65 * doc_focus[c.doc_id]  # an article that never names the subject
        if c.doc_id in off_time:
            rel *= OFF_TIME_FACTOR  # months before the story: an older story with the same words
        if ref is not None:
            rel *= 0.5 + 0.5 * _recency(c.date, ref)
        c.relevance = rel


def _centrality(cands: list[Candidate]) -> list[float]:
    """0..1 per sentence: how many other articles state its facts and use its words. What several
    reports repeat — the toll, the age, the place — is what the story is; what one sentence alone
    says is usually a detail."""
    docs_of: dict[str, set[str]] = defaultdict(set)
    for c in cands:
        for x in c.facts | c.terms:
            docs_of[x].add(c.doc_id)

    def shared(x: str) -> float:
        return min(len(docs_of[x]) - 1, 3) / 3.0

    out = []
    for c in cands:
        raw = 2.0 * sum(shared(f) for f in c.facts) + sum(shared(t) for t in c.terms)
        out.append(1.0 - math.exp(-raw / 3.0))
    return out


# open questions about reactions or causes: the words that report them, not the question's
_REACTION = {stem(w) for w in "condemned condemn called urged said responded reacted vowed warned promised praised "
             "criticized criticised blamed demanded meeting statement protest tribute tributes mourn disputed denied "
             "rejected dismissed insisted accused slammed welcomed expressed retaliated vigil vigils rally rallied "
             "marched".split()}
_CAUSE = {stem(w) for w in "because response retaliation retaliate retaliating due after blamed blame reason cause "
          "caused following".split()}


def _expansion(question: str) -> set[str]:
    q = question.lower()
    if re.search(r"\b(?:react|reaction|respond|response)", q):
        return _REACTION
    if re.search(r"^why\b|\bwhy (?:did|do|does|is|are|was|were|has|have|had)\b", q):
        return _CAUSE
    return set()


_DEMONYM = re.compile(r"(?:ians?|eans?|ese|ish|ans)$")


def _information(text: str, facts: frozenset[str]) -> float:
    """0..1: how much a sentence reports — numbers count most (a casualty count most of all), then
    names and dates; demonyms ("Russians") count little."""
    score = 0.0
    for f in facts:
        if f.startswith("#"):
            score += 1.0 if any(ch.isdigit() for ch in f) else 0.8
        else:
            score += 0.2 if _DEMONYM.search(f) else 0.6
    if _MONTH.search(text):
        score += 0.5
    if any(f.quantity != "date" for f in C.facts(text)):
        score += 1.0  # "killing at least 22", "eight were injured": what a reader of the news wants first
    return 1.0 - math.exp(-score / 3.0)  # saturating: a list of names is not worth more than a fact


def _facts(text: str) -> frozenset[str]:
    """The numbers ("#22") and names ("belgorod") a sentence states, to tell new facts from repeats."""
    out = {"#" + re.sub(r"[^\d.]", "", m.group()) if any(ch.isdigit() for ch in m.group()) else "#" + m.group().lower()
           for m in _NUMBER.finditer(text)}
    toks = list(_CAP_WORD.finditer(text))
    for i, m in enumerate(toks):
        w = m.group().strip("’'-")
        if m.start() == 0 or w in _NOT_NAMES or _MONTH.fullmatch(w) or len(w) < 2:
            continue
        out.add(re.sub(r"['’]s$", "", w).lower())
    return frozenset(x for x in out if x not in ("#", "#."))


def _reference_date(hits: list[Hit], as_of: str | None) -> dt.date | None:
    """"Now" for "latest": as_of when given, else the newest date among the hits."""
    if as_of:
        try:
            return dt.date.fromisoformat(as_of)
        except ValueError:
            pass
    dates = [h.date for h in hits if h.date]
    return dt.date.fromisoformat(max(dates)) if dates else None


def _recency(date: str | None, ref: dt.date) -> float:
    if not date:
        return 0.3
    try:
        age = (ref - dt.date.fromisoformat(date)).days
    except ValueError:
        return 0.3
    return math.exp(-max(age, 0) / RECENCY_DAYS)


# --- selection ------------------------------------------------------------------------------------


def select(cands: list[Candidate], trace: list | None = None) -> list[Candidate]:
    """Maximal marginal relevance: each next sentence relevant and unlike those already chosen.
    ``trace`` collects (mmr, stop level, sentence) per step, for tuning."""
    chosen: list[Candidate] = []
    pool = sorted(cands, key=lambda c: -c.relevance)
    best = pool[0].relevance if pool else 0.0
    while pool and len(chosen) < MAX_SENTENCES:
        scored = [(MMR_LAMBDA * c.relevance - (1 - MMR_LAMBDA) * _redundancy(c, chosen), c) for c in pool]
        mmr, pick = max(scored, key=lambda x: x[0])
        mmr /= MMR_LAMBDA  # on the relevance scale, for the stopping rule
        if trace is not None:
            trace.append((round(mmr, 3), round(STOP_RATIO * best, 3), _redundancy(pick, chosen), pick.text[:90]))
        if mmr < STOP_RATIO * best:
            # also before the second sentence: a small index may hold only one sentence about the
            # question, and another article's unrelated one would pad the answer (in the dev open
            # sets a second sentence is never this weak, so their figures do not move)
            break
        pool.remove(pick)
        if _redundancy(pick, chosen) >= 0.9:
            continue  # the same fact again, in other words
        if _words(chosen + [pick]) > (SOFT_WORDS if len(chosen) >= MIN_SENTENCES else MAX_WORDS - 20):
            continue  # too long for what is left; a shorter one may fit
        chosen.append(pick)
    return chosen


def _redundancy(c: Candidate, chosen: list[Candidate]) -> float:
    """How much of ``c`` the chosen sentences already say, 0..1: the share of its numbers and names
    already stated, and of its words (the story's own words left out) already used.

    Not the vectors' similarity, except for near-copies: a sentence read in its article's context
    carries the article's topic, so any two sentences of one article look alike."""
    if not chosen:
        return 0.0
    if max(float(c.vec @ t.vec) for t in chosen) >= DUP_COS:
        return 1.0
    red = 0.0
    if c.facts:
        said = set().union(*(t.facts for t in chosen))
        red = 1.0 - len(c.facts - said) / len(c.facts)
    if c.terms:
        used = set().union(*(t.terms for t in chosen))
        overlap = len(c.terms & used) / len(c.terms)
        red = max(red, min(1.0, max(0.0, (overlap - TERMS_FREE) / (1.0 - TERMS_FREE))))
    return red


def _words(cands: list[Candidate]) -> int:
    """Words the answer will have: the sentences, and the date (or "Undated:") that opens each
    article's line when any article is dated."""
    dated = any(c.date for c in cands)
    return sum(len(c.text.split()) for c in cands) + (len({c.doc_id for c in cands}) if dated else 0)


def _conflict_pool(cands: list[Candidate], chosen: list[Candidate]) -> list[Candidate]:
    """What disagreements are looked for in: the chosen sentences first, then other relevant ones."""
    best = max((c.relevance for c in cands), default=0.0)
    rest = [c for c in sorted(cands, key=lambda c: -c.relevance) if c not in chosen and c.relevance >= 0.5 * best]
    return list(chosen) + rest


# --- the answer -----------------------------------------------------------------------------------


def _refused(question: str, hits: list[Hit], why: str = "") -> Answer:
    ans = refusal(question, hits, why=why)
    ans.kind = OVERVIEW
    return ans


def render(question: str, hits: list[Hit], chosen: list[Candidate], pool: list[Candidate],
           disagreements: list[C.Disagreement], order: str) -> Answer:
    """One line per article (date first), articles by date — newest first for "latest" questions."""
    by_doc: dict[str, list[Candidate]] = {}
    for c in chosen:
        by_doc.setdefault(c.doc_id, []).append(c)
    first_rank = {d: min(c.hit_index for c in cs) for d, cs in by_doc.items()}

    def doc_order(d: str):
        date = by_doc[d][0].date
        if order == RECENT:
            return (date is None, _neg(date), first_rank[d])
        return (date is None, date or "", first_rank[d])

    citations: list[Citation] = []
    number: dict[int, int] = {}  # id(candidate) -> n
    lines = []
    # among dated lines an undated article's line says so, or it reads as more of the line above
    any_dated = any(cs[0].date for cs in by_doc.values())
    for d in sorted(by_doc, key=doc_order):
        parts = []
        for c in sorted(by_doc[d], key=lambda c: c.start):
            h = hits[c.hit_index]
            n = len(citations) + 1
            number[id(c)] = n
            citations.append(Citation(n=n, doc_id=c.doc_id, title=h.title, date=c.date, source=h.source,
                                      snippet=c.text, start=c.start, end=c.end, score=round(c.relevance, 4)))
            parts.append(f"{c.text} [{n}]")
        date = by_doc[d][0].date
        lines.append((f"{date}: " if date else "Undated: " if any_dated else "") + " ".join(parts))
    conflicts = []
    for d in disagreements:
        idx = {i: number[id(pool[i])] for i, _ in d.claims}
        dates = {i: pool[i].date for i, _ in d.claims}
        lines.append(C.describe(d, idx, dates))
        conflicts.append(Conflict(quantity=d.quantity, subject=d.subject, claims=tuple(
            Claim(value=v, n=idx[i], doc_id=pool[i].doc_id, date=pool[i].date) for i, v in d.claims)))
    return Answer(text="\n".join(lines), citations=citations, refused=False, backend=BACKEND, question=question,
                  hits=hits, kind=OVERVIEW, conflicts=conflicts)


def _neg(date: str | None) -> str:
    """Sorts ISO dates newest first."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in (date or ""))

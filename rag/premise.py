"""Premise checks: the question says something the picked sentence contradicts, so that sentence does not
answer it. SQuAD 2.0's unanswerable questions were written this way — a negation inserted or dropped, a
word swapped for another or for its opposite, a number changed, a list asked longer than it is, "most"
turned into "least" — and a user's question can carry a wrong premise the same way. Each check returns
the reason (worded for the user by rag/refusal.py ``missing_note``) or ""; ``contradicted`` runs them
all. The figures in the comments are squad2-cct refusal recall in 5-fold cross-validation, each check's
share measured by removing it with the others in (or adding it last); no check costs an answer of RGB,
RealTime QA or the seeds set."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import numpy as np

from .textutil import QUESTION_WORDS, STOP, stem, words

# "What machine does not define BPP?": a question about what is *not* so. When none of the closest
# sentences says "not", "no", "never"… the passages do not answer it (news questions rarely ask one, and
# articles state the negation they report: "will not run", "no casualties"). "Never-before-seen" is no
# negation. Cross-validated: squad2-cct refusal recall 0.109 → 0.303 (split-half 0.104 → 0.299), false
# refusals 0.030 → 0.041, accuracy −0.006 (−0.005); rtqa-dev one more false refusal; seeds and rgb
# unchanged. "Whether or not" / "may or may not" then left out: false refusals back to 0.030, recall 0.339.
NEGATION = re.compile(r"\b(?:not|no|never|none|nor|neither|cannot)\b(?!-)|n[’']t\b", re.I)
_OR_NOT = re.compile(r"\bor\s+(?:\w+\s+)?not\b", re.I)  # "whether or not", "may or may not": no negated premise
NEGATION_SENTENCES = 3  # the closest sentences (by the fitted scorer) one of which must state a negation


@lru_cache(maxsize=256)
def _asked(question: str) -> str:
    """The sentence that asks, without "whether or not" (what the negation checks read; split once)."""
    from .question import _asking_sentence

    return _OR_NOT.sub("", _asking_sentence(question))


def unmet_negation(question: str, closest: list[str]) -> str:
    if NEGATION.search(_asked(question)) and not any(NEGATION.search(s) for s in closest):
        return "the question asks what is not so; the closest passages state no negation"
    return ""


# A negated verb the answer sentence states plainly: "What can not solve the knapsack problem…?" answered
# by "algorithms can solve the knapsack problem…", "How is M said not to operate?" by "M is said to
# operate…". (The check above only asks for some negation in the closest sentences; this one for the
# negated word itself.) Only a verb's negation: "no known algorithm" negates a noun phrase. Recall +0.054
# (the second and third word after the "not" too: +0.018 more, one answerable question lost).
_VERB_NEGATION = re.compile(r"^(?:not|never|cannot)$|n[’']t$", re.I)
_NEAR = 4  # words before the stated verb in which a negation of it would stand
# "not commonly believed", "not usually handle": the verb is negated, not the adverb
_ADVERB = re.compile(r"^(?:\w+ly|often|always|even|yet|still|really)$")


def stated_plainly(question: str, sentence: str) -> str:
    q = [w.lower() for w in words(_asked(question))]
    s = [w.lower() for w in words(sentence)]
    for i, w in enumerate(q):
        if not _VERB_NEGATION.search(w):
            continue
        verb = next((v for v in q[i + 1:i + 4] if v not in STOP and v not in QUESTION_WORDS and not _ADVERB.match(v)),
                    None)
        if verb is None:
            continue
        for j, x in enumerate(s):
            if stem(x) == stem(verb) and not any(NEGATION.fullmatch(y) or _VERB_NEGATION.search(y)
                                                 for y in s[max(0, j - _NEAR):j]):
                return f"the question says 'not … {verb}'; the passage says '{verb}' with no negation"
    return ""


# The other way round: the sentence negates what the question states. "What algorithm is always
# practical?" against "a polynomial time algorithm is not always practical", "What problem in C is harder
# than X?" against "no problem in C is harder than X": a negation followed by words the question says in
# the same order (NEGATED_RUN of them, one no stopword). Any negated word of the question instead cost
# 0.03 accuracy (articles negate in passing); runs of 3 caught fewer (recall +0.019 instead of +0.028).
NEGATED_RUN = 2


def negated_premise(question: str, sentence: str) -> str:
    if NEGATION.search(question):
        return ""
    q = [w.lower() for w in words(question)]
    runs = {tuple(q[k:k + NEGATED_RUN]) for k in range(len(q) - NEGATED_RUN + 1)}
    s = [w.lower() for w in words(sentence)]
    for j, x in enumerate(s):
        run = tuple(s[j + 1:j + 1 + NEGATED_RUN])
        if (NEGATION.fullmatch(x) or _VERB_NEGATION.search(x)) and run in runs and any(w not in STOP for w in run):
            return f"the passage says '{' '.join((x,) + run)}' where the question does not negate it"
    return ""


_ARTICLE = {"an": "a"}


def _lower(tokens: list[str]) -> list[str]:
    """Lower-cased words, "an" read as "a" (for comparing neighbours)."""
    return [_ARTICLE.get(t.lower(), t.lower()) for t in tokens]


def _same_context(q: list[str], s: list[str], i: int, j: int, *, strict: bool) -> bool:
    """Whether question word i and sentence word j (``_lower``) stand between the same neighbours (the
    end of both counts as one). Loose: one neighbour the same. ``strict``: both, and one of them no
    stopword or a third word the same too ("in C and *soft* for C" / "in C and hard for C")."""
    left = i > 0 and j > 0 and q[i - 1] == s[j - 1]
    ends = i + 1 == len(q) and j + 1 == len(s)
    right = ends or (i + 1 < len(q) and j + 1 < len(s) and q[i + 1] == s[j + 1])
    if not strict:
        return left or right
    if not (left and right):
        return False
    third = (i > 1 and j > 1 and q[i - 2] == s[j - 2]) or (i + 2 < len(q) and j + 2 < len(s) and q[i + 2] == s[j + 2])
    return q[i - 1] not in STOP or (not ends and q[i + 1] not in STOP) or third


# The other side of a negation: the question says "informal", "indirectly", "decrease" where the closest
# passage, in the same words around it, says "formal", "directly", "increase" (a negating prefix added,
# dropped or swapped). Cross-validated: squad2-cct refusal recall 0.303 → 0.344 (split-half 0.299 →
# 0.335), no answerable question of any set refused. (Any near-spelled word instead — "qualitative" for
# "quantitative" — also caught typos, "Turning machines", which a user may make and should still be
# answered.)
_NEG_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "de")


def _flipped(a: str, b: str) -> bool:
    for x, y in ((a, b), (b, a)):
        if any(x.startswith(p) and x[len(p):] == y for p in _NEG_PREFIXES) and len(y) >= 4:
            return True
    return any(p != p2 and a.startswith(p) and b.startswith(p2) and a[len(p):] == b[len(p2):] and len(a) - len(p) >= 4
               for p in _NEG_PREFIXES for p2 in _NEG_PREFIXES)


def flipped_term(question: str, closest: str) -> str:
    qt, st = _lower(words(question)), _lower(words(closest))
    have = set(st)
    for i, w in enumerate(qt):
        if w in STOP or w in QUESTION_WORDS or w in have:
            continue
        for j, v in enumerate(st):
            if _same_context(qt, st, i, j, strict=False) and _flipped(w, v):
                return f"the question says '{w}' where the passage says '{v}'"
    return ""


# A word swapped for another: "the graph isolation problem" where the sentence says "the graph
# isomorphism problem", "past actions" for "future actions", "various companies" for "various
# researchers". A question word the sentence lacks, standing between the sentence's neighbours of
# another word, is a swap when putting that word back changes what the question asks: the two questions'
# embeddings are less similar than SWAP_SIMILARITY. Paraphrases stay above it ("time needed" / "time
# required" 0.99, "a large share" / "a substantial share" 0.99). Capitalised words are left to the names
# test (and a misspelt name, "Turning machines", should still be answered), as are other forms of one word.
# Recall +0.095 at one answerable SQuAD question; 0.90 / 0.97 moved recall −0.01 / +0.03, the latter
# refusing an RGB answer ("the lead actress" / "the best actress"); swaps found on content-word stems
# instead of words: +0.027 more recall, three answers lost.
# The longer the question copies the sentence word for word around the swap, the less a paraphrase
# explains the change ("What uses a *flexible* set of rules to determine its future actions?" / "…uses a
# fixed set of rules to determine its future actions", 0.95): every copied word beyond COPIED_FREE raises
# the bar by COPIED_STEP. Paraphrases copy less ("to *abolish* the death penalty", 4 words, 0.96). Recall
# +0.018 (a logistic fit of swap-or-not on similarity and copied words agreed in direction, steeper).
SWAP_SIMILARITY = 0.93
COPIED_FREE, COPIED_STEP = 3, 0.01


def _copied(q: list[str], s: list[str], i: int, j: int) -> int:
    """How many words around question word i and sentence word j are the same, both ways."""
    n = 0
    while i - n > 0 and j - n > 0 and q[i - n - 1] == s[j - n - 1]:
        n += 1
    m = 0
    while i + m + 1 < len(q) and j + m + 1 < len(s) and q[i + m + 1] == s[j + m + 1]:
        m += 1
    return n + m


def swapped_term(question: str, sentence: str, embed: Callable[[list[str]], np.ndarray]) -> str:
    raw, s_raw = words(question), words(sentence)
    q, s = _lower(raw), _lower(s_raw)
    have = {stem(v) for v in s}  # a word the sentence has in another form ("functional" / "function") is there
    swaps = []
    for i, w in enumerate(q):
        if w in STOP or w in QUESTION_WORDS or stem(w) in have or not w.isalpha() or (i > 0 and raw[i][:1].isupper()):
            continue
        for j, v in enumerate(s):
            # another form of the word ("front" / "frontlines") is no swap (same stems are skipped above)
            if v in STOP or v.startswith(w) or w.startswith(v):
                continue
            if not _same_context(q, s, i, j, strict=True):
                continue
            swaps.append((raw[i], s_raw[j], _copied(q, s, i, j)))
    if not swaps:
        return ""
    restored = [re.sub(rf"\b{re.escape(a)}\b", b, question, count=1) for a, b, _ in swaps]
    vecs = embed([question] + restored)
    margins = vecs[1:] @ vecs[0] - [SWAP_SIMILARITY + COPIED_STEP * max(0, n - COPIED_FREE) for *_, n in swaps]
    k = int(np.argmin(margins))
    if margins[k] < 0:
        return f"the question says '{swaps[k][0].lower()}' where the passage says '{swaps[k][1].lower()}'"
    return ""


# A count the sentence gives otherwise: "multiplying three numbers" where it says "multiplying two
# numbers", "three different ways" where it says "two different ways". The number word or figure right
# before the same word (either of the next two, by stem) differs. Recall +0.013. Not for "how many"
# questions, whose own count is background ("how many of around two million Britons…": two RealTime QA
# questions were refused for "38 million", none of them answered right either way).
_COUNT = re.compile(r"\b((?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten|"
                    r"eleven|twelve)(?:\s+(?:hundred|thousand|million|billion|trillion))?)"  # "two million" is one number
                    r"\s+([A-Za-z][\w-]*)(?:\s+([A-Za-z][\w-]*))?", re.I)
_WORD_VALUE = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve"
                                                .split())}


_HOW_MANY = re.compile(r"\bhow (?:many|much)\b", re.I)


def _counts(text: str) -> dict[str, tuple[dict[str, str], str]]:
    """Per counted word (by stem): its counts (the value: as written) and the word as written."""
    out: dict[str, tuple[dict[str, str], str]] = {}
    for m in _COUNT.finditer(text):
        first, *magnitude = m.group(1).lower().split()
        value = " ".join([_WORD_VALUE.get(first, first.replace(",", "")), *magnitude])  # "two million": "2 million"
        for w in filter(None, m.group(2, 3)):
            if w.lower() not in STOP:
                out.setdefault(stem(w), ({}, w.lower()))[0][value] = m.group(1)
    return out


def other_count(question: str, sentence: str) -> str:
    if _HOW_MANY.search(question):  # "how many of the two million Britons…": the answer is another count
        return ""
    q, s = _counts(question), _counts(sentence)
    for key, (n, word) in q.items():
        if key in s and not n.keys() & s[key][0].keys():
            return f"the question counts {next(iter(n.values()))} {word} where the passage counts " \
                   f"{next(iter(s[key][0].values()))}"
    return ""


# "What are four examples of problems believed to be NP-intermediate?" answered by a sentence that lists
# three ("The graph isomorphism problem, the discrete logarithm problem and the integer factorization
# problem are examples…"): a question asking for N things (three or more) is not answered by a sentence
# whose longest list ("A, B and C", "A or B") has fewer. A sentence with no list says nothing either way.
# Recall +0.027.
_ASKS_N = re.compile(r"^(?:what|which|name|list)\s+(?:are\s+|were\s+)?(?:the\s+)?(?:other\s+)?"
                     rf"({'|'.join(_WORD_VALUE)}|\d+)\s+[a-z]", re.I)  # asking for one or two: never refused
_CONJ = re.compile(r"\b(?:and|or)\b", re.I)
LIST_ITEM_WORDS = 5  # an item longer than this is a clause, not a list item


def _listed(sentence: str) -> int:
    """Items in the sentence's longest list: short comma-separated items ending in one with "and"/"or"."""
    longest = 0
    for clause in re.split(r"[;:()]|\.\s", sentence):  # a sentence may hold two ("in P. Cook…")
        run = 0
        for part in clause.split(","):
            if joined := len(_CONJ.findall(part)):  # "…, and C" (a leading "and") adds one item, "B and C" two
                longest, run = max(longest, run + 1 + joined - bool(_CONJ.match(part.strip()))), 0
            else:
                run = run + 1 if len(part.split()) <= LIST_ITEM_WORDS else 0
    return longest


def too_few_listed(question: str, sentence: str) -> str:
    m = _ASKS_N.match(question.strip())
    if not m:
        return ""
    asked = int(_WORD_VALUE.get(m.group(1).lower(), m.group(1)))
    listed = _listed(sentence)
    if 2 <= listed < asked:
        return f"the question asks for {m.group(1).lower()}; the passage lists {listed}"
    return ""


# "What is the least important open question?" answered by "…one of the most important open questions":
# a question about what is *least* so needs a sentence that says so (least, fewest, lowest, smallest…).
# Recall +0.040 (SQuAD's ten "least" questions are all unanswerable; a question's "lowest" is not read as
# "least": one such is answered).
_LEAST_Q = re.compile(r"\bleast\b", re.I)
_LEAST_S = re.compile(r"\b(?:least|fewest|lowest|smallest|minimum|minimal|less|fewer|worst)\b", re.I)


def unmet_least(question: str, sentence: str) -> str:
    if _LEAST_Q.search(question) and not re.search(r"\bat least\b", question, re.I) and not _LEAST_S.search(sentence):
        return "the question asks what is least so; the passage says nothing of the least"
    return ""


# A word the sentence states the opposite of: "What is *easy* about proving lower bounds?" against
# "proving lower bounds is much more difficult"; "the *minimum* … time" against "the maximum time". The
# question's word is absent from the sentence (in any form), its opposite is there, and the question does
# not name both ("a simple or complex answer?"). A small table of common opposites (no antonym lexicon
# ships offline; "first/last" left out: "when did they last…" is no premise). Recall +0.045 in CV
# (+0.022 without the pairs that occur in the SQuAD article itself: simplicity, soft, qualitative), no
# answer of any set lost.
_OPPOSITE_PAIRS = (  # words | their opposites (words on one side mean the same)
    "easy|difficult,hard easier|harder easiest|hardest simple|complex simplicity|complexity,difficulty "
    "soft|hard minimum|maximum minimal|maximal least|most smallest|largest,biggest smaller|larger,bigger "
    "lowest|highest lower|higher,upper fewest|most fewer|more best|worst better|worse earliest|latest "
    "earlier|later past|future increase|decrease increased|decreased rise|fall rose|fell gain|loss won|lost "
    "win|lose success|failure qualitative|quantitative same|different allow|prevent allows|prevents "
    "accept|reject accepts|rejects inside|outside")


def _opposites() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pair in _OPPOSITE_PAIRS.split():
        a, b = (side.split(",") for side in pair.split("|"))
        for x, y in ((a, b), (b, a)):
            for w in x:
                out.setdefault(w, set()).update(y)
    return out


_OPPOSITE = _opposites()


def opposite_term(question: str, sentence: str) -> str:
    q = {w.lower() for w in words(_asked(question))}
    s = {w.lower() for w in words(sentence)}
    have = {stem(w) for w in s}
    for w in sorted(q & _OPPOSITE.keys()):
        if stem(w) not in have and not _OPPOSITE[w] & q and (said := sorted(_OPPOSITE[w] & s)):
            return f"the question says '{w}' where the passage says '{said[0]}'"
    return ""


def contradicted(question: str, best: str, closest: list[str], embed: Callable[[list[str]], np.ndarray]) -> str:
    """The first premise check the picked sentence ``best`` fails ("" when none): ``closest`` are the
    likeliest sentences, one of which must state a negation the question asks about; ``embed`` embeds
    texts (for the swap check, which runs last: it is the only one that costs an embedding)."""
    return unmet_negation(question, closest) or flipped_term(question, best) or stated_plainly(question, best) or \
        negated_premise(question, best) or other_count(question, best) or too_few_listed(question, best) or \
        unmet_least(question, best) or opposite_term(question, best) or \
        swapped_term(question, best, embed)

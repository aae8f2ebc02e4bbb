"""What kind of answer a question wants: a short factoid, or an overview of several cited sentences.

Factoid questions ask for one thing (who / when / where / how many / which …) and keep the
extractive answerer's one-or-two-sentence reply. Open questions ("what happened in X", "summarize",
"tell me about", "what's new", "timeline", "how did X react", "why") want the distinct facts of
several articles; they go to :mod:`rag.overview` (or to the LLM with the overview prompt).

Rules, not a model: a question is a factoid unless an open-question cue matches, so every phrasing
the factoid answerer handled before keeps its answer. Patterns are checked on the whole question
(lower case), the "latest" cues first because they also decide the order of an overview.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FACTOID, OVERVIEW = "factoid", "overview"
# how an overview orders its articles: by date (what happened, timeline, summaries) or newest first
CHRONOLOGICAL, RECENT = "chronological", "recent"

# cues of "what is new": the overview leads with the newest articles
_RECENT = re.compile(
    r"\bwhat(?:'s|’s| is| are)\s+(?:new|the latest|latest|the newest|the most recent)\b"
    r"|\b(?:latest|newest|most recent|recent)\s+(?:news|developments?|updates?|events?|on|about|in|reports?|"
    r"information|situation)\b"
    r"|\bany (?:news|updates?)\b|\b(?:give me an?|an?) update\b|\bupdate (?:me )?on\b"
    r"|\bwhat(?:'s| is| has been)\s+happening\b|\bwhat(?:'s|’s)? going on\b|\bnews (?:on|about)\b"
    r"|^(?:latest|news)\s+(?:on|about|from|in)\b")
# cues of other open questions
_OPEN = re.compile(
    r"\bwhat\s+(?:has\s+|had\s+|have\s+)?happened\b|\bwhat\s+(?:went|is going)\s+on\b"
    r"|\bsummari[sz]e\b|\bsummary\b|\boverview\b|\brecap\b|\bbackground\b|\btimeline\b|\bchronology\b"
    r"|\btell me (?:about|more)\b|\bwhat do (?:we|you|the articles) know\b"
    r"|^(?:please |can you |could you )?(?:describe|explain|outline)\b|\bbrief me\b|\bsequence of events\b"
    r"|\bhow (?:did|do|does|has|have|had|is|are|was|were|will)\b.{0,80}?\b(?:react|reacted|reacting|"
    r"respond|responded|responding|reaction|unfold|unfolded|develop|developed|cope|coped|coping|"
    r"recover|recovered|recovering)\b"
    r"|\bwhat (?:was|were|is|are|has been|have been) (?:the )?(?:(?!(?:one|two|three|four|five|\d+)\b)\w+ ){0,2}"
    r"(?:reactions?|responses?|consequences|impact|fallout|aftermath|developments?|effects?)\b"
    r"|^why\b|\bwhy (?:did|do|does|is|are|was|were|has|have|had)\b")


@dataclass(frozen=True)
class QuestionKind:
    kind: str  # FACTOID | OVERVIEW
    order: str = CHRONOLOGICAL  # for overviews: CHRONOLOGICAL | RECENT

    @property
    def is_overview(self) -> bool:
        return self.kind == OVERVIEW


def classify(question: str) -> QuestionKind:
    """``QuestionKind`` of ``question`` (already made standalone from the conversation)."""
    q = " ".join((question or "").replace("’", "'").lower().split())
    if _RECENT.search(q):
        # "who is the latest ..." / "which ... the most recent ..." still ask for one thing
        if re.match(r"(?:who|whom|whose|which|when|where|how (?:many|much|long|old))\b", q):
            return QuestionKind(FACTOID)
        return QuestionKind(OVERVIEW, RECENT)
    if _OPEN.search(q):
        return QuestionKind(OVERVIEW, CHRONOLOGICAL)
    return QuestionKind(FACTOID)


def question_kind(question: str) -> str:
    """"factoid" or "overview"."""
    return classify(question).kind

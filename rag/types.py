"""The data that crosses module boundaries: articles, chunks, hits, citations, answers, reports.

Plain typed dataclasses so the CLI, the UI and the evaluation scripts can render or serialise them
without knowing how they were produced (citations are data, never re-parsed from text).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One news article as read from a file: the text we index plus its news metadata."""

    text: str
    title: str
    date: str | None  # ISO "YYYY-MM-DD"
    source: str  # path or URL the article came from
    url: str | None = None
    author: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A span of an article: ``article.text[start:end] == text``."""

    doc_id: str
    index: int
    start: int
    end: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.index}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with the metadata of its article and its fused score."""

    text: str
    doc_id: str
    title: str
    date: str | None
    source: str
    start: int
    end: int
    score: float
    chunk_id: str = ""


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer; ``snippet`` is verbatim ``article.text[start:end]``."""

    n: int
    doc_id: str
    title: str
    date: str | None
    source: str
    snippet: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Claim:
    """One source's value in a disagreement: ``value`` as the article words it ("at least 22")."""

    value: str
    n: int  # the citation that quotes it
    doc_id: str
    date: str | None


@dataclass(frozen=True)
class Conflict:
    """Cited sources that give different values for the same quantity (a toll, an event's date)."""

    quantity: str  # "killed", "injured", "date"
    subject: str  # what it is about, e.g. "Belgorod" ("" when only the quantity is shared)
    claims: tuple[Claim, ...]


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    refused: bool
    backend: str
    question: str = ""
    standalone_question: str = ""
    hits: list[Hit] = field(default_factory=list)
    fallback_reason: str | None = None
    kind: str = "factoid"  # "factoid" (one short answer) or "overview" (several cited sentences)
    conflicts: list[Conflict] = field(default_factory=list)  # where the cited sources disagree

    def to_dict(self, *, with_hits: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_hits:
            d.pop("hits")
        return d


@dataclass(frozen=True)
class Status:
    """What the answerer is doing while no text streams yet (``engine.stream(..., status=True)``
    only): a local model may read the sources for a minute before its first token."""

    stage: str  # "condensing": rewriting a follow-up; "reading": reading the sources, no token yet
    backend: str  # "openai:<model>"
    sources: int = 0  # passages sent to the model
    elapsed: float = 0.0  # seconds since the request went out

    @property
    def message(self) -> str:
        if self.stage == "condensing":
            what = f"{self.backend} is reading the conversation"
        else:
            what = f"{self.backend} is reading {self.sources} source{'s' if self.sources != 1 else ''}"
        return what + (f"… {self.elapsed:.0f} s" if self.elapsed >= 1 else "…")


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    chars_embedded: int = 0
    sentences_backfilled: int = 0  # chunks of an older index given sentence vectors this run
    undated: int = 0  # articles in the whole index without a date after this run (a date filter drops them)

    def summary(self) -> str:
        verb = "would change" if self.dry_run else "done"
        return (
            f"{verb}: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s"
            + (f"; sentence vectors added to {self.sentences_backfilled} chunks of the older index"
               if self.sentences_backfilled else "")
            + (f"; {self.undated} article{'s have' if self.undated != 1 else ' has'} no date" if self.undated else "")
        )


@dataclass(frozen=True)
class Stats:
    articles: int
    chunks: int
    model: str
    bytes_on_disk: int
    last_ingest: str | None
    files: int = 0
    index_dir: str = ""
    chroma: str = "embedded"
    oldest: str | None = None  # the oldest article date (YYYY-MM-DD), None when no article is dated
    newest: str | None = None
    undated: int = 0  # articles without a date

    @property
    def date_span(self) -> str:
        """ "2023-01-02 to 2023-10-27 (12 undated)": what "this week" and --since/--until can reach;
        "" when no article is dated."""
        if not self.oldest:
            return ""
        return f"{self.oldest} to {self.newest}" + (f" ({self.undated} undated)" if self.undated else "")

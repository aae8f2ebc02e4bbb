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

    def to_dict(self, *, with_hits: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_hits:
            d.pop("hits")
        return d


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

    def summary(self) -> str:
        verb = "would change" if self.dry_run else "done"
        return (
            f"{verb}: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s"
            + (f"; sentence vectors added to {self.sentences_backfilled} chunks of the older index"
               if self.sentences_backfilled else "")
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

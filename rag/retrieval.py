"""Hybrid retrieval: dense (Chroma) + BM25 (bm25s), fused by reciprocal rank, with date/source
filters and a cap on chunks per article.

Fusion is the textbook RRF (score = sum of 1/(60 + rank)); it is a few lines, so we keep it here
rather than wrapping both sides as llama-index retrievers just to call its fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

from .types import Hit

RRF_K = 60


@dataclass(frozen=True)
class Filters:
    since: str | None = None
    until: str | None = None
    source: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.source)


def fuse(ranked_lists: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranked in ranked_lists:
        for rank, key in enumerate(ranked):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank + 1)
    return scores


def dense_where(filters: Filters, allowed: set[str] | None) -> dict | None:
    conds: list[dict] = []
    if filters.since:
        conds.append({"date": {"$gte": int(filters.since.replace("-", ""))}})
    if filters.until:
        conds.append({"date": {"$lte": int(filters.until.replace("-", ""))}})
        conds.append({"date": {"$gt": 0}})
    if filters.source and allowed is not None:
        conds.append({"doc_id": {"$in": sorted(allowed) or ["-"]}})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}


def cap_per_article(ranked: list[str], doc_of: dict[str, str], cap: int) -> list[str]:
    out, per = [], {}
    for cid in ranked:
        d = doc_of[cid]
        if per.get(d, 0) < cap:
            per[d] = per.get(d, 0) + 1
            out.append(cid)
    return out


def validate_date(value: str | None, name: str) -> str | None:
    import datetime as dt

    from .errors import UserError

    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UserError(f"--{name} must be a date like 2024-01-31, got {value!r}") from None


def make_hit(cid: str, doc_id: str, start: int, end: int, score: float, meta, text: str) -> Hit:
    title, date, source = meta
    return Hit(text=text[start:end], doc_id=doc_id, title=title, date=date, source=source, start=start,
               end=end, score=score, chunk_id=cid)

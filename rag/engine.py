"""The Engine: one index (manifest + vectors + BM25) and the models that read and answer from it.

Heavy pieces (embedding model, Chroma client, BM25, LLM client) load on first use and stay loaded,
so a long-lived process (UI, chat, eval) pays for them once.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from .config import Settings
from .errors import IndexMissingError, ModelMismatchError, RagError, UserError
from .retrieval import Filters, cap_per_article, dense_where, fuse, make_hit, validate_date
from .textutil import plain_question
from .types import Answer, Article, Hit, IngestReport, Stats

if TYPE_CHECKING:
    import numpy as np  # only for annotations: numpy loads with the first query


class Engine:
    def __init__(self, index_dir: str | os.PathLike | None = None, *, settings: Settings | None = None,
                 embedder=None, llm=None):
        s = settings or Settings.from_env()
        if index_dir is not None:
            s = s.with_(index_dir=Path(index_dir))
        self.settings = s
        self.index_dir = Path(s.index_dir)
        self._embedder = embedder
        self._dim_checked = False
        self._llm = llm
        self._manifest = None
        self._store = None
        self._bm25 = None
        self._shared = None
        self._pulled_at = 0.0  # when the shared index's generation was last looked at
        self._lock = threading.RLock()
        from .config import apply_offline_env

        apply_offline_env()

    # --- lazily built parts ---
    @property
    def embedder(self):
        if self._embedder is None:
            from .embedding import make_embedder

            s = self.settings
            if s.embed_url:
                from .remote_embedding import RemoteEmbedder

                self._embedder = RemoteEmbedder(s.embed_url, s.embed_model, api_key=s.embed_api_key,
                                                batch_size=s.embed_batch_size, max_tokens=s.embed_max_tokens,
                                                retries=s.embed_retries)
            else:
                self._embedder = make_embedder(s.embed_model, batch_size=s.embed_batch_size,
                                               device=s.embed_device, encoder=s.encoder, cache_dir=s.cache_dir)
        return self._embedder

    @property
    def shared(self):
        """The index as shared through the Chroma server (rag/shared.py); None when embedded."""
        if self._shared is None and self.settings.chroma_url:
            from .shared import SharedIndex

            self._shared = SharedIndex(self.store.client, self.settings.collection, self.settings.chroma_url)
        return self._shared

    def refresh(self, force: bool = False) -> bool:
        """A process sharing a Chroma server catches up with the writer's last ingest: at most every
        ``RAG_REPLICA_POLL`` seconds it compares generations and pulls what changed. True if it did."""
        import time

        if not self.settings.chroma_url:
            return False
        now = time.monotonic()
        if not force and now - self._pulled_at < self.settings.replica_poll:
            return False
        from .store import server_errors

        with self._lock, server_errors(self.settings.chroma_url):
            self._pulled_at = now
            if self.shared.pull(self.manifest):
                self._rebuild_bm25()
                return True
        return False

    @property
    def manifest(self):
        if self._manifest is None:
            from .manifest import Manifest

            self._manifest = Manifest(self.index_dir / "manifest.sqlite")
        return self._manifest

    @property
    def store(self):
        if self._store is None:
            from .store import VectorStore

            self._store = VectorStore(index_dir=self.index_dir, collection=self.settings.collection,
                                      chroma_url=self.settings.chroma_url)
        return self._store

    def _check_model(self) -> None:
        built_with = self.manifest.get_meta("model")
        if built_with and built_with != self.embedder.name:
            raise ModelMismatchError(
                f"index {self.index_dir} was built with embedding model {built_with!r}, not "
                f"{self.embedder.name!r}; use that model (RAG_EMBED_MODEL) or another --index")
        if self.settings.embed_url and not self._dim_checked:
            # a server can load another model under the same name: compare vector sizes once
            have, got = self.store.dim(), self.embedder.dim
            if have is not None and have != got:
                raise ModelMismatchError(
                    f"the embedding server at {self.settings.embed_url} returns {got}-dimensional vectors, but "
                    f"index {self.index_dir} holds {have}-dimensional ones; serve the model the index was built "
                    "with or use another --index")
            self._dim_checked = True

    # --- ingest ---
    def ingest(self, paths: Sequence[str | os.PathLike], *, dry_run: bool = False, progress: bool | None = None,
               on_progress=None) -> IngestReport:
        from .lock import write_lock
        from .manifest import Manifest
        from .sync import reconcile, resolve_roots, run_sync

        if not paths:
            raise UserError("give at least one file or folder to ingest")
        roots = resolve_roots(paths)  # a missing path fails before the index is touched
        progress = self.settings.progress if progress is None else progress
        kw = dict(embedder=self.embedder, max_file_bytes=self.settings.max_file_bytes,
                  overlap_tokens=self.settings.chunk_overlap_tokens, progress=progress, on_progress=on_progress)
        if dry_run:
            # plan against the manifest if there is one; never create an index just to plan
            exists = self._manifest is not None or (self.index_dir / "manifest.sqlite").exists()
            manifest = self.manifest if exists else Manifest(None)
            if exists:
                self._check_model()
            try:
                return run_sync(roots, manifest=manifest, store=None, dry_run=True, **kw)
            finally:
                if not exists:
                    manifest.close()
        from .store import server_errors

        with server_errors(self.settings.chroma_url), write_lock(self.index_dir):
            self._check_model()
            shared = self.shared
            if shared is None:
                reconcile(self.manifest, self.store)
                report = run_sync(roots, manifest=self.manifest, store=self.store, **kw)
            else:
                shared.acquire()  # one writer per collection, on any machine
                try:
                    # what the server has comes first (a lost manifest, another writer's articles);
                    # a copy made at the current generation keeps what a killed run committed
                    shared.pull(self.manifest, keep_local=True)
                    reconcile(self.manifest, self.store)
                    report = run_sync(roots, manifest=self.manifest, store=self.store, **kw)
                    shared.publish(self.manifest)
                finally:
                    shared.release()
            if self._bm25_on_disk() != self.manifest.generation:
                self._rebuild_bm25()
        return report

    def _bm25_on_disk(self) -> int | None:
        """The manifest generation the saved BM25 index was built at (None: absent or unreadable)."""
        import json

        try:
            return int(json.loads((self.index_dir / "bm25" / "ids.json").read_text())["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _rebuild_bm25(self):
        from .lexical import BM25Index

        gen = self.manifest.generation
        rows = [(cid, did, text) for cid, did, _s, _e, text in self.manifest.iter_chunks()]
        bm25 = BM25Index.build(rows, gen)
        bm25.save(self.index_dir / "bm25")
        self._bm25 = bm25
        return bm25

    @property
    def bm25(self):
        """The persisted BM25 index, reloaded only when the manifest has moved on."""
        from .lexical import BM25Index

        gen = self.manifest.generation
        if self._bm25 is None or self._bm25.generation != gen:
            loaded = BM25Index.load(self.index_dir / "bm25")
            if loaded is None or loaded.generation != gen:
                # built by an older writer or interrupted before saving: rebuild in memory only
                rows = [(cid, did, text) for cid, did, _s, _e, text in self.manifest.iter_chunks()]
                loaded = BM25Index.build(rows, gen)
            self._bm25 = loaded
        return self._bm25

    def ensure_index(self) -> None:
        """Build the index from the seeds folder when it is empty (first run on a fresh checkout)."""
        self.refresh()
        if not self.manifest.is_empty():  # checked on every question: must stay cheap at 100k chunks
            return
        seeds = self._seeds_dir()
        if seeds is None:
            raise IndexMissingError(f"index {self.index_dir} is empty and there is no seeds/ folder; "
                                    "run `rag ingest PATH` with your articles first")
        self.ingest([seeds], progress=False)

    def _seeds_dir(self) -> Path | None:
        candidates = []
        if self.settings.seeds_dir is not None:
            candidates.append(Path(self.settings.seeds_dir))
            candidates.append(Path(__file__).resolve().parent.parent / Path(self.settings.seeds_dir).name)
        for c in candidates:
            if c.is_dir() and any(c.iterdir()):
                return c
        return None

    # --- read side ---
    def retrieve(self, question: str, top_k: int | None = None, *, since: str | None = None,
                 until: str | None = None, source: str | None = None, mode: str | None = None,
                 as_of: str | None = None) -> list[Hit]:
        from .store import server_errors

        with server_errors(self.settings.chroma_url):
            return self._retrieve(question, top_k, since=since, until=until, source=source, mode=mode, as_of=as_of)

    def _retrieve(self, question: str, top_k: int | None, *, since: str | None, until: str | None,
                  source: str | None, mode: str | None, as_of: str | None) -> list[Hit]:
        """``as_of``: the "now" that time words in the question ("this week", "latest") refer to;
        default today. Such a question prefers articles dated in that window (rag/timeframe.py)."""
        from .timeframe import time_window

        question = plain_question(question)
        if not question:
            raise UserError("the question is empty; type a question about the articles")
        top_k = self.settings.top_k if top_k is None else top_k
        if top_k < 1:
            raise UserError("top_k must be at least 1")
        filters = Filters(validate_date(since, "since"), validate_date(until, "until"), source or None)
        window = time_window(question, validate_date(as_of, "as-of"))
        mode = mode or self.settings.retrieval_mode
        if mode not in ("hybrid", "dense", "bm25"):
            raise UserError(f"retrieval mode must be hybrid, dense or bm25, not {mode!r}")
        with self._lock:
            self.ensure_index()
            m = self.manifest
            allowed = m.doc_ids_where(since=filters.since, until=filters.until, source=filters.source) \
                if filters.active else None
            if allowed is not None and not allowed:
                return []
            n = max(self.settings.candidates, top_k * 4)
            ranked_lists: list[list[str]] = []
            where: dict[str, tuple[str, int, int]] = {}
            if mode in ("hybrid", "dense"):
                self._check_model()
                qv = self.embedder.embed_query(question)
                dense = self.store.query(qv, n, where=dense_where(filters, allowed))
                ranked_lists.append([r.chunk_id for r in dense])
                for r in dense:
                    where[r.chunk_id] = (r.doc_id, r.start, r.end)
            if mode in ("hybrid", "bm25"):
                lex = self.bm25.search(question, n, allowed)
                ranked_lists.append([cid for cid, _ in lex])
            if window is not None:
                # the same searches again, restricted to the window: articles of that time get a
                # second vote in the fusion, so they win ties without hiding the others
                wf = Filters(max(filters.since or "", window.since), min(filters.until or "9999", window.until),
                             filters.source)
                in_window = m.doc_ids_where(since=wf.since, until=wf.until, source=wf.source)
                if allowed is not None:
                    in_window &= allowed
                if in_window:
                    if mode in ("hybrid", "dense"):
                        dense_w = self.store.query(qv, n, where=dense_where(wf, in_window))
                        ranked_lists.append([r.chunk_id for r in dense_w])
                        for r in dense_w:
                            where[r.chunk_id] = (r.doc_id, r.start, r.end)
                    if mode in ("hybrid", "bm25"):
                        ranked_lists.append([cid for cid, _ in self.bm25.search(question, n, in_window)])
            scores = fuse(ranked_lists)
            missing = [cid for cid in scores if cid not in where]
            if missing:
                where.update(self._chunk_spans(missing))
            ranked = sorted((c for c in scores if c in where), key=lambda c: -scores[c])
            meta = m.docs_meta(where[c][0] for c in ranked)
            ranked = [c for c in ranked if where[c][0] in meta and (allowed is None or where[c][0] in allowed)]
            ranked = cap_per_article(ranked, {c: where[c][0] for c in ranked}, self.settings.per_article_cap)
            hits = []
            texts: dict[str, str] = {}
            for cid in ranked[:top_k]:
                did, s, e = where[cid]
                if did not in texts:
                    texts[did] = m.doc(did).text
                hits.append(make_hit(cid, did, s, e, scores[cid], meta[did], texts[did]))
            return hits

    def sentence_vectors(self, hits: Sequence[Hit]) -> dict[str, dict[tuple[int, int], np.ndarray]]:
        """Per chunk id, its sentences' vectors stored at ingest (none for indexes built before them)."""
        from . import sentvec

        with self._lock:
            blobs = self.manifest.sentence_vectors(h.chunk_id for h in hits if h.chunk_id)
        return {cid: sentvec.unpack(b) for cid, b in blobs.items()}

    def with_leads(self, hits: list[Hit], max_docs: int) -> list[Hit]:
        """``hits`` plus the first chunk of each of the first ``max_docs`` retrieved articles that did
        not come back with it.

        A news article puts its main facts in its first paragraph, while retrieval returns the chunks
        that share the question's words, often a later one. The lead chunks are read from the index
        (text and stored sentence vectors): nothing is embedded."""
        have = {h.chunk_id for h in hits}
        docs = list(dict.fromkeys(h.doc_id for h in hits))[:max_docs]
        want = [f"{d}:0" for d in docs if f"{d}:0" not in have]
        if not want:
            return hits
        with self._lock:
            spans = self._chunk_spans(want)
            first = {h.doc_id: h for h in reversed(hits)}
            out = list(hits)
            for cid in want:
                if cid in spans:
                    did, start, end = spans[cid]
                    h = first[did]
                    out.append(Hit(text=self.manifest.doc(did).text[start:end], doc_id=did, title=h.title,
                                   date=h.date, source=h.source, start=start, end=end, score=0.0, chunk_id=cid))
        return out

    def _chunk_spans(self, chunk_ids: list[str]) -> dict[str, tuple[str, int, int]]:
        out = {}
        db = self.manifest.db
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            q = f'SELECT chunk_id, doc_id, start, "end" FROM chunks WHERE chunk_id IN ({",".join("?" * len(part))})'
            for cid, did, s, e in db.execute(q, part):
                out[cid] = (did, s, e)
        return out

    def article(self, doc_id: str) -> Article:
        d = self.manifest.doc(doc_id)
        if d is None:
            raise UserError(f"no article with id {doc_id!r} in {self.index_dir}")
        return Article(text=d.text, title=d.title, date=d.date, source=d.source, url=d.url, author=d.author,
                       site=d.site)

    def stats(self) -> Stats:
        self.refresh()
        arts, chunks, files = self.manifest.counts()
        oldest, newest = self.manifest.date_range()
        size = sum(f.stat().st_size for f in self.index_dir.rglob("*") if f.is_file()) if self.index_dir.exists() else 0
        return Stats(articles=arts, chunks=chunks, model=self.manifest.get_meta("model") or self.settings.embed_model,
                     bytes_on_disk=size, last_ingest=self.manifest.get_meta("last_ingest"), files=files,
                     index_dir=str(self.index_dir), chroma=self.settings.chroma_url or "embedded",
                     oldest=oldest, newest=newest, undated=self.manifest.undated_count())

    # --- answering ---
    def query(self, question: str, history: Sequence[tuple[str, str]] | None = None, top_k: int | None = None,
              *, since: str | None = None, until: str | None = None, source: str | None = None,
              as_of: str | None = None) -> Answer:
        final = None
        for piece in self.stream(question, history=history, top_k=top_k, since=since, until=until, source=source,
                                 as_of=as_of):
            if isinstance(piece, Answer):
                final = piece
        assert final is not None
        return final

    def stream(self, question: str, history: Sequence[tuple[str, str]] | None = None, top_k: int | None = None,
               *, since: str | None = None, until: str | None = None, source: str | None = None,
               as_of: str | None = None, status: bool = False) -> Iterator[str | Answer]:
        """Text deltas, then the final Answer. ``status=True`` adds ``Status`` items (what an LLM is
        doing before its first token: "openai:m is reading 8 sources… 12 s")."""
        from .answering import answer_stream

        question = plain_question(question)
        if not question:
            raise UserError("the question is empty; type a question about the articles")
        yield from answer_stream(self, question, list(history or []),
                                 top_k=self.settings.top_k if top_k is None else top_k,
                                 filters=dict(since=since, until=until, source=source, as_of=as_of),
                                 status=status)

    @property
    def llm(self):
        if self._llm is None and self.settings.answerer == "openai":
            from .llm import OpenAIAnswerer

            self._llm = OpenAIAnswerer(self.settings)
        return self._llm

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default


def query(question: str, **kw) -> Answer:
    """Answer from the default index (``./index``, built from ``./seeds`` on first use)."""
    return default_engine().query(question, **kw)


__all__ = ["Engine", "query", "RagError"]

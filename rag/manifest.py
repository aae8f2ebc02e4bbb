"""The manifest: the index's source of truth, in SQLite next to the vectors.

It records which files (under which roots) map to which articles (content-hash ids), each
article's text and metadata, and its chunks' offsets. An article exists for the rest of the system
only once its row is committed here, which happens after its vectors are in Chroma; vectors without
a committed article are orphans from an interrupted run and are removed by the next ingest.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .types import Article, Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, root TEXT NOT NULL, hash TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, doc_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, source TEXT NOT NULL,
    url TEXT, author TEXT, site TEXT, text TEXT NOT NULL, n_chunks INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS sentences (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(doc_id);
CREATE TABLE IF NOT EXISTS repointed (doc_id TEXT PRIMARY KEY);
"""


@dataclass(frozen=True)
class FileRecord:
    path: str
    root: str
    hash: str
    size: int
    mtime_ns: int
    doc_ids: tuple[str, ...]


@dataclass(frozen=True)
class DocRecord:
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str | None
    author: str | None
    site: str | None
    text: str
    n_chunks: int


class Manifest:
    def __init__(self, path: Path | None):
        """``path=None``: an empty manifest in memory (a dry run against an index that does not exist
        yet writes nothing to disk)."""
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # WAL: readers (queries) never block on the single writer (ingest)
        self.db = sqlite3.connect(":memory:" if path is None else str(path), timeout=30,
                                  check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- meta ---
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped on every committed change; the BM25 index records the generation it was built at."""
        return int(self.get_meta("generation") or 0)

    # --- reads ---
    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute("SELECT path, root, hash, size, mtime_ns, doc_ids FROM files").fetchall()
        return {r[0]: FileRecord(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5]))) for r in rows}

    def doc_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT doc_id FROM docs")}

    def doc(self, doc_id: str) -> DocRecord | None:
        r = self.db.execute(
            "SELECT doc_id, title, date, source, url, author, site, text, n_chunks FROM docs WHERE doc_id=?",
            (doc_id,)).fetchone()
        return DocRecord(*r) if r else None

    def docs_meta(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str | None, str]]:
        """doc_id -> (title, date, source) for many ids at once."""
        ids = list(set(doc_ids))
        out: dict[str, tuple[str, str | None, str]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            q = f"SELECT doc_id, title, date, source FROM docs WHERE doc_id IN ({','.join('?' * len(part))})"
            for r in self.db.execute(q, part):
                out[r[0]] = (r[1], r[2], r[3])
        return out

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}

    def iter_chunks(self) -> Iterator[tuple[str, str, int, int, str]]:
        """(chunk_id, doc_id, start, end, text) for every chunk, in a stable order."""
        cur = self.db.execute(
            'SELECT c.chunk_id, c.doc_id, c.start, c."end", d.text FROM chunks c JOIN docs d USING(doc_id) '
            "ORDER BY c.doc_id, c.idx")
        for cid, did, s, e, text in cur:
            yield cid, did, s, e, text[s:e]

    def sentence_vectors(self, chunk_ids: Iterable[str]) -> dict[str, bytes]:
        """The packed sentence vectors (rag/sentvec.py) of these chunks, where the index has them
        (indexes built before they existed, or by an encoder without them, have none)."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        q = f"SELECT chunk_id, data FROM sentences WHERE chunk_id IN ({','.join('?' * len(ids))})"
        return dict(self.db.execute(q, ids).fetchall())

    def chunks_without_sentences(self) -> list[Chunk]:
        """The chunks that have no sentence vectors."""
        cur = self.db.execute(
            'SELECT c.doc_id, c.idx, c.start, c."end", d.text FROM chunks c JOIN docs d USING(doc_id) '
            "WHERE c.chunk_id NOT IN (SELECT chunk_id FROM sentences) ORDER BY c.doc_id, c.idx")
        return [Chunk(did, idx, s, e, text[s:e]) for did, idx, s, e, text in cur]

    def add_sentence_vectors(self, packed: dict[str, bytes]) -> None:
        with self._tx(bump=False):  # the answerer's data, not the index's content
            self.db.executemany("INSERT OR REPLACE INTO sentences SELECT ?, doc_id, ? FROM chunks WHERE chunk_id=?",
                                [(cid, blob, cid) for cid, blob in packed.items()])

    def is_empty(self) -> bool:
        """No article committed (one row looked at; counts() scans the tables)."""
        return self.db.execute("SELECT 1 FROM docs LIMIT 1").fetchone() is None

    def counts(self) -> tuple[int, int, int]:
        a = self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        f = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        return a, c, f

    def undated_count(self, source: str | None = None) -> int:
        """Articles without a date (of ``source``, matched as in doc_ids_where): a since/until filter
        leaves them out, and the user should hear how many."""
        q, args = "SELECT COUNT(*) FROM docs WHERE date IS NULL", []
        if source:
            q += " AND (source LIKE ? OR site LIKE ? OR url LIKE ?)"
            args += [f"%{source}%"] * 3
        return self.db.execute(q, args).fetchone()[0]

    def date_range(self) -> tuple[str | None, str | None]:
        """The oldest and newest article dates: what "this week" and a since/until filter can reach."""
        lo, hi = self.db.execute("SELECT MIN(date), MAX(date) FROM docs").fetchone()
        return lo, hi

    def doc_ids_where(self, *, since: str | None, until: str | None, source: str | None) -> set[str]:
        q, args = "SELECT doc_id FROM docs WHERE 1=1", []
        if since:
            q += " AND date IS NOT NULL AND date >= ?"
            args.append(since)
        if until:
            q += " AND date IS NOT NULL AND date <= ?"
            args.append(until)
        if source:
            q += " AND (source LIKE ? OR site LIKE ? OR url LIKE ?)"
            args += [f"%{source}%"] * 3
        return {r[0] for r in self.db.execute(q, args)}

    # --- writes (each call is one transaction) ---
    def commit_files(
        self,
        files: list[FileRecord],
        new_docs: list[tuple[str, Article, list[Chunk]]],
        sources: dict[str, str] | None = None,
        *,
        content_changed: bool = True,
        sentence_vectors: dict[str, bytes] | None = None,
    ) -> None:
        """Record files, the new articles they brought and the current source of reused articles,
        atomically. Articles no file references any more stay until ``remove_files`` at the end of
        the run, so content moving between files in one run keeps its vectors.
        ``content_changed=False``: only file stamps were refreshed, the generation stays."""
        with self._tx(bump=content_changed):
            for doc_id, a, chunks in new_docs:
                self.db.execute(
                    "INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?,?)",
                    (doc_id, a.title, a.date, a.source, a.url, a.author, a.site, a.text, len(chunks)))
                self.db.executemany(
                    'INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?)',
                    [(c.id, doc_id, c.index, c.start, c.end) for c in chunks])
                if sentence_vectors:
                    self.db.executemany("INSERT OR REPLACE INTO sentences VALUES (?,?,?)",
                                        [(c.id, doc_id, sentence_vectors[c.id]) for c in chunks
                                         if c.id in sentence_vectors])
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                                [(f.path, f.root, f.hash, f.size, f.mtime_ns, json.dumps(list(f.doc_ids)))
                                 for f in files])
            # point reused articles at their current file (after a rename, move or copy); a Chroma
            # server's copy of the article must follow (rag/shared.py publishes those again)
            moved = [(s, d) for d, s in (sources or {}).items()]
            self.db.executemany("INSERT OR IGNORE INTO repointed SELECT doc_id FROM docs WHERE source!=? AND doc_id=?",
                                moved)
            self.db.executemany("UPDATE docs SET source=? WHERE doc_id=?", moved)

    def repointed(self) -> set[str]:
        """Articles whose source file changed since ``clear_repointed`` (rag/shared.py)."""
        return {r[0] for r in self.db.execute("SELECT doc_id FROM repointed")}

    def clear_repointed(self, doc_ids: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM repointed WHERE doc_id=?", [(d,) for d in doc_ids])

    def update_docs(self, docs: list[tuple[str, str, dict]], files: list[FileRecord]) -> None:
        """New metadata (source, file) for articles this index has (rag/shared.py)."""
        with self._tx():
            self.db.executemany("UPDATE docs SET source=? WHERE doc_id=?", [(m["source"], d) for d, _t, m in docs])
            self._merge_files(files)

    def adopt(self, docs: list[tuple[str, str, dict]], chunks: list[tuple[str, str, int, int, int]],
              sentence_vectors: dict[str, bytes], files: list[FileRecord]) -> None:
        """Add articles as another process indexed them (rag/shared.py): (doc_id, text, metadata),
        their chunk rows (chunk_id, doc_id, idx, start, end), sentence vectors and the files they
        came from (merged with what is recorded for those paths)."""
        with self._tx():
            for did, text, m in docs:
                self.db.execute("INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?,?)",
                                (did, m["title"], m.get("date") or None, m["source"], m.get("url") or None,
                                 m.get("author") or None, m.get("site") or None, text, int(m["n_chunks"])))
            self.db.executemany("INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?)", chunks)
            self.db.executemany("INSERT OR REPLACE INTO sentences VALUES (?,?,?)",
                                [(cid, cid.rsplit(":", 1)[0], blob) for cid, blob in sentence_vectors.items()])
            self._merge_files(files)

    def _merge_files(self, files: list[FileRecord]) -> None:
        paths = [f.path for f in files]
        known: dict[str, tuple[str, ...]] = {}
        for i in range(0, len(paths), 500):  # only these files' rows: the whole table per batch is quadratic
            part = paths[i : i + 500]
            q = f"SELECT path, doc_ids FROM files WHERE path IN ({','.join('?' * len(part))})"
            known.update((p, tuple(json.loads(ids))) for p, ids in self.db.execute(q, part))
        for f in files:
            ids = tuple(dict.fromkeys(known.get(f.path, ()) + f.doc_ids))
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                            (f.path, f.root, f.hash, f.size, f.mtime_ns, json.dumps(list(ids))))

    def remove_files(self, paths: Iterable[str]) -> set[str]:
        """Forget files, then every article no file references. Returns the dropped doc ids (their
        vectors are the caller's to delete). Articles still referenced by another file whose source
        was a removed file are pointed at that other file."""
        paths = list(paths)
        with self._tx(bump=bool(paths)) as tx:
            self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])
            if paths:
                self._repoint_sources(set(paths))
            dead = self._drop_unreferenced()
            tx.bump = tx.bump or bool(dead)
            return dead

    def _repoint_sources(self, removed: set[str]) -> None:
        by_doc: dict[str, str] = {}
        for path, ids in self.db.execute("SELECT path, doc_ids FROM files ORDER BY path"):
            for d in json.loads(ids):
                by_doc.setdefault(d, path)
        for doc_id, source in self.db.execute("SELECT doc_id, source FROM docs").fetchall():
            if source in removed or source.split("#", 1)[0] in removed:
                if doc_id in by_doc:
                    self.db.execute("UPDATE docs SET source=? WHERE doc_id=?", (by_doc[doc_id], doc_id))
                    self.db.execute("INSERT OR IGNORE INTO repointed VALUES (?)", (doc_id,))

    def remove_docs(self, doc_ids: Iterable[str]) -> None:
        """Forget articles whose vectors are incomplete, and the files that brought them, so the
        next scan re-adds them."""
        ids = set(doc_ids)
        with self._tx():
            for f in self.files().values():
                if ids.intersection(f.doc_ids):
                    self.db.execute("DELETE FROM files WHERE path=?", (f.path,))
            for d in ids:
                self._forget_doc(d)

    def mark_ingest(self, model: str, readers: str | None = None) -> None:
        with self._tx(bump=False):  # bookkeeping, not a content change: BM25 stays valid
            self.set_meta("model", model)
            if readers is not None:
                self.set_meta("readers", readers)
            self.set_meta("last_ingest", time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def _drop_unreferenced(self) -> set[str]:
        live: set[str] = set()
        for (ids,) in self.db.execute("SELECT doc_ids FROM files"):
            live.update(json.loads(ids))
        dead = self.doc_ids() - live
        for d in dead:
            self._forget_doc(d)
        return dead

    def _forget_doc(self, doc_id: str) -> None:
        for table in ("sentences", "chunks", "docs"):
            self.db.execute(f"DELETE FROM {table} WHERE doc_id=?", (doc_id,))

    def _tx(self, bump: bool = True):
        """One transaction; ``bump``: a content change, so the generation moves on."""
        db = self.db

        class _Tx:
            def __init__(self_):
                self_.bump = bump

            def __enter__(self_):
                db.execute("BEGIN IMMEDIATE")
                return self_

            def __exit__(self_, et, ev, tb):
                if et is None:
                    if self_.bump:
                        gen = int((db.execute("SELECT value FROM meta WHERE key='generation'").fetchone() or [0])[0])
                        db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(gen + 1),))
                    db.execute("COMMIT")
                else:
                    db.execute("ROLLBACK")
                return False

        return _Tx()

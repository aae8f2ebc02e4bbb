"""One index shared through a Chroma server: what lets a second machine answer, and one writer.

With ``RAG_CHROMA_URL`` the server holds, besides the chunk vectors (collection ``NAME``):

- ``NAME__articles``: every article (text, title, date, source, url, author, site, and the file it
  came from), one record per article id, all in its metadata;
- ``NAME__sentences``: the answerer's sentence vectors of each chunk (rag/sentvec.py, base64 in its
  metadata; as documents they would get a full-text index three times their size);
- ``NAME__state``: in its collection metadata, the *generation* (bumped by the writer after each
  ingest) and the writer's *lease*.

The writer publishes after each ingest: the articles its manifest has and the server lacks are
added, the ones it dropped are deleted, and the generation moves on. Every process (a replica with
an empty folder, or a writer whose manifest was lost) *pulls*: when the server's generation differs
from the one its local copy was made at, it adds the articles it lacks (with their chunk rows from
the chunk collection and their sentence vectors) and drops the ones the server no longer has, into
its local manifest, which is then only a cache; BM25 is rebuilt from it. So a replica answers from
exactly the same rows as the writer, and nothing is embedded twice.

Chroma has no compare-and-set, so the lease is taken by writing it, waiting a moment and reading it
back: two writers starting in the same instant both see one winner. It lasts ``LEASE_SECONDS`` and
is renewed by a thread while the writer works; a writer that died on this host is recognised at
once (its pid is gone), one on another host when its lease expires.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from .errors import RagError

LEASE_SECONDS = 60.0
SETTLE_SECONDS = 0.3  # between writing the lease and reading it back
BATCH = 200  # articles per request when pulling or publishing


class LeaseHeld(RagError):
    """Another writer is ingesting into this collection."""


@dataclass(frozen=True)
class Lease:
    id: str
    holder: str
    host: str
    pid: int
    until: float

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.until))
        return f"{self.holder} until {when}"


def _tag(doc_or_chunk_id: str) -> list[float]:
    # Chroma wants a vector per record; these collections are never searched by vector, so a
    # one-number stand-in, distinct per id so the HNSW graph does not degenerate
    return [int(doc_or_chunk_id.encode().hex()[:8] or "0", 16) / 2**32]


class SharedIndex:
    def __init__(self, client, name: str, url: str):
        self.client = client
        self.name = name
        self.url = url
        self.chunks = client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        self.articles = client.get_or_create_collection(f"{name}__articles", embedding_function=None)
        self.sentences = client.get_or_create_collection(f"{name}__sentences", embedding_function=None)
        self.state_col = client.get_or_create_collection(f"{name}__state", embedding_function=None)
        self._lease: Lease | None = None
        self._generation: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._write_lock = threading.Lock()

    # --- state: generation and lease ---
    def _state(self) -> tuple[int, Lease | None]:
        md = self.client.get_collection(self.state_col.name).metadata or {}
        raw = md.get("lease") or ""
        lease = Lease(**json.loads(raw)) if raw else None
        return int(md.get("generation") or 0), lease

    def generation(self) -> int:
        return self._state()[0]

    def _write_state(self, generation: int, lease: Lease | None) -> None:
        with self._write_lock:
            self._put(generation, lease)

    def _put(self, generation: int, lease: Lease | None) -> None:
        self.state_col.modify(metadata={"generation": generation, "lease": json.dumps(lease.__dict__) if lease else ""})

    def acquire(self, seconds: float = LEASE_SECONDS) -> None:
        gen, held = self._state()
        if held is not None and held.until > time.time() and not _dead_here(held):
            raise LeaseHeld(f"another writer is ingesting into collection {self.name!r} at {self.url}: "
                            f"{held.describe()}; try again then (a dead writer's lease expires by itself)")
        host = socket.gethostname()
        mine = Lease(uuid.uuid4().hex, f"{host} pid {os.getpid()}", host, os.getpid(), time.time() + seconds)
        self._write_state(gen, mine)
        time.sleep(SETTLE_SECONDS)
        gen, now = self._state()
        if now is None or now.id != mine.id:
            raise LeaseHeld(f"another writer took the lease on collection {self.name!r} at {self.url} at the same "
                            f"moment: {now.describe() if now else 'unknown'}; try again")
        self._lease, self._generation = mine, gen
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, args=(seconds,), daemon=True, name="rag-lease")
        self._renewer.start()

    def _renew(self, seconds: float) -> None:
        while not self._stop.wait(seconds / 3):
            lease = self._lease
            if lease is None:
                return
            try:
                with self._write_lock:  # read and write together: publish may be moving the generation
                    if self._lease is None:
                        return
                    self._lease = Lease(lease.id, lease.holder, lease.host, lease.pid, time.time() + seconds)
                    self._put(self._generation or 0, self._lease)
            except Exception:  # noqa: BLE001 - a blip while renewing: the next renewal (or the expiry) settles it
                pass

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._write_lock:
            if self._lease is not None:
                self._put(self._generation or 0, None)
            self._lease = None

    # --- writer: publish what the manifest has ---
    def publish(self, manifest) -> int:
        """Make the server's articles and sentence vectors those of ``manifest``; bump the
        generation (only when something changed). Needs the lease."""
        assert self._lease is not None, "publish needs the lease"
        local = manifest.doc_ids()
        remote = _all_ids(self.articles)
        moved = manifest.repointed() & local & remote  # their file was renamed or moved: new source
        new, gone = sorted((local - remote) | moved), sorted(remote - local)
        # each record carries the generation it was published at: a replica asks for the ones newer
        # than its copy (how it learns that a known article moved to another file)
        gen = self._generation or 0
        target = max(gen, self.generation()) + 1
        files: dict[str, tuple] = {}
        for f in manifest.files().values():
            for d in f.doc_ids:
                files.setdefault(d, f)
        for i in range(0, len(new), BATCH):
            part = new[i : i + BATCH]
            metas = []
            for d in part:
                r = manifest.doc(d)
                f = files.get(d)
                # the text in metadata, not as a document: Chroma builds a trigram full-text index
                # over documents (3x their size), which nothing here searches
                metas.append({"text": r.text, "title": r.title, "date": r.date or "", "source": r.source,
                              "url": r.url or "", "author": r.author or "", "site": r.site or "",
                              "n_chunks": r.n_chunks, "file": f.path if f else "", "root": f.root if f else "",
                              "file_hash": f.hash if f else "", "file_size": f.size if f else -1,
                              "file_mtime": f.mtime_ns if f else -1, "gen": target})
            # sentences first: an article is visible to replicas only once all it needs is there
            cids = [cid for cid, _did in _chunk_rows_of(manifest, [d for d in part if d not in moved])]
            blobs = manifest.sentence_vectors(cids)
            if blobs:
                ids = sorted(blobs)
                self.sentences.upsert(ids=ids, embeddings=[_tag(c) for c in ids],
                                      metadatas=[{"doc_id": c.rsplit(":", 1)[0], "sv": base64.b64encode(blobs[c]).decode()}
                                                 for c in ids])
            self.articles.upsert(ids=part, embeddings=[_tag(d) for d in part], metadatas=metas)
        for i in range(0, len(gone), BATCH):
            part = gone[i : i + BATCH]
            self.articles.delete(ids=part)
            self.sentences.delete(where={"doc_id": {"$in": part}})
        manifest.clear_repointed(manifest.repointed())
        if new or gone or manifest.get_meta("shared_generation") != str(gen):
            with self._write_lock:
                gen = self._generation = max(target, self.generation() + 1)
                self._put(gen, self._lease)
        manifest.set_meta("shared_generation", str(gen))
        return gen

    # --- everyone: pull what the server has ---
    def pull(self, manifest, *, keep_local: bool = False) -> bool:
        """Bring ``manifest`` to the server's articles. ``keep_local``: a writer whose copy was made
        at the current generation keeps articles the server lacks (committed by a run that died
        before publishing them; this run publishes them). Returns whether anything changed."""
        gen = self.generation()
        if manifest.get_meta("shared_generation") == str(gen):
            return False
        remote = _all_ids(self.articles)
        local = manifest.doc_ids()
        new, gone = sorted(remote - local), sorted(local - remote) if not keep_local else []
        for i in range(0, len(new), BATCH):
            part = new[i : i + BATCH]
            got = self.articles.get(ids=part, include=["metadatas"])
            docs = [(d, m.pop("text"), m) for d, m in zip(got["ids"], got["metadatas"])]
            rows = self.chunks.get(where={"doc_id": {"$in": part}}, include=["metadatas"])
            chunks = [(cid, m["doc_id"], int(cid.rsplit(":", 1)[1]), int(m["start"]), int(m["end"]))
                      for cid, m in zip(rows["ids"], rows["metadatas"])]
            sents = self.sentences.get(where={"doc_id": {"$in": part}}, include=["metadatas"])
            blobs = {cid: base64.b64decode(m["sv"]) for cid, m in zip(sents["ids"], sents["metadatas"])}
            manifest.adopt(docs, chunks, blobs, _files_of(docs))
        if gone:
            manifest.remove_docs(gone)
        known = str(manifest.get_meta("shared_generation") or "")
        again: list = []
        if known.isdigit():  # known articles published again since (a renamed file): new metadata
            # ids first: the newly added ones (already fetched above) would otherwise come back with their text
            ids = [d for d in self.articles.get(where={"gen": {"$gt": int(known)}}, include=[])["ids"] if d in local]
            if ids:
                got = self.articles.get(ids=ids, include=["metadatas"])
                again = [(d, m.pop("text"), m) for d, m in zip(got["ids"], got["metadatas"])]
                manifest.update_docs(again, _files_of(again))
        manifest.set_meta("shared_generation", str(gen))
        return bool(new or gone or again)


def _dead_here(lease: Lease) -> bool:
    """The lease's writer ran on this host and its process is gone."""
    if lease.host != socket.gethostname() or lease.pid == os.getpid():
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _all_ids(col) -> set[str]:
    out: set[str] = set()
    offset = 0
    while True:
        got = col.get(include=[], limit=5000, offset=offset)
        out.update(got["ids"])
        if len(got["ids"]) < 5000:
            return out
        offset += 5000


def _chunk_rows_of(manifest, doc_ids: list[str]):
    q = f'SELECT chunk_id, doc_id FROM chunks WHERE doc_id IN ({",".join("?" * len(doc_ids))})'
    return manifest.db.execute(q, doc_ids).fetchall()


def _files_of(docs) -> list:
    """The file records the articles came from, rebuilt from what the writer published, so a fresh
    writer re-scanning the same folder finds them unchanged (or re-reads them and embeds nothing)."""
    from .manifest import FileRecord

    by_file: dict[str, list] = defaultdict(list)
    for d, _t, m in docs:
        if m.get("file"):
            by_file[m["file"]].append((d, m))
    out = []
    for path, items in by_file.items():
        m = items[0][1]
        out.append(FileRecord(path, m["root"], m["file_hash"], int(m["file_size"]), int(m["file_mtime"]),
                              tuple(d for d, _ in items)))
    return out

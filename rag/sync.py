"""Ingest as sync: make the index mirror the given roots, embedding only what changed.

Plan: scan files (size+mtime shortcut, then a content hash), read changed ones into Articles, and
compare article ids (content hashes) with the manifest, so renamed, moved or duplicated content
reuses its vectors. Apply: embed new chunks in batches, upsert to Chroma, then commit the files of
that batch in one manifest transaction. A killed run leaves only orphan vectors (removed next time)
and uncommitted files (re-read next time): every article is either fully in or absent.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .chunking import ChunkSpec, chunk_text, fit_header, make_header
from .errors import RagError, SkipFile
from .manifest import FileRecord, Manifest
from .readers import READERS_VERSION, iter_files, read_file
from .store import VectorStore, date_num
from .types import Article, Chunk, IngestReport

# Chunks embedded (and then committed) together. Large enough that the encoder's length-sorted
# batches carry little padding (256 costs ~11 % extra tokens on news articles, 1024 ~4 %), small
# enough that an interrupted run loses little work.
BATCH_CHUNKS = 1024

# A file modified this close to the scan may be modified again within the file system's timestamp
# granularity without its size or mtime changing ("racy git"): its mtime is not trusted next time,
# so the next run re-hashes it (cheap) instead of taking it as unchanged.
RACY_NS = 2_000_000_000


def _trusted_mtime(st: os.stat_result, scan_ns: int) -> int:
    return -1 if st.st_mtime_ns >= scan_ns - RACY_NS else st.st_mtime_ns


def doc_id_for(a: Article) -> str:
    h = hashlib.sha256()
    for part in (a.title, a.date or "", a.text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:20]


@dataclass
class _Pending:
    record: FileRecord
    new_docs: list[tuple[str, Article, list[Chunk]]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # doc_id -> context prepended when embedding
    touched: bool = False  # same content as recorded: only its size/mtime are refreshed


def reconcile(manifest: Manifest, store: VectorStore) -> tuple[int, int]:
    """Remove vectors of uncommitted articles; forget committed articles whose vectors are missing
    (so this run re-adds them). Returns (orphans removed, articles forgotten)."""
    in_store = store.all_ids()
    expected = manifest.chunk_ids()
    orphans = in_store - expected
    if orphans:
        store.delete(sorted(orphans))
    missing = expected - in_store
    broken = {cid.rsplit(":", 1)[0] for cid in missing}
    if broken:
        manifest.remove_docs(broken)
        # and the vectors they do have, so a re-added article never mixes old and new chunks
        partial = sorted(cid for cid in in_store & expected if cid.rsplit(":", 1)[0] in broken)
        if partial:
            store.delete(partial)
    return len(orphans), len(broken)


def run_sync(
    roots: list[Path],
    *,
    manifest: Manifest,
    store: VectorStore | None,
    embedder,
    max_file_bytes: int,
    overlap_tokens: int,
    dry_run: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    t0 = time.perf_counter()
    scan_ns = time.time_ns()
    report = IngestReport(dry_run=dry_run)
    roots = resolve_roots(roots)
    known = manifest.files()
    # files read by older readers are read again once (their size, time and hash say nothing of how
    # they were read): an article the new readers see alike keeps its vectors, a changed one is redone
    reread = bool(known) and manifest.get_meta("readers") != READERS_VERSION
    # Articles are never dropped during the run (only at its end), so this snapshot stays true:
    # content that moves between files in different batches keeps its vectors.
    known_docs = manifest.doc_ids()
    seen: set[str] = set()
    todo: list[tuple[Path, Path, os.stat_result, FileRecord | None]] = []

    for root, path in iter_files(roots):
        key = str(path)
        if key in seen:  # overlapping roots (a folder and a subfolder of it): each file once
            continue
        try:
            st = path.stat()
        except OSError as e:  # vanished or unreadable since the listing, or a link to nothing
            report.skipped.append((key, _unreadable(path, e)))
            continue
        seen.add(key)
        prior = known.get(key)
        if prior and not reread and prior.size == st.st_size and prior.mtime_ns == st.st_mtime_ns:
            report.unchanged += 1
            continue
        todo.append((root, path, st, prior))

    removed_paths = [p for p, rec in known.items() if p not in seen and _under(p, roots)]
    spec = None
    pending: list[_Pending] = []
    pending_chunks = 0
    planned_docs: set[str] = set()
    bar = _bar(len(todo), progress and bool(todo), "ingest")

    def flush() -> None:
        nonlocal pending, pending_chunks
        if not pending:
            return
        if not dry_run and pending_chunks:
            bar.set_postfix_str(f"embedding {pending_chunks} chunks ({report.chunks_embedded} done)", refresh=True)
        _apply(pending, manifest=manifest, store=store, embedder=embedder, report=report, dry_run=dry_run)
        pending, pending_chunks = [], 0
        bar.set_postfix_str(f"{report.chunks_embedded} chunks {'planned' if dry_run else 'embedded'}", refresh=False)

    def read_one(root: Path, path: Path, st: os.stat_result, prior: FileRecord | None) -> None:
        nonlocal spec, pending_chunks
        try:
            data_hash = _hash_file(path)
        except OSError as e:
            report.skipped.append((str(path), f"cannot read ({e.strerror})"))
            if prior:
                removed_paths.append(str(path))
            return
        if prior and prior.hash == data_hash and not reread:  # touched, not changed
            report.unchanged += 1
            pending.append(_Pending(FileRecord(str(path), str(root), data_hash, st.st_size,
                                               _trusted_mtime(st, scan_ns), prior.doc_ids), touched=True))
            return
        problems: list[str] = []
        try:
            articles = read_file(path, max_bytes=max_file_bytes, problems=problems)
        except SkipFile as e:
            report.skipped.append((str(path), e.reason))
            if prior:  # it was indexed before but is unreadable now: the index mirrors the folder
                removed_paths.append(str(path))
            return
        except Exception as e:  # a reader bug must not lose the rest of the run
            report.skipped.append((str(path), f"could not read ({type(e).__name__}: {e})"[:200]))
            if prior:
                removed_paths.append(str(path))
            return
        report.skipped.extend((str(path), p) for p in problems)
        item = _Pending(FileRecord(str(path), str(root), data_hash, st.st_size, _trusted_mtime(st, scan_ns), ()))
        ids = []
        for a in articles:
            did = doc_id_for(a)
            if did in ids:
                continue
            ids.append(did)
            if did in known_docs:
                item.sources[did] = a.source
                continue
            if did in planned_docs:
                continue
            planned_docs.add(did)
            if spec is None:
                spec = ChunkSpec(max_tokens=embedder.max_tokens, overlap_tokens=overlap_tokens)
            header = fit_header(make_header(a.title, a.text), embedder.tokenizer, spec)
            chunks = chunk_text(a.text, did, embedder.tokenizer, spec, header)
            item.new_docs.append((did, a, chunks))
            item.headers[did] = header
            pending_chunks += len(chunks)
        item.record = FileRecord(item.record.path, item.record.root, item.record.hash, item.record.size,
                                 item.record.mtime_ns, tuple(ids))
        if prior and prior.hash == data_hash and not item.new_docs and tuple(ids) == prior.doc_ids:
            report.unchanged += 1  # read again (new readers) and seen alike
            item.touched = True
        elif prior:
            report.updated += 1
        else:
            report.added += 1
        pending.append(item)

    for done, (root, path, st, prior) in enumerate(todo, 1):
        read_one(root, path, st, prior)
        if pending_chunks >= BATCH_CHUNKS:
            flush()
        bar.update(1)
        if on_progress:
            on_progress(done, len(todo), str(path))
    flush()
    bar.close()

    report.removed = len(removed_paths)
    if not dry_run:
        # files gone from the roots, then articles no file references any more (old versions of
        # edited files, deleted files' articles), then their vectors
        dead = manifest.remove_files(removed_paths)
        _delete_vectors(store, dead)
        report.sentences_backfilled = _backfill_sentences(manifest, embedder, overlap_tokens, progress)
        manifest.mark_ingest(embedder.name, readers=READERS_VERSION)
        report.undated = manifest.undated_count()
    report.seconds = time.perf_counter() - t0
    return report


def _apply(pending: list[_Pending], *, manifest, store, embedder, report, dry_run) -> None:
    chunks_docs = [(did, a, c) for p in pending for did, a, cs in p.new_docs for c in cs]
    report.chunks_embedded += len(chunks_docs)
    report.chars_embedded += sum(len(c.text) for _, _, c in chunks_docs)
    if dry_run:
        return
    sentence_vectors: dict[str, bytes] = {}
    if chunks_docs:
        headers = {d: h for p in pending for d, h in p.headers.items()}
        inputs = [headers[did] + c.text for did, _, c in chunks_docs]
        if hasattr(embedder, "embed_with_sentences"):
            vectors, sentence_vectors = _embed_with_sentences(embedder, chunks_docs, headers, inputs)
        else:
            vectors = embedder.embed(inputs)
        store.upsert(
            [c.id for _, _, c in chunks_docs], vectors,
            [{"doc_id": did, "start": c.start, "end": c.end, "date": date_num(a.date), "title": a.title,
              "url": a.url or ""} for did, a, c in chunks_docs],
            [c.text for _, _, c in chunks_docs],
        )
    sources = {d: s for p in pending for d, s in p.sources.items()}
    manifest.commit_files([p.record for p in pending], [d for p in pending for d in p.new_docs], sources,
                          content_changed=not all(p.touched for p in pending), sentence_vectors=sentence_vectors)


def _embed_with_sentences(embedder, chunks_docs, headers, inputs):
    """Chunk vectors plus, from the same pass, the vectors of the sentences the answerer will split
    each chunk into (same splitter, so spans match at query time)."""
    from . import sentvec
    from .textutil import split_sentences

    spans = []
    for did, _, c in chunks_docs:
        at = len(headers[did])
        spans.append([(at + s, at + e) for s, e in split_sentences(c.text)])
    vectors, sents = embedder.embed_with_sentences(inputs, spans)
    packed = {}
    for (did, _, c), sp, mat in zip(chunks_docs, spans, sents):
        if sp:
            at = len(headers[did])
            packed[c.id] = sentvec.pack([(s - at, e - at) for s, e in sp], mat)
    return vectors, packed


def _backfill_sentences(manifest: Manifest, embedder, overlap_tokens: int, progress: bool) -> int:
    """An index built before sentence vectors existed gets them on its next ingest, once: its chunks
    go through the encoder again (their vectors in Chroma stay). Interrupted, it resumes next time."""
    if manifest.get_meta("sentences") == "complete" or not hasattr(embedder, "embed_with_sentences"):
        return 0
    todo = manifest.chunks_without_sentences()
    spec = ChunkSpec(max_tokens=embedder.max_tokens, overlap_tokens=overlap_tokens)
    headers: dict[str, str] = {}
    bar = _bar(len(todo), progress and bool(todo), "adding sentence vectors")
    for i in range(0, len(todo), BATCH_CHUNKS):
        part = todo[i : i + BATCH_CHUNKS]
        for c in part:
            if c.doc_id not in headers:
                d = manifest.doc(c.doc_id)
                headers[c.doc_id] = fit_header(make_header(d.title, d.text), embedder.tokenizer, spec)
        chunks_docs = [(c.doc_id, None, c) for c in part]
        _, packed = _embed_with_sentences(embedder, chunks_docs, headers, [headers[c.doc_id] + c.text for c in part])
        manifest.add_sentence_vectors(packed)
        bar.update(len(part))
    bar.close()
    manifest.set_meta("sentences", "complete")
    return len(todo)


def _delete_vectors(store, dead_docs: set[str]) -> None:
    if not dead_docs:
        return
    # ids are doc_id:index; Chroma cannot delete by prefix, so delete by metadata
    ids = sorted(dead_docs)
    for i in range(0, len(ids), 500):
        store.col.delete(where={"doc_id": {"$in": ids[i : i + 500]}})


def _unreadable(path: Path, e: OSError) -> str:
    if path.is_symlink() and not path.exists():
        return f"broken link to {os.readlink(path)}"
    return f"cannot read ({e.strerror})"


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_roots(paths) -> list[Path]:
    """Absolute, resolved roots; a missing one is the user's error, raised before anything runs."""
    out = []
    for raw in paths:
        p = Path(os.path.expanduser(str(raw))).resolve()
        if not p.exists():
            raise RagError(f"no such file or folder: {p}")
        out.append(p)
    return out


def _under(path: str, roots: list[Path]) -> bool:
    for r in roots:
        rs = str(r)
        if path == rs or path.startswith(rs.rstrip(os.sep) + os.sep):
            return True
    return False


def _bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not enabled, leave=False)

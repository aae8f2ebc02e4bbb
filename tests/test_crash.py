"""An interrupted ingest (SIGKILL, Ctrl-C) leaves the index usable: every committed article is fully
in, nothing is duplicated, queries work, and the next run completes to the clean state.

The ingest runs in a real subprocess (`rag ingest` through ``rag.cli.main``) with the package's
hashing embedder, so that it spends its time in Chroma and SQLite writes, where a kill hurts most."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import rag
from rag.embedding import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
N_FILES = 240

CHILD = """
import signal, sys
# a suite started in the background (`cmd &` without job control) runs with SIGINT ignored, which
# children inherit; Ctrl-C must reach this ingest however the suite was started
signal.signal(signal.SIGINT, signal.default_int_handler)
import rag.sync
rag.sync.BATCH_CHUNKS = int(sys.argv[1])  # many small commits: more places to be killed in
from rag.cli import main
sys.exit(main(["ingest", sys.argv[2], "--index", sys.argv[3], "--quiet"]))
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(PYTHONPATH=str(ROOT), RAG_PROGRESS="0", RAG_EMBED_MODEL="hashing-256")
    e.pop("RAG_CHROMA_URL", None)
    return e


def make_corpus(d: Path) -> Path:
    d.mkdir()
    for i in range(N_FILES):
        sents = " ".join(f"Report {i} sentence {j} mentions district {i % 17} and the figure {i * j}."
                         for j in range(10 + i % 25))
        (d / f"{i:04d}.txt").write_text(f"date 2024-01-{1 + i % 28:02d} {sents}", encoding="utf-8")
    return d


def engine(index: Path) -> rag.Engine:
    return rag.Engine(settings=rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                                            embed_model="hashing-256"), embedder=HashingEmbedder())


def committed_files(index: Path) -> int:
    db = index / "manifest.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def assert_committed_articles_whole(eng: rag.Engine) -> None:
    """Before any repair: what the manifest says is in, is fully in Chroma; no chunk twice."""
    m = eng.manifest
    got = eng.store.col.get(include=["metadatas"])
    assert len(got["ids"]) == len(set(got["ids"]))
    spans = Counter((md["doc_id"], md["start"], md["end"]) for md in got["metadatas"])
    assert max(spans.values(), default=1) == 1, "duplicate chunks in Chroma"
    in_chroma = set(got["ids"])
    for d in m.doc_ids():
        rec = m.doc(d)
        ids = {f"{d}:{i}" for i in range(rec.n_chunks)}
        assert ids <= in_chroma, f"article {d} is committed but missing vectors"
    assert m.chunk_ids() <= in_chroma


def assert_clean(eng: rag.Engine, clean_chunks: int, clean_docs: int) -> None:
    m = eng.manifest
    got = eng.store.col.get(include=["metadatas"])
    assert set(got["ids"]) == m.chunk_ids()
    assert len(got["ids"]) == clean_chunks == m.counts()[1]
    assert m.counts()[0] == clean_docs and m.counts()[2] == N_FILES
    for d in m.doc_ids():
        n = sum(1 for md in got["metadatas"] if md["doc_id"] == d)
        assert n == m.doc(d).n_chunks


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("crash") / "news")


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    """Chunk and article counts of an uninterrupted ingest of the same corpus."""
    eng = engine(tmp_path_factory.mktemp("clean") / "index")
    r = eng.ingest([corpus])
    assert r.added == N_FILES and not r.skipped
    return eng.stats().chunks, eng.stats().articles


def run_and_interrupt(corpus: Path, index: Path, sig: int, after_commits: int, batch: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(batch), str(corpus), str(index)], env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(index.parent))
    deadline = time.monotonic() + 120
    while committed_files(index) < after_commits:
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"ingest ended (rc={p.returncode}) before it could be interrupted: {err[-2000:]}")
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail("ingest made no progress in 120 s")
        time.sleep(0.01)
    p.send_signal(sig)
    p.wait(timeout=60)
    return p


@pytest.mark.slow
@pytest.mark.parametrize("after_commits,batch", [(1, 8), (60, 8), (120, 64)])
def test_sigkill_mid_ingest_then_rerun(corpus, clean, tmp_path, after_commits, batch):
    index = tmp_path / "index"
    p = run_and_interrupt(corpus, index, signal.SIGKILL, after_commits, batch)
    assert p.returncode == -signal.SIGKILL
    eng = engine(index)
    committed = eng.stats().files
    assert after_commits <= committed < N_FILES, "the kill should land mid-ingest"
    assert_committed_articles_whole(eng)
    # the index answers queries right away, only from committed articles
    hits = eng.retrieve("Which district does report 3 mention?", top_k=5)
    assert hits and all(eng.manifest.doc(h.doc_id) is not None for h in hits)
    for h in hits:
        assert eng.article(h.doc_id).text[h.start:h.end] == h.text

    # the next run completes the work: the clean counts, no duplicates, nothing re-embedded twice
    eng2 = engine(index)
    r = eng2.ingest([corpus])
    assert r.added == N_FILES - committed and r.unchanged == committed and r.removed == 0
    assert_clean(eng2, *clean)
    r = eng2.ingest([corpus])
    assert (r.added, r.updated, r.removed, r.chunks_embedded) == (0, 0, 0, 0)


@pytest.mark.slow
def test_ctrl_c_mid_ingest(corpus, clean, tmp_path):
    index = tmp_path / "index"
    p = run_and_interrupt(corpus, index, signal.SIGINT, 30, 8)
    err = p.stderr.read()
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    eng = engine(index)
    assert 30 <= eng.stats().files < N_FILES
    assert_committed_articles_whole(eng)
    r = eng.ingest([corpus])
    assert r.added + r.unchanged == N_FILES
    assert_clean(eng, *clean)


def test_vectors_lost_or_orphaned_are_repaired_next_run(tmp_path):
    """Chroma and the manifest out of step (vectors lost, vectors left over): the next ingest puts
    back exactly the damaged article and drops the strays."""
    d = tmp_path / "news"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.txt").write_text(" ".join(f"Item {i} line {j} says the market reopened at dawn." for j in range(60)))
    index = tmp_path / "index"
    eng = engine(index)
    eng.ingest([d])
    m = eng.manifest
    n_chunks = m.counts()[1]
    victim = max(m.doc_ids(), key=lambda x: m.doc(x).n_chunks)
    assert m.doc(victim).n_chunks > 2
    eng.store.delete([f"{victim}:1"])  # one chunk's vector lost
    vec = [0.0] * 256
    vec[0] = 1.0
    eng.store.col.upsert(ids=["stray:0"], embeddings=[vec], metadatas=[{"doc_id": "stray", "start": 0, "end": 1,
                                                                         "date": 0}])
    emb = eng.embedder
    emb.history.clear()
    r = eng.ingest([d])
    assert r.added == 1 and r.unchanged == 2
    assert sum(emb.history) == m.doc(victim).n_chunks  # only the damaged article re-embedded
    got = set(eng.store.all_ids())
    assert got == m.chunk_ids() and len(got) == n_chunks and "stray:0" not in got

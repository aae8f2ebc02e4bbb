"""Many kills at random points: an ingest subprocess is SIGKILLed after a seeded random delay, then
the index is reopened in this (fresh) process. Whatever the manifest records as committed must be
fully retrievable (each chunk is the top dense hit for its own vector, and that vector is the one
its text embeds to), nothing is duplicated, and a re-run reaches exactly the chunk count of a clean
ingest. Also SIGTERM and a clean exit with fewer than 1000 adds (chromadb #6975: writes lost on exit).

The child uses the package's hashing embedder (RAG_EMBED_MODEL=hashing-256) so a run takes a few
seconds and spends them in Chroma and SQLite writes, where a kill hurts most."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.chunking import ChunkSpec, fit_header, make_header

from test_crash import CHILD, committed_files, engine, env

N_ARTICLES = 36
BATCH = 4  # chunks per commit in the child: many commit points to be killed between


def make_corpus(d: Path, n: int = N_ARTICLES) -> Path:
    """Short articles whose sentences carry words of their own, so no two chunks embed alike."""
    d.mkdir()
    for i in range(n):
        sents = " ".join(f"Dispatch a{i}s{j} from town{i} notes tally{i}x{j} and ward{j}y{i}."
                         for j in range(6 + (i * 7) % 40))
        (d / f"{i:03d}.txt").write_text(f"date 2024-03-{1 + i % 28:02d}\n**Bulletin {i} headline**\n{sents}",
                                        encoding="utf-8")
    return d


def start_child(corpus: Path, index: Path, batch: int = BATCH) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(batch), str(corpus), str(index)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(index.parent))


def wait_until_open(p: subprocess.Popen, index: Path) -> float:
    """Skip the child's start-up (imports): return once it has created its manifest."""
    deadline = time.monotonic() + 120
    while not (index / "manifest.sqlite").exists():
        assert p.poll() is None or (index / "manifest.sqlite").exists(), p.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the child never opened the index"
        time.sleep(0.002)
    return time.monotonic()


def assert_committed_retrievable(eng: rag.Engine) -> int:
    """Before any repair. Returns the number of committed chunks checked."""
    m, col = eng.manifest, eng.store.col
    got = col.get(include=["metadatas", "embeddings", "documents"])
    ids = got["ids"]
    assert len(ids) == len(set(ids)), "a chunk id is stored twice"
    spans = Counter((md["doc_id"], md["start"], md["end"]) for md in got["metadatas"])
    assert max(spans.values(), default=1) == 1, "the same chunk is stored under two ids"
    by_id = {cid: (np.asarray(v), doc) for cid, v, doc in zip(ids, got["embeddings"], got["documents"])}
    rows = list(m.iter_chunks())
    texts = [t for _cid, _d, _s, _e, t in rows]
    assert len(texts) == len(set(texts)), "the manifest holds a chunk text twice"
    by_doc: dict[str, list] = {}
    for row in rows:
        by_doc.setdefault(row[1], []).append(row)

    spec = ChunkSpec(max_tokens=eng.embedder.max_tokens, overlap_tokens=eng.settings.chunk_overlap_tokens)
    committed: list[str] = []
    expected_vecs = []
    for d in sorted(m.doc_ids()):
        rec = m.doc(d)
        art = eng.article(d)
        header = fit_header(make_header(art.title, art.text), eng.embedder.tokenizer, spec)
        for cid, _did, s, e, text in by_doc.get(d, []):
            assert cid in by_id, f"article {d} is committed but chunk {cid} has no vector"
            assert by_id[cid][1] == text == art.text[s:e]
            committed.append(cid)
            expected_vecs.append(header + text)
        assert sum(1 for c in committed if c.rsplit(":", 1)[0] == d) == rec.n_chunks
    if not committed:
        return 0
    # the stored vector is what the chunk's own text embeds to ...
    want = eng.embedder.embed(expected_vecs)
    have = np.stack([by_id[c][0] for c in committed])
    assert np.allclose(want, have, atol=1e-5), "a committed chunk carries someone else's vector"
    # ... and a dense query with it returns that very chunk first (indexed, not just stored: #7678)
    res = col.query(query_embeddings=have, n_results=1, include=["distances"])
    top = [r[0] if r else None for r in res["ids"]]
    missed = [c for c, t in zip(committed, top) if t != c]
    assert not missed, f"{len(missed)} committed chunks are not their own top hit, e.g. {missed[:3]}"
    return len(committed)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("many") / "news")


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    """Counts of an uninterrupted ingest, and how long a child works from opening the index to exit."""
    index = tmp_path_factory.mktemp("clean") / "index"
    p = start_child(corpus, index)
    t0 = wait_until_open(p, index)
    out, err = p.communicate(timeout=300)
    seconds = time.monotonic() - t0
    assert p.returncode == 0, err
    eng = engine(index)
    s = eng.stats()
    assert s.files == s.articles == N_ARTICLES
    assert assert_committed_retrievable(eng) == s.chunks
    return s.chunks, s.articles, seconds


def kill_and_check(corpus: Path, clean, index: Path, rng: random.Random) -> tuple[int, int]:
    chunks, articles, seconds = clean
    p = start_child(corpus, index)
    wait_until_open(p, index)
    # a random point of the ingest: after a random number of committed files (the child's start-up
    # time varies too much under load for a bare delay to land there), plus a random delay of up to
    # a 40th of the whole ingest, so the kill also lands between an upsert and its commit
    target, delay = rng.randint(0, N_ARTICLES - 1), rng.uniform(0.0, seconds / 40)
    deadline = time.monotonic() + 120
    while committed_files(index) < target and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    committed = committed_files(index)

    eng = engine(index)  # a fresh engine in another process than the killed writer
    n = assert_committed_retrievable(eng)
    r = eng.ingest([corpus])
    assert r.added + r.unchanged == N_ARTICLES and not r.skipped
    assert r.unchanged == committed
    s = eng.stats()
    assert (s.chunks, s.articles, s.files) == (chunks, articles, N_ARTICLES)
    assert eng.store.all_ids() == eng.manifest.chunk_ids() and eng.store.count() == chunks
    assert assert_committed_retrievable(eng) == chunks
    return committed, n


def many_kills(corpus, clean, tmp_path, runs: int, seed: int) -> None:
    rng = random.Random(seed)
    outcomes = []
    for i in range(runs):
        (tmp_path / f"run{i}").mkdir()
        outcomes.append(kill_and_check(corpus, clean, tmp_path / f"run{i}" / "index", rng))
    committed = [c for c, _ in outcomes]
    print(f"\n{runs} SIGKILLs: files committed at the kill {sorted(committed)}")
    # the delays must actually land mid-ingest, not only before or after it
    assert sum(1 for c in committed if 0 < c < N_ARTICLES) >= runs // 4, committed


def test_sigkill_at_random_points(corpus, clean, tmp_path):
    many_kills(corpus, clean, tmp_path, runs=20, seed=6)


@pytest.mark.slow
def test_sigkill_at_random_points_50(corpus, clean, tmp_path):
    many_kills(corpus, clean, tmp_path, runs=50, seed=60)


def test_sigterm_with_fewer_than_1000_adds_loses_nothing_committed(corpus, clean, tmp_path):
    """SIGTERM mid-ingest (well under Chroma's 1000-add flush size), reopen in a new process."""
    chunks, articles, _ = clean
    assert chunks < 1000
    index = tmp_path / "index"
    p = start_child(corpus, index)
    deadline = time.monotonic() + 120
    while committed_files(index) < N_ARTICLES // 3 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    committed = committed_files(index)
    assert committed >= N_ARTICLES // 3
    check = subprocess.run([sys.executable, "-c", REOPEN, str(index)], env=env(), capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stderr
    n_files, n_chunks = map(int, check.stdout.split())
    assert n_files == committed
    eng = engine(index)
    assert n_chunks == eng.stats().chunks
    assert assert_committed_retrievable(eng) == n_chunks
    eng.ingest([corpus])
    assert (eng.stats().chunks, eng.stats().articles) == (chunks, articles)


def test_clean_exit_with_fewer_than_1000_adds_keeps_everything(corpus, clean, tmp_path):
    """chromadb #6975: a process that adds < 1000 records and exits normally; a new process sees all."""
    chunks, articles, _ = clean
    index = tmp_path / "index"
    p = start_child(corpus, index, batch=1024)  # one commit: every add in a single small batch
    _out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    check = subprocess.run([sys.executable, "-c", REOPEN, str(index)], env=env(), capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == [str(N_ARTICLES), str(chunks)]


# A new process: reopen, check every committed chunk is stored and is its own top hit, print counts.
REOPEN = """
import sys
from pathlib import Path
import rag
from rag.embedding import HashingEmbedder
index = Path(sys.argv[1])
eng = rag.Engine(settings=rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                                       embed_model="hashing-256"), embedder=HashingEmbedder())
m = eng.manifest
ids = sorted(m.chunk_ids())
got = eng.store.col.get(ids=ids, include=["embeddings"])
assert sorted(got["ids"]) == ids, "committed chunks missing from Chroma"
res = eng.store.col.query(query_embeddings=got["embeddings"], n_results=1, include=[])
assert [r[0] for r in res["ids"]] == got["ids"], "committed chunks not indexed"
print(m.counts()[2], len(ids))
"""

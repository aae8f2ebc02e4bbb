"""One writer at a time: a second ingest is refused within a second, saying who holds the index;
queries keep working meanwhile; a dead holder does not leave the index locked."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rag
from rag.embedding import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent

# A real ingest that pauses (holding the write lock) after its first file until told to go on.
HOLDER = """
import sys, time
from pathlib import Path
import rag
from rag.embedding import HashingEmbedder
index, ready, go = (Path(a) for a in sys.argv[1:4])
roots = sys.argv[4:]
eng = rag.Engine(settings=rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                                       embed_model="hashing-256"), embedder=HashingEmbedder())
def pause(done, total, path):
    if done == 1:
        ready.write_text("holding")
        while not go.exists():
            time.sleep(0.02)
r = eng.ingest(roots, on_progress=pause)
print(r.added)
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(PYTHONPATH=str(ROOT), RAG_PROGRESS="0", RAG_EMBED_MODEL="hashing-256")
    return e


def engine(index: Path) -> rag.Engine:
    return rag.Engine(settings=rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                                            embed_model="hashing-256"), embedder=HashingEmbedder())


@pytest.fixture()
def more_news(tmp_path) -> Path:
    d = tmp_path / "more"
    d.mkdir()
    for i in range(5):
        (d / f"{i}.txt").write_text(f"Extra story {i}: the ferry to the island resumed service after {i} days.")
    return d


def start_holder(index: Path, tmp_path: Path, *roots: Path):
    ready, go = tmp_path / "ready", tmp_path / "go"
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(index), str(ready), str(go), *map(str, roots)],
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if p.poll() is not None:
            pytest.fail(f"holder exited early: {p.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, "holder never took the lock"
        time.sleep(0.02)
    return p, go


def test_second_writer_refused_naming_holder_while_queries_work(tmp_path, seeds_copy, more_news):
    index = tmp_path / "index"
    eng = engine(index)
    eng.ingest([seeds_copy])
    before = eng.stats()
    holder, go = start_holder(index, tmp_path, seeds_copy, more_news)
    try:
        # a second writer in this process: refused fast, with the holder named
        t0 = time.monotonic()
        with pytest.raises(rag.IndexLockedError) as ei:
            engine(index).ingest([more_news])
        assert time.monotonic() - t0 < 1.5
        msg = str(ei.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in msg
        assert "\n" not in msg and "queries keep working" in msg

        # queries keep working meanwhile, on what was committed
        hits = eng.retrieve("Who is the mayor of Kharkiv?", top_k=3)
        assert hits and all(eng.article(h.doc_id).text[h.start:h.end] == h.text for h in hits)
        ans = engine(index).query("What happened in Belgorod?")
        assert ans.citations
        assert eng.stats().articles >= before.articles

        # the CLI says the same in one line and exits non-zero
        cli = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(more_news), "--index", str(index)],
                             env=env(), capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1
        lines = cli.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: index") and f"pid {holder.pid}" in lines[0]
    finally:
        go.write_text("go")
        out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    assert out.strip() == "5"
    # once released, the next writer gets in
    r = engine(index).ingest([seeds_copy, more_news])
    assert (r.added, r.unchanged) == (0, 9)
    assert not (index / ".write.lock.json").exists()


def test_killed_holder_does_not_leave_the_index_locked(tmp_path, seeds_copy, more_news):
    index = tmp_path / "index"
    holder, go = start_holder(index, tmp_path, seeds_copy, more_news)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    r = engine(index).ingest([seeds_copy, more_news])  # no wait, no stale-lock error
    assert r.added == 9

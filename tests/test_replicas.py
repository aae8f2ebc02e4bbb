"""More than one machine on one Chroma server (a real `chroma run` on loopback): a replica with an
empty folder answers exactly as the writer, sees a new ingest without a restart; one writer at a
time; a writer killed mid-ingest, or one whose manifest is lost, loses and re-embeds nothing."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import rag
from rag.shared import LeaseHeld

from conftest import SEEDS
from test_server_mode import chroma_server, server_count  # noqa: F401 (a fixture)

QUESTIONS = ["Who is the mayor of Kharkiv?", "How many people were killed in Belgorod?",
             "What happened in Belgorod?", "Who is the governor of Belgorod?"]


def engine(url: str, folder: Path, collection: str, embedder=None, **kw) -> rag.Engine:
    kw.setdefault("replica_poll", 0.2)
    return rag.Engine(settings=rag.Settings(index_dir=folder, seeds_dir=None, progress=False, llm="extractive",
                                            chroma_url=url, collection=collection, **kw), embedder=embedder)


def as_record(ans) -> dict:
    return {"text": ans.text, "refused": ans.refused,
            "citations": [(c.n, c.doc_id, c.start, c.end, c.snippet, c.title, c.date) for c in ans.citations]}


def test_a_replica_with_an_empty_folder_answers_exactly_as_the_writer(chroma_server, tmp_path, embedder):  # noqa: F811
    writer = engine(chroma_server, tmp_path / "writer", "rep_same", embedder)
    writer.ingest([SEEDS])
    expected = [as_record(writer.query(q)) for q in QUESTIONS]
    # another process, as on another machine: nothing but the server's address and an empty folder
    script = textwrap.dedent("""
        import json, sys, rag
        eng = rag.Engine(settings=rag.Settings.from_env().with_(seeds_dir=None))
        out = []
        for q in json.loads(sys.argv[1]):
            a = eng.query(q)
            out.append({"text": a.text, "refused": a.refused, "citations": [(c.n, c.doc_id, c.start, c.end, c.snippet,
                        c.title, c.date) for c in a.citations]})
        print(json.dumps(out))
    """)
    empty = tmp_path / "replica"
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": "rep_same", "RAG_INDEX": str(empty),
           "RAG_LLM": "extractive", "RAG_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", script, json.dumps(QUESTIONS)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for q, e, g in zip(QUESTIONS, expected, got):
        g["citations"] = [tuple(c) for c in g["citations"]]
        assert g == e, q
    assert any(not e["refused"] for e in expected)


def test_a_replica_sees_a_new_ingest_without_restarting(chroma_server, tmp_path, embedder):  # noqa: F811
    writer = engine(chroma_server, tmp_path / "writer", "rep_new", embedder)
    writer.ingest([SEEDS])
    replica = engine(chroma_server, tmp_path / "replica", "rep_new", embedder)
    question = "What did the ferry Santa Lucia carry?"
    assert not any("Santa Lucia" in h.text for h in replica.retrieve(question, top_k=3))
    news = tmp_path / "more"
    news.mkdir()
    (news / "ferry.txt").write_text("**Ferry arrives**\n\nThe ferry Santa Lucia carried 300 passengers to Malta. "
                                    "It docked at noon after a calm crossing.\n")
    writer.ingest([SEEDS, news])
    deadline = time.monotonic() + 10
    while not any("Santa Lucia" in h.text for h in replica.retrieve(question, top_k=3)):
        assert time.monotonic() < deadline, "the replica did not see the new article within 10 s"
        time.sleep(0.2)
    ans = replica.query(question)
    assert "300 passengers" in ans.text
    for c in ans.citations:
        assert replica.article(c.doc_id).text[c.start:c.end] == c.snippet


def test_a_second_writer_is_told_who_holds_the_lease(chroma_server, tmp_path, embedder):  # noqa: F811
    first = engine(chroma_server, tmp_path / "a", "rep_lease", embedder)
    first.ingest([SEEDS])
    first.shared.acquire()  # as during a long ingest
    try:
        second = engine(chroma_server, tmp_path / "b", "rep_lease", embedder)
        with pytest.raises(LeaseHeld, match=r"another writer is ingesting .* pid \d+ until \d\d:\d\d:\d\d UTC"):
            second.ingest([SEEDS])
    finally:
        first.shared.release()
    assert second.ingest([SEEDS]).chunks_embedded == 0  # free again; and it embeds nothing already there


WRITER = textwrap.dedent("""
    import sys, time, rag, rag.sync
    rag.sync.BATCH_CHUNKS = 8  # commit often, so a kill lands between commits
    eng = rag.Engine(settings=rag.Settings.from_env().with_(seeds_dir=None))
    embed = eng.embedder.embed
    def slow(texts, **kw):
        time.sleep(0.3)
        return embed(texts, **kw)
    eng.embedder.embed = slow
    print(eng.ingest([sys.argv[1]]).summary(), flush=True)
""")


def test_a_writer_killed_mid_ingest_then_restarted_loses_nothing(chroma_server, tmp_path):  # noqa: F811
    news = tmp_path / "news"
    news.mkdir()
    for i in range(60):
        (news / f"story{i:02d}.txt").write_text(
            f"**Story {i}**\n\nThe harbour of town {i} reopened after {i + 3} days. Officials counted {i * 7} boats.\n")
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": "rep_kill", "RAG_INDEX": str(tmp_path / "w"),
           "RAG_EMBED_MODEL": "hashing-256", "RAG_PROGRESS": "0", "RAG_LLM": "extractive"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(news)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "w" / "manifest.sqlite"
    deadline = time.monotonic() + 120
    while True:  # wait for a few committed batches, then kill it without warning
        assert proc.poll() is None, f"the writer ended before it could be killed: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        if db.exists():
            with sqlite3.connect(db, timeout=5) as con:
                try:
                    if con.execute("SELECT COUNT(*) FROM docs").fetchone()[0] >= 16:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert server_count(chroma_server, "rep_kill") < 60

    # restarted at once on the same machine: the dead writer's lease does not block it
    restarted = subprocess.run([sys.executable, "-c", WRITER, str(news)], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert server_count(chroma_server, "rep_kill") == 60  # one chunk per story, none twice
    # its manifest lost: a fresh writer takes what the server has and embeds nothing again
    fresh = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "fresh", seeds_dir=None, progress=False,
                                             llm="extractive", chroma_url=chroma_server, collection="rep_kill",
                                             embed_model="hashing-256"))
    report = fresh.ingest([news])
    assert report.chunks_embedded == 0 and report.removed == 0
    assert server_count(chroma_server, "rep_kill") == 60 == fresh.stats().chunks
    hits = fresh.retrieve("harbour of town 42", top_k=3)  # (hashing vectors: too crude for the answerer)
    assert any("town 42 reopened" in h.text and "294 boats" in h.text for h in hits)


def test_a_lease_left_by_a_writer_on_another_machine_expires(chroma_server, tmp_path, embedder):  # noqa: F811
    from rag.shared import Lease

    eng = engine(chroma_server, tmp_path / "w", "rep_expire", embedder)
    eng.ingest([SEEDS])
    gen = eng.shared.generation()
    # a writer on another host died holding the lease (its pid means nothing here)
    eng.shared._write_state(gen, Lease("x", "elsewhere pid 1", "elsewhere", 1, time.time() + 1.5))
    with pytest.raises(LeaseHeld, match="elsewhere pid 1"):
        eng.ingest([SEEDS])
    time.sleep(1.6)
    assert eng.ingest([SEEDS]).chunks_embedded == 0
    assert eng.shared.generation() == gen  # nothing changed: the generation did not move


def test_a_renamed_file_moves_the_source_replicas_show(chroma_server, tmp_path, embedder):  # noqa: F811
    import shutil

    news = tmp_path / "news"
    shutil.copytree(SEEDS, news)
    writer = engine(chroma_server, tmp_path / "w", "rep_move", embedder)
    writer.ingest([news])
    replica = engine(chroma_server, tmp_path / "r", "rep_move", embedder)
    before = {h.source for h in replica.retrieve("Who is the mayor of Kharkiv?", top_k=8)}
    victim = next(p for p in sorted(news.iterdir()) if str(p) in before)
    victim.rename(news / "renamed.txt")
    assert writer.ingest([news]).chunks_embedded == 0  # same content: nothing embedded again
    deadline = time.monotonic() + 10
    while str(news / "renamed.txt") not in {h.source for h in replica.retrieve("Who is the mayor of Kharkiv?", top_k=8)}:
        assert time.monotonic() < deadline, "the replica still shows the old file name"
        time.sleep(0.2)
    assert str(victim) not in {replica.article(h.doc_id).source for h in replica.retrieve("Kharkiv", top_k=8)}

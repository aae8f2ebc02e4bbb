"""Server mode: vectors in a real `chroma run` started on loopback by the test (RAG_CHROMA_URL)."""
from __future__ import annotations

from pathlib import Path

import pytest

from chroma_server import free_port, start_chroma, stop_process

import rag

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("chroma-server")
    try:
        proc, url = start_chroma(data / "db", data / "server.log")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield url
    stop_process(proc)


def server_collection(url: str, collection: str):
    import chromadb
    from chromadb.config import Settings as CS

    port = int(url.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=CS(anonymized_telemetry=False))
    return client.get_collection(collection)


def server_count(url: str, collection: str) -> int:
    return server_collection(url, collection).count()


def test_ingest_and_query_against_server(chroma_server, tmp_path, embedder, seeds_copy, counting_embedder):
    settings = rag.Settings.from_env({"RAG_CHROMA_URL": chroma_server, "RAG_INDEX": str(tmp_path / "index"),
                                      "RAG_COLLECTION": "seeds_a", "RAG_LLM": "extractive"},
                                     progress=False).with_(seeds_dir=None)
    assert settings.chroma_url == chroma_server
    eng = rag.Engine(settings=settings, embedder=embedder)
    r = eng.ingest([seeds_copy])
    assert r.added == 4 and not r.skipped
    st = eng.stats()
    assert st.chroma == chroma_server
    assert server_count(chroma_server, "seeds_a") == st.chunks == r.chunks_embedded > 0
    assert not (tmp_path / "index" / "chroma").exists()  # vectors live on the server only
    # the server's collection searches as wide as a local index
    from rag.store import EF_SEARCH
    assert server_collection(chroma_server, "seeds_a").configuration_json["hnsw"]["ef_search"] == EF_SEARCH

    # a fresh process-like engine (same local manifest) answers from the server
    eng2 = rag.Engine(settings=settings, embedder=embedder)
    ans = eng2.query("Who is the mayor of Kharkiv?")
    assert ans.citations and not ans.refused
    for c in ans.citations:
        assert eng2.article(c.doc_id).text[c.start:c.end] == c.snippet

    # sync works the same: delete one file, re-ingest, the server loses exactly its chunks
    victim = sorted(seeds_copy.iterdir())[0]
    victim_chunks = sum(eng2.manifest.doc(d).n_chunks for d in eng2.manifest.files()[str(victim)].doc_ids)
    victim.unlink()
    counting_embedder.history.clear()
    r = eng2.ingest([seeds_copy])
    assert (r.removed, r.chunks_embedded) == (1, 0) and counting_embedder.history == []
    assert server_count(chroma_server, "seeds_a") == st.chunks - victim_chunks == eng2.stats().chunks


def test_a_second_index_folder_adds_to_a_shared_collection_without_wiping_it(chroma_server, tmp_path, embedder,
                                                                            seeds_copy):
    """Two index folders pointed at one server collection: the second takes in what the first
    published and adds its own; neither's articles are treated as orphans."""
    def make(name):
        return rag.Engine(settings=rag.Settings(index_dir=tmp_path / name, seeds_dir=None, progress=False,
                                                llm="extractive", chroma_url=chroma_server, collection="shared",
                                                replica_poll=0.0),
                          embedder=embedder)

    first = make("index-a")
    first.ingest([seeds_copy])
    n = server_count(chroma_server, "shared")
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("An unrelated story about a ferry. It sailed on time.")
    second = make("index-b")
    r = second.ingest([other])
    assert r.added == 1 and r.chunks_embedded == 1
    assert server_count(chroma_server, "shared") == n + 1
    assert first.retrieve("Who is the mayor of Kharkiv?", top_k=2)
    assert second.query("Who is the mayor of Kharkiv?").citations  # the first's articles answer there too
    assert any("ferry" in h.text for h in first.retrieve("ferry sailed on time", top_k=3))  # and the other way


def test_unreachable_server_is_a_clear_error(tmp_path, embedder):
    url = f"http://127.0.0.1:{free_port()}"
    eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "i", seeds_dir=None, progress=False, llm="extractive",
                                           chroma_url=url), embedder=embedder)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("A story. Short.")
    with pytest.raises(rag.RagError, match=r"cannot reach the Chroma server at .*chroma run"):
        eng.ingest([tmp_path / "d"])


def test_a_server_that_goes_away_mid_session_is_a_one_line_error(tmp_path, embedder, seeds_copy):
    proc, url = start_chroma(tmp_path / "chroma")
    try:
        eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "i", seeds_dir=None, progress=False,
                                               llm="extractive", chroma_url=url, collection="gone"), embedder=embedder)
        eng.ingest([seeds_copy])
        assert eng.query("Who is the mayor of Kharkiv?").citations
    finally:
        stop_process(proc)
    with pytest.raises(rag.RagError, match=r"lost the Chroma server at .*chroma run") as e:
        eng.query("Who is the governor of Belgorod?")
    assert "\n" not in str(e.value)
    with pytest.raises(rag.RagError, match="lost the Chroma server"):
        eng.ingest([seeds_copy])


def test_a_bad_collection_name_is_a_one_line_error(tmp_path, embedder):
    eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "i", seeds_dir=None, progress=False, collection="x"),
                     embedder=embedder)
    with pytest.raises(rag.RagError, match="collection name 'x' must be 3-500"):
        eng.ingest([tmp_path])

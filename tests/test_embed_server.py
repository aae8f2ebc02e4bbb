"""Embeddings from an OpenAI-compatible server (RAG_EMBED_URL): ingest and questions through the
real HTTP protocol, the retries on 429/5xx, one-line errors, the token limit and a changed model.

The server here (tests/openai_server.py) speaks the protocol and embeds with sentence-transformers'
fp32 MiniLM — another implementation of the model than our int8 encoder, so "same results" means
something. (A real llama.cpp embedding server: tests/test_embed_llama.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import rag
from rag.errors import ModelMismatchError, RagError

from conftest import SEEDS
from openai_server import FakeOpenAI

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm():
    """The packaged MiniLM in fp32 through sentence-transformers (what a TEI/Infinity server runs)."""
    from rag.embedding import SentenceTransformerEmbedder

    st = SentenceTransformerEmbedder()
    tok = st.model.tokenizer

    def embed(texts: list[str]) -> np.ndarray:
        for t in texts:  # a real server refuses an input over its limit instead of cutting it silently
            n = len(tok(t, add_special_tokens=True)["input_ids"])
            if n > 256:
                raise ValueError(f"input of {n} tokens is over the model's limit of 256")
        return st.embed(texts)

    return embed


@pytest.fixture()
def server(minilm):
    s = FakeOpenAI(model=MODEL).start()
    s.embed = minilm
    try:
        yield s
    finally:
        s.stop()


def remote_engine(tmp_path, server, **kw):
    kw.setdefault("index_dir", tmp_path / "remote-index")
    kw.setdefault("embed_model", MODEL)
    return rag.Engine(settings=rag.Settings(seeds_dir=None, progress=False, llm="extractive", embed_url=server.url,
                                            embed_retries=kw.pop("retries", 3), **kw))


QUESTIONS = ["Who is the mayor of Kharkiv?", "How many people were killed in Belgorod?",
             "What did Ukraine's air defences shoot down?"]


def test_ingest_and_questions_through_the_server_match_the_local_encoder(tmp_path, server, seeds_index):
    eng = remote_engine(tmp_path, server)
    report = eng.ingest([SEEDS])
    assert report.chunks_embedded > 0
    assert server.embed_requests and all(len(r["input"]) <= 64 for r in server.embed_requests)  # batched
    for q in QUESTIONS:
        remote = [(h.doc_id, h.start) for h in eng.retrieve(q, top_k=3)]
        local = [(h.doc_id, h.start) for h in seeds_index.retrieve(q, top_k=3)]
        assert remote[0] == local[0], q
        assert len(set(remote) & set(local)) >= 2, q
    # the vectors themselves: the server's fp32 against the local int8 encoder
    texts = [h.text for h in seeds_index.retrieve(QUESTIONS[0], top_k=5)]
    cos = np.sum(eng.embedder.embed(texts) * seeds_index.embedder.embed(texts), axis=1)
    assert cos.min() >= 0.99, cos
    ans = eng.query("Who is the mayor of Kharkiv?")
    assert not ans.refused and "Terekhov" in ans.text
    for c in ans.citations:
        assert eng.article(c.doc_id).text[c.start:c.end] == c.snippet


def test_chunks_fit_the_configured_token_limit(tmp_path, server):
    eng = remote_engine(tmp_path, server, embed_max_tokens=64)
    eng.ingest([SEEDS])  # the server answers 400 to any input over 256 tokens: none is sent
    tok = eng.embedder.tokenizer
    inputs = [t for r in server.embed_requests for t in r["input"]]
    assert max(len(tok(t, add_special_tokens=True)["input_ids"]) for t in inputs) <= 64
    long_q = "Kharkiv " * 400  # a query over the limit is cut, not refused by the server
    assert eng.retrieve(long_q, top_k=1)


def test_rate_limits_and_server_errors_are_retried(tmp_path, server):
    for status in (429, 503, 500):
        server.enqueue_embed_fault(status)
    eng = remote_engine(tmp_path, server)
    eng.ingest([SEEDS])
    assert eng.retrieve("Who is the mayor of Kharkiv?", top_k=1)
    assert len(server.embed_requests) >= 4  # the three faults were retried


def test_a_server_that_keeps_failing_is_a_one_line_error(tmp_path, server):
    for _ in range(3):
        server.enqueue_embed_fault(500)
    eng = remote_engine(tmp_path, server, retries=2)
    with pytest.raises(RagError) as e:
        eng.ingest([SEEDS])
    assert "HTTP 500" in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_model_names_the_ones_served(tmp_path, server):
    eng = remote_engine(tmp_path, server, embed_model="text-embedding-3-small")
    with pytest.raises(RagError, match=f"no model 'text-embedding-3-small'.*serves {MODEL}"):
        eng.ingest([SEEDS])


def test_an_unreachable_server_is_a_one_line_error(tmp_path):
    eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "i", seeds_dir=None, progress=False,
                                           embed_url="http://127.0.0.1:9", embed_model=MODEL, embed_retries=0))
    with pytest.raises(RagError, match="cannot reach the embedding server"):
        eng.ingest([SEEDS])


def test_another_model_behind_the_same_name_is_refused(tmp_path, server, minilm):
    eng = remote_engine(tmp_path, server)
    eng.ingest([SEEDS])
    server.embed = lambda texts: np.ones((len(texts), 768), np.float32)  # a bigger model loaded under that name
    other = remote_engine(tmp_path, server)  # same index
    with pytest.raises(ModelMismatchError, match="768-dimensional.*384-dimensional"):
        other.retrieve("Who is the mayor of Kharkiv?")

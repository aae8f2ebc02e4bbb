"""Embeddings from a real OpenAI-compatible server: llama.cpp (llama-cpp-python's server) serving the
packaged MiniLM converted to GGUF (tests/llama_server.py; `make llm-deps` prepares it)."""
from __future__ import annotations

import numpy as np
import pytest

import rag

from conftest import SEEDS
from llama_server import EMBED_ALIAS, llama_embed_server  # noqa: F401 - fixture by name

pytestmark = pytest.mark.llm_server

QUESTIONS = ["Who is the mayor of Kharkiv?", "How many people were killed in Belgorod?",
             "What did Ukraine's air defences shoot down?", "Who is the governor of Belgorod?"]


@pytest.fixture(scope="module")
def served(llama_embed_server, tmp_path_factory):  # noqa: F811
    eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path_factory.mktemp("served") / "index", seeds_dir=None,
                                           progress=False, llm="extractive", embed_url=llama_embed_server.url,
                                           embed_model=EMBED_ALIAS))
    report = eng.ingest([SEEDS])
    assert report.chunks_embedded > 0 and not report.skipped
    return eng


def test_the_served_model_gives_the_local_models_vectors(served, seeds_index):
    from rag.embedding import SentenceTransformerEmbedder

    texts = [h.text for q in QUESTIONS for h in seeds_index.retrieve(q, top_k=3)] + QUESTIONS
    remote = served.embedder.embed(texts)
    fp32 = SentenceTransformerEmbedder().embed(texts)  # the same model, same precision, in torch
    assert np.sum(remote * fp32, axis=1).min() >= 0.99
    int8 = seeds_index.embedder.embed(texts)  # our default encoder
    assert np.sum(remote * int8, axis=1).min() >= 0.97


def test_retrieval_and_answers_through_the_server_match_the_local_encoder(served, seeds_index):
    for q in QUESTIONS:
        remote = [(h.doc_id, h.start) for h in served.retrieve(q, top_k=3)]
        local = [(h.doc_id, h.start) for h in seeds_index.retrieve(q, top_k=3)]
        assert remote[0] == local[0], q
        assert len(set(remote) & set(local)) >= 2, q
    ans = served.query("Who is the mayor of Kharkiv?")
    assert "Terekhov" in ans.text and not ans.refused
    for c in ans.citations:
        assert served.article(c.doc_id).text[c.start:c.end] == c.snippet

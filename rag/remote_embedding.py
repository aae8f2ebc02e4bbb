"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` server (``RAG_EMBED_URL``).

Any server that speaks the protocol works: text-embeddings-inference, vLLM, Infinity, Ollama,
llama.cpp's server with ``--embedding``, OpenAI itself. Requests go through the ``openai`` client,
whose retries (exponential backoff on 429, 5xx and dropped connections, ``RAG_EMBED_RETRIES``) we
use rather than write again.

What a server cannot give:
- its tokenizer. Chunks are still sized by token count, with the packaged MiniLM's tokenizer and
  ``RAG_EMBED_MAX_TOKENS`` (default 256, MiniLM's limit) as the budget; for a model with another
  tokenizer set the server model's limit and leave some margin. Queries over the budget are cut at
  it before they are sent, as a local encoder would.
- span pooling. The answerer reads each sentence's vector in its chunk's context, pooled from the
  chunk's own pass (rag/embedding.py); a server returns one vector per input, so sentence vectors
  are the sentences embedded alone, in batches (one extra request per batch of sentences at ingest).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .config import DEFAULT_MODEL
from .errors import RagError


class RemoteEmbedder:
    def __init__(self, url: str, model: str, *, api_key: str | None = None, batch_size: int = 64,
                 max_tokens: int = 256, retries: int = 5, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.model = model
        self.name = model  # what the index records: a local and a served copy of one model are different names
        self.batch_size = max(1, batch_size)
        self.max_tokens = max_tokens
        self.history: list[int] = []
        self._api_key = api_key
        self._retries = retries
        self._timeout = timeout
        self._client = None
        self._tokenizer = None
        self._dim: int | None = None
        self._recent: dict[str, np.ndarray] = {}

    @property
    def client(self):
        if self._client is None:
            import openai

            base = self.url if self.url.endswith("/v1") else self.url + "/v1"
            # a local server needs no key, but the client insists on one
            self._client = openai.OpenAI(base_url=base, api_key=self._api_key or "none",
                                         max_retries=self._retries, timeout=self._timeout)
        return self._client

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .embedding import OnnxEmbedder

            self._tokenizer = OnnxEmbedder(DEFAULT_MODEL).tokenizer
        return self._tokenizer

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.history.append(len(texts))
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        batches = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding (server)", unit="batch", leave=False)
        return np.vstack([self._request(texts[i : i + self.batch_size]) for i in batches])

    def embed_query(self, text: str) -> np.ndarray:
        from .embedding import recent_query

        return recent_query(self._recent, text, lambda t: self._request([self._fit(t)])[0])

    def embed_with_sentences(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *,
                             progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Chunk vectors, and the vectors of the sentences inside each chunk embedded alone (a
        server cannot pool spans of one pass)."""
        texts = list(texts)
        vectors = self.embed(texts, progress=progress)
        flat = [texts[i][a:b] for i, sp in enumerate(spans) for a, b in sp]
        sent_flat = self.embed(flat, progress=progress) if flat else np.zeros((0, vectors.shape[1]), np.float32)
        out, at = [], 0
        for sp in spans:
            out.append(sent_flat[at : at + len(sp)])
            at += len(sp)
        return vectors, out

    def _fit(self, text: str) -> str:
        """A query longer than the token budget is cut there (chunks never are: chunking counts)."""
        enc = self.tokenizer([text], add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"][0]
        budget = self.max_tokens - 2
        return text if len(offsets) <= budget else text[: offsets[budget - 1][1]]

    def _request(self, texts: list[str]) -> np.ndarray:
        import openai

        try:
            resp = self.client.embeddings.create(model=self.model, input=texts, encoding_format="float")
        except openai.NotFoundError:
            raise RagError(f"the embedding server at {self.url} has no model {self.model!r}{self._served()}; "
                           "set RAG_EMBED_MODEL to one it serves") from None
        except openai.AuthenticationError:
            raise RagError(f"the embedding server at {self.url} refused the API key; set RAG_EMBED_API_KEY") from None
        except openai.APIStatusError as e:
            raise RagError(f"the embedding server at {self.url} answered HTTP {e.status_code} "
                           f"(after {self._retries} retries): {_short(e)}") from None
        except openai.APIConnectionError as e:
            raise RagError(f"cannot reach the embedding server at {self.url} ({type(e).__name__}, "
                           f"{self._retries} retries); start it or unset RAG_EMBED_URL") from None
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise RagError(f"the embedding server at {self.url} returned {len(rows)} vectors for {len(texts)} texts")
        v = np.asarray([r.embedding for r in rows], dtype=np.float32)
        if self._dim is not None and v.shape[1] != self._dim:
            raise RagError(f"the embedding server at {self.url} changed its vector size from {self._dim} to "
                           f"{v.shape[1]}: is another model loaded?")
        self._dim = v.shape[1]
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norms > 0, norms, 1.0)  # cosine search expects unit vectors; servers differ

    def _served(self) -> str:
        try:
            names = [m.id for m in self.client.models.list().data]
        except Exception:  # the listing is a courtesy in an error message
            return ""
        return f" (it serves {', '.join(names)})" if names else ""


def _short(e) -> str:
    body = getattr(e, "body", None)
    msg = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        msg = body["error"].get("message")
    return " ".join(str(msg or e).split())[:200]

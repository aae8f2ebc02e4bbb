"""Errors shown to the user: one line that says what happened and what to do.

The CLI prints ``str(err)`` and exits non-zero; the UI shows it as a warning; ``RAG_DEBUG=1``
re-raises so bugs are never swallowed. Anything that is not a ``RagError`` is a bug.
"""
from __future__ import annotations


class RagError(Exception):
    """Base class: a problem the user can act on."""


class UserError(RagError):
    """The request itself is wrong (empty question, bad date, unknown option)."""


class IndexLockedError(RagError):
    """Another process is writing to the index."""


class IndexMissingError(RagError):
    """No index and nothing to build it from."""


class ModelMismatchError(RagError):
    """The index was built with another embedding model."""


class LLMError(RagError):
    """The language model failed (auth, rate limit, server error, timeout, broken stream)."""


class SkipFile(Exception):
    """A file that cannot be ingested; ``reason`` is one line for the report."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

"""Shared fixtures: one embedding model per session, small corpora in tmp_path, and a guard that
fails any test opening a network connection outside loopback."""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path

import pytest

from chroma_server import stop_process  # noqa: F401 - shared by the tests that start servers

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("RAG_PROGRESS", "0")
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_CHROMA_URL", "RAG_LLM", "RAG_INDEX"):
    os.environ.pop(var, None)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_addr(sock, address) -> None:
    if sock.family == socket.AF_UNIX:
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host in ("localhost",):
            return
        raise RuntimeError(f"test tried to reach {host!r}: tests must not use the network")
    if not ip.is_loopback:
        raise RuntimeError(f"test tried to reach {host}: tests must not use the network")


def _guarded_connect(self, address):
    _check_addr(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_addr(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def embedder():
    """The real default encoder (int8 MiniLM; built into the user cache on first use), loaded once."""
    from rag.config import Settings
    from rag.embedding import make_embedder

    s = Settings.from_env()
    e = make_embedder(s.embed_model, encoder=s.encoder, cache_dir=s.cache_dir)
    e.embed(["warm up"])
    e.history.clear()
    return e


@pytest.fixture()
def counting_embedder(embedder):
    """The session model with a fresh call history for this test."""
    embedder.history.clear()
    return embedder


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory, embedder):
    """An index of the four seed articles, built once and shared read-only."""
    import rag

    d = tmp_path_factory.mktemp("seeds_index")
    eng = rag.Engine(settings=rag.Settings(index_dir=d / "index", seeds_dir=None, progress=False, llm="extractive"),
                     embedder=embedder)
    eng.ingest([SEEDS], progress=False)
    return eng


@pytest.fixture()
def make_engine(tmp_path, embedder):
    import rag

    def _make(**kw):
        emb = kw.pop("embedder", embedder)
        kw.setdefault("index_dir", tmp_path / "index")
        kw.setdefault("seeds_dir", None)
        kw.setdefault("progress", False)
        kw.setdefault("llm", "extractive")
        return rag.Engine(settings=rag.Settings(**kw), embedder=emb)

    return _make


@pytest.fixture()
def seeds_copy(tmp_path) -> Path:
    d = tmp_path / "news"
    shutil.copytree(SEEDS, d)
    return d


def shared_data(name: str) -> Path:
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(f"{p} not found: shared dev data is only present in CI and dev machines")
    return p


def seeds_engine(folder: Path, embedder):
    """A writable engine over a copy of the seeds in ``folder`` (for tests that add articles)."""
    import rag

    shutil.copytree(SEEDS, folder / "news")
    engine = rag.Engine(settings=rag.Settings(index_dir=folder / "index", seeds_dir=None, progress=False,
                                              llm="extractive"), embedder=embedder)
    engine.ingest([folder / "news"], progress=False)
    return engine

"""The chat window's API through gradio_client: the named endpoint ``/ask`` returns the Answer as
JSON (text, refused, backend, citations). In-process for the details; one subprocess run of
``rag ui`` checks the real entry point, building the index from seeds/ and the RAG_UI_AUTH login."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chroma_server import free_port
from conftest import seeds_engine, stop_process

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import ui  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword")
QUESTION = "How many people were killed in Belgorod?"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    d = tmp_path_factory.mktemp("ui_api")
    engine = seeds_engine(d, embedder)
    app = ui.build_app(engine)
    port = free_port()
    ui.launch(app, port=port, block=False, quiet=True)
    yield engine, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served[1], verbose=False, download_files=False)


def test_only_the_ask_endpoint_is_public(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == ["/ask"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "history", "top_k", "since", "until", "as_of"]


def test_ask_returns_answer_and_verbatim_citations(served, client):
    engine, _ = served
    out = client.predict(QUESTION, api_name="/ask")
    assert set(out) >= {"text", "citations", "refused", "backend", "fallback_reason"}
    assert not out["refused"] and out["backend"] == "extractive" and "[1]" in out["text"]
    assert out["citations"]
    for c in out["citations"]:
        assert set(c) == {"n", "doc_id", "title", "date", "source", "snippet", "start", "end", "score"}
        assert engine.article(c["doc_id"]).text[c["start"]:c["end"]] == c["snippet"]
    assert any("22" in c["snippet"] for c in out["citations"])


def test_ask_takes_history_filters_and_top_k(client):
    out = client.predict("How many were injured there?", [[QUESTION, "At least 22 died [1]."]], 2,
                         "2024-01-01", "2024-01-31", api_name="/ask")
    assert out["standalone_question"] != "How many were injured there?"
    assert 1 <= len(out["citations"]) <= 2
    assert all(c["date"] and "2024-01-01" <= c["date"] <= "2024-01-31" for c in out["citations"])


def test_ask_errors_are_one_line_messages(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="must be a date like"):
        client.predict("Anything?", None, 3, "last week", "", api_name="/ask")
    with pytest.raises(AppError, match="as_of must be a date like"):
        client.predict("What happened this week?", None, 3, "", "", "yesterday", api_name="/ask")
    with pytest.raises(AppError, match="empty"):
        client.predict("   ", api_name="/ask")


@pytest.mark.slow
def test_rag_ui_serves_seeds_with_login(tmp_path):
    """`rag ui` as a user runs it: empty index built from seeds/, RAG_UI_AUTH required by the API."""
    from gradio_client import Client

    port = free_port()
    env = dict(os.environ, RAG_UI_AUTH="alice:pa:ss", RAG_PROGRESS="0", RAG_LLM="extractive")
    env.pop("RAG_INDEX", None)
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ui", "--index", str(tmp_path / "index"),
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "rag ui did not start in 300s"
                time.sleep(0.5)
        with pytest.raises(Exception):
            Client(url, verbose=False)
        with pytest.raises(Exception):
            Client(url, auth=("alice", "wrong"), verbose=False)
        out = Client(url, auth=("alice", "pa:ss"), verbose=False).predict(QUESTION, api_name="/ask")
        assert "[1]" in out["text"] and out["citations"]
        assert out["citations"][0]["source"].endswith(".txt")
    finally:
        stop_process(proc)


def test_python_ui_py_help():
    out = subprocess.run([sys.executable, "ui.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--host" in out.stdout and "--port" in out.stdout and "--index" in out.stdout

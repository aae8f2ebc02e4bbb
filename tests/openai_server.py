"""A local OpenAI-compatible chat server for tests: the real HTTP protocol, scripted replies, faults.

Speaks what the `openai` client expects: POST /v1/chat/completions (JSON, or SSE when
``"stream": true``: ``data: {chunk}`` events ending in ``data: [DONE]``, sent with chunked transfer
encoding like the real API) and GET /v1/models. Replies come from a queue, one per chat request:

    server.enqueue("Belgorod was hit [1].")     # streamed word by word, then finish_reason "stop"
    server.enqueue("…", delay=2)                # a slow model: nothing for 2 s, then the reply
    server.enqueue_fault(429)                   # 401, 429, 500: an OpenAI-style JSON error
    server.enqueue_fault("hang")                # accepts the request and never answers
    server.enqueue_fault("stall")               # streams one delta, then goes silent
    server.enqueue_fault("drip")                # keep-alive comments forever, never a token
    server.enqueue_fault("disconnect")          # one delta, then the connection is cut
    server.enqueue_fault("truncate")            # one delta, then a clean end without finish/[DONE]
    server.enqueue_fault("error_in_stream")     # 200, one delta, then data: {"error": {...}}
    server.enqueue_fault("overflow")            # 400 as llama.cpp's llama-server words a prompt over n_ctx
    server.enqueue_fault("empty_stream")        # 200, no data, connection dropped: llama-cpp-python's streamed
                                                # answer to a prompt over its context (found by test_llm_server)
    server.props = {"default_generation_settings": {"n_ctx": 4096}}   # GET /props, as llama-server answers

POST /v1/embeddings answers with ``server.embed`` (a function: list of texts -> list of vectors; a
ValueError it raises becomes a 400, as a real server rejects an input over its model's limit), for the
model ``server.model`` only (another name: 404 model_not_found, as OpenAI answers). Faults for it
have their own queue: ``server.enqueue_embed_fault(429)`` (or 401, 500, 503); its 429 asks for a
10 ms wait (``retry-after-ms``) so retry tests stay fast.

The real llama.cpp server (tests/llama_server.py) covers what a real model does; this one keeps the
faults a real server cannot be made to produce on demand (401, 429, 5xx, an error inside a 200 stream,
a truncated stream, keep-alive drip) and llama-server's own formats where the server we run is
llama-cpp-python's.

It imports nothing from ``rag`` so any test file (or a manual session) can use it.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

DEFAULT_REPLY = "The articles don't say."
FAULTS = (401, 429, 500, 503, "hang", "stall", "drip", "disconnect", "truncate", "error_in_stream", "overflow",
          "empty_stream")
OVERFLOW_N_CTX = 1024  # the context the "overflow" fault reports
_STATUS_ERRORS = {
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded.", "server_error", None),
}


@dataclass(frozen=True)
class Scripted:
    text: str | None = None  # a reply, or None for a fault
    fault: int | str | None = None
    delay: float = 0.0  # seconds before the first byte (a model reading a long prompt)


class FakeOpenAI:
    """The server object tests talk to; ``url`` is ``http://127.0.0.1:PORT`` (append ``/v1``)."""

    def __init__(self, model: str = "test-model", default_reply: str = DEFAULT_REPLY):
        self.model = model
        self.default_reply = default_reply
        self.requests: list[dict] = []  # JSON bodies of chat requests, in arrival order
        self.auth: list[str] = []  # their Authorization headers
        self.busy = 0  # chat requests still being answered (a client that hung up frees its handler)
        self.props: dict | None = None  # served at GET /props (llama-server's), 404 when None
        self.embed = None  # texts -> vectors, for POST /v1/embeddings
        self.embed_requests: list[dict] = []
        self._embed_faults: deque[int] = deque()
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # releases handlers stuck in "hang"/"drip"
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ---
    def enqueue(self, text: str, *, delay: float = 0.0) -> None:
        with self._lock:
            self._queue.append(Scripted(text=text, delay=delay))

    def enqueue_fault(self, kind: int | str) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._queue.append(Scripted(fault=kind))

    def enqueue_embed_fault(self, status: int) -> None:
        if status not in _STATUS_ERRORS:
            raise ValueError(f"unknown fault {status!r}; one of {tuple(_STATUS_ERRORS)}")
        with self._lock:
            self._embed_faults.append(status)

    def _next_embed(self, body: dict) -> int | None:
        with self._lock:
            self.embed_requests.append(body)
            return self._embed_faults.popleft() if self._embed_faults else None

    def _next(self, body: dict, auth: str) -> Scripted:
        with self._lock:
            self.requests.append(body)
            self.auth.append(auth)
            return self._queue.popleft() if self._queue else Scripted(text=self.default_reply)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # --- life cycle ---
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeOpenAI":
        self._httpd = _Server(("127.0.0.1", 0), _Handler)  # port 0: the OS picks a free one
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fake-openai")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAI

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that gave up (a timeout test, a closed keep-alive) is not a server error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real API
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    # --- plumbing ---
    def _json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, obj: dict | str) -> None:
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self._chunk(f"data: {payload}\n\n".encode())

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float = 120.0) -> None:
        self.server.fake.stopping.wait(seconds)

    # --- routes ---
    def do_GET(self):
        if self.path.rstrip("/") == "/props" and self.server.fake.props is not None:
            self._json(200, self.server.fake.props)
        elif self.path.rstrip("/") == "/v1/models":
            fake = self.server.fake
            self._json(200, {"object": "list", "data": [
                {"id": fake.model, "object": "model", "created": 0, "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") == "/v1/embeddings":
            self._embeddings(raw)
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        fake = self.server.fake
        step = fake._next(body, self.headers.get("Authorization", ""))
        model = body.get("model") or fake.model
        with fake._lock:
            fake.busy += 1
        try:
            if step.delay:
                self._wait(step.delay)
            if step.fault is not None:
                self._fault(step.fault, model, bool(body.get("stream")))
            elif body.get("stream"):
                self._stream(step.text or "", model)
            else:
                self._complete(step.text or "", model)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up first: that is what several tests check
        finally:
            with fake._lock:
                fake.busy -= 1

    def _embeddings(self, raw: bytes) -> None:
        fake = self.server.fake
        body = json.loads(raw)
        fault = fake._next_embed(body)
        if fault is not None:
            message, etype, code = _STATUS_ERRORS[fault]
            self._json(fault, {"error": {"message": message, "type": etype, "param": None, "code": code}},
                       {"retry-after-ms": "10"} if fault == 429 else None)
            return
        if body.get("model") != fake.model or fake.embed is None:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist",
                                       "type": "invalid_request_error", "param": None, "code": "model_not_found"}})
            return
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        try:
            vectors = fake.embed(texts)
        except ValueError as e:
            self._json(400, {"error": {"message": str(e), "type": "invalid_request_error", "param": None,
                                       "code": None}})
            return
        self._json(200, {"object": "list", "model": fake.model, "usage": {"prompt_tokens": 0, "total_tokens": 0},
                         "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                                  for i, v in enumerate(vectors)]})

    def _complete(self, text: str, model: str) -> None:
        self._json(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    def _stream_head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    @staticmethod
    def _delta(model: str, content: str | None = None, finish: str | None = None, role: bool = False) -> dict:
        delta: dict = {}
        if role:
            delta["role"] = "assistant"
        if content is not None:
            delta["content"] = content
        return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    def _stream(self, text: str, model: str) -> None:
        self._stream_head()
        self._event(self._delta(model, "", role=True))
        for piece in _pieces(text):
            self._event(self._delta(model, piece))
        self._event(self._delta(model, finish="stop"))
        self._event("[DONE]")
        self._end_chunks()

    def _fault(self, kind: int | str, model: str, stream: bool) -> None:
        if isinstance(kind, int):
            message, etype, code = _STATUS_ERRORS[kind]
            headers = {"Retry-After": "20"} if kind == 429 else None
            self._json(kind, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers)
            return
        if kind == "hang":
            self._wait()
            return
        if kind == "overflow":
            self._json(400, {"error": {"code": 400, "message": "the request exceeds the available context size, "
                                       "try increasing it", "type": "exceed_context_size_error",
                                       "n_prompt_tokens": OVERFLOW_N_CTX + 500, "n_ctx": OVERFLOW_N_CTX}})
            return
        self._stream_head()
        if kind == "empty_stream":
            self._end_chunks()
            self.close_connection = True
            return
        self._event(self._delta(model, "", role=True))
        self._event(self._delta(model, "Partial answer that must never be final"))
        if kind == "stall":
            self._wait()
        elif kind == "drip":
            # comments are valid SSE the client silently skips: bytes keep flowing, no answer ever comes
            while not self.server.fake.stopping.wait(0.3):
                self._chunk(b": keep-alive\n\n")
        elif kind == "disconnect":
            # cut the TCP connection in the middle of a chunked body
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif kind == "truncate":
            self._end_chunks()  # a well-formed end of body, but no finish_reason and no [DONE]
        elif kind == "error_in_stream":
            self._event({"error": {"message": "The model is overloaded, please retry.", "type": "server_error",
                                   "param": None, "code": None}})
            self._end_chunks()


def _pieces(text: str) -> Iterator[str]:
    """Split like a tokenizer would: short pieces, markers sometimes broken across deltas."""
    i = 0
    while i < len(text):
        yield text[i : i + 4]
        i += 4


@pytest.fixture()
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()

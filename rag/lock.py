"""One writer at a time: an OS file lock on the index folder (released by the kernel if the holder
dies, even by SIGKILL), plus a note saying who holds it so a refusal can name them."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexLockedError


@contextmanager
def write_lock(index_dir: Path, *, timeout: float = 1.0):
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / ".write.lock"))
    info_path = index_dir / ".write.lock.json"
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexLockedError(f"index {index_dir} is being written by {_holder(info_path)}; "
                               "wait for that ingest to finish (queries keep working)") from None
    try:
        info_path.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }))
        yield
    finally:
        try:
            info_path.unlink()
        except FileNotFoundError:
            pass
        lock.release()


def _holder(info_path: Path) -> str:
    try:
        info = json.loads(info_path.read_text())
        return f"pid {info['pid']} on {info['host']} (`{info['command']}`, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"

"""Helpers shared by the benchmark scripts: clocks, peak memory, the BBC corpus, child processes."""
from __future__ import annotations

import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "bbc-news-928.csv"


class Clock:
    """Wall and CPU seconds (CPU time of this process, all threads): on a shared machine the CPU
    figure is the steadier one, wall time moves with whatever else is running."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c
        return False


def peak_rss_mb() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its
    parent's RSS at fork time, so a child started by a big parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def read_articles(csv_path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """(file name, text) per non-empty row of a ``category,text`` CSV."""
    csv.field_size_limit(sys.maxsize)
    out = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if limit is not None and i >= limit:
                break
            text = (row.get("text") or "").strip()
            if text:
                out.append((f"{i:05d}_{(row.get('category') or 'news').lower()}.txt", text))
    return out


def write_corpus(csv_path: Path, folder: Path, limit: int | None) -> tuple[int, int]:
    """One ``.txt`` file per article; returns (files, chars)."""
    folder.mkdir(parents=True, exist_ok=True)
    arts = read_articles(csv_path, limit)
    for name, text in arts:
        (folder / name).write_text(text, encoding="utf-8")
    return len(arts), sum(len(t) for _, t in arts)


def run_child(argv: list[str], *, timeout: float | None = None) -> dict:
    """Run a Python child that prints one JSON object as its last stdout line; adds its process wall
    and CPU seconds (user + sys of the child and its own children) as ``proc_wall``/``proc_cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")
    p = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"child {argv[:3]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out.update(proc_wall=wall, proc_cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return out


def median(xs) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))] if s else float("nan")

"""Load benchmark: N concurrent users asking through the chat window's API (gradio_client, loopback
only) for a bounded time, then a burst larger than the queue. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/load.py                        # 20 users, 60 s, seeds/ index
    .venv/bin/python benchmarks/load.py --users 5 --seconds 20 --burst 60

Starts `python ui.py --host 127.0.0.1` on a free port with a fresh index built from seeds/ (extractive
answerer), warms it up with one question, then every user loops over a few questions until the time
is up. Reported: answers, errors (with their messages), latency p50/p95/max, throughput, and the
server's resident memory (VmRSS) after warm-up, at the end, and its growth. Finally ``--burst``
requests are submitted at once: those beyond the queue (ui.QUEUE_MAX waiting + CHAT_CONCURRENCY
running) are refused, and the message a client then sees is printed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, percentile

QUESTIONS = [
    "How many people were killed in Belgorod?",
    "What happened in Kyiv?",
    "Who launched the drone attacks?",
    "How many people were injured?",
    "What is the capital of Peru?",  # a refusal: not in the articles
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_ui(folder: Path, timeout: float = 300) -> tuple[subprocess.Popen, str, Path]:
    """``python ui.py`` on a free loopback port with a fresh index in ``folder`` built from seeds/
    (extractive answerer, no login, no LLM), logging to ``folder/ui.log``; returns (process, url, log
    path) once it accepts connections."""
    port = free_port()
    env = dict(os.environ, RAG_PROGRESS="0", RAG_LLM="extractive")
    for var in ("RAG_UI_AUTH", "RAG_INDEX", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        env.pop(var, None)
    log_path = folder / "ui.log"
    with open(log_path, "w") as log:  # the child keeps its own copy of the handle
        proc = subprocess.Popen([sys.executable, "ui.py", "--host", "127.0.0.1", "--port", str(port),
                                 "--index", str(folder / "index")], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"ui.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/", log_path
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"ui.py did not start in {timeout:.0f} s") from None
            time.sleep(0.3)


@dataclass
class UsersRun:
    answers: list[tuple[int, str, float, dict]]  # (user, question, seconds, /ask output)
    errors: Counter  # message -> count
    wall: float
    hung: int  # users still waiting for an answer when the run was given up


def run_users(url: str, users: int, seconds: float, answer_timeout: float) -> UsersRun:
    """``users`` threads, each with its own client, loop over QUESTIONS until ``seconds`` are up;
    answers in flight then finish (each bounded by ``answer_timeout``)."""
    from gradio_client import Client

    answers: list[tuple[int, str, float, dict]] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def user(i: int) -> None:
        try:
            client = Client(url, verbose=False, download_files=False)
        except Exception as e:  # noqa: BLE001 - counted and reported
            with lock:
                errors[f"connect: {type(e).__name__}: {e}"[:200]] += 1
            return
        k = i
        while time.monotonic() < stop_at:
            q = QUESTIONS[k % len(QUESTIONS)]
            k += 1
            t = time.monotonic()
            try:
                out = client.submit(q, api_name="/ask").result(timeout=answer_timeout)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors[f"{type(e).__name__}: {e}"[:200]] += 1
                continue
            with lock:
                answers.append((i, q, time.monotonic() - t, out))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    t_run = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=seconds + 2 * answer_timeout)
    return UsersRun(answers, errors, time.monotonic() - t_run, sum(th.is_alive() for th in threads))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst", type=int, default=60, help="requests submitted at once after the run")
    args = ap.parse_args(argv)

    from gradio_client import Client

    sys.path.insert(0, str(ROOT))
    import ui

    tmp = Path(tempfile.mkdtemp(prefix="rag-load-"))
    t0 = time.monotonic()
    try:
        proc, url, _log = start_ui(tmp)
    except RuntimeError as e:
        print(e)
        return 1
    try:
        print(f"server up in {time.monotonic() - t0:.1f} s (index built from seeds/), pid {proc.pid}")
        Client(url, verbose=False, download_files=False).predict(QUESTIONS[0], api_name="/ask")  # warm-up
        rss_start = rss_mb(proc.pid)

        rss_peak = [rss_start]
        sample_until = time.monotonic() + args.seconds + 5

        def sample() -> None:
            while time.monotonic() < sample_until:
                rss_peak[0] = max(rss_peak[0], rss_mb(proc.pid))
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        run = run_users(url, args.users, args.seconds, answer_timeout=600)
        wall, errors = run.wall, run.errors
        latencies = [secs for _, _, secs, _ in run.answers]
        refused = sum(bool(out.get("refused")) for *_, out in run.answers)
        rss_end = rss_mb(proc.pid)

        n = len(latencies)
        print(f"\n{args.users} users for {args.seconds:.0f} s (ran {wall:.1f} s; answers in flight at the end finish)")
        print(f"  answers        {n}  ({n / wall:.2f}/s), refusals among them {refused}")
        print(f"  errors         {sum(errors.values())}")
        for msg, c in errors.most_common(5):
            print(f"    {c} x {msg}")
        if latencies:
            print(f"  latency        p50 {statistics.median(latencies):.2f} s   p95 {percentile(latencies, 95):.2f} s   "
                  f"max {max(latencies):.2f} s")
        print(f"  server RSS     {rss_start:.0f} MB after warm-up -> {rss_end:.0f} MB at the end "
              f"(peak {rss_peak[0]:.0f} MB; growth {rss_end - rss_start:+.0f} MB)")

        # a burst beyond the queue: QUEUE_MAX may wait, CHAT_CONCURRENCY run, the rest are refused
        print(f"\nburst: {args.burst} requests at once (queue holds {ui.QUEUE_MAX}, "
              f"{ui.CHAT_CONCURRENCY} answered at a time)")
        client = Client(url, verbose=False, download_files=False)
        t = time.monotonic()
        jobs = [client.submit(QUESTIONS[i % len(QUESTIONS)], api_name="/ask") for i in range(args.burst)]
        outcomes: Counter[str] = Counter()
        for j in jobs:
            try:
                j.result(timeout=600)
                outcomes["answered"] += 1
            except Exception as e:  # noqa: BLE001 - this is what we want to see
                outcomes[f"{type(e).__name__}: {e}"[:200]] += 1
        print(f"  done in {time.monotonic() - t:.1f} s")
        for msg, c in outcomes.most_common():
            print(f"  {c:3d} x {msg}")
        print(f"  server RSS after the burst {rss_mb(proc.pid):.0f} MB; server still up: {proc.poll() is None}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

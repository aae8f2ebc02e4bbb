"""Many users at once: the chat window served by ``python ui.py`` in a subprocess on loopback, driven
through its API (``/ask``) with gradio_client.

* 20 concurrent users ask for a bounded time: 0 errors, every answer identical to the one the same
  question gets alone (no mixed-up replies under concurrency), nothing logged as a traceback;
  p50/p95 latency and the server's memory (RSS) growth are printed.
* Then a flood larger than the queue (ui.QUEUE_MAX waiting + ui.CHAT_CONCURRENCY running): the
  requests beyond it are refused with Gradio's clear "Queue is full" message, every other one is
  answered, and the server answers normally afterwards.

Figures depend on the machine; benchmarks/load.py reports the same with more options.
"""
from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import stop_process

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import ui  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword")]

USERS = 20
SECONDS = 35  # users start new questions for this long; answers in flight then finish
ANSWER_TIMEOUT = 180  # one answer, even at the back of a full queue on a busy 2-core machine
FLOOD = 3 * (ui.QUEUE_MAX + ui.CHAT_CONCURRENCY)
# the questions and measuring helpers of the load benchmark, so the test asserts what it prints
sys.path.insert(0, str(ROOT / "benchmarks"))
from load import QUESTIONS, rss_mb, run_users, start_ui  # noqa: E402
from _common import percentile  # noqa: E402


def essence(out: dict) -> tuple:
    """What must not vary between two askings of one question (scores are floats; left out)."""
    return (out["text"], out["refused"], out["backend"],
            tuple((c["n"], c["doc_id"], c["start"], c["end"], c["snippet"]) for c in out["citations"]))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python ui.py`` on a free loopback port, its index built from seeds/ on start."""
    proc, url, log_path = start_ui(tmp_path_factory.mktemp("load"))
    try:
        yield proc, url, log_path
    finally:
        stop_process(proc)


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_twenty_users_then_a_full_queue(server):
    from gradio_client.exceptions import AppError

    proc, url, log_path = server
    first = client(url)
    reference = {q: essence(first.submit(q, api_name="/ask").result(timeout=ANSWER_TIMEOUT)) for q in QUESTIONS}
    assert not reference[QUESTIONS[0]][1] and reference[QUESTIONS[0]][3], "the seeds must answer this"
    assert reference[QUESTIONS[-1]][1], "and refuse this"
    rss_start = rss_mb(proc.pid)

    # --- 20 users for a bounded time ---
    run = run_users(url, USERS, SECONDS, ANSWER_TIMEOUT)
    assert not run.hung, "a user hung"
    errors = run.errors
    for _, q, _, out in run.answers:
        if essence(out) != reference[q]:
            errors[f"different answer to {q!r}: {out['text'][:120]!r}"] += 1
    latencies = [secs for _, _, secs, _ in run.answers]
    answered = {i for i, *_ in run.answers}
    wall = run.wall
    rss_end = rss_mb(proc.pid)
    n = len(latencies)
    print(f"\n{USERS} users for {SECONDS} s (ran {wall:.0f} s): {n} answers ({n / wall:.2f}/s), "
          f"{sum(errors.values())} errors; latency p50 {statistics.median(latencies) if n else float('nan'):.2f} s, "
          f"p95 {percentile(latencies, 95) if n else float('nan'):.2f} s, max {max(latencies, default=0):.2f} s; "
          f"server RSS {rss_start:.0f} -> {rss_end:.0f} MB ({rss_end - rss_start:+.0f} MB)")
    assert not errors, errors.most_common(5)
    assert len(answered) == USERS, f"users that got no answer: {set(range(USERS)) - set(answered)}"

    # --- a flood larger than the queue ---
    flooder = client(url)
    t = time.monotonic()
    jobs = [flooder.submit(QUESTIONS[i % len(QUESTIONS)], api_name="/ask") for i in range(FLOOD)]
    outcomes: Counter[str] = Counter()
    for i, job in enumerate(jobs):
        try:
            out = job.result(timeout=ANSWER_TIMEOUT + FLOOD)
            outcomes["answered" if essence(out) == reference[QUESTIONS[i % len(QUESTIONS)]] else "wrong answer"] += 1
        except AppError as e:
            outcomes[str(e)] += 1
        except Exception as e:  # noqa: BLE001 - anything else is a failure, shown below
            outcomes[f"{type(e).__name__}: {e}"[:200]] += 1
    refused = sum(c for msg, c in outcomes.items() if "Queue is full" in msg)
    print(f"flood of {FLOOD} (queue {ui.QUEUE_MAX} + {ui.CHAT_CONCURRENCY} running) in "
          f"{time.monotonic() - t:.0f} s: " + "; ".join(f"{c} x {m}" for m, c in outcomes.most_common()))
    assert set(outcomes) <= {"answered"} | {m for m in outcomes if "Queue is full" in m}, outcomes
    assert refused >= 1, "the flood never filled the queue"
    assert outcomes["answered"] >= ui.QUEUE_MAX, outcomes  # the queue's places were all served

    # afterwards: still up, answering as before, and nothing crashed along the way
    assert proc.poll() is None
    assert essence(first.submit(QUESTIONS[0], api_name="/ask").result(timeout=ANSWER_TIMEOUT)) == reference[QUESTIONS[0]]
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    print(f"server RSS after the flood {rss_mb(proc.pid):.0f} MB")

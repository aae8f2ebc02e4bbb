"""Replica benchmark: one index shared through a Chroma server (``chroma run``), a second machine
with an empty folder pulling it, queries through the server vs an embedded index, and embeddings
from an OpenAI-compatible server vs the local int8 encoder. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/replica.py                                  # 10k and 100k chunks
    .venv/bin/python benchmarks/replica.py --scales 10000 --queries 30      # a quick look
    .venv/bin/python benchmarks/replica.py --work bench-r --keep            # keep/reuse the builds
    .venv/bin/python benchmarks/replica.py --embedded-from bench-q          # reuse query.py's ours-N indexes

Everything runs on this machine: a ``chroma run --path WORK/chroma-db`` server on 127.0.0.1 is
started at the beginning and stopped at the end; "another machine" is a new process with an empty
index folder pointed at it.

Per scale (``--scales``), the corpus of benchmarks/query.py (BBC articles copied with distinct ids,
grown step by step until the target chunk count; ``--build-minutes`` bounds the steps). Each step is
ingested by a *writer* (RAG_CHROMA_URL = the server, collection ``news_N``: chunk vectors go to the
server, then shared.publish sends articles and sentence vectors and bumps the generation) and, right
after it, by an *embedded* index of the same folder (query.py's build), so both see the same steps
under the same load. Embeddings come through query.py's CachingEmbedder, warmed before the builds
on the corpus's distinct chunks: the ingest times are chunking, Chroma, manifest, publish and BM25,
not the encoder (that is part 3). Then, each in a new process:

- pull: a replica engine on an empty folder runs ``Engine.refresh(force=True)`` (shared.pull into
  its manifest + the BM25 rebuild, timed apart by wrappers), then ``engine._rebuild_bm25()`` alone;
  its folder size;
- serve: the replica (dense search through the server) and the embedded index each open, answer one
  warm-up question, then ``--queries`` questions from query.make_questions: ``engine.retrieve`` then
  ``engine.query`` (offline extractive answerer), wall p50/p95. The Chroma server's CPU time during
  each process (/proc/PID/stat) is reported per question.

Part 3, embeddings: the first ``--embed-chunks`` ingest inputs (chunk text with its header, as
ingest passes them) embedded by ``RemoteEmbedder.embed`` (batch 64) against (a) FakeOpenAI
(tests/openai_server.py) in its own process serving the packaged MiniLM through
rag.embedding.SentenceTransformerEmbedder (fp32 torch) and (b) a llama.cpp server (llama-cpp-python)
started by tests/llama_server.py (``make llm-deps`` prepares it) when it can run here; against the local encoder
(``make_embedder`` default: int8 ONNX) on the same texts. chars/s is the median of three equal
slices. ``embed_with_sentences`` (what ingest really calls: a server also embeds every sentence
alone) on the first ``--ews-chunks`` (at most a twelfth of the inputs). The llama.cpp server runs on the
first ``--llama-chunks`` inputs only (it is slow at batch 64), at batch 64 and at batch 1; the local
encoder runs again on those for a same-texts ratio.

Extrapolation to 1M chunks is linear (proportional to the largest scale, and a line through two
scales when there are two): an estimate, not a measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from _common import (
    DEFAULT_CSV,
    ROOT,
    Clock,
    median,
    peak_rss_mb,
    percentile,
    read_articles,
    run_child,
)
from query import (
    WARM_Q,
    CachingEmbedder,
    copy_file,
    grow,
    make_questions,
    settings_for,
    timed,
)

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from chroma_server import start_chroma  # noqa: E402
from chroma_server import stop_process as stop  # noqa: E402

LLAMA_MODEL = "all-MiniLM-L6-v2"  # tests/llama_server.EMBED_ALIAS
FAKE_MODEL = "minilm-st-fp32"


# --- processes --------------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """CPU seconds (user + sys, all threads) of a running process; nan when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def wrap_timer(owner, attr: str, acc: dict) -> None:
    """Replace ``owner.attr`` by a wrapper adding each call's wall/CPU seconds to ``acc``."""
    orig = getattr(owner, attr)

    def timed_call(*a, **kw):
        c = Clock()
        try:
            with c:
                return orig(*a, **kw)
        finally:
            acc["wall"] = acc.get("wall", 0.0) + c.wall
            acc["cpu"] = acc.get("cpu", 0.0) + c.cpu
            acc["n"] = acc.get("n", 0) + 1

    setattr(owner, attr, timed_call)


# --- builds (parent) --------------------------------------------------------------------------

def warm_cache(work: Path, articles, emb: CachingEmbedder) -> None:
    """Embed the corpus's distinct chunks once (copy 0 of every article), so the timed builds
    measure everything but the encoder."""
    import rag

    folder, index = work / "warm-news", work / "warm-index"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    folder.mkdir(parents=True)
    for k in range(len(articles)):
        copy_file(folder, articles, k)
    with Clock() as c:
        eng = rag.Engine(settings=settings_for(index), embedder=emb)
        eng.ingest([folder])
        eng.close()
    print(f"embedding cache warmed: {len(emb.cache)} distinct chunk inputs in {c.wall:.0f} s wall, {c.cpu:.0f} s CPU",
          flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)


def build_pair(work: Path, articles, target: int, emb, url: str, chroma_pid: int, deadline: float,
               reuse_embedded: Path | None, keep: bool) -> dict:
    """Grow the corpus to ``target`` chunks; every step is ingested by the writer (server) and then
    by the embedded index. Returns the timings (summed over steps)."""
    import rag
    from rag import shared

    folder = work / f"news-{target}"
    folder.mkdir(parents=True, exist_ok=True)
    coll = f"news_{target}"
    wdir, edir = work / f"writer-{target}", work / f"embedded-{target}"
    rec_path = work / f"build-{target}.json"
    rec = json.loads(rec_path.read_text()) if keep and rec_path.exists() else \
        dict(steps=[], server_wall=0.0, server_cpu=0.0, chroma_cpu=0.0, publish_wall=0.0, publish_cpu=0.0,
             writer_pull_wall=0.0, embedded_wall=0.0, embedded_cpu=0.0)
    pub, wpull = {}, {}
    orig_pub, orig_pull = shared.SharedIndex.publish, shared.SharedIndex.pull
    wrap_timer(shared.SharedIndex, "publish", pub)
    wrap_timer(shared.SharedIndex, "pull", wpull)
    writer = rag.Engine(settings=settings_for(wdir).with_(chroma_url=url, collection=coll), embedder=emb)
    embedded = None if reuse_embedded else rag.Engine(settings=settings_for(edir), embedder=emb)

    def add(a: int, b: int) -> None:
        for k in range(a, b):
            copy_file(folder, articles, k)
        p0, s0 = dict(pub), proc_cpu(chroma_pid)
        with Clock() as c:
            writer.ingest([folder])
        rec["server_wall"] += c.wall
        rec["server_cpu"] += c.cpu
        rec["chroma_cpu"] += proc_cpu(chroma_pid) - s0
        rec["publish_wall"] += pub.get("wall", 0.0) - p0.get("wall", 0.0)
        rec["publish_cpu"] += pub.get("cpu", 0.0) - p0.get("cpu", 0.0)
        line = f"server ingest {c.wall:.0f} s (publish {pub.get('wall', 0.0) - p0.get('wall', 0.0):.0f} s)"
        if embedded is not None:
            with Clock() as e:
                embedded.ingest([folder])
            rec["embedded_wall"] += e.wall
            rec["embedded_cpu"] += e.cpu
            line += f", embedded ingest {e.wall:.0f} s"
        rec["steps"].append([a, b])
        rec_path.write_text(json.dumps(rec))
        print(f"    step {a}..{b}: {line}", flush=True)

    try:
        chunks = grow(lambda: writer.manifest.counts()[1], add, target, f"build {target}", deadline, 2.5,
                      work / f"writer-{target}.n")
        rec["writer_pull_wall"] = wpull.get("wall", 0.0)
        rec.update(chunks=chunks, articles=writer.manifest.counts()[0], collection=coll,
                   embedded_index=str(reuse_embedded or edir))
        if embedded is not None:
            rec["embedded_chunks"] = embedded.manifest.counts()[1]
            embedded.close()
        else:
            reused = rag.Engine(settings=settings_for(reuse_embedded))
            rec["embedded_chunks"] = reused.manifest.counts()[1]
            reused.close()
        writer.close()
    finally:
        shared.SharedIndex.publish, shared.SharedIndex.pull = orig_pub, orig_pull
    rec_path.write_text(json.dumps(rec))
    return rec


# --- children ---------------------------------------------------------------------------------

def child_pull(index: Path, url: str, coll: str) -> dict:
    import rag
    from rag import engine as rag_engine
    from rag import shared

    shutil.rmtree(index, ignore_errors=True)  # an empty folder: a new machine
    pull, bm = {}, {}
    wrap_timer(shared.SharedIndex, "pull", pull)
    wrap_timer(rag_engine.Engine, "_rebuild_bm25", bm)
    eng = rag.Engine(settings=settings_for(index).with_(chroma_url=url, collection=coll))
    with Clock() as c:
        changed = eng.refresh(force=True)
    rss_pull = peak_rss_mb()
    bm = dict(bm)  # the call below goes through the wrapper too
    with Clock() as b:
        eng._rebuild_bm25()
    arts, chunks, files = eng.manifest.counts()
    eng.close()
    parts = {p.name: dir_bytes(p) if p.is_dir() else p.stat().st_size for p in index.iterdir()}
    return dict(changed=changed, refresh_wall=c.wall, refresh_cpu=c.cpu, pull_wall=pull.get("wall"),
                pull_cpu=pull.get("cpu"), bm25_in_refresh_wall=bm.get("wall"), bm25_in_refresh_cpu=bm.get("cpu"),
                bm25_alone_wall=b.wall, bm25_alone_cpu=b.cpu, articles=arts, chunks=chunks, files=files,
                folder_bytes=dir_bytes(index), parts=parts, rss_after_pull_mb=rss_pull, rss_mb=peak_rss_mb())


def child_serve(index: Path, url: str | None, coll: str | None, questions: list[str]) -> dict:
    import rag

    s = settings_for(index)
    if url:
        s = s.with_(chroma_url=url, collection=coll)
    eng = rag.Engine(settings=s)
    with Clock() as warm:
        eng.query(WARM_Q)
    out = dict(warm_s=warm.wall, chunks=eng.manifest.counts()[1])
    out["retrieve"] = timed(eng.retrieve, questions)
    out["query"] = timed(eng.query, questions)
    out["rss_mb"] = peak_rss_mb()
    return out


def child_fake_embed_server() -> None:
    """FakeOpenAI serving the packaged MiniLM (fp32 torch) at /v1/embeddings until stdin closes."""
    sys.path.insert(0, str(ROOT / "tests"))
    from openai_server import FakeOpenAI

    from rag.config import DEFAULT_MODEL
    from rag.embedding import SentenceTransformerEmbedder

    st = SentenceTransformerEmbedder(DEFAULT_MODEL, batch_size=64)
    st.embed(["warm up the model"])
    server = FakeOpenAI(model=FAKE_MODEL)
    server.embed = lambda texts: st.embed(texts)
    server.start()
    import torch

    print(json.dumps(dict(url=server.url, torch_threads=torch.get_num_threads())), flush=True)
    sys.stdin.read()
    server.stop()


def child_embed(items_path: Path, remotes: list[list[str]], ews_n: int) -> dict:
    """The local int8 encoder vs each remote (label, url, model, batch, n) on the same texts: the
    first n inputs, in three equal slices; embed_with_sentences on the first min(ews_n, n // 12). The
    local encoder runs once per distinct n, so every remote has a same-texts reference."""
    import numpy as np

    import rag
    from rag.embedding import make_embedder
    from rag.remote_embedding import RemoteEmbedder

    items = json.loads(items_path.read_text())
    texts, spans = [t for t, _ in items], [[tuple(x) for x in sp] for _, sp in items]
    s = rag.Settings()
    local = make_embedder(s.embed_model, batch_size=s.embed_batch_size, device=s.embed_device, encoder=s.encoder,
                          cache_dir=s.cache_dir)
    runs = []
    for n in dict.fromkeys([len(texts)] + [min(int(r[4]), len(texts)) for r in remotes]):
        runs.append((f"local int8 ONNX (make_embedder default), batch {s.embed_batch_size}", local, n, None))
    for label, url, model, batch, n in remotes:
        runs.append((label, RemoteEmbedder(url, model, batch_size=int(batch)), min(int(n), len(texts)), n))
    out, refs = [], {}
    for label, e, n, _ in runs:
        r = dict(label=label, n=n, local=e is local)
        sub = texts[:n]
        thirds = [sub[i * n // 3:(i + 1) * n // 3] for i in range(3)]
        k = min(ews_n, n // 12)
        try:
            e.embed(texts[:8])  # load the model / open the connection
            rates, vecs, wall = [], [], 0.0
            for part in thirds:
                with Clock() as c:
                    vecs.append(e.embed(part))
                rates.append(sum(map(len, part)) / c.wall)
                wall += c.wall
            v = np.vstack(vecs)
            ref = refs.setdefault(n, v)
            cos = (v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))
            with Clock() as c:
                _, sv = e.embed_with_sentences(texts[:k], spans[:k])
            r.update(chars=sum(map(len, sub)), chars_per_s=median(rates), rates=rates, wall=wall,
                     cos_median=float(np.median(cos)), cos_min=float(cos.min()), ews_n=k, ews_wall=c.wall,
                     ews_chars_per_s=sum(map(len, texts[:k])) / c.wall, sentences=int(sum(len(x) for x in sv)))
        except Exception as exc:  # a server that fails is a figure too
            r["error"] = f"{type(exc).__name__}: {exc}"[:300]
        out.append(r)
        print(f"  {label} on {n}: {r.get('chars_per_s', float('nan')):.0f} chars/s {r.get('error', '')}",
              file=sys.stderr, flush=True)
    return dict(results=out)


# --- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--scales", default="10000,100000", help="target chunk counts, comma-separated")
    ap.add_argument("--queries", type=int, default=60, help="questions per index (default 60)")
    ap.add_argument("--work", type=Path, default=None, help="folder for corpora, indexes and the Chroma server")
    ap.add_argument("--keep", action="store_true", help="keep --work and reuse the builds already in it")
    ap.add_argument("--embedded-from", type=Path, default=None,
                    help="a benchmarks/query.py --work folder: use its ours-N index as the embedded one")
    ap.add_argument("--build-minutes", type=float, default=24, help="time limit per scale's builds (default 24)")
    ap.add_argument("--embed-chunks", type=int, default=1500)
    ap.add_argument("--ews-chunks", type=int, default=125,
                    help="chunks for embed_with_sentences (default 125; at most a twelfth of an embedder's inputs)")
    ap.add_argument("--llama-chunks", type=int, default=192,
                    help="inputs for the llama.cpp server (default 192: it is slow at batch 64)")
    ap.add_argument("--no-embed", action="store_true", help="skip part 3 (embedding servers)")
    ap.add_argument("--child", choices=["pull", "serve", "fake-embed", "embed"], help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--collection", help=argparse.SUPPRESS)
    ap.add_argument("--questions", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--remote", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "fake-embed":
        child_fake_embed_server()
        return 0
    if args.child:
        if args.child == "pull":
            r = child_pull(args.index, args.url, args.collection)
        elif args.child == "serve":
            r = child_serve(args.index, args.url, args.collection, json.loads(args.questions.read_text()))
        else:
            r = child_embed(args.items, [x.split("|") for x in args.remote], args.ews_chunks)
        print(json.dumps(r))
        return 0
    if not args.csv.exists():
        print(f"no data: {args.csv} not found", file=sys.stderr)
        return 2

    scales = [int(s) for s in args.scales.split(",")]
    work = (args.work or Path(tempfile.mkdtemp(prefix="rag-replica-"))).resolve()
    if not args.keep:
        for old in (p for pat in ("news-*", "writer-*", "embedded-*", "replica-*", "build-*", "chroma-db")
                    for p in work.glob(pat)):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    work.mkdir(parents=True, exist_ok=True)
    articles = read_articles(args.csv)
    questions = make_questions(articles, args.queries)
    (work / "questions.json").write_text(json.dumps(questions))
    print(machine_line(), flush=True)
    print(f"{len(articles)} articles from {args.csv.name}; scales {scales}; {len(questions)} questions; "
          f"work folder {work}", flush=True)
    t0 = time.monotonic()
    chroma, url = start_chroma(work / "chroma-db", work / "chroma.log")
    print(f"chroma run (pid {chroma.pid}) at {url}", flush=True)
    try:
        run(args, work, articles, scales, chroma, url)
    finally:
        stop(chroma)
        print(f"\nchroma server stopped; whole run {(time.monotonic() - t0) / 60:.1f} min; load average now "
              f"{Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def machine_line() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next((int(x.split()[1]) // 1024 // 1024 for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal")), 0)
    return (f"machine: {cpu}, {os.cpu_count()} cores, {mem} GB RAM, Python {platform.python_version()}, "
            f"load average {Path('/proc/loadavg').read_text().split()[:3]}")


def run(args, work: Path, articles, scales: list[int], chroma: subprocess.Popen, url: str) -> None:
    import rag

    me = str(Path(__file__).resolve())
    emb = CachingEmbedder(rag.Engine(settings=settings_for(work / "unused")).embedder)
    warm_cache(work, articles, emb)
    builds, pulls, serves = {}, {}, {}
    for target in scales:
        reuse = None
        if args.embedded_from and (args.embedded_from / f"ours-{target}" / "manifest.sqlite").exists():
            reuse, src = work / f"embedded-{target}", (args.embedded_from / f"ours-{target}").resolve()
            if not (reuse / "manifest.sqlite").exists():  # a copy: the other benchmark's folder stays as it was
                shutil.rmtree(reuse, ignore_errors=True)
                shutil.copytree(src, reuse, ignore=shutil.ignore_patterns(".write.lock"))
                print(f"  embedded index copied from {src}", flush=True)
        print(f"\n{target} chunks: building (writer into the server, then embedded{' reused from ' + str(reuse) if reuse else ''})",
              flush=True)
        b = builds[target] = build_pair(work, articles, target, emb, url, chroma.pid,
                                        time.monotonic() + args.build_minutes * 60, reuse, args.keep)
        db_before = sum(x.get("db_bytes_scale", 0) for x in builds.values() if x is not b)
        b["db_bytes_scale"] = dir_bytes(work / "chroma-db") - db_before
        print(f"  built: {b['articles']} articles, {b['chunks']} chunks (embedded {b['embedded_chunks']}); server "
              f"ingest {b['server_wall']:.0f} s (publish {b['publish_wall']:.0f} s), embedded {b['embedded_wall']:.0f} s",
              flush=True)
        c0 = proc_cpu(chroma.pid)
        p = pulls[target] = run_child([me, "--child", "pull", "--index", str(work / f"replica-{target}"),
                                       "--url", url, "--collection", b["collection"]])
        p["chroma_cpu"] = proc_cpu(chroma.pid) - c0
        print(f"  replica pulled {p['articles']} articles / {p['chunks']} chunks: refresh {p['refresh_wall']:.1f} s "
              f"(pull {p['pull_wall']:.1f} s, BM25 {p['bm25_in_refresh_wall']:.1f} s), BM25 alone "
              f"{p['bm25_alone_wall']:.1f} s, folder {p['folder_bytes'] / 1e6:.0f} MB", flush=True)
        for who, idx, extra in (("replica", work / f"replica-{target}", ["--url", url, "--collection", b["collection"]]),
                                ("embedded", Path(b["embedded_index"]), [])):
            c0 = proc_cpu(chroma.pid)
            r = serves[who, target] = run_child([me, "--child", "serve", "--index", str(idx),
                                                 "--questions", str(work / "questions.json"), *extra])
            r["chroma_cpu"] = proc_cpu(chroma.pid) - c0
            print(f"  {who} served {r['chunks']} chunks: warm-up {r['warm_s']:.1f} s, p50 retrieve "
                  f"{percentile(r['retrieve'][0], 50):.0f} ms, query {percentile(r['query'][0], 50):.0f} ms", flush=True)
    emb_res = None
    if not args.no_embed:
        emb_res = embed_part(args, work, emb, me)
    report(scales, builds, pulls, serves, emb_res, work, args)


def embed_part(args, work: Path, emb: CachingEmbedder, me: str) -> dict | None:
    items = [[t, [list(s) for s in sp]] for t, sp in list(emb.cache)[: args.embed_chunks]]
    (work / "embed-items.json").write_text(json.dumps(items))
    print(f"\nembeddings: {len(items)} ingest inputs, {sum(len(t) for t, _ in items)} chars", flush=True)
    remotes, notes = [], []
    fake = subprocess.Popen([sys.executable, me, "--child", "fake-embed"], cwd=ROOT, env=child_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    llama = None
    try:
        info = json.loads(fake.stdout.readline())
        remotes.append(f"FakeOpenAI + SentenceTransformer fp32 torch ({info['torch_threads']} threads), batch 64"
                       f"|{info['url']}|{FAKE_MODEL}|64|{args.embed_chunks}")
        sys.path.insert(0, str(ROOT / "tests"))
        import llama_server as L

        reason = L.unavailable()
        if reason is None:
            llama = L.LlamaServer(embedding=True).start()
            for batch in (64, 1):
                remotes.append(f"llama.cpp server (llama-cpp-python, f32 GGUF), batch {batch}"
                               f"|{llama.url}|{L.EMBED_ALIAS}|{batch}|{args.llama_chunks}")
            notes.append(f"llama.cpp embedding server pid {llama.pid} on {llama.url}")
        else:
            notes.append(f"no llama.cpp server: {reason}")
        r = run_child([me, "--child", "embed", "--items", str(work / "embed-items.json"),
                       "--ews-chunks", str(args.ews_chunks), *[f"--remote={x}" for x in remotes]])
        r["notes"] = notes
        return r
    except Exception:
        traceback.print_exc()
        return dict(error=traceback.format_exc()[-1500:], notes=notes)
    finally:
        if fake.stdin:
            fake.stdin.close()
        try:
            fake.wait(timeout=20)
        except subprocess.TimeoutExpired:
            fake.kill()
        if llama is not None:
            llama.stop()


def db_breakdown(path: Path) -> str:
    """The biggest tables of the server's SQLite file (read-only; dbstat reads every page)."""
    import sqlite3

    try:
        t = time.perf_counter()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6").fetchall()
        total = db.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
        db.close()
    except Exception as e:
        return f"server sqlite breakdown unavailable: {type(e).__name__}: {e}"
    return (f"server chroma.sqlite3 {total / 1e6:.0f} MB, biggest tables (MB): "
            + ", ".join(f"{n} {b / 1e6:.0f}" for n, b in rows) + f" [read in {time.perf_counter() - t:.0f} s]")


# --- report -----------------------------------------------------------------------------------

def report(scales, builds, pulls, serves, emb_res, work: Path, args) -> None:
    def pq(xs, q):
        return percentile(xs, q)

    print(f"\n## Replica benchmark\n\n{machine_line()}; Chroma server db {dir_bytes(work / 'chroma-db') / 1e6:.0f} MB "
          "(all collections)\n")
    print("### 1. Ingest into the server, and a new replica pulling it (wall seconds)\n")
    print("| chunks (articles) | writer ingest, server | of which shared.publish | embedded ingest, same steps "
          "| server/embedded | chroma server CPU during writer ingest | replica refresh(force) | of which pull "
          "| of which BM25 rebuild | BM25 rebuild alone | replica folder MB | server db MB (this scale) "
          "| chroma CPU during pull |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in scales:
        b, p = builds.get(t), pulls.get(t)
        if not b:
            continue
        emb_s = f"{b['embedded_wall']:.0f}" if b["embedded_wall"] else "reused"
        ratio = f"{b['server_wall'] / b['embedded_wall']:.2f}" if b["embedded_wall"] else "-"
        print(f"| {b['chunks']} ({b['articles']}) | {b['server_wall']:.0f} | {b['publish_wall']:.0f} | {emb_s} | {ratio} "
              f"| {b['chroma_cpu']:.0f} | {p['refresh_wall']:.1f} | {p['pull_wall']:.1f} | {p['bm25_in_refresh_wall']:.1f} "
              f"| {p['bm25_alone_wall']:.1f} | {p['folder_bytes'] / 1e6:.0f} | {b.get('db_bytes_scale', 0) / 1e6:.0f} "
              f"| {p['chroma_cpu']:.1f} |")
    print("\nreplica folder parts (MB): " + "; ".join(
        f"{pulls[t]['chunks']} chunks: " + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in sorted(pulls[t]["parts"].items()))
        for t in scales if t in pulls))
    print("replica peak RSS after pull / after BM25 alone (MB): " + "; ".join(
        f"{pulls[t]['chunks']}: {pulls[t]['rss_after_pull_mb']:.0f} / {pulls[t]['rss_mb']:.0f}" for t in scales if t in pulls))

    print(db_breakdown(work / "chroma-db" / "chroma.sqlite3"))

    print(f"\n### 2. Query latency, new process per index, {args.queries} questions after one warm-up (wall ms)\n")
    print("| chunks | retrieve p50 / p95: replica via server | embedded | p50 ratio | query p50 / p95: replica "
          "| embedded | p50 ratio | chroma CPU ms per question (replica / embedded) | peak RSS MB (replica / embedded) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in scales:
        r, e = serves.get(("replica", t)), serves.get(("embedded", t))
        if not (r and e):
            continue
        nq = 2 * len(r["retrieve"][0]) + 1
        rr, er, rq, eq = r["retrieve"][0], e["retrieve"][0], r["query"][0], e["query"][0]
        print(f"| {r['chunks']} / {e['chunks']} | {pq(rr, 50):.0f} / {pq(rr, 95):.0f} | {pq(er, 50):.0f} / {pq(er, 95):.0f} "
              f"| {pq(rr, 50) / pq(er, 50):.2f} | {pq(rq, 50):.0f} / {pq(rq, 95):.0f} | {pq(eq, 50):.0f} / {pq(eq, 95):.0f} "
              f"| {pq(rq, 50) / pq(eq, 50):.2f} | {r['chroma_cpu'] / nq * 1e3:.0f} / {e['chroma_cpu'] / nq * 1e3:.0f} "
              f"| {r['rss_mb']:.0f} / {e['rss_mb']:.0f} |")
    print("(replica wall includes the HTTP round trips to the server, whose CPU is the column after; the replica "
          "also asks the server for the generation every RAG_REPLICA_POLL = 2 s)")

    if emb_res is not None:
        print("\n### 3. Embedding throughput on identical ingest inputs (chars/s, median of 3 slices)\n")
        if "results" not in emb_res:
            print(f"failed: {emb_res.get('error')}")
        else:
            res = emb_res["results"]
            base = {r["n"]: r for r in res if r["local"] and "error" not in r}
            print("| embedder | inputs (chars) | embed chars/s | embed wall s | vs int8 same texts "
                  "| embed_with_sentences: chunks, chars/s | vs int8 | cosine to int8 (median / min) |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in res:
                if "error" in r:
                    print(f"| {r['label']} | {r['n']} | error: {r['error']} | | | | | |")
                    continue
                b = base.get(r["n"])
                vs = f"{r['chars_per_s'] / b['chars_per_s']:.2f}" if b else "-"
                vs_ews = f"{r['ews_chars_per_s'] / b['ews_chars_per_s']:.2f}" if b else "-"
                print(f"| {r['label']} | {r['n']} ({r['chars']}) | {r['chars_per_s']:.0f} | {r['wall']:.1f} | {vs} "
                      f"| {r['ews_n']}, {r['ews_chars_per_s']:.0f} | {vs_ews} | {r['cos_median']:.4f} / {r['cos_min']:.4f} |")
        for n in emb_res.get("notes", []):
            print(f"note: {n}")

    done = [t for t in scales if t in pulls]
    if done:
        print("\n### 4. Extrapolation to 1,000,000 chunks (linear, an estimate, not measured)\n")
        print("| figure | measured | proportional to the largest scale | line through two scales |")
        print("|---|---:|---:|---:|")
        big = done[-1]

        def row(name, key, unit, scale=1.0):
            ys = {t: pulls[t][key] * scale for t in done}
            n = pulls[big]["chunks"]
            prop = ys[big] * 1e6 / n
            two = "-"
            if len(done) >= 2:
                a, b = done[-2], done[-1]
                na, nb = pulls[a]["chunks"], pulls[b]["chunks"]
                slope = (ys[b] - ys[a]) / (nb - na)
                two = f"{ys[b] + slope * (1e6 - nb):.0f} {unit}"
            meas = ", ".join(f"{ys[t]:.1f} {unit} at {pulls[t]['chunks']}" for t in done)
            print(f"| {name} | {meas} | {prop:.0f} {unit} | {two} |")

        row("replica pull (shared.pull)", "pull_wall", "s")
        row("BM25 rebuild alone", "bm25_alone_wall", "s")
        row("replica refresh(force) total", "refresh_wall", "s")
        row("replica folder", "folder_bytes", "MB", 1e-6)
        for t in done:
            pulls[t]["db_bytes_scale"] = builds[t].get("db_bytes_scale", 0)
        row("Chroma server db (this collection set)", "db_bytes_scale", "MB", 1e-6)


if __name__ == "__main__":
    sys.exit(main())

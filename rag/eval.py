"""`rag eval`: score a QA set against an index — retrieval, answers, citations, refusals, latency.

    rag eval                                   # the shipped seeds QA set on an index of seeds/
    rag eval --qa my_qa.jsonl --index index    # your questions on your index
    rag eval --rgb ../shared/data/rgb-en-dev.jsonl
    rag eval --open --half a                   # the shipped open questions (overviews): nugget recall, one half
    rag eval --compare mode=dense/bm25/hybrid,k=3/5 --json out.json
    rag eval --min-answer-acc 0.9 --max-false-refusal 0.1   # exit 1 when missed (CI)

Prints a Markdown table (one column per configuration), a progress bar on stderr, and with
``--json FILE`` every per-question result plus the summaries. Offline and deterministic (apart from
latency). The QA format is described in :mod:`rag.qa`, the metrics in :mod:`rag.metrics`.

Exit status: 0 all thresholds met, 1 a threshold missed, 2 a usage error (bad file, bad option).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from . import metrics as M
from .config import Settings, apply_offline_env
from .errors import RagError, UserError
from .qa import QASet, Turn, corpus_hash, load_qa, load_rgb, load_seeds_open_qa, load_seeds_qa, rgb_rejection, write_corpus

MODES = ("hybrid", "dense", "bm25")
LLMS = ("extractive", "openai", "auto")

# (flag, summary key, direction, help)
THRESHOLDS = [
    ("--min-hit-rate", "hit_rate", "min", "retrieval hit@k over answerable questions"),
    ("--min-mrr", "mrr", "min", "mean reciprocal rank of the first relevant passage"),
    ("--min-answer-acc", "answer_acc", "min", "share of answerable questions answered correctly"),
    ("--min-followup-acc", "followup_acc", "min", "answer accuracy on follow-up turns of dialogues"),
    ("--min-f1", "f1", "min", "mean token F1 of answers against the gold answer"),
    ("--min-nugget-recall", "nugget_recall", "min", "mean share of an open question's nuggets found in its answer"),
    ("--min-citation-exact", "citation_exact", "min", "share of citations whose snippet is verbatim at its offsets"),
    ("--min-citation-support", "citation_support", "min", "share of citations (of given answers) that back the answer"),
    ("--min-refusal-precision", "refusal_precision", "min", "share of refusals that were on unanswerable questions"),
    ("--min-refusal-recall", "refusal_recall", "min", "share of unanswerable questions refused"),
    ("--max-false-refusal", "false_refusal", "max", "share of answerable questions refused"),
    ("--max-answer-words", "answer_words", "max", "median words per (non-refused) answer"),
    ("--max-latency-p95", "latency_p95_ms", "max", "95th percentile latency per question, in ms"),
]

ROWS = [  # (summary key, label, format)
    ("questions", "questions (answerable / unanswerable)", None),
    ("hit_rate", "retrieval hit@k", ".3f"),
    ("mrr", "retrieval MRR", ".3f"),
    ("answer_acc", "answer accuracy", ".3f"),
    ("followup_acc", "follow-up accuracy", ".3f"),
    ("f1", "token F1", ".3f"),
    ("nugget_recall", "nugget recall (open questions)", ".3f"),
    ("citation_exact", "citation exactness", ".3f"),
    ("citation_support", "citation support", ".3f"),
    ("refusal_precision", "refusal precision", ".3f"),
    ("refusal_recall", "refusal recall", ".3f"),
    ("false_refusal", "false-refusal rate", ".3f"),
    ("answer_words", "answer words (median)", ".0f"),
    ("latency_p50_ms", "latency p50 (ms)", ".0f"),
    ("latency_p95_ms", "latency p95 (ms)", ".0f"),
    ("fallbacks", "LLM fallbacks to extractive", "d"),
]


@dataclass(frozen=True)
class Config:
    mode: str
    top_k: int
    llm: str

    @property
    def name(self) -> str:
        return f"{self.mode} k={self.top_k} {self.llm}"


# --- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rag eval", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score a QA set against an index: retrieval hit@k and MRR, answer accuracy and token F1, "
                    "citation exactness and support, refusals, answer length and latency.",
        epilog="Without --qa/--rgb: the shipped seeds QA set on an index of seeds/ (cached).\n"
               "Exit status: 0 thresholds met, 1 a threshold missed, 2 usage error.")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--qa", metavar="FILE", help="QA set in JSONL (question, answers, unanswerable, turns, article)")
    src.add_argument("--rgb", metavar="FILE", help="RGB benchmark JSONL: indexes every passage, asks every query")
    ap.add_argument("--rejection", action="store_true",
                    help="with --rgb: RGB's negative-rejection test (only the passages holding no gold answer; "
                         "every question must be refused)")
    src.add_argument("--open", action="store_true",
                     help="the shipped seeds set of open questions (overviews, scored by nugget recall)")
    ap.add_argument("--index", metavar="DIR",
                    help="index to evaluate (default: with --qa ./index or RAG_INDEX; for the seeds set and --rgb "
                         "an index built in the cache folder)")
    ap.add_argument("--cache", metavar="DIR", help="where built seeds/RGB indexes are kept between runs "
                    "(default: <temp dir>/rag-eval)")
    ap.add_argument("--top-k", type=int, default=None, metavar="K",
                    help="passages retrieved per question (default: RAG_TOP_K or the built-in default)")
    ap.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default hybrid)")
    ap.add_argument("--llm", choices=LLMS, default=None, help="answerer (default: RAG_LLM or auto)")
    ap.add_argument("--compare", nargs="*", metavar="CONFIG", default=None,
                    help="several configurations side by side: mode=dense/bm25/hybrid, k=3/5/10, "
                         "llm=extractive/openai, comma-joined; '/' makes a grid. Several CONFIGs are allowed. "
                         "Alone: the three retrieval modes")
    ap.add_argument("--json", metavar="FILE", help="write every per-question result and the summaries")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N items of the QA set")
    ap.add_argument("--half", choices=("a", "b"), default=None,
                    help="every other item only (a: 1st, 3rd, …; b: 2nd, 4th, …): tune on one half, report both")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the questions answered wrongly")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    g = ap.add_argument_group("thresholds (exit 1 when any configuration misses one)")
    for flag, _key, _d, help_ in THRESHOLDS:
        g.add_argument(flag, type=float, default=None, metavar="X", help=help_)
    return ap


def parse_compare(specs: list[str], base: Config) -> list[Config]:
    """``["mode=dense/bm25,k=3", "llm=openai"]`` -> configurations (``/`` alternatives form a grid)."""
    if not specs:
        return [replace(base, mode=m) for m in ("dense", "bm25", "hybrid")]
    out: list[Config] = []
    for spec in specs:
        choices: dict[str, list[Any]] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip().lower().replace("-", "_")
            values = [v.strip() for v in value.split("/") if v.strip()]
            if not sep or not values:
                raise UserError(f"--compare {spec!r}: write key=value pairs, e.g. mode=dense/bm25,k=3/5,llm=extractive")
            if key in ("mode", "retrieval", "retrieval_mode"):
                bad = [v for v in values if v not in MODES]
                if bad:
                    raise UserError(f"--compare: mode must be one of {', '.join(MODES)}, not {bad[0]!r}")
                choices["mode"] = values
            elif key in ("k", "top_k"):
                try:
                    ks = [int(v) for v in values]
                except ValueError:
                    raise UserError(f"--compare: k must be a whole number, not {value!r}") from None
                if min(ks) < 1:
                    raise UserError("--compare: k must be at least 1")
                choices["top_k"] = ks
            elif key in ("llm", "answerer"):
                bad = [v for v in values if v not in LLMS]
                if bad:
                    raise UserError(f"--compare: llm must be one of {', '.join(LLMS)}, not {bad[0]!r}")
                choices["llm"] = values
            else:
                raise UserError(f"--compare: unknown key {key!r}; use mode, k or llm")
        keys = list(choices)
        for combo in itertools.product(*(choices[k] for k in keys)):
            out.append(replace(base, **dict(zip(keys, combo))))
    seen, unique = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            unique.append(c)
    return unique


# --- corpus and index ----------------------------------------------------------------------------


def _default_cache() -> Path:
    return Path(tempfile.gettempdir()) / "rag-eval"


def _seeds_dir(settings: Settings) -> Path:
    candidates = []
    if settings.seeds_dir is not None:
        candidates.append(Path(settings.seeds_dir))
    candidates.append(Path(__file__).resolve().parent.parent / "seeds")
    for c in candidates:
        if c.is_dir() and any(c.iterdir()):
            return c
    raise UserError("the seeds/ folder was not found; run from the project folder, set RAG_SEEDS, "
                    "or give your own set with --qa FILE --index DIR")


def _flavour(settings: Settings) -> str:
    """What a cached index depends on besides its corpus ("sentences": it keeps sentence vectors)."""
    return f"{settings.embed_model}:{settings.encoder}:sentences"


def _cache_key(model: str, *parts: bytes) -> str:
    h = hashlib.sha256(model.encode())
    for p in parts:
        h.update(b"\x00")
        h.update(p)
    return h.hexdigest()[:16]


def prepare(args, settings: Settings, embedder) -> tuple[QASet, Settings, list[Path]]:
    """The QA set, the settings pointing at the index to use, and the corpus folders to ingest."""
    cache = Path(args.cache) if args.cache else _default_cache()
    if args.rejection and not args.rgb:
        raise UserError("--rejection goes with --rgb FILE (RGB's negative-rejection test)")
    if args.rgb:
        qa = load_rgb(args.rgb)
        if args.rejection:
            qa = rgb_rejection(qa)
        key = _cache_key(_flavour(settings), corpus_hash(qa.passages).encode())
        corpus = write_corpus(qa.passages, cache / f"rgb-{key}" / "corpus").parent
        index = Path(args.index) if args.index else cache / f"rgb-{key}" / "index"
        return qa, replace(settings, index_dir=index, seeds_dir=None), [corpus]
    if args.qa:
        qa = load_qa(args.qa)
        return qa, settings, []
    qa = load_seeds_open_qa() if args.open else load_seeds_qa()
    seeds = _seeds_dir(settings)
    files = sorted(p for p in seeds.rglob("*") if p.is_file())
    key = _cache_key(_flavour(settings), str(seeds.resolve()).encode(),  # one cached index per checkout
                     *(p.name.encode() + b"\x00" + p.read_bytes() for p in files))
    index = Path(args.index) if args.index else cache / f"seeds-{key}" / "index"
    return qa, replace(settings, index_dir=index, seeds_dir=None), [seeds]


def _check_only_corpus(engine, corpora: list[Path]) -> None:
    """Refuse to add the seeds/RGB corpus to an index that holds other articles (e.g. ./index)."""
    roots = [c.resolve() for c in corpora]
    others = [p for p in engine.manifest.files() if not any(Path(p).resolve().is_relative_to(r) for r in roots)]
    if others:
        raise UserError(f"index {engine.index_dir} holds other articles ({others[0]}, ...); this QA set needs an "
                        "index of its own corpus only: give a new --index DIR or leave --index out")


# --- running -----------------------------------------------------------------------------------

_KIND = re.compile(r"\b(how many|how much|who|whom|whose|when|where|which|what|why|how)\b", re.I)
KINDS = {"whom": "who", "whose": "who", "how much": "how many"}


def question_kind(question: str) -> str:
    """who / when / where / how many / which / what / why / how / other, from the question's last
    sentence (quiz questions often open with a sentence of context)."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", question.strip()) if p.strip()]
    for part in reversed(parts or [question]):
        m = _KIND.search(part)
        if m:
            k = m.group(1).lower()
            return KINDS.get(k, k)
    return "other"



# Where a wrong factoid answer went wrong, so the next change aims at the right stage: retrieval
# (the gold is in no passage the answerer read: the retrieved ones, plus the lead chunks it adds),
# the pick (the passages hold it, another sentence was quoted) or a refusal that should not have been.
MISSES = {"not_read": "not in the passages read", "not_picked": "in them, another sentence quoted",
          "refused": "in them, but refused"}


def miss_stage(engine, ans, hits: list, groups: list, correct: bool) -> str | None:
    """``MISSES`` key of a wrong factoid answer to an answerable question; None otherwise."""
    if correct or not groups or ans.kind != "factoid":
        return None
    read = hits
    if ans.backend == "extractive":
        from .answering import factoid_reading

        read = factoid_reading(engine, hits)
    # every part of a list answer somewhere in what was read ("A and B": A in one passage, B in another)
    if not M.answer_correct("\n".join(h.text for h in read), groups):
        return "not_read"
    return "refused" if ans.refused else "not_picked"


def evaluate_turn(engine, turn: Turn, history: list[tuple[str, str]], top_k: int,
                  articles: dict[str, str | None]) -> tuple[dict, Any]:
    """Ask one question (with history) and score it. Returns (result, Answer)."""
    t0 = time.perf_counter()
    ans = engine.query(turn.question, history=history, top_k=top_k, since=turn.since, until=turn.until,
                       as_of=turn.as_of)
    latency_ms = (time.perf_counter() - t0) * 1000
    hits = list(ans.hits) or engine.retrieve(ans.standalone_question or turn.question, top_k,
                                             since=turn.since, until=turn.until, as_of=turn.as_of)

    def article_text(doc_id: str) -> str | None:
        if doc_id not in articles:
            try:
                articles[doc_id] = engine.article(doc_id).text
            except RagError:
                articles[doc_id] = None
        return articles[doc_id]

    # an open question without 'answers' is judged by its nuggets (all of them, for accuracy)
    groups = [list(g) for g in (turn.answers or turn.nuggets)]
    r: dict[str, Any] = {
        "question": turn.question,
        "standalone_question": ans.standalone_question or turn.question,
        "since": turn.since, "until": turn.until, "as_of": turn.as_of, "kind": question_kind(turn.question),
        "in_own_results": turn.in_own_results,
        "unanswerable": turn.unanswerable, "gold": groups, "gold_articles": list(turn.articles),
        "answer": ans.text, "refused": bool(ans.refused), "backend": ans.backend,
        "fallback_reason": ans.fallback_reason, "latency_ms": round(latency_ms, 1),
        "words": M.answer_words(ans.text) if not ans.refused else None,
        "answer_kind": ans.kind, "conflicts": len(ans.conflicts),
        "nugget_recall": M.nugget_recall(ans.text, turn.nuggets, refused=ans.refused),
    }
    if turn.unanswerable:
        r.update(correct=bool(ans.refused), f1=None, hit=None, rr=None, miss=None)
        flags = [False] * len(hits)
    else:
        flags = M.relevant_flags([(h.text, h.doc_id, h.source) for h in hits], groups, turn.articles)
        hit, rr = M.hit_and_rr(flags)
        correct = M.answer_correct(ans.text, groups, refused=ans.refused)
        r.update(correct=correct, f1=0.0 if ans.refused else round(M.token_f1(ans.text, groups), 4), hit=hit, rr=rr,
                 miss=miss_stage(engine, ans, hits, groups if turn.answers else [], correct))
    r["retrieved"] = [{"doc_id": h.doc_id, "source": h.source, "start": h.start, "end": h.end,
                       "score": round(float(h.score), 6), "relevant": f} for h, f in zip(hits, flags)]
    cites = []
    for c in ans.citations:
        text = article_text(c.doc_id)
        exact = M.citation_exact(c.snippet, c.start, c.end, text)
        supported = None
        if not turn.unanswerable and not ans.refused:
            ev = M.evidence_spans(text, turn.evidence) if (text and turn.evidence) else []
            supported = M.citation_supported(c.snippet, c.start, c.end, groups, ev)
        cites.append({"n": c.n, "doc_id": c.doc_id, "source": c.source, "start": c.start, "end": c.end,
                      "exact": exact, "supported": supported})
    r["citations"] = cites
    return r, ans


def run_config(engine, qa: QASet, config: Config, *, progress: bool) -> list[dict]:
    from tqdm import tqdm

    articles: dict[str, str | None] = {}
    results: list[dict] = []
    # warm up (model load, BM25 load) so the first question's latency is not the load time
    engine.embedder.embed_query("warm up")
    engine.retrieve("warm up", 1)
    with tqdm(total=qa.n_questions, desc=config.name, unit="q", disable=not progress, file=sys.stderr,
              leave=False, dynamic_ncols=True) as bar:
        for item in qa.items:
            history: list[tuple[str, str]] = []
            for ti, turn in enumerate(item.turns, 1):
                r, ans = evaluate_turn(engine, turn, history, config.top_k, articles)
                results.append({"id": item.id if not item.is_dialogue else f"{item.id}#{ti}",
                                "item": item.id, "turn": ti, **r})
                history.append((turn.question, ans.text))
                bar.update(1)
    return results


def summarize(results: list[dict]) -> dict[str, Any]:
    ans = [r for r in results if not r["unanswerable"]]
    follow = [r for r in ans if r["turn"] > 1]
    cites = [c for r in results for c in r["citations"]]
    support = [c["supported"] for r in ans for c in r["citations"] if c["supported"] is not None]
    lat = [r["latency_ms"] for r in results]
    s: dict[str, Any] = {
        "questions": len(results),
        "answerable": len(ans),
        "unanswerable": len(results) - len(ans),
        "hit_rate": M.mean(r["hit"] for r in ans),
        "mrr": M.mean(r["rr"] for r in ans),
        "answer_acc": M.mean(float(r["correct"]) for r in ans),
        "followup_acc": M.mean(float(r["correct"]) for r in follow),
        "f1": M.mean(r["f1"] for r in ans),
        "citation_exact": M.mean(float(c["exact"]) for c in cites),
        "citation_support": M.mean(float(x) for x in support),
        **M.refusal_scores([r["unanswerable"] for r in results], [r["refused"] for r in results]),
        "answer_words": M.median(r["words"] for r in results),
        "latency_p50_ms": M.percentile(lat, 50),
        "latency_p95_ms": M.percentile(lat, 95),
        "fallbacks": sum(1 for r in results if r.get("fallback_reason")),
        "nugget_recall": M.mean(r.get("nugget_recall") for r in results),
        "citations": len(cites),
        **{f"miss_{k}": sum(r.get("miss") == k for r in ans) for k in MISSES},
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}


def by_kind(results: list[dict]) -> dict[str, dict[str, float]]:
    """Answer accuracy per question kind, over answerable questions: where the answerer fails."""
    out: dict[str, dict[str, float]] = {}
    for r in results:
        if r["unanswerable"]:
            continue
        k = out.setdefault(r.get("kind", "other"), {"n": 0, "correct": 0})
        k["n"] += 1
        k["correct"] += bool(r["correct"])
    return {k: {"n": v["n"], "answer_acc": round(v["correct"] / v["n"], 4)}
            for k, v in sorted(out.items(), key=lambda kv: -kv[1]["n"])}


def by_own_results(results: list[dict]) -> dict[str, dict[str, float]]:
    """Answer accuracy where the answer is / is not in the question's own search results (RealTime
    QA's ``in_own_results``); empty when the QA set does not say."""
    out: dict[str, dict[str, float]] = {}
    for flag, name in ((True, "in own results"), (False, "not in own results")):
        rows = [r for r in results if r.get("in_own_results") is flag and not r["unanswerable"]]
        if rows:
            out[name] = {"n": len(rows), "answer_acc": round(sum(bool(r["correct"]) for r in rows) / len(rows), 4),
                         "hit_rate": round(M.mean(r["hit"] for r in rows if r.get("hit") is not None) or 0.0, 4)}
    return out


def miss_line(summary: dict) -> str:
    """ "65 not in the passages read · 30 in them, another sentence quoted · …", or "" when none."""
    parts = [f"{summary[f'miss_{k}']} {label}" for k, label in MISSES.items() if summary.get(f"miss_{k}")]
    return " · ".join(parts)


def kind_table(runs: list[dict]) -> str:
    kinds = list(dict.fromkeys(k for r in runs for k in r["by_kind"]))
    lines = ["| question kind | n | " + " | ".join(r["name"] for r in runs) + " |",
             "|---|---:|" + "---:|" * len(runs)]
    for k in kinds:
        n = max(r["by_kind"].get(k, {}).get("n", 0) for r in runs)
        cells = [format(r["by_kind"][k]["answer_acc"], ".3f") if k in r["by_kind"] else "–" for r in runs]
        lines.append(f"| {k} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_thresholds(runs: list[dict], limits: dict[str, tuple[str, float]]) -> list[str]:
    """One line per missed threshold per configuration (empty when all are met)."""
    failures = []
    for run in runs:
        for key, (direction, limit) in limits.items():
            v = run["summary"].get(key)
            flag = next(f for f, k, _d, _h in THRESHOLDS if k == key)
            if v is None:
                failures.append(f"{run['name']}: {key} is undefined on this QA set, so {flag} {limit:g} cannot be met")
            elif direction == "min" and v < limit:
                failures.append(f"{run['name']}: {key} {v:.3f} < {limit:g} ({flag})")
            elif direction == "max" and v > limit:
                failures.append(f"{run['name']}: {key} {v:.3f} > {limit:g} ({flag})")
    return failures


def _cell(s: dict, key: str, fmt: str | None) -> str:
    if key == "questions":
        return f"{s['questions']} ({s['answerable']} / {s['unanswerable']})"
    v = s.get(key)
    if v is None:
        return "–"
    return format(v, fmt) if fmt else str(v)


def markdown_table(runs: list[dict]) -> str:
    head = "| metric | " + " | ".join(r["name"] for r in runs) + " |"
    sep = "|---|" + "---:|" * len(runs)
    lines = [head, sep]
    for key, label, fmt in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(r["summary"], key, fmt) for r in runs) + " |")
    return "\n".join(lines)


def misses(run: dict, limit: int = 500) -> str:
    out = [f"Wrong in {run['name']}:"]
    for r in run["results"]:
        if r["correct"]:
            continue
        gold = "refusal" if r["unanswerable"] else " + ".join("/".join(g) for g in r["gold"])
        got = "REFUSED" if r["refused"] else re.sub(r"\s+", " ", r["answer"])[:160]
        stage = f" [{MISSES[r['miss']]}]" if r.get("miss") else ""
        out.append(f"- {r['id']} ({r.get('kind', '?')}){stage}: {r['question']} — expected {gold}; got: {got}")
        if len(out) > limit:
            out.append("- …")
            break
    return "\n".join(out) if len(out) > 1 else f"All correct in {run['name']}."


def main(argv: list[str] | None = None, *, embedder=None) -> int:
    """Entry point of `rag eval` / `python -m rag.eval`. ``embedder`` reuses an already loaded model."""
    apply_offline_env()
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings.from_env(top_k=args.top_k, retrieval_mode=args.mode, llm=args.llm,
                                 index_dir=Path(args.index) if args.index else None)
    from .cli import guarded

    return guarded(lambda: _main(args, settings, embedder), debug=settings.debug, error_code=2)


def _main(args, settings: Settings, embedder) -> int:
    from .engine import Engine

    if args.top_k is not None and args.top_k < 1:
        raise UserError("--top-k must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    limits = {key: (d, getattr(args, flag[2:].replace("-", "_"))) for flag, key, d, _h in THRESHOLDS
              if getattr(args, flag[2:].replace("-", "_")) is not None}
    progress = settings.progress and not args.quiet
    qa, settings, corpora = prepare(args, settings, embedder)
    if args.half:
        qa.items = qa.items[(0 if args.half == "a" else 1)::2]
    if args.limit:
        qa.items = qa.items[: args.limit]
    base = Config(settings.retrieval_mode, settings.top_k, settings.llm)
    configs = [base] if args.compare is None else parse_compare(args.compare, base)
    configs = list(dict.fromkeys(replace(c, llm=replace(settings, llm=c.llm).answerer) for c in configs))
    for c in configs:
        if c.llm == "openai" and not (settings.llm_api_key or settings.llm_base_url):
            raise UserError("llm=openai needs OPENAI_API_KEY or OPENAI_BASE_URL (an OpenAI-compatible server)")

    def settings_for(c: Config) -> Settings:
        return replace(settings, retrieval_mode=c.mode, top_k=c.top_k, llm=c.llm)

    first = Engine(settings=settings_for(configs[0]), embedder=embedder)
    if corpora:
        _check_only_corpus(first, corpora)
        report = first.ingest(corpora, progress=progress)
        if report.chunks_embedded and progress:
            print(f"index {first.index_dir}: {report.summary()}", file=sys.stderr)
    runs = []
    for c in configs:
        s = settings_for(c)
        eng = first if s == first.settings else Engine(settings=s, embedder=first.embedder)
        try:
            results = run_config(eng, qa, c, progress=progress)
        finally:
            if eng is not first:
                eng.close()
        run = {"name": c.name, "config": asdict(c), "answerer": results[0]["backend"] if results else c.llm,
               "summary": summarize(results), "by_kind": by_kind(results), "by_own_results": by_own_results(results),
               "results": results}
        runs.append(run)
    failures = check_thresholds(runs, limits)

    n_dialogues = sum(1 for i in qa.items if i.is_dialogue)
    print(f"## rag eval: {qa.name} — {qa.n_questions} questions ({n_dialogues} dialogues), "
          f"{first.stats().articles} articles in {first.index_dir}\n")
    print(markdown_table(runs))
    if any(r["by_kind"] for r in runs):
        print("\nAnswer accuracy by question kind:\n")
        print(kind_table(runs))
    for r in runs:
        line = miss_line(r["summary"])
        if line:
            print(f"\nWrong factoid answers, {r['name']}: {line}")
    if any(r["by_own_results"] for r in runs):
        print("\nWhere the answer is in the question's own search results (in_own_results):\n")
        for r in runs:
            print(f"- {r['name']}: " + "; ".join(f"{k} (n={v['n']}): accuracy {v['answer_acc']:.3f}, hit@k "
                                                f"{v['hit_rate']:.3f}" for k, v in r["by_own_results"].items()))
    if args.verbose:
        for run in runs:
            print("\n" + misses(run))
    if args.json:
        payload = {
            "qa": {"name": qa.name, "source": qa.source, "items": len(qa.items), "questions": qa.n_questions,
                   "dialogues": n_dialogues},
            "index": str(first.index_dir), "model": settings.embed_model,
            "thresholds": {k: {"direction": d, "limit": v} for k, (d, v) in limits.items()},
            "failures": failures, "runs": runs,
        }
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write --json {out}: {e.strerror}") from None
    for f in failures:
        print(f"threshold missed: {f}", file=sys.stderr)
    if limits and not failures:
        print(f"\nall {len(limits)} thresholds met", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

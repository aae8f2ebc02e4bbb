"""Fit the offline answerer's sentence scorer on the dev sets and print cross-validated figures.

    python -m rag.fit                       # all dev sets found under ../shared/data, plus the seeds set
    python -m rag.fit --folds 5 --out rag/data/answerer_weights.json
    python -m rag.fit --dry-run             # cross-validate only, write nothing
    python -m rag.fit --dry-run --shuffles 4   # and the spread over 4 shufflings of the folds (the noise floor)

For every question of every set: retrieve (top-k 8, with the question's ``as_of``), compute the
feature rows of every sentence of the passages (rag/features.py) and label each row by whether the
sentence holds the gold answer. A conditional logit (a softmax over each question's sentences, L2
penalty, scipy's L-BFGS) learns to put a sentence that holds the answer first. One decision
constant — the share of the best P a second sentence needs to be shown (``second_ratio``) — is
chosen on the training questions by a small grid. (A fitted refusal threshold on P, and a
question-level confidence model, were tried and cut: in cross-validation they refused more
answerable questions than unanswerable ones.)

The figures printed are from questions the model was *not* fitted on: K-fold by question (each
question answered by the full answerer, ``extract``, with the weights of the fold that left it
out), and split-half (fit on one half of every set, answer the other). Only then is the model fitted
on every question and written, with those figures, to the weights file.

The indexes are built once into ``--cache`` (default ``<temp>/rag-fit``); the first run ingests the
1,330 rtqa-dev articles (about 10 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import metrics as M
from .config import Settings, apply_offline_env
from .features import NAMES
from .ranker import WEIGHTS_FILE, Ranker

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TOP_K = 8
RATIOS = (0.0, 0.5, 0.65, 0.8, 0.9, 1.01)  # 1.01: never a second sentence


@dataclass
class Question:
    set: str
    id: str
    text: str
    groups: tuple
    unanswerable: bool
    as_of: str | None
    hits: list = field(default_factory=list)
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    why: str = ""
    vectors: dict = field(default_factory=dict)


def _sets(data: Path, cache: Path, settings: Settings):
    """(name, QASet, index dir, corpus folders) for each dev set present."""
    from .eval import prepare
    from .qa import load_qa

    out = []
    args = argparse.Namespace(rgb=None, qa=None, index=None, cache=str(cache), open=False, rejection=False)
    qa, s, corpora = prepare(args, settings, None)
    out.append(("seeds", qa, s.index_dir, corpora))
    if (data / "rgb-en-dev.jsonl").is_file():
        args.rgb = str(data / "rgb-en-dev.jsonl")
        qa, s, corpora = prepare(args, settings, None)
        out.append(("rgb", qa, s.index_dir, corpora))
    for name in ("rtqa-dev", "squad2-cct"):
        if (data / name / "qa.jsonl").is_file():
            out.append((name, load_qa(data / name / "qa.jsonl"), cache / name, [data / name / "articles"]))
    return out


def collect(data: Path, cache: Path, *, progress: bool = True) -> tuple[list[Question], object]:
    from tqdm import tqdm

    from .answering import factoid_reading
    from .engine import Engine
    from .extractive import extract
    from .textutil import plain_question

    settings = Settings.from_env().with_(top_k=TOP_K, llm="extractive")
    settings = replace(settings, seeds_dir=None)
    questions: list[Question] = []
    embedder = None
    for name, qa, index, corpora in _sets(data, cache, settings):
        eng = Engine(settings=settings.with_(index_dir=index), embedder=embedder)
        embedder = eng.embedder
        report = eng.ingest(corpora, progress=progress)
        if report.chunks_embedded:
            print(f"{name}: {report.summary()}", file=sys.stderr)
        for item in tqdm(qa.items, desc=name, disable=not progress, file=sys.stderr, leave=False):
            if item.is_dialogue:
                continue  # follow-ups depend on the previous answer; the single questions suffice
            t = item.turns[0]
            t = replace(t, question=plain_question(t.question))  # as Engine.query reads it
            hits = factoid_reading(eng, eng.retrieve(t.question, TOP_K, since=t.since, until=t.until, as_of=t.as_of))
            q = Question(name, item.id, t.question, t.answers, t.unanswerable, t.as_of, hits)
            if hits:
                q.vectors = eng.sentence_vectors(hits)
                ex = extract(t.question, hits, embedder, sentence_vectors=q.vectors, as_of=t.as_of, collect=True)
                q.X, q.why = ex.debug["X"], ex.debug["why"]
                q.y = np.array([M.any_answer_in(s.text, t.answers) for s in ex.sentences], dtype=bool) \
                    if not t.unanswerable else np.zeros(len(ex.sentences), dtype=bool)
            questions.append(q)
        eng.close()
    return questions, embedder


def fit_ranker(train: list[Question], C: float = 0.3) -> Ranker:
    """Per question, a softmax over its sentences; the loss is -log of the probability mass on the
    sentences that hold the answer (a conditional logit: it learns to put the answer first, which
    is what the answerer does with it, rather than to label sentences one by one). L2 penalty 1/C."""
    from scipy.optimize import minimize

    rows = [q for q in train if q.X is not None and not q.unanswerable and len(q.X) and q.y.any()]
    X = np.vstack([q.X for q in rows]).astype(np.float64)
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-6] = 1.0
    mean[0], scale[0] = 0.0, 1.0  # the bias column stays 1 (no effect in a softmax; kept for P)
    Z = (X - mean) / scale
    bounds = np.cumsum([0] + [len(q.X) for q in rows])
    pos = np.concatenate([q.y for q in rows])
    seg = np.repeat(np.arange(len(rows)), np.diff(bounds))

    def loss(w):
        z = Z @ w
        zmax = np.maximum.reduceat(z, bounds[:-1])[seg]
        e = np.exp(z - zmax)
        tot = np.add.reduceat(e, bounds[:-1])
        good = np.add.reduceat(e * pos, bounds[:-1])
        f = -np.sum(np.log(good) - np.log(tot)) + 0.5 / C * np.sum(w[1:] ** 2)
        pa = e / tot[seg]
        pg = e * pos / good[seg]
        g = Z.T @ (pa - pg) + np.concatenate([[0.0], w[1:] / C])
        return f, g

    w = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B").x
    # the bias is free in a softmax: set it so P is calibrated as "this sentence holds the answer"
    z = Z @ w
    w[0] = float(np.log(pos.mean() / (1 - pos.mean())) - np.mean(z[pos.astype(bool)]) + 1.0)
    r = Ranker(NAMES, mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32), 0.0)
    return replace(r, second_ratio=_choose_ratio(r, train))


def _simulate(r: Ranker, q: Question, ratio: float) -> tuple[bool, bool, int]:
    """(correct, refused, n sentences) of the fitted decision on collected rows — without the
    checks that need the sentences embedded alone, so only for choosing constants."""
    if q.X is None or not len(q.X) or q.why:
        return q.unanswerable, True, 0
    p = r.score(q.X)
    order = r.order(q.X, p)
    from .features import INDEX

    picked = [order[0]]
    win = q.X[:, INDEX["winner"]] > 0
    likely = [j for j in order[1:] if p[j] >= ratio * p[order[0]]]
    rest = [j for j in likely if win[j]] if not win[order[0]] else []
    rest += [j for j in likely if j not in rest]
    if rest:
        picked.append(rest[0])
    if q.unanswerable:
        return False, False, len(picked)
    return bool(q.y[picked].any()), False, len(picked)


def _utility(r: Ranker, qs: list[Question], ratio: float) -> float:
    """Mean over sets of answer accuracy, plus refusal recall where a set has unanswerable
    questions, minus a small cost per second sentence (answers stay short) and a steep one for
    false refusals past 10%."""
    by_set: dict[str, list] = {}
    for q in qs:
        by_set.setdefault(q.set, []).append((q, *_simulate(r, q, ratio)))
    total = 0.0
    for rows in by_set.values():
        ans = [c for q, c, _r, _n in rows if not q.unanswerable]
        una = [c for q, c, _r, _n in rows if q.unanswerable]
        two = np.mean([n == 2 for _q, _c, _r, n in rows])
        # refusing answerable questions beyond 10% costs twice: a user asked something answerable
        fr = np.mean([r_ for q, _c, r_, _n in rows if not q.unanswerable]) if ans else 0.0
        total += (np.mean(ans) if ans else 0.0) + (np.mean(una) if una else 0.0) - 0.03 * two \
            - 2.0 * max(0.0, fr - 0.10)
    return total / max(1, len(by_set))


def _choose_ratio(r: Ranker, qs: list[Question]) -> float:
    return -max((_utility(r, qs, a), -a) for a in RATIOS)[1]


def answer_with(r: Ranker, q: Question, embedder) -> tuple[bool, bool, int]:
    """The full offline answerer (every refusal test included) with ranker ``r``: (correct, refused, words)."""
    from .extractive import answer

    if not q.hits:
        return q.unanswerable, True, 0
    ans = answer(q.text, q.hits, embedder, sentence_vectors=q.vectors, as_of=q.as_of, ranker=r)
    if q.unanswerable:
        return bool(ans.refused), bool(ans.refused), M.answer_words(ans.text)
    return M.answer_correct(ans.text, q.groups, refused=ans.refused), bool(ans.refused), M.answer_words(ans.text)


def held_out(questions: list[Question], folds: list[list[int]], embedder) -> dict[str, dict]:
    """Answer every question with a model fitted on the other folds; figures per set."""
    results: dict[int, tuple] = {}
    for test in folds:
        tset = set(test)
        r = fit_ranker([q for i, q in enumerate(questions) if i not in tset])
        for i in test:
            results[i] = answer_with(r, questions[i], embedder)
    return figures(questions, results)


def spread(questions: list[Question], k: int, shuffles: int, embedder, first: dict | None = None
           ) -> dict[str, dict[str, tuple]]:
    """K-fold figures over ``shuffles`` shufflings of the folds: per set, (mean, min, max) of answer
    accuracy and refusal recall. A change smaller than this spread is noise: the same answerer moves
    by two or three questions per set with the folds alone."""
    runs = [first or held_out(questions, kfold(questions, k), embedder)]  # seed 0: the K-fold figures printed
    runs += [held_out(questions, kfold(questions, k, seed=seed), embedder) for seed in range(1, shuffles)]
    out: dict[str, dict[str, tuple]] = {}
    for name in runs[0]:
        out[name] = {}
        for metric in ("answer_acc", "refusal_recall"):
            vals = [r[name][metric] for r in runs if r[name][metric] is not None]
            if vals:
                out[name][metric] = (round(float(np.mean(vals)), 3), min(vals), max(vals))
    return out


def spread_table(title: str, sp: dict[str, dict[str, tuple]]) -> str:
    lines = [title, "| set | answer acc: mean (min–max) | refusal recall: mean (min–max) |", "|---|---:|---:|"]
    cell = lambda t: f"{t[0]:.3f} ({t[1]:.3f}–{t[2]:.3f})" if t else "–"
    for name, f in sp.items():
        lines.append(f"| {name} | {cell(f.get('answer_acc'))} | {cell(f.get('refusal_recall'))} |")
    return "\n".join(lines)


def figures(questions: list[Question], results: dict[int, tuple]) -> dict[str, dict]:
    out = {}
    for name in dict.fromkeys(q.set for q in questions):
        idx = [i for i, q in enumerate(questions) if q.set == name and i in results]
        ans = [i for i in idx if not questions[i].unanswerable]
        una = [i for i in idx if questions[i].unanswerable]
        words = [results[i][2] for i in idx if not results[i][1]]
        out[name] = {
            "questions": len(idx),
            "answer_acc": round(float(np.mean([results[i][0] for i in ans])), 3) if ans else None,
            "false_refusal": round(float(np.mean([results[i][1] for i in ans])), 3) if ans else None,
            "refusal_recall": round(float(np.mean([results[i][1] for i in una])), 3) if una else None,
            "median_words": float(np.median(words)) if words else None,
            # the ceiling of any sentence scorer: a sentence the answerer reads holds the gold
            "in_reach": round(float(np.mean([questions[i].y is not None and bool(questions[i].y.any())
                                             for i in ans])), 3) if ans else None,
        }
    return out


def kfold(questions: list[Question], k: int, seed: int = 0) -> list[list[int]]:
    """K folds of questions, each set spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for name in dict.fromkeys(q.set for q in questions):
        idx = [i for i, q in enumerate(questions) if q.set == name]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[j % k].append(i)
    return folds


def table(title: str, figs: dict[str, dict]) -> str:
    lines = [f"{title}", "| set | questions | answer acc | false refusals | refusal recall | median words | "
             "gold in a sentence read |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in figs.items():
        cell = lambda v: "–" if v is None else f"{v:.3f}" if isinstance(v, float) and v <= 1 else f"{v:g}"
        lines.append(f"| {name} | {f['questions']} | {cell(f['answer_acc'])} | {cell(f['false_refusal'])} | "
                     f"{cell(f['refusal_recall'])} | {cell(f['median_words'])} | {cell(f['in_reach'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    apply_offline_env()
    ap = argparse.ArgumentParser(prog="python -m rag.fit", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="the dev data folder (default ../shared/data)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "rag-fit"), help="where indexes are kept")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=str(WEIGHTS_FILE), help="weights file to write")
    ap.add_argument("--dry-run", action="store_true", help="cross-validate only")
    ap.add_argument("--shuffles", type=int, default=1,
                    help="also run the K-fold this many times with other fold shufflings and print the spread")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    questions, embedder = collect(Path(args.data), Path(args.cache))
    print(f"{len(questions)} questions, {sum(len(q.X) for q in questions if q.X is not None)} sentences "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    cv = held_out(questions, kfold(questions, args.folds), embedder)
    halves = kfold(questions, 2, seed=1)
    half = held_out(questions, halves, embedder)
    print(table(f"\n{args.folds}-fold cross-validation (each question answered by a model not fitted on it):", cv))
    print(table("\nsplit-half (fit on one half of every set, answer the other; both directions):", half))
    if args.shuffles > 1:
        print(spread_table(f"\n{args.folds}-fold over {args.shuffles} shufflings of the folds (how much a figure "
                           "moves with nothing changed):", spread(questions, args.folds, args.shuffles, embedder, first=cv)))
    final = fit_ranker(questions)
    print("\nweights (standardised features):")
    for n, c in sorted(zip(NAMES, final.coef), key=lambda t: -abs(t[1])):
        print(f"  {n:>14} {c:+.3f}")
    print(f"second sentence when its P >= {final.second_ratio} x the best one's")
    if not args.dry_run:
        payload = {"model": final.to_dict(), "cross_validated": cv, "split_half": half, "folds": args.folds,
                   "questions": {n: sum(q.set == n for q in questions) for n in dict.fromkeys(q.set for q in questions)},
                   "made_by": "python -m rag.fit"}
        Path(args.out).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

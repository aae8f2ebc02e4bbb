"""The fitted sentence scorer: the shipped weights match the code's features, carry the figures of
the fit that made them, and the fitting learns what decides the answer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rag import fit
from rag.features import INDEX, NAMES
from rag.ranker import WEIGHTS_FILE, Ranker, default_ranker


def test_shipped_weights_match_the_features_and_carry_their_cross_validated_figures():
    r = default_ranker()
    assert r.names == NAMES and len(r.coef) == len(NAMES)
    d = json.loads(WEIGHTS_FILE.read_text())
    assert d["made_by"] == "python -m rag.fit"
    for name in ("seeds", "rgb", "rtqa-dev", "squad2-cct"):
        assert 0 < d["cross_validated"][name]["answer_acc"] <= 1
        assert 0 < d["split_half"][name]["answer_acc"] <= 1


def test_weights_fitted_on_other_features_are_refused():
    d = json.loads(WEIGHTS_FILE.read_text())["model"]
    d["features"] = d["features"][:-1]
    with pytest.raises(ValueError, match="refit"):
        Ranker.from_dict(d)


def _question(rng, i: int) -> fit.Question:
    """Ten sentences; the one holding the answer has the highest lexical overlap, while dense
    similarity is noise: a fit must learn to trust the overlap."""
    X = rng.normal(size=(10, len(NAMES))).astype(np.float32)
    X[:, INDEX["bias"]] = 1.0
    y = np.zeros(10, dtype=bool)
    y[rng.integers(10)] = True
    X[y, INDEX["lexical"]] += 4.0
    return fit.Question("synthetic", str(i), "q?", (("a",),), False, None, X=X, y=y)


def test_the_fit_learns_which_feature_picks_the_answer():
    rng = np.random.default_rng(0)
    train = [_question(rng, i) for i in range(200)]
    test = [_question(rng, i) for i in range(200, 300)]
    r = fit.fit_ranker(train)
    assert r.coef[INDEX["lexical"]] > 5 * abs(r.coef[INDEX["dense"]])
    top1 = np.mean([q.y[r.order(q.X, r.score(q.X))[0]] for q in test])
    oracle = np.mean([q.y[np.argmax(q.X[:, INDEX["lexical"]])] for q in test])  # knowing which feature decides
    assert top1 >= oracle - 0.03 and top1 > 0.9, (top1, oracle)


def test_a_sentence_is_scored_with_its_articles_best_sentence():
    """Two passages of one article share the article's relevance (its best sentence's similarity to
    the question); a sentence of another article does not borrow it."""
    from rag.extractive import Sentence
    from rag.features import Context, rows

    sents = [Sentence(0, 0, 10, "Lind was first elected in 1996.", dense=0.3),
             Sentence(1, 500, 530, "She said she will not run again.", dense=0.8),
             Sentence(2, 0, 20, "The council approved a budget.", dense=0.5)]
    ctx = Context({"lind"}, {"lind": 1.0}, [0.0] * 3, [0.0] * 3, doc_ids=["senator", "senator", "council"])
    X = rows(sents, ctx, sent_stems=[{"lind"}, set(), set()], cover=[1.0, 0.0, 0.0], typed=[True, False, False],
             vote=[1.0, 0.0, 0.0], winner=[True, False, False], lead=[True, False, True])
    assert X[:, INDEX["doc_dense"]].tolist() == pytest.approx([0.8, 0.8, 0.5])


def test_the_noise_floor_is_the_spread_over_fold_shufflings(monkeypatch):
    """``python -m rag.fit --shuffles N``: the same answerer cross-validated over N shufflings of the
    folds; the first is the K-fold run itself, and the others differ from it as their fits do."""
    rng = np.random.default_rng(1)
    qs = [_question(rng, i) for i in range(60)]
    for q in qs:  # a weak signal, so that which questions a fit sees changes what it gets right
        q.X[q.y, INDEX["lexical"]] -= 3.4
    qs += [fit.Question("synthetic", "u", "q?", (), True, None, X=qs[0].X, y=np.zeros(10, bool))]

    def pick(r, q, embedder):  # the fitted pick, as rag.fit's own simulation scores it
        correct, refused, n = fit._simulate(r, q, r.second_ratio)
        return correct, refused, 10 * n
    monkeypatch.setattr(fit, "answer_with", pick)
    first = fit.held_out(qs, fit.kfold(qs, 5), None)
    sp = fit.spread(qs, 5, 4, None)
    acc = sp["synthetic"]["answer_acc"]
    assert acc[1] <= acc[0] <= acc[2] and acc[1] < acc[2]  # the folds alone move the figure
    assert fit.spread(qs, 5, 4, None, first=first) == sp
    assert "synthetic" in fit.spread_table("t", sp)

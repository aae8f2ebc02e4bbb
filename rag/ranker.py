"""The fitted sentence scorer: P(this sentence holds the answer) from the features of rag/features.py.

A logistic regression whose weights ``python -m rag.fit`` writes to ``rag/data/answerer_weights.json``
(with the feature names, the standardisation and the cross-validated figures of the fit that made
them). Scoring is a dot product in numpy: no scikit-learn at query time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .features import NAMES

WEIGHTS_FILE = Path(__file__).resolve().parent / "data" / "answerer_weights.json"


@dataclass(frozen=True)
class Ranker:
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    second_ratio: float = 0.5  # a second sentence is shown when its P is at least this share of the first's

    def score(self, X: np.ndarray) -> np.ndarray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def order(self, X: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Sentence indices, best first. (Putting sentences that hold the asked-for type first was
        tried: in cross-validation it cost 0.18 on squad2-cct and 0.04 on rgb; the type is a
        feature instead.)"""
        return np.argsort(-p, kind="stable")

    @classmethod
    def from_dict(cls, d: dict) -> "Ranker":
        names = tuple(d["features"])
        if names != NAMES:
            raise ValueError(f"{WEIGHTS_FILE.name} was fitted on other features ({len(names)} vs {len(NAMES)}); "
                             "refit with `python -m rag.fit`")
        return cls(names, np.asarray(d["mean"], np.float32), np.asarray(d["scale"], np.float32),
                   np.asarray(d["coef"], np.float32), float(d["intercept"]),
                   float(d.get("second_ratio", 0.5)))

    def to_dict(self) -> dict:
        return {"features": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "second_ratio": self.second_ratio}



@lru_cache(maxsize=1)
def default_ranker() -> Ranker:
    """The shipped fit (package data)."""
    try:
        d = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        from .errors import RagError

        raise RagError(f"the answerer's weights {WEIGHTS_FILE} are missing or unreadable ({e}); reinstall the "
                       "package or refit them with `python -m rag.fit`") from None
    return Ranker.from_dict(d["model"])

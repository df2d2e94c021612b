"""Protein-level scores.

``nes_score`` is the NES evidence of a protein: its best window score. It uses nothing but
local sequence windows.

``score`` (the protein-level probability of carrying a CRM1 NES) is a logistic regression on
NES evidence (logit of the best and second-best non-overlapping candidate scores, number of
windows >= 0.5) plus amino-acid composition and log length. Composition and length alone
already separate CRM1 cargo from non-binders on this data (a gradient-boosting baseline is
reported next to every protein-level figure), so ``score`` is a calibrated protein
probability, not proof of an NES: read ``nes_score`` and the candidates for that.

The regression is stored in ``model.json`` as plain numbers (no pickles).
"""

from __future__ import annotations

import numpy as np

from .fasta import STANDARD

_IDX = {a: i for i, a in enumerate(STANDARD)}


def composition(seq: str) -> np.ndarray:
    c = np.zeros(len(STANDARD))
    for ch in seq:
        i = _IDX.get(ch)
        if i is not None:
            c[i] += 1
    return c / max(1, c.sum())


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def nes_features(window_scores: np.ndarray, top_scores: list[float]) -> np.ndarray:
    second = top_scores[1] if len(top_scores) > 1 else 0.0
    return np.array([
        float(_logit(top_scores[0] if top_scores else window_scores.max())),
        float(_logit(second)),
        float(np.log1p((window_scores >= 0.5).sum())),
    ])


NES_FEATURES = ["logit_best", "logit_second", "log1p_n_windows_ge_0.5"]
COMP_FEATURES = [f"frac_{a}" for a in STANDARD] + ["log10_length"]


def comp_features(seq: str) -> np.ndarray:
    return np.concatenate([composition(seq), [np.log10(len(seq))]])


def feature_vector(seq: str, window_scores: np.ndarray, top_scores: list[float]) -> np.ndarray:
    return np.concatenate([nes_features(window_scores, top_scores), comp_features(seq)])


def fit(X: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> dict:
    from sklearn.linear_model import LogisticRegression

    mean, std = X.mean(0), X.std(0)
    std[std == 0] = 1.0
    lr = LogisticRegression(C=C, max_iter=5000, random_state=seed)
    lr.fit((X - mean) / std, y)
    return {
        "type": "logistic_regression",
        "features": NES_FEATURES + COMP_FEATURES,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "coef": lr.coef_[0].tolist(),
        "intercept": float(lr.intercept_[0]),
        "C": C,
    }


def predict(params: dict, X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(X)
    z = ((X - np.array(params["mean"])) / np.array(params["std"])) @ np.array(params["coef"]) + params["intercept"]
    return 1.0 / (1.0 + np.exp(-z))

"""Protein-level scores.

``nes_score`` is the NES evidence of a protein: its best window score. It uses nothing but
local sequence windows.

``score`` (the protein-level probability of carrying a CRM1 NES) is gradient-boosted trees on
NES evidence (logit of the best and second-best non-overlapping candidate scores, number of
windows >= 0.5) plus amino-acid composition and log length, plus the protein's disorder context
(mean disorder, fraction disordered, mean predicted pLDDT) when training's nested CV chooses it.
Composition and length alone already separate CRM1 cargo from non-binders on this data (a
gradient-boosting baseline is reported next to every protein-level figure, and one with the
disorder context too), so ``score`` is a protein probability, not proof of an NES: read
``nes_score`` and the candidates for that.

The trees are stored as plain arrays (``trees.safetensors``, no pickles).
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


# whole-protein disorder context (metapredict's channels): mean disorder, fraction of residues
# predicted disordered (> 0.5), mean predicted pLDDT (0..1)
CONTEXT_FEATURES = ["mean_disorder", "frac_disordered", "mean_plddt"]


def context_features(tracks: np.ndarray) -> np.ndarray:
    """:data:`CONTEXT_FEATURES` from an ``(L, 2)`` array of per-residue disorder and pLDDT / 100
    (the last two channels of an embedding with the disorder context)."""
    t = np.asarray(tracks, dtype=np.float64)
    return np.array([t[:, 0].mean(), (t[:, 0] > 0.5).mean(), t[:, 1].mean()])


def feature_vector(seq: str, window_scores: np.ndarray, top_scores: list[float],
                   tracks: np.ndarray | None = None) -> np.ndarray:
    """NES evidence + composition + length, then the disorder context when ``tracks`` is given."""
    parts = [nes_features(window_scores, top_scores), comp_features(seq)]
    if tracks is not None:
        parts.append(context_features(tracks))
    return np.concatenate(parts)


def uses_context(params: dict | None) -> bool:
    """Whether a model card's protein model reads the disorder context features."""
    return bool(params) and CONTEXT_FEATURES[0] in params.get("features", [])


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


# ----------------------------------------------------------------------------- gradient boosting

PROTEIN_TREES_PREFIX = "protein."


def fit_gbm(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[dict, dict]:
    """Gradient-boosted trees on NES evidence + composition + length, plus the disorder context
    when ``X`` has those columns (the same learner as the baselines). Returns the card's
    parameters and the tree arrays (stored in ``trees.safetensors`` under ``protein.``)."""
    names = NES_FEATURES + COMP_FEATURES
    names = names + CONTEXT_FEATURES if X.shape[1] == len(names) + len(CONTEXT_FEATURES) else names
    from . import gbm

    return ({"type": "gradient_boosting", "features": names, "iterations": GBM_ITER, "learning_rate": 0.05,
             "max_leaf_nodes": 15}, gbm.export(_fit_trees(X, y, seed), prefix=PROTEIN_TREES_PREFIX))


def _fit_trees(X: np.ndarray, y: np.ndarray, seed: int):
    from . import gbm

    return gbm.fit(X, y, seed=seed, max_iter=GBM_ITER, learning_rate=0.05, max_leaf_nodes=15, class_weight=None)


def _oof(X: np.ndarray, y: np.ndarray, folds: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of the protein trees over the given folds."""
    p = np.zeros(len(y))
    for k in sorted(set(folds.tolist())):
        tr, te = folds != k, folds == k
        p[te] = _fit_trees(X[tr], y[tr], seed).predict_proba(X[te])[:, 1]
    return p


def choose_context(Xn: np.ndarray, Xd: np.ndarray, y: np.ndarray, folds: np.ndarray, seed: int = 0) -> bool:
    """Whether the disorder context features join the protein model: the feature set with the
    higher pooled out-of-fold ROC AUC (label, all proteins) over ``folds``; ties keep it out."""
    from sklearn.metrics import roc_auc_score

    if len(set(folds.tolist())) < 2:
        return False
    a = roc_auc_score(y, _oof(Xn, y, folds, seed))
    b = roc_auc_score(y, _oof(np.hstack([Xn, Xd]), y, folds, seed))
    return bool(b > a)


GBM_ITER = 200


def scorer(params: dict | None, booster=None):
    """``features -> probability`` for a model card's protein model (``None`` without one)."""
    if not params:
        return None
    if params.get("type") == "gradient_boosting":
        if booster is None:
            return None
        return lambda X: booster.proba(np.atleast_2d(X))
    return lambda X: predict(params, X)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties counted half), without scikit-learn's
    per-call validation (the bootstrap calls it thousands of times)."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _bootstrap_auc_diff(y, a, b, groups, n_boot=1000, seed=0):
    """95 % interval of AUC(a) - AUC(b), resampling clusters with replacement."""
    roc_auc_score = _auc
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    idx_of = {g: np.flatnonzero(groups == g) for g in uniq}
    diffs = []
    for _ in range(n_boot):
        pick = np.concatenate([idx_of[g] for g in rng.choice(uniq, size=len(uniq), replace=True)])
        if len(np.unique(y[pick])) < 2:
            continue
        diffs.append(roc_auc_score(y[pick], a[pick]) - roc_auc_score(y[pick], b[pick]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def cross_validated_aucs(records, Xn: np.ndarray, fold_of: dict, seed: int = 0, Xd: np.ndarray | None = None) -> dict:
    """Protein-level ROC AUC on the outer folds: ``nes_score`` (NES evidence only), the protein
    ``score`` (trees on NES evidence + composition + length, plus the disorder context ``Xd``
    when the inner folds choose it: :func:`choose_context` on the other folds, nested) and the
    composition + length baseline (the same trees without NES evidence), with cluster-bootstrap
    95 % intervals of score - baseline; with ``Xd`` also the baseline with the disorder context
    (composition + length + disorder, no NES evidence), so that the NES evidence's own part shows."""
    from sklearn.metrics import roc_auc_score

    ids = [r.id for r in records]
    folds = np.array([fold_of[i] for i in ids])
    y = np.array([r.label for r in records])
    Xc = Xn[:, len(NES_FEATURES):]
    p_s, p_b, p_bd = np.zeros(len(ids)), np.zeros(len(ids)), np.zeros(len(ids))
    chosen = []
    for k in sorted(set(folds.tolist())):
        tr, te = folds != k, folds == k
        use = Xd is not None and choose_context(Xn[tr], Xd[tr], y[tr], folds[tr], seed)
        chosen.append(use)
        Xs = np.hstack([Xn, Xd]) if use else Xn
        p_s[te] = _fit_trees(Xs[tr], y[tr], seed).predict_proba(Xs[te])[:, 1]
        p_b[te] = _fit_trees(Xc[tr], y[tr], seed).predict_proba(Xc[te])[:, 1]
        if Xd is not None:
            Xcd = np.hstack([Xc, Xd])
            p_bd[te] = _fit_trees(Xcd[tr], y[tr], seed).predict_proba(Xcd[te])[:, 1]
    nes = Xn[:, 0]
    group = np.array([r.group for r in records])
    cluster = np.array([r.cluster for r in records])
    out: dict = {}
    if Xd is not None:
        out["context_features"] = {"features": CONTEXT_FEATURES, "used_per_outer_fold": chosen,
                                   "rule": "higher pooled inner out-of-fold ROC AUC (label, all proteins) "
                                           "with than without them (nested)"}
    for task, pos, neg in (("T1_annotated_vs_bacterial", "nes_annotated", "bacterial_control"),
                           ("T2_annotated_vs_nonbinder", "nes_annotated", "crm1_nonbinder"),
                           ("T3_cargo_vs_nonbinder", "crm1_cargo", "crm1_nonbinder")):
        m = (group == pos) | (group == neg)
        yy = (group[m] == pos).astype(int)
        lo, hi = _bootstrap_auc_diff(yy, p_s[m], p_b[m], cluster[m], seed=seed)
        out[task] = {"nes_score": float(roc_auc_score(yy, nes[m])), "score": float(roc_auc_score(yy, p_s[m])),
                     "baseline_composition_length": float(roc_auc_score(yy, p_b[m])),
                     "score_minus_baseline_95ci": [lo, hi]}
        if Xd is not None:
            lo, hi = _bootstrap_auc_diff(yy, p_s[m], p_bd[m], cluster[m], seed=seed)
            out[task].update({"baseline_composition_length_disorder": float(roc_auc_score(yy, p_bd[m])),
                              "score_minus_disorder_baseline_95ci": [lo, hi]})
    return out

"""E-values for NES candidates: how often a shuffled protein scores this high.

A window score is not an error rate: NES-like windows turn up by chance in any sequence, more
often the longer the protein. As HMMER does for domain hits, nesscan scores each candidate
against a **background null**: the candidates that the same model finds in
composition-preserving shuffles of its training proteins (each protein's residues permuted, so
composition and length are kept and any real NES is destroyed).

The null is summarised as a per-residue **rate** ``λ(s)``: the number of null candidates (greedy,
non-overlapping, exactly as ``predict`` picks them) scoring at least ``s``, divided by the number
of null residues. A candidate of score ``s`` in a protein of ``L`` residues then has

    ``evalue = L · λ(s)``  — the expected number of candidates scoring ``≥ s`` in a shuffled
    protein of this length,

``pvalue = 1 − exp(−evalue)`` (Poisson: at least one such candidate), and a run-wide ``qvalue``
(Benjamini–Hochberg over all reported candidates, :func:`bh_qvalues`). ``λ`` is the empirical
rate on the logit of the score, interpolated on a grid, and above the top null candidates an
exponential tail fitted to them (maximum likelihood), so that E-values keep falling beyond the
scores the null sample reached instead of stopping at ``1 / N``.

Everything is stored in ``model.json`` (``calibration``) as plain numbers.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

N_KNOTS = 256
TAIL = 200  # null candidates in the fitted exponential tail


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def shuffle_sequence(seq: str, seed: int, salt: str = "") -> str:
    """A composition-preserving shuffle of ``seq``; the permutation depends only on ``seed``,
    ``salt`` (e.g. the protein ID) and the sequence, never on the process (no ``hash()``)."""
    h = hashlib.sha256(f"{seed}\0{salt}\0{seq}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(h[:8], "little"))
    arr = np.frombuffer(seq.encode("ascii"), dtype=np.uint8).copy()
    rng.shuffle(arr)
    return arr.tobytes().decode("ascii")


def null_candidate_scores(score: np.ndarray, length: int, window: int, floor: float = 1e-4) -> np.ndarray:
    """Scores of all greedy non-overlapping candidates of one protein down to ``floor``."""
    from .window_score import pick_candidates

    return np.array([c.score for c in pick_candidates(score, length, window, top_k=len(score), min_score=floor)])


def fit_null(cand_scores: np.ndarray, n_residues: int, floor: float = 1e-4) -> dict:
    """The per-residue rate ``λ(s)`` from null candidate scores and the null's residue count."""
    x = np.sort(_logit(np.asarray(cand_scores, dtype=np.float64)))[::-1]  # descending logits
    n = len(x)
    if n < 10 or n_residues <= 0:
        raise ValueError("too few null candidates to fit a background rate")
    k = min(TAIL, n - 1)
    x0 = float(x[k])  # the tail starts at the (k+1)-th best null candidate
    excess = x[:k] - x0
    slope = float(1.0 / max(excess.mean(), 1e-6))  # exponential MLE of the tail's decay (per logit unit)
    # empirical part: log rate at knots spread over the null's logit range below the tail
    lo = float(_logit(floor))
    grid = np.linspace(lo, x0, N_KNOTS)
    asc = x[::-1]
    counts = n - np.searchsorted(asc, grid, side="left")  # null candidates with logit >= knot
    rate = np.maximum(counts, 0.5) / n_residues
    return {"method": "per-residue rate of null candidates (composition-preserving shuffles), empirical "
                      "below the tail, exponential tail above it (maximum likelihood)",
            "score": "fused_score", "knots_logit": grid.tolist(), "log_rate": np.log(rate).tolist(),
            "tail_start_logit": x0, "tail_log_rate": float(np.log((k + 1) / n_residues)), "tail_slope": slope,
            "n_null_candidates": int(n), "n_null_residues": int(n_residues), "floor": floor}


def log_rate(null: dict, score) -> np.ndarray:
    x = _logit(score)
    knots = np.asarray(null["knots_logit"])
    lr = np.asarray(null["log_rate"])
    out = np.interp(x, knots, lr)  # clamps to the ends of the grid below the tail start
    tail = x >= null["tail_start_logit"]
    out = np.where(tail, null["tail_log_rate"] - null["tail_slope"] * (x - null["tail_start_logit"]), out)
    return np.minimum(out, lr[0])


def evalue(null: dict, score, length) -> np.ndarray:
    """Expected number of null candidates scoring ``>= score`` in a protein of ``length``."""
    return np.asarray(length, dtype=np.float64) * np.exp(log_rate(null, score))


def score_at(null: dict, e: float, length: int) -> float:
    """The smallest score whose E-value in a protein of ``length`` is ``<= e``: the rate curve
    inverted exactly (piecewise linear in the logit below the tail, exponential above it);
    1.0 when no score reaches it, 0.0 when every score does."""
    if e <= 0 or length <= 0:
        return 1.0
    target = float(np.log(e / length))  # log rate wanted
    lr = np.asarray(null["log_rate"])
    knots = np.asarray(null["knots_logit"])
    if target >= lr[0]:
        return 0.0
    if target >= null["tail_log_rate"] and target >= lr[-1]:
        # inside the empirical part: the first knot whose log rate is <= target, interpolated
        j = int(np.argmax(lr <= target))
        if j == 0:
            x = knots[0]
        else:
            x0, x1, y0, y1 = knots[j - 1], knots[j], lr[j - 1], lr[j]
            x = x1 if y1 == y0 else x0 + (target - y0) * (x1 - x0) / (y1 - y0)
        x = min(x, null["tail_start_logit"])
    else:
        x = null["tail_start_logit"] + (null["tail_log_rate"] - target) / null["tail_slope"]
    s = float(1.0 / (1.0 + np.exp(-x)))
    # guard rounding at the piece boundaries: nudge up until the E-value is within the cutoff
    for _ in range(60):
        if evalue(null, s, length) <= e * (1 + 1e-9) or s >= 1.0:
            break
        s = min(1.0, s + max(1e-12, (1 - s) * 1e-6))
    return s


def pvalue(e) -> np.ndarray:
    return -np.expm1(-np.asarray(e, dtype=np.float64))


def bh_qvalues(p) -> np.ndarray:
    """Benjamini–Hochberg q-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def chance_calls(n_proteins: int, max_evalue: float) -> float:
    """High-confidence calls (candidates with ``evalue <= max_evalue``) expected by chance in a
    run of ``n_proteins`` proteins none of which has an NES: ``max_evalue`` per protein whatever
    its length (a candidate's E-value is the expected number of null candidates at least as good
    in a protein of its length), so ``n_proteins * max_evalue``. Out of fold, the shipped model's
    composition-preserving shuffles got about this many, real proteins without NES fewer (model
    card, ``calibration.meaning``)."""
    return float(n_proteins) * float(max_evalue)


def estimated_fdr(n_calls: int, n_proteins: int, max_evalue: float) -> float:
    """The share of a run's ``n_calls`` calls that chance alone would give if no protein had an
    NES (π0 = 1, as Benjamini–Hochberg assumes): ``min(1, chance_calls / n_calls)``, an upper
    estimate of the false discovery rate of the calls; NaN without calls."""
    if n_calls <= 0:
        return math.nan
    return min(1.0, chance_calls(n_proteins, max_evalue) / n_calls)


def chance_summary(n_calls: int, n_proteins: int, max_evalue: float | None) -> str:
    """One log phrase: the calls beside what chance gives at this cutoff."""
    calls = f"{n_calls} high-confidence candidate{'' if n_calls == 1 else 's'}"
    if max_evalue is None:
        return calls
    fdr = estimated_fdr(n_calls, n_proteins, max_evalue)
    return (f"{calls} at E-value <= {max_evalue:g}; chance alone gives about "
            f"{chance_calls(n_proteins, max_evalue):.1f} in {n_proteins} proteins without NES"
            + (f" (estimated FDR <= {100 * fdr:.0f}%)" if n_calls else ""))


__all__ = ["shuffle_sequence", "null_candidate_scores", "fit_null", "evalue", "score_at", "pvalue", "bh_qvalues",
           "chance_calls", "estimated_fdr", "chance_summary"]

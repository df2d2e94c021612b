"""NES profile: a position-specific log-odds matrix of known NES aligned on their Φ1 residue.

The consensus classes (:mod:`nesscan.motifs`) say *where* hydrophobic residues may sit; they are
silent on which residues known NES prefer at and around those places (leucine over valine at Φ,
acidic and serine flanks, no proline or basic residues inside). A profile learned from the
annotated spans carries that, in the way HMMER profiles and NESmapper's activity profiles do.

``fit_profile`` counts residues at offsets ``OFFSETS`` around each training span's Φ1 (the first
of the four core Φ residues of ``hydrophobic_positions``; Φ0 then sits at offset -2/-3 and Φ4 at
+6..+9), adds pseudocounts in proportion to the training proteins' composition, and stores
``log(p_NES / p_background)``. ``residue_profile`` scores every residue as a Φ1 anchor;
``window_profile`` is the best anchor inside each window.

Fusion (:mod:`nesscan.scoring`) adds ``profile_weight x window_profile`` to the fused logit, the
weight chosen by nested cluster-grouped CV for localisation (:mod:`nesscan.crossval`); a model
without a profile is scored as before. The profile is fitted inside each outer fold's training
proteins, so out-of-fold figures never see the held-out spans.
"""

from __future__ import annotations

import numpy as np

from .fasta import STANDARD as ALPHABET  # the 20 standard letters, in the project's one order
OFFSETS = (-4, 12)  # residues around Φ1 (inclusive)
PSEUDOCOUNT = 1.0  # per letter, in units of the background frequency x 20

_LUT = np.full(256, 20, dtype=np.intp)
for _i, _a in enumerate(ALPHABET):
    _LUT[ord(_a)] = _i


def encode(seq: str) -> np.ndarray:
    """Letter indices 0-19; 20 for anything else (scored 0 by the profile)."""
    return _LUT[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def fit_profile(records, pseudocount: float = PSEUDOCOUNT) -> dict | None:
    """The profile of the NES spans of ``records`` (those with >= 4 Φ positions), against the
    composition of all ``records``. ``None`` when there is no span to learn from."""
    lo, hi = OFFSETS
    bg = np.ones(20)
    counts = np.zeros((hi - lo + 1, 20))
    n = 0
    for r in records:
        e = encode(r.sequence)
        bg += np.bincount(e, minlength=21)[:20]
        for sp in getattr(r, "spans", ()) or ():
            phi = sorted(sp.phi)
            if len(phi) < 4:
                continue
            idx = phi[-4] - 1 + np.arange(lo, hi + 1)
            ok = (idx >= 0) & (idx < len(e))
            letters = e[idx[ok]]
            keep = letters < 20
            np.add.at(counts, (np.arange(hi - lo + 1)[ok][keep], letters[keep]), 1.0)
            n += 1
    if n == 0:
        return None
    bg /= bg.sum()
    prob = (counts + pseudocount * 20 * bg) / (counts.sum(1, keepdims=True) + pseudocount * 20)
    return {"anchor": "phi1", "offsets": list(OFFSETS), "alphabet": ALPHABET, "n_spans": n,
            "pseudocount": pseudocount, "log_odds": np.log(prob / bg).round(6).tolist()}


def residue_profile(seq: str, profile: dict) -> np.ndarray:
    """Profile score of every residue taken as Φ1 (positions off the ends score 0)."""
    lo, hi = profile["offsets"]
    if lo > 0 or hi < 0:
        raise ValueError(f"NES profile offsets must span the anchor (got {lo}..{hi})")
    M = np.zeros((hi - lo + 1, 21))
    M[:, :20] = np.asarray(profile["log_odds"], dtype=np.float64)
    e = encode(seq)
    L = len(e)
    pad = np.concatenate([np.full(-lo, 20), e, np.full(hi, 20)])
    s = np.zeros(L)
    for k in range(hi - lo + 1):
        s += M[k, pad[k : k + L]]
    return s


def window_profile(seq: str, profile: dict, W: int) -> np.ndarray:
    """Best Φ1 anchor inside each window of ``W`` residues (one window when shorter)."""
    s = residue_profile(seq, profile)
    if len(s) <= W:
        return np.array([s.max() if len(s) else 0.0])
    return np.lib.stride_tricks.sliding_window_view(s, W).max(1)


__all__ = ["OFFSETS", "fit_profile", "residue_profile", "window_profile"]

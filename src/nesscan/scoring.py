"""Fusion scoring: window classifier + consensus motifs + embedding similarity (+ structure).

The library layer under ``nesscan fuse`` (:mod:`nesscan.fuse`, the command) and ``predict``:
it imports nothing of theirs.

For every window of a protein, three component scores in [0, 1]:

* ``nn_score`` — the window classifier (:mod:`nesscan.window_score`);
* ``motif_score`` — a logistic regression over consensus-motif features of the window: a
  strict Kosugi match (classes 1a–1d, 2, 3 and their reverse forms) lies wholly inside it, an
  A/T-tolerant match (A/T at Φ1/Φ2), a Φ0 extension (PKI/Rev type), a Wregex match, prolines
  inside the best match (penalty) and acidic residues flanking it;
* ``similarity_score`` — similarity of the window's mean embedding to reference NES windows
  versus reference non-NES windows (k-means centroids of the training windows, stored with the
  model): ``max cos(NES centroids) - max cos(non-NES centroids)`` through a fitted logistic link.

``fused_score`` is a logistic regression over the three components' logits, with the motif and
similarity weights shrunk towards the classifier by a factor chosen for localisation (hit@1 +
hit@5 inside NES-annotated proteins) by nested cluster-grouped CV. Every weight, and the
shrinkage, is learned by ``nesscan train`` on out-of-fold classifier scores and stored in
``model.json``; nothing is hand-set. Candidates are then picked on ``fused_score``.

Each candidate also gets its **Φ residues** (the positions that sit in CRM1 pockets P0–P4) and
Kosugi class, derived from the consensus matches inside the window (:func:`annotate_phi`).

Optional structure (``--structure``, a PDB/mmCIF file per protein, e.g. AlphaFold models):
relative solvent accessibility from Biopython's Shrake–Rupley and pLDDT from the B-factor
column are reported per candidate (mean over the window). They are not part of the learned
fusion: the training data carry no structures, so any weight would be a guess. A buried
candidate (mean RSA < 0.25) is marked in ``accessibility`` for the user to judge.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .motifs import CLASSES, PHI, is_reverse, kosugi_matches, wregex_matches
from .nes_profile import window_profile

MOTIF_FEATURES = ["strict", "at_tolerant", "phi0", "wregex", "prolines_in_core", "acidic_flank"]
# class preference when several consensus matches share a window: the NESdb/ValidNES class
# frequencies reported by Kosugi et al. 2008 and Xu et al. 2012 (1a most common)
CLASS_PRIOR = {"1a": 6, "3": 5, "1c": 4, "2": 3, "1aR": 3, "1b": 2, "1d": 2,
               "1bR": 1, "1cR": 1, "1dR": 1, "2R": 1, "3R": 1}


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def n_windows(L: int, W: int) -> int:
    return max(L - W + 1, 1)


def _window_range(start: int, end: int, L: int, W: int) -> tuple[int, int]:
    """0-based window starts whose window [s, s+W) wholly contains [start, end]."""
    nW = n_windows(L, W)
    if L < W:
        return 0, 0
    return max(0, end - W + 1), min(start, nW - 1)


def _cover(nW: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1.0 for every window index inside any of the ranges ``[a_i, b_i]``, else 0.0."""
    d = np.zeros(nW + 1, dtype=np.int64)
    np.add.at(d, a, 1)
    np.add.at(d, b + 1, -1)
    return (np.cumsum(d[:nW]) > 0).astype(np.float64)


def _window_ranges(starts: np.ndarray, ends: np.ndarray, L: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`_window_range`."""
    if L < W:
        return np.zeros_like(starts), np.zeros_like(starts)
    return np.maximum(0, ends - W + 1), np.minimum(starts, n_windows(L, W) - 1)


def window_motif_features(seq: str, W: int) -> np.ndarray:
    """(n_windows, 6) motif features, see :data:`MOTIF_FEATURES`.

    Columns: a strict / A/T-tolerant / Φ0-extended Kosugi match lies wholly inside the window,
    a Wregex match does, and, for the best match inside the window (quality = 2 for strict
    + 1 for a Φ0 - prolines in its core; ties go to the first match in scan order, strict
    before tolerant; only matches of quality > -1 count), the prolines in its core and the
    acidic residues (D/E) within 3 residues either side of it. Vectorised over matches.
    """
    L = len(seq)
    nW = n_windows(L, W)
    feats = np.zeros((nW, len(MOTIF_FEATURES)))
    matches = list(protein_matches(seq, False) + protein_matches(seq, True))
    if matches:
        starts = np.fromiter((m.phi[0] for m in matches), dtype=np.int64, count=len(matches))
        ends = np.fromiter((m.phi[-1] for m in matches), dtype=np.int64, count=len(matches))
        tol = np.fromiter((m.at_tolerant for m in matches), dtype=bool, count=len(matches))
        phi0 = np.fromiter(("+phi0" in m.motif_class for m in matches), dtype=bool, count=len(matches))
        a, b = _window_ranges(starts, ends, L, W)
        ok = a <= b
        if ok.any():
            a, b, starts, ends, tol, phi0 = a[ok], b[ok], starts[ok], ends[ok], tol[ok], phi0[ok]
            arr = np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)
            cum_p = np.concatenate([[0], np.cumsum(arr == ord("P"))])
            cum_de = np.concatenate([[0], np.cumsum((arr == ord("D")) | (arr == ord("E")))])
            n_pro = cum_p[ends + 1] - cum_p[starts]
            acidic = (cum_de[starts] - cum_de[np.maximum(0, starts - 3)]) + (cum_de[np.minimum(L, ends + 4)] - cum_de[ends + 1])
            feats[:, 0] = _cover(nW, a[~tol], b[~tol]) if (~tol).any() else 0.0
            feats[:, 1] = _cover(nW, a[tol], b[tol]) if tol.any() else 0.0
            feats[:, 2] = _cover(nW, a[phi0], b[phi0]) if phi0.any() else 0.0
            q = np.where(tol, 0.0, 2.0) + phi0 - n_pro
            good = np.flatnonzero(q > -1.0)
            if good.size:
                # priority: higher quality first, then scan order; the best covering match wins
                order = good[np.lexsort((good, -q[good]))]
                rank = np.empty(len(q), dtype=np.int64)
                rank[order] = np.arange(order.size)
                n = b[order] - a[order] + 1
                win = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n - a[order], n)
                best = np.full(nW, order.size, dtype=np.int64)
                np.minimum.at(best, win, np.repeat(rank[order], n))
                hit = best < order.size
                chosen = order[best[hit]]
                feats[hit, 4] = n_pro[chosen]
                feats[hit, 5] = acidic[chosen]
    wr = wregex_matches(seq)
    if wr:
        s_, e_ = np.array(wr, dtype=np.int64).T
        a, b = _window_ranges(s_, e_, L, W)
        ok = a <= b
        if ok.any():
            feats[:, 3] = _cover(nW, a[ok], b[ok])
    return feats


def pooled_windows(emb: np.ndarray, W: int) -> np.ndarray:
    """Mean embedding of every window (n_windows, D), via cumulative sums."""
    L = emb.shape[0]
    if L < W:
        return emb.mean(0, keepdims=True).astype(np.float64)
    c = np.empty((L + 1, emb.shape[1]), dtype=np.float64)
    c[0] = 0.0
    np.cumsum(emb, axis=0, dtype=np.float64, out=c[1:])
    out = np.subtract(c[W:], c[:-W])
    out /= W
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


_BLAS_CONTROLLER = None


def _one_blas_thread():
    """A context that runs BLAS single-threaded (threadpoolctl, a scikit-learn dependency).
    The products in :func:`similarity_raw` are small (windows x D x 32): OpenBLAS's thread
    hand-off costs more than the arithmetic, and far more on a busy machine. Results are the
    same (OpenBLAS splits rows and columns between threads, not the sums)."""
    global _BLAS_CONTROLLER
    import contextlib

    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        except Exception:  # threadpoolctl missing or failing: plain BLAS
            _BLAS_CONTROLLER = False
    if _BLAS_CONTROLLER is False:
        return contextlib.nullcontext()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def similarity_raw(pooled: np.ndarray, centroids: dict) -> np.ndarray:
    """max cosine to NES centroids minus max cosine to non-NES centroids (after standardising)."""
    z = _unit((pooled - centroids["mean"]) / centroids["std"])
    with _one_blas_thread():
        pos = z @ _unit(centroids["nes"]).T
        neg = z @ _unit(centroids["non_nes"]).T
    return pos.max(1) - neg.max(1)


def fit_centroids(pos: np.ndarray, neg: np.ndarray, k: int = 32, seed: int = 0) -> dict:
    from sklearn.cluster import KMeans

    allx = np.concatenate([pos, neg])
    mean, std = allx.mean(0), allx.std(0)
    std[std < 1e-6] = 1.0
    out = {"mean": mean, "std": std}
    for name, x in (("nes", pos), ("non_nes", neg)):
        z = (x - mean) / std
        kk = min(k, len(z))
        km = KMeans(n_clusters=kk, n_init=3, random_state=seed).fit(z)
        out[name] = km.cluster_centers_ * std + mean
    return out


def _lr_fit(X, y, seed=0, C=1.0):
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, dtype=np.float64)
    mean, std = X.mean(0), X.std(0)
    std[std == 0] = 1.0
    lr = LogisticRegression(C=C, max_iter=5000, random_state=seed, class_weight="balanced")
    lr.fit((X - mean) / std, y)
    return {"mean": mean.tolist(), "std": std.tolist(), "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0])}


def _lr_apply(p, X):
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return _sigmoid(((X - np.array(p["mean"])) / np.array(p["std"])) @ np.array(p["coef"]) + p["intercept"])


def fit_fusion(nn: np.ndarray, motif_feats: np.ndarray, sim_raw: np.ndarray, y: np.ndarray, seed: int = 0,
               shrink: float = 1.0) -> dict:
    """Learn the motif score, the similarity link and the fusion from window examples.

    The fusion is a logistic regression over the three components' logits. ``shrink`` (0–1)
    scales the motif and similarity weights relative to the classifier's before a 1-D logistic
    recalibration of the result: the pointwise fit maximises window AUC over *all* proteins,
    which is not the same as ranking the right window first *inside* a protein, and
    ``nesscan train`` picks ``shrink`` by nested cluster-grouped CV on localisation (hit@1 +
    hit@5) — see :func:`nesscan.crossval.select_fusion`. ``shrink=1`` is the plain fit.
    """
    return fit_fusion_grid(nn, motif_feats, sim_raw, y, seed, (shrink,))[float(shrink)]


def fit_fusion_grid(nn: np.ndarray, motif_feats: np.ndarray, sim_raw: np.ndarray, y: np.ndarray, seed: int = 0,
                    shrinks=(1.0,)) -> dict[float, dict]:
    """:func:`fit_fusion` at several ``shrink`` values sharing one fit of the components."""
    motif = _lr_fit(motif_feats, y, seed)
    sim = _lr_fit(sim_raw.reshape(-1, 1), y, seed)
    comps = np.stack([_logit(nn), _logit(_lr_apply(motif, motif_feats)), _logit(_lr_apply(sim, sim_raw.reshape(-1, 1)))], 1)
    plain = _lr_fit(comps, y, seed)
    zs = (comps - np.array(plain["mean"])) / np.array(plain["std"])
    out = {}
    for shrink in shrinks:
        fusion = plain
        if shrink != 1.0:
            coef = np.array(plain["coef"]) * np.array([1.0, shrink, shrink])
            cal = _lr_fit((zs @ coef).reshape(-1, 1), y, seed)  # standardised again inside: fold it back
            a = cal["coef"][0] / cal["std"][0]
            fusion = {"mean": plain["mean"], "std": plain["std"], "coef": (a * coef).tolist(),
                      "intercept": float(cal["intercept"] - a * cal["mean"][0])}
        out[float(shrink)] = {"motif_features": MOTIF_FEATURES, "motif": motif, "similarity": sim,
                              "fusion_inputs": ["logit nn_score", "logit motif_score", "logit similarity_score"],
                              "fusion": fusion, "shrink": float(shrink)}
    return out


def with_profile(params: dict, weight: float, fused: np.ndarray, profile_raw: np.ndarray, y: np.ndarray,
                 seed: int = 0) -> dict:
    """``params`` with the NES profile (:mod:`nesscan.nes_profile`) added to the fused logit at
    ``weight`` (chosen by nested CV for localisation), then a 1-D logistic recalibration on the
    training windows so that ``fused_score`` stays a window probability. ``weight`` 0: unchanged."""
    if not weight:
        return params
    z = _logit(fused) + weight * np.asarray(profile_raw, dtype=np.float64)
    cal = _lr_fit(z.reshape(-1, 1), y, seed)
    a = cal["coef"][0] / cal["std"][0]
    return {**params, "profile_weight": float(weight),
            "profile_calibration": {"coef": float(a), "intercept": float(cal["intercept"] - a * cal["mean"][0])}}


def component_scores(params: dict, nn: np.ndarray, motif_feats: np.ndarray, sim_raw: np.ndarray,
                     profile_raw: np.ndarray | None = None) -> dict:
    """The three component scores and ``fused_score`` of every window; ``profile_raw`` (the
    windows' NES-profile scores) is read when the fusion carries a profile weight."""
    motif = _lr_apply(params["motif"], motif_feats)
    sim = _lr_apply(params["similarity"], sim_raw.reshape(-1, 1))
    fused = _lr_apply(params["fusion"], np.stack([_logit(nn), _logit(motif), _logit(sim)], 1))
    w = params.get("profile_weight", 0.0)
    if w:
        if profile_raw is None:
            raise ValueError("this fusion adds an NES profile score: profile_raw is required")
        cal = params["profile_calibration"]
        fused = _sigmoid(cal["coef"] * (_logit(fused) + w * np.asarray(profile_raw, dtype=np.float64)) + cal["intercept"])
    return {"nn_score": np.asarray(nn, dtype=np.float64), "motif_score": motif, "similarity_score": sim, "fused_score": fused}


def fuse_protein(seq: str, emb: np.ndarray, nn: np.ndarray, W: int, params: dict, centroids: dict) -> dict:
    pf = window_profile(seq, params["profile"], W) if params.get("profile_weight") else None
    return component_scores(params, nn, window_motif_features(seq, W), similarity_raw(pooled_windows(emb, W), centroids), pf)


@lru_cache(maxsize=4)
def protein_matches(seq: str, at_tolerant: bool) -> tuple:
    """:func:`nesscan.motifs.kosugi_matches` of a whole protein, kept for the protein's
    candidates (fusion scans each protein once; :func:`annotate_phi` then filters the matches
    instead of scanning each candidate's neighbourhood again)."""
    return tuple(kosugi_matches(seq, at_tolerant=at_tolerant))


def _matches_within(seq: str, at_tolerant: bool, lo: int, hi: int):
    """``(class, 0-based Φ positions)`` of the matches ``kosugi_matches(seq[lo:hi])`` would
    give, shifted back to protein positions and in its order: the protein's matches whose core
    lies in ``[lo, hi)``, with a Φ0 before ``lo`` dropped (the slice cannot see it)."""
    for m in protein_matches(seq, at_tolerant):
        phi = m.phi
        core = phi[-4:]
        if core[0] < lo or core[-1] >= hi:
            continue
        if len(phi) > 4 and phi[0] < lo:
            yield m.motif_class.split("+")[0], core
        else:
            yield m.motif_class, phi


def annotate_phi(seq: str, start: int, end: int) -> tuple[str, list[int]]:
    """Kosugi class and 1-based Φ positions of the best consensus match for the window
    [start, end] (1-based inclusive). A match qualifies when at least three of its four core Φ
    residues (Φ1–Φ4) lie in the window; its Φ0 (forward classes: Φ0-x2-Φ1 or Φ0-x3-Φ1, looked
    for up to 8 residues before the window) or, for reverse classes (bound in the minus orientation:
    Φ4 … Φ1 in sequence order), the mirrored Φ0 after the core is kept even just outside; either
    adds ``+phi0`` to the class. Preference: strict over A/T-tolerant, then the class's frequency
    among known NES, then an extra (fifth) Φ, then the number of leucines at Φ positions, then
    closeness to the window centre. ``("none", [])`` when nothing matches."""
    lo, hi = start - 1, end - 1
    sub_from = max(0, lo - 8)
    sub_to = min(len(seq), hi + 9)
    best, best_key = None, None
    centre = (lo + hi) / 2
    for tolerant in (False, True):
        for motif_class, phi in _matches_within(seq, tolerant, sub_from, sub_to):
            phi = list(phi)
            core = phi[-4:]
            if sum(lo <= p <= hi for p in core) < 3:
                continue
            base = motif_class.split("+")[0]
            extra = len(phi) > 4
            if is_reverse(base):
                after = core[-1] + 3
                if after < len(seq) and seq[after] in PHI:
                    phi = core + [after]
                    extra = True
            key = (not tolerant, CLASS_PRIOR.get(base, 0), extra, sum(seq[p] == "L" for p in phi),
                   -abs((core[0] + core[-1]) / 2 - centre))
            if best_key is None or key > best_key:
                suffix = "+phi0" if extra else ""  # reverse classes: the mirrored Φ0, after Φ1
                best, best_key = (base + ("-AT" if tolerant else "") + suffix, [p + 1 for p in phi]), key
    return best if best else ("none", [])


__all__ = ["CLASSES", "PHI", "MOTIF_FEATURES", "window_motif_features", "pooled_windows", "similarity_raw",
           "fit_centroids", "fit_fusion", "with_profile", "component_scores", "fuse_protein", "annotate_phi"]


# ----------------------------------------------------------------------------- structure context

# maximum accessible surface areas (Tien et al. 2013, theoretical), for relative accessibility
MAX_ASA = {"ALA": 129.0, "ARG": 274.0, "ASN": 195.0, "ASP": 193.0, "CYS": 167.0, "GLN": 225.0, "GLU": 223.0,
           "GLY": 104.0, "HIS": 224.0, "ILE": 197.0, "LEU": 201.0, "LYS": 236.0, "MET": 224.0, "PHE": 240.0,
           "PRO": 159.0, "SER": 155.0, "THR": 172.0, "TRP": 285.0, "TYR": 263.0, "VAL": 174.0}
BURIED_RSA = 0.25


def structure_tracks(path: str, seq: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-residue relative solvent accessibility (Shrake–Rupley) and B-factor (pLDDT for
    AlphaFold models) of the first chain of a PDB/mmCIF file, on 1..L sequence numbering.
    Positions missing from the model are NaN. Raises NesscanError when the model's residues do
    not match the sequence."""
    import warnings

    from Bio.PDB import MMCIFParser, PDBParser
    from Bio.PDB.Polypeptide import three_to_index, index_to_one
    from Bio.PDB.SASA import ShrakeRupley

    from .errors import NesscanError

    parser = MMCIFParser(QUIET=True) if path.endswith((".cif", ".mmcif")) else PDBParser(QUIET=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = parser.get_structure("m", path)
    except Exception as e:
        raise NesscanError(f"cannot parse structure {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    chains = list(structure[0])
    if not chains:
        raise NesscanError(f"structure {path} has no chains")
    chain = chains[0]
    ShrakeRupley().compute(chain, level="R")
    L = len(seq)
    rsa, bfac = np.full(L, np.nan), np.full(L, np.nan)
    same = total = 0
    for res in chain:
        hetflag, num, _ = res.id
        if hetflag.strip() or not 1 <= num <= L:
            continue
        name = res.get_resname()
        if name not in MAX_ASA:
            continue
        total += 1
        same += index_to_one(three_to_index(name)) == seq[num - 1]
        rsa[num - 1] = min(1.0, res.sasa / MAX_ASA[name])
        bfac[num - 1] = float(np.mean([a.get_bfactor() for a in res]))
    if total == 0 or same / total < 0.9:
        raise NesscanError(
            f"structure {path} does not match the sequence ({same} of {total} residues agree on 1..{L} numbering)")
    return rsa, bfac


def find_structure(directory: str, pid: str) -> str | None:
    import os
    from urllib.parse import quote

    safe = quote(pid, safe="")
    for name in (safe, f"AF-{safe}-F1-model_v4", f"AF-{safe}-F1-model_v3"):
        for ext in (".pdb", ".cif", ".mmcif", ".ent"):
            p = os.path.join(directory, name + ext)
            if os.path.exists(p):
                return p
    return None

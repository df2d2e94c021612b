"""Pure metric functions of ``nesscan evaluate`` (no plotting, no file writing): protein-level
threshold metrics and AUCs, the composition+length baseline (out-of-fold), and NES localisation
inside proteins with known spans (hit@k, residue/window AUC, Φ-residue F1)."""

from __future__ import annotations

import math

import numpy as np

from .evaluate_io import Inputs, SpanRec, motif_family

AA20 = "ACDEFGHIKLMNPQRSTVWY"
BASELINE = "baseline_composition_length"
THRESHOLDS = (0.5, 0.9)

# ----------------------------------------------------------------------------- protein-level metrics


def _nan_to_none(x):
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_nan_to_none(v) for v in x.tolist()]
    return x


def mcc_optimal_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The score threshold t (predict positive when ``s >= t``) with the highest MCC; among
    equal MCCs the highest threshold. Vectorised over all distinct scores."""
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]  # last index of each distinct score
    tp = np.cumsum(yy)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    P, N = float(yy.sum()), float(len(yy) - yy.sum())
    fn, tn = P - tp, N - fp
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
    return float(ss[last[int(np.argmax(mcc))]])


def threshold_metrics(y: np.ndarray, s: np.ndarray, t: float) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, precision_score, recall_score

    pred = (s >= t).astype(int)
    return {"threshold": float(t),
            "f1": float(f1_score(y, pred, zero_division=0)),
            "mcc": float(matthews_corrcoef(y, pred)),
            "accuracy": float(accuracy_score(y, pred)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "n_predicted_positive": int(pred.sum())}


def score_metrics(y: np.ndarray, s: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}
    out["at_mcc_optimal"] = threshold_metrics(y, s, mcc_optimal_threshold(y, s))
    for t in THRESHOLDS:
        out[f"at_{t:g}"] = threshold_metrics(y, s, t)
    return out


def composition_length_features(seqs: list[str]) -> np.ndarray:
    X = np.zeros((len(seqs), 21))
    idx = {a: i for i, a in enumerate(AA20)}
    for r, seq in enumerate(seqs):
        counts = np.zeros(20)
        for ch in seq:
            j = idx.get(ch)
            if j is not None:
                counts[j] += 1
        tot = counts.sum()
        if tot:
            X[r, :20] = counts / tot
        X[r, 20] = math.log(max(len(seq), 1))
    return X


def baseline_oof(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int = 0, folds: int = 5
                 ) -> tuple[np.ndarray | None, str]:
    """Out-of-fold probabilities of HistGradientBoosting on composition + log length."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None:
        n_min = min(len(set(groups[y == c])) for c in (0, 1))
    else:
        n_min = int(min((y == 0).sum(), (y == 1).sum()))
    k = min(folds, n_min)
    if k < 2:
        return None, "too few examples of one class for cross-validation"
    if groups is not None:
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y, groups)
        desc = f"cluster-grouped stratified {k}-fold"
    else:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y)
        desc = f"stratified {k}-fold"
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small data: OpenMP threads only cost time (and crawl on a busy machine)
        oof = _fit_folds(X, y, splits, seed)
    return oof, desc


def _fit_folds(X, y, splits, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier

    oof = np.full(len(y), np.nan)
    for tr, te in splits:
        if len(set(y[tr])) < 2:
            oof[te] = float(y[tr].mean())
            continue
        clf = HistGradientBoostingClassifier(random_state=seed)
        clf.fit(X[tr], y[tr])
        oof[te] = clf.predict_proba(X[te])[:, 1]
    return oof


# ----------------------------------------------------------------------------- localisation


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0) + 1)


def window_classes(starts: np.ndarray, ends: np.ndarray, spans: list[SpanRec]) -> np.ndarray:
    """1 = the window holds a known NES (overlaps a span by at least half of the shorter of the
    two), 0 = touches no span, -1 = partial overlap only (left out)."""
    cls = np.zeros(len(starts), dtype=np.int64)
    touched = np.zeros(len(starts), dtype=bool)
    for sp in spans:
        ov = np.clip(np.minimum(ends, sp.end) - np.maximum(starts, sp.start) + 1, 0, None)
        need = np.ceil(np.minimum(ends - starts + 1, sp.end - sp.start + 1) / 2.0)
        touched |= ov > 0
        cls[ov >= need] = 1
    cls[(cls == 0) & touched] = -1
    return cls


def residue_scores(length: int, starts: np.ndarray, ends: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each residue's best score over the windows covering it (0 where none covers it)."""
    res = np.zeros(length)
    lens = (np.minimum(ends, length) - starts + 1).clip(min=0)
    if lens.sum() == 0:
        return res
    idx = np.concatenate([np.arange(s - 1, s - 1 + n) for s, n in zip(starts, lens) if n > 0])
    vals = np.repeat(scores[lens > 0], lens[lens > 0])
    np.maximum.at(res, idx, vals)
    return res


def _auc(y, s) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, s))


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else math.nan
    r = tp / (tp + fn) if tp + fn else math.nan
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def _span_regions(spans: list) -> list[list]:
    """Groups of spans that overlap (transitively): alternative annotations of one NES."""
    out: list[list] = []
    for sp in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and sp.start <= max(s.end for s in out[-1]):
            out[-1].append(sp)
        else:
            out.append([sp])
    return out


def localisation(inp: Inputs, min_overlap: int = 1) -> dict:
    """Localisation metrics inside proteins with known spans, overall and per motif-class family."""
    spans = inp.spans or {}
    cands = inp.candidates or {}
    evaluated = [pid for pid in spans if pid in inp.proteins]
    families = sorted({sp.family for pid in evaluated for sp in spans[pid]})
    buckets = ["all"] + families
    acc = {b: {"proteins": 0, "spans": 0, "hit1": 0, "hit5": 0, "res_y": [], "res_s": [], "res_auc": [],
               "win_y": [], "win_s": [], "win_auc": [], "tp": 0, "fp": 0, "fn": 0, "phi_spans": 0,
               "phi_tp_all": 0, "phi_fn_all": 0, "phi_fp_all": 0, "class_ok": 0, "class_n": 0,
               "reg_n": 0, "reg_tp": 0, "reg_fp": 0, "reg_fn": 0} for b in buckets}
    source = "windows" if inp.windows is not None else "candidates"
    n_missing_windows = 0
    for pid in evaluated:
        sps = spans[pid]
        cs = cands.get(pid, [])
        length = None
        if inp.sequences and pid in inp.sequences:
            length = len(inp.sequences[pid])
        elif inp.proteins[pid].get("length"):
            try:
                length = int(float(inp.proteins[pid]["length"]))
            except ValueError:
                length = None
        if length is None:
            length = max([sp.end for sp in sps] + [c["end"] for c in cs] + [1])
        if inp.windows is not None:
            if pid not in inp.windows:
                n_missing_windows += 1
                w = None
            else:
                w = inp.windows[pid]
        else:
            w = (np.array([c["start"] for c in cs], dtype=np.int64), np.array([c["end"] for c in cs], dtype=np.int64),
                 np.array([c["score"] for c in cs], dtype=np.float64)) if cs else None
        in_span_all = np.zeros(length, dtype=bool)
        for sp in sps:
            in_span_all[max(sp.start - 1, 0):min(sp.end, length)] = True
        res = residue_scores(length, *w) if w is not None else None
        wcls_all = window_classes(w[0], w[1], sps) if w is not None else None
        for b in buckets:
            bsp = sps if b == "all" else [sp for sp in sps if sp.family == b]
            if not bsp:
                continue
            a = acc[b]
            a["proteins"] += 1
            a["spans"] += len(bsp)

            def hits(c, bsp=bsp):
                return any(_overlap(c["start"], c["end"], sp.start, sp.end) >= min_overlap for sp in bsp)

            a["hit1"] += int(bool(cs) and hits(cs[0]))
            a["hit5"] += int(any(hits(c) for c in cs[:5]))
            if res is not None:
                pos = np.zeros(length, dtype=bool)
                for sp in bsp:
                    pos[max(sp.start - 1, 0):min(sp.end, length)] = True
                keep = pos | ~in_span_all  # residues of other-class spans are left out
                a["res_y"].append(pos[keep].astype(int))
                a["res_s"].append(res[keep])
                a["res_auc"].append(_auc(pos[keep].astype(int), res[keep]))
                wc = wcls_all if b == "all" else window_classes(w[0], w[1], bsp)
                if b != "all":  # windows touching spans of other classes are left out
                    wc = np.where((wcls_all != 0) & (wc == 0), -1, wc)
                m = wc >= 0
                a["win_y"].append(wc[m])
                a["win_s"].append(w[2][m])
                a["win_auc"].append(_auc(wc[m], w[2][m]))
            # Φ residues: per span, the Φ of overlapping candidates (not counting other spans' Φ)
            for sp in bsp:
                ov = [c for c in cs if _overlap(c["start"], c["end"], sp.start, sp.end) >= min_overlap]
                truth = set(sp.phi)
                other = set().union(*[set(o.phi) for o in sps if o is not sp]) - truth
                pred = set().union(*[set(c["phi"]) for c in ov]) - other if ov else set()
                if ov and inp.has_phi and truth:
                    a["phi_spans"] += 1
                    a["tp"] += len(pred & truth)
                    a["fp"] += len(pred - truth)
                    a["fn"] += len(truth - pred)
                if inp.has_phi and truth:
                    a["phi_tp_all"] += len(pred & truth)
                    a["phi_fp_all"] += len(pred - truth)
                    a["phi_fn_all"] += len(truth - pred)
            # Φ residues per NES region: overlapping spans are alternative annotations of one NES
            # (NESdb lists several for some); score the candidates' Φ against the best-matching one
            for reg in _span_regions([sp for sp in bsp if sp.phi]) if inp.has_phi else []:
                lo, hi = min(sp.start for sp in reg), max(sp.end for sp in reg)
                ov = [c for c in cs if _overlap(c["start"], c["end"], lo, hi) >= min_overlap]
                if not ov:
                    continue
                pred = set().union(*[set(c["phi"]) for c in ov])
                best = max((set(sp.phi) for sp in reg), key=lambda t: (2 * len(pred & t) - len(pred ^ t), -len(t)))
                a["reg_n"] += 1
                a["reg_tp"] += len(pred & best)
                a["reg_fp"] += len(pred - best)
                a["reg_fn"] += len(best - pred)
                if ov and ov[0].get("motif_class") not in (None, ""):
                    a["class_n"] += 1
                    a["class_ok"] += int(motif_family(ov[0]["motif_class"]) == sp.family)
    out: dict = {}
    for b in buckets:
        a = acc[b]
        n = a["proteins"]
        m = {"n_proteins": n, "n_spans": a["spans"],
             "hit@1": a["hit1"] / n if n else math.nan, "hit@5": a["hit5"] / n if n else math.nan}
        if a["res_y"]:
            m["residue_auc_pooled"] = _auc(np.concatenate(a["res_y"]), np.concatenate(a["res_s"]))
            per = [x for x in a["res_auc"] if np.isfinite(x)]
            m["residue_auc_mean_per_protein"] = float(np.mean(per)) if per else math.nan
            m["window_auc_pooled"] = _auc(np.concatenate(a["win_y"]), np.concatenate(a["win_s"]))
            per = [x for x in a["win_auc"] if np.isfinite(x)]
            m["window_auc_mean_per_protein"] = float(np.mean(per)) if per else math.nan
            m["window_auc_n_proteins"] = len(per)
        if inp.has_phi:
            prf = _prf(a["tp"], a["fp"], a["fn"])
            m.update({"phi_precision": prf["precision"], "phi_recall": prf["recall"], "phi_f1": prf["f1"],
                      "phi_tp": a["tp"], "phi_fp": a["fp"], "phi_fn": a["fn"], "phi_n_spans": a["phi_spans"]})
            e2e = _prf(a["phi_tp_all"], a["phi_fp_all"], a["phi_fn_all"])
            m.update({"phi_f1_all_spans": e2e["f1"], "phi_recall_all_spans": e2e["recall"]})
            reg = _prf(a["reg_tp"], a["reg_fp"], a["reg_fn"])
            m.update({"phi_region_precision": reg["precision"], "phi_region_recall": reg["recall"],
                      "phi_region_f1": reg["f1"], "phi_n_regions": a["reg_n"]})
        if a["class_n"]:
            m["motif_class_agreement"] = a["class_ok"] / a["class_n"]
            m["motif_class_agreement_n"] = a["class_n"]
        out[b] = m
    overall = out.pop("all")
    meta = {"source": source, "min_overlap": min_overlap, "n_proteins_with_spans": len(spans),
            "n_proteins_with_spans_predicted": len(evaluated)}
    if inp.windows is not None:
        meta["n_proteins_without_windows"] = n_missing_windows
    return {**meta, "overall": overall, "by_motif_class": out}


def _curve_grid(y, s) -> dict:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    prec, rec, _ = precision_recall_curve(y, s)
    order = np.argsort(rec, kind="mergesort")
    return {"fpr": fpr, "tpr": tpr, "precision": prec[order], "recall": rec[order],
            "roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}



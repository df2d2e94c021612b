"""Figures of the cross-validation: localisation inside NES proteins, Φ residues, protein-level
ROC AUC and high-confidence calls (call rates per group, NES span recall, precision)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from . import scoring
from .data import Record
from .window_score import pick_candidates, window_bounds


def _auc(y, s) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def _core(span) -> tuple[int, int]:
    if span.phi:
        return min(span.phi), max(span.phi)
    return span.start, span.end


def _protein_hits(r: Record, sc: np.ndarray, window: int) -> tuple[bool, bool, np.ndarray]:
    """(top candidate on a known NES, any of the top 5 on one, the residues inside a span)."""
    L = len(r.sequence)
    inside = np.zeros(L + 1, dtype=bool)
    for sp in r.spans:
        inside[sp.start : sp.end + 1] = True
    cands = pick_candidates(sc, L, window, top_k=5)
    return (bool(cands and inside[cands[0].start : cands[0].end + 1].any()),
            any(inside[c.start : c.end + 1].any() for c in cands), inside)


def hit_rates(records: list[Record], scores: dict[str, np.ndarray], window: int) -> dict:
    """Only the hit@1 / hit@5 of :func:`localisation_metrics` (what grid searches read)."""
    h = [_protein_hits(r, scores[r.id], window)[:2] for r in records
         if r.group == "nes_annotated" and r.spans and r.id in scores]
    if not h:
        return {"n_annotated": 0}
    return {"n_annotated": len(h), "hit_at_1": sum(a for a, _ in h) / len(h), "hit_at_5": sum(b for _, b in h) / len(h)}


def localisation_metrics(records: list[Record], scores: dict[str, np.ndarray], window: int) -> dict:
    """hit@1/hit@5 of greedy candidates, residue-level AUC and window AUC inside NES-annotated
    proteins, for one per-window score array per protein."""
    hit1 = hit5 = n = 0
    res_y, res_s, win_y, win_s, res_auc_each = [], [], [], [], []
    for r in records:
        if r.group != "nes_annotated" or not r.spans or r.id not in scores:
            continue
        sc = scores[r.id]
        L = len(r.sequence)
        h1, h5, inside = _protein_hits(r, sc, window)
        n += 1
        hit1 += h1
        hit5 += h5
        starts, ends = window_bounds(L, window)
        rs = np.full(L, -1.0)
        for k in range(min(window, L)):
            idx = starts - 1 + k
            ok = idx < L
            np.maximum.at(rs, idx[ok], sc[ok])
        res_y.append(inside[1:].astype(int))
        res_s.append(rs)
        if 0 < inside[1:].sum() < L:
            res_auc_each.append(_auc(inside[1:].astype(int), rs))
        cores = [_core(sp) for sp in r.spans]
        for s, e, v in zip(starts, ends, sc):
            if any(s <= lo and hi <= e for lo, hi in cores):
                win_y.append(1), win_s.append(v)
            elif not inside[s : e + 1].any():
                win_y.append(0), win_s.append(v)
    if n == 0:
        return {"n_annotated": 0}
    return {
        "n_annotated": n,
        "hit_at_1": hit1 / n,
        "hit_at_5": hit5 / n,
        "residue_auc_pooled": _auc(np.concatenate(res_y), np.concatenate(res_s)),
        "residue_auc_per_protein_mean": float(np.nanmean(res_auc_each)) if res_auc_each else float("nan"),
        "window_auc_within_annotated": _auc(win_y, win_s),
    }


def phi_metrics(records: list[Record], scores: dict[str, np.ndarray], window: int, top_k: int = 5) -> dict:
    """Φ-residue precision/recall/F1 of the top candidates picked on ``scores`` (Φ from
    :func:`nesscan.scoring.annotate_phi`), computed by ``nesscan evaluate``'s own code: per span
    (strict) and per region of overlapping annotations (best-matching annotation)."""
    from . import evaluate

    inp = evaluate.Inputs(has_phi=True, proteins={}, candidates={}, spans={}, sequences={})
    for r in records:
        if r.group != "nes_annotated" or not r.spans or r.id not in scores:
            continue
        L = len(r.sequence)
        rows = []
        for c in pick_candidates(scores[r.id], L, window, top_k=top_k):
            cls, phi = scoring.annotate_phi(r.sequence, c.start, c.end)
            rows.append({"rank": c.rank, "start": c.start, "end": c.end, "score": c.score, "phi": phi, "motif_class": cls})
        inp.proteins[r.id] = {"length": L}
        inp.sequences[r.id] = r.sequence
        inp.candidates[r.id] = rows
        inp.spans[r.id] = [evaluate.SpanRec(sp.start, sp.end, list(sp.phi), evaluate.motif_family(sp.motif_class),
                                            sp.motif_class) for sp in r.spans]
    o = evaluate.localisation(inp)["overall"]
    keys = ("phi_precision", "phi_recall", "phi_f1", "phi_n_spans", "phi_f1_all_spans", "phi_region_precision",
            "phi_region_recall", "phi_region_f1", "phi_n_regions", "hit@1", "hit@5")
    return {k.replace("@", "_at_"): o[k] for k in keys if k in o}


def protein_aucs(records: list[Record], score: dict[str, float]) -> dict:
    def auc(pos_group, neg_group):
        y, s = [], []
        for r in records:
            if r.id in score and r.group in (pos_group, neg_group):
                y.append(int(r.group == pos_group))
                s.append(score[r.id])
        return _auc(y, s)

    return {
        "T1_annotated_vs_bacterial": auc("nes_annotated", "bacterial_control"),
        "T2_annotated_vs_nonbinder": auc("nes_annotated", "crm1_nonbinder"),
        "T3_cargo_vs_nonbinder": auc("crm1_cargo", "crm1_nonbinder"),
    }


def summarise_folds(values: list[dict]) -> dict:
    keys = [k for k in values[0] if isinstance(values[0][k], (int, float))]
    out = {}
    for k in keys:
        v = np.array([d[k] for d in values], dtype=float)
        out[k] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)), "folds": [float(x) for x in v]}
    return out


def calls_at(records: list[Record], cand_e: dict[str, list], min_e: dict[str, float], groups: dict[str, str],
             cutoff: float | None, per_protein_cut: dict[str, float] | None = None) -> dict:
    """High-confidence calls at an E-value cutoff (or a cutoff per protein): per group the
    fraction of proteins with >= 1 call; over NES-annotated proteins the recall of annotated spans
    (overlapped by a called candidate) and the precision of called candidates (overlapping an
    annotated span). ``cand_e``: (start, end, evalue) of each real protein's top candidates;
    ``min_e``: each protein's (and shuffle's) best E-value."""
    def cut(i):
        return per_protein_cut[i] if per_protein_cut is not None else cutoff

    rate: dict[str, list] = {}
    for i, e in min_e.items():
        rate.setdefault(groups.get(i, "?"), []).append(e <= cut(i))
    out = {f"call_rate_{g}": float(np.mean(v)) for g, v in sorted(rate.items())}
    n_span = found = n_called = true_called = 0
    for r in records:
        if r.group != "nes_annotated" or not r.spans or r.id not in cand_e:
            continue
        called = [(s, e) for s, e, ev in cand_e[r.id] if ev <= cut(r.id)]
        for sp in r.spans:
            n_span += 1
            found += any(s <= sp.end and sp.start <= e for s, e in called)
        n_called += len(called)
        true_called += sum(any(s <= sp.end and sp.start <= e for sp in r.spans) for s, e in called)
    out["nes_span_recall"] = found / n_span if n_span else float("nan")
    out["precision_in_nes_proteins"] = true_called / n_called if n_called else float("nan")
    out["n_called_in_nes_proteins"] = n_called
    if cutoff is not None:
        out["cutoff"] = cutoff
    return out

"""Calls at an error rate for ``nesscan evaluate`` (pure functions, no plotting, no file writing).

``nesscan predict`` gives each listed candidate (the top k per protein, ranked by score) an
``evalue``: the expected number of windows scoring at least this high in a protein of this
length under a shuffled-sequence null. A candidate is *called* at cutoff E when
``evalue <= E``. Here, on a log grid of cutoffs:

* :func:`call_curves` — per label group, the **call rate** (fraction of proteins with >= 1 called
  candidate); inside proteins with known NES spans the **span recall** (spans overlapped by >=
  ``min_overlap`` residues by a called candidate) and the **candidate precision** (called
  candidates overlapping a span); per negative group (all label 0) the mean number of called
  candidates per protein — all of them false — which is the **E-value calibration**: it should
  sit on (or below) the diagonal, observed = cutoff, while the cutoff is below the top-k cap;
* :func:`reliability` — reliability diagram of a probability (10 equal-width bins): candidate
  ``score`` vs "overlaps a known span", and protein ``score`` vs ``label``; Brier score and
  expected calibration error (ECE).
"""

from __future__ import annotations

import math

import numpy as np

from .evaluate_io import Inputs

GROUP_ORDER = ("nes_annotated", "crm1_cargo", "crm1_nonbinder", "bacterial_control", "shuffled")
GROUP_COLOURS = {"nes_annotated": "#d62728", "crm1_cargo": "#ff7f0e", "crm1_nonbinder": "#1f77b4",
                 "bacterial_control": "#2ca02c", "shuffled": "#7f7f7f"}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
EVALUE_GRID = np.logspace(-6, 2, 41)  # 1e-6 ... 100, five points per decade
CALIBRATION_AT = (0.001, 0.01, 0.1, 1.0)
N_BINS = 10


def order_groups(names) -> list[str]:
    """The known groups in their fixed order, then any other group alphabetically."""
    names = set(names)
    return [g for g in GROUP_ORDER if g in names] + sorted(names - set(GROUP_ORDER))


def group_colours(names) -> dict[str, str]:
    out, k = {}, 0
    for g in names:
        if g in GROUP_COLOURS:
            out[g] = GROUP_COLOURS[g]
        else:
            out[g] = OTHER_COLOURS[k % len(OTHER_COLOURS)]
            k += 1
    return out


def _group(inp: Inputs, pid: str) -> str:
    lab = inp.labels[pid]
    return lab["group"] if inp.has_group and lab["group"] else f"label {lab['label']}"


def _overlaps(c: dict, spans, min_overlap: int) -> bool:
    return any(min(c["end"], sp.end) - max(c["start"], sp.start) + 1 >= min_overlap for sp in spans)


def _le(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For each cutoff of ``grid``, how many of ``values`` are <= it."""
    return np.searchsorted(np.sort(values), grid, side="right")


def _div(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def call_curves(inp: Inputs, max_evalue: float, min_overlap: int = 1, grid: np.ndarray = EVALUE_GRID
                ) -> tuple[dict, dict] | None:
    """``(calls, calibration)`` for metrics.json, or None when the tables carry no E-values.

    Proteins: those predicted and labelled. With candidate E-values, a protein is called at E
    when one of its listed candidates has ``evalue <= E``; with only the proteins' ``min_evalue``
    (no candidates table) the call rate alone is given."""
    from_cands = inp.candidates is not None and inp.has_evalue
    if not from_cands and not inp.has_min_evalue:
        return None
    grid = np.asarray(grid, dtype=float)
    cuts = np.r_[grid, max_evalue]  # the last column: at --max-evalue
    cands = inp.candidates or {}
    ids = [pid for pid in inp.proteins if pid in inp.labels]
    by_group: dict[str, list[str]] = {}
    for pid in ids:
        by_group.setdefault(_group(inp, pid), []).append(pid)
    names = order_groups(by_group)
    negative = [g for g in names if all(inp.labels[p]["label"] == 0 for p in by_group[g])]
    groups: dict = {}
    observed: dict = {}
    every_by_group: dict = {}
    for g in names:
        pids = by_group[g]
        if from_cands:
            ev = [np.array([c["evalue"] for c in cands.get(p, [])], dtype=float) for p in pids]
            best = np.array([e.min() if len(e) else math.inf for e in ev])
            every = np.concatenate(ev) if ev else np.zeros(0)
        else:
            best = np.array([inp.proteins[p].get("min_evalue", math.inf) for p in pids], dtype=float)
        rate = _le(best, cuts) / len(pids)
        labs = {inp.labels[p]["label"] for p in pids}
        groups[g] = {"n_proteins": len(pids), "label": labs.pop() if len(labs) == 1 else None,
                     "call_rate": rate[:-1], "_at": rate[-1]}
        if from_cands and g in negative:
            every_by_group[g] = every
            observed[g] = _le(every, cuts) / len(pids)  # mean called (= false) candidates per protein
    out: dict = {"max_evalue": float(max_evalue), "source": "candidates" if from_cands else "proteins min_evalue",
                 "min_overlap": min_overlap, "evalue_grid": grid, "groups": groups, "negative_groups": negative}
    at: dict = {"call_rate": {g: float(groups[g].pop("_at")) for g in names}}
    if from_cands:
        at["mean_false_calls_per_protein"] = {g: float(observed[g][-1]) for g in negative}
    if from_cands and inp.spans is not None:
        annotated = [pid for pid in inp.spans if pid in inp.proteins]
        span_best, cand_ev, cand_hit = [], [], []
        for pid in annotated:
            cs = cands.get(pid, [])
            for sp in inp.spans[pid]:
                hit = [c["evalue"] for c in cs if _overlaps(c, [sp], min_overlap)]
                span_best.append(min(hit) if hit else math.inf)
            for c in cs:
                cand_ev.append(c["evalue"])
                cand_hit.append(_overlaps(c, inp.spans[pid], min_overlap))
        span_best, cand_ev, cand_hit = np.array(span_best), np.array(cand_ev), np.array(cand_hit, dtype=bool)
        recall = _le(span_best, cuts) / len(span_best) if len(span_best) else np.full(len(cuts), np.nan)
        n_called = _le(cand_ev, cuts)
        precision = _div(_le(cand_ev[cand_hit], cuts), n_called)
        out.update({"n_annotated_proteins": len(annotated), "n_spans": len(span_best),
                    "span_recall": recall[:-1], "candidate_precision": precision[:-1],
                    "n_called_candidates_annotated": n_called[:-1]})
        at.update({"span_recall": float(recall[-1]), "candidate_precision": float(precision[-1]),
                   "n_called_candidates_annotated": int(n_called[-1])})
    out["at_max_evalue"] = at
    calibration = None
    if observed:
        top_k = max((len(v) for v in cands.values()), default=0)
        calibration = {"expected": "E-value cutoff (the diagonal); valid only well below the top-k cap",
                       "top_k": top_k, "evalue_grid": grid, "groups": {}}
        for g, obs in observed.items():
            ratio = {}
            for c in CALIBRATION_AT:
                o = float(_le(every_by_group[g], [c])[0] / len(by_group[g]))
                ratio[f"{c:g}"] = {"expected": c, "observed": o, "observed_over_expected": o / c}
            calibration["groups"][g] = {"n_proteins": len(by_group[g]), "observed_mean_calls": obs[:-1],
                                        "at": ratio}
    return out, calibration


def reliability_bins(p, y, n_bins: int = N_BINS) -> dict:
    """Reliability of probabilities ``p`` (clipped to [0, 1]) for 0/1 outcomes ``y``: per
    equal-width bin the count, mean p and observed fraction; Brier score; ECE (bins weighted by
    their counts)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    y = np.asarray(y, dtype=float)
    idx = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    mean_p = _div(np.bincount(idx, weights=p, minlength=n_bins), count)
    frac = _div(np.bincount(idx, weights=y, minlength=n_bins), count)
    n = len(p)
    ece = float(np.nansum(count / n * np.abs(mean_p - frac))) if n else math.nan
    return {"bin_edges": np.linspace(0.0, 1.0, n_bins + 1), "count": count, "mean_score": mean_p,
            "observed_fraction": frac, "n": n, "brier": float(np.mean((p - y) ** 2)) if n else math.nan, "ece": ece}


def reliability(inp: Inputs, min_overlap: int = 1) -> dict:
    """Candidate ``score`` vs overlapping a known span (candidates of proteins with spans) and
    protein ``score`` vs ``label`` (all predicted, labelled proteins with a score)."""
    out: dict = {"n_bins": N_BINS}
    if inp.candidates is not None and inp.spans is not None:
        p, y = [], []
        for pid, sps in inp.spans.items():
            if pid in inp.proteins:
                for c in inp.candidates.get(pid, []):
                    if math.isfinite(c["score"]):
                        p.append(c["score"])
                        y.append(int(_overlaps(c, sps, min_overlap)))
        if p:
            out["candidates"] = {**reliability_bins(p, y), "outcome": f"candidate overlaps a known NES span by >= "
                                                                      f"{min_overlap} residue(s)"}
    if "score" in inp.score_columns:
        ids = [pid for pid in inp.proteins if pid in inp.labels and math.isfinite(inp.proteins[pid]["score"])]
        if ids:
            out["proteins"] = {**reliability_bins([inp.proteins[i]["score"] for i in ids],
                                                  [inp.labels[i]["label"] for i in ids]),
                               "outcome": "protein label (1/0)"}
    return out


__all__ = ["call_curves", "reliability", "reliability_bins", "order_groups", "group_colours", "EVALUE_GRID",
           "GROUP_ORDER", "GROUP_COLOURS", "CALIBRATION_AT"]

"""``nesscan evaluate``: honest metrics and plots for a set of predictions.

Protein-level scores are **confounded**: on CRM1 data, amino-acid composition and length alone
separate cargo from non-binders well (ROC AUC about 0.85). So every protein-level figure here
sits beside a composition+length baseline (HistGradientBoosting on the 20 amino-acid fractions
and log length, out-of-fold, cluster-grouped when the labels carry a ``cluster`` column), and NES
detection is judged where composition cannot help — *inside* proteins with known NES:

* **hit@1 / hit@5**: the top candidate / any of the top five overlaps a known NES span;
* **residue-level AUC**: residues inside known spans versus the other residues of the same
  proteins (each residue scored by the best window covering it), pooled and per protein;
* **window-level AUC**: windows holding a known NES versus windows of the same proteins that
  touch none (windows overlapping a span only partly are left out);
* **Φ-residue precision / recall / F1**: the ``phi_positions`` of candidates that overlap a
  known span versus that span's ``hydrophobic_positions`` (``phi_f1``, strict: each of several
  overlapping annotations of one NES is its own truth, and a prediction cannot match two
  different Φ sets), and per NES region against the best-matching of its overlapping
  annotations (``phi_region_f1``: every Φ of every candidate overlapping the region counts);

overall and per Kosugi motif-class family of the span (``c1a-AT-4`` → ``c1a``, ``c2-rev`` →
``c2R``).

When the predictions carry E-values (``candidates.tsv`` ``evalue``, ``proteins.tsv``
``min_evalue``), :mod:`nesscan.calls` adds the calls at an error rate: call rate per group, span
recall and candidate precision vs the E-value cutoff and at ``max_evalue``, the E-value
calibration on the negative groups, and reliability diagrams of ``score``.

Modules: :mod:`nesscan.evaluate_io` (reading, checking), :mod:`nesscan.metrics` (protein-level
metrics, baseline, localisation), :mod:`nesscan.calls`, :mod:`nesscan.plots` (figures) and
:mod:`nesscan.mqc` (MultiQC content); this module drives them and re-exports their public names.

Inputs are read and checked completely before anything is written; the outputs (``metrics.json``,
plots as PNG and SVG, MultiQC custom content ``*_mqc.*``) are written to a hidden temporary
folder inside ``outdir`` and moved into place only when all of them are complete.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile

import numpy as np

from . import __version__
from .errors import NesscanError
from .registry import FALLBACK_MAX_EVALUE, card_max_evalue
from .evaluate_io import (Inputs, SpanRec, load_inputs, motif_family, read_candidates, read_enrichment,
                          read_labels, read_proteins, read_sequences, read_spans, read_table, read_windows)
from .metrics import (BASELINE, THRESHOLDS, _curve_grid, _nan_to_none, baseline_oof,
                      composition_length_features, localisation, mcc_optimal_threshold, residue_scores, score_metrics,
                      threshold_metrics, window_classes)
from .calls import call_curves, reliability
from .plots import (SCORE_LABELS, WINDOW_CLASSES, plot_calibration, plot_calls, plot_curves, plot_distributions,
                    plot_enrichment, plot_reliability, plot_tsne, tsne_windows)

log = logging.getLogger("nesscan.evaluate")

MAX_EVALUE = FALLBACK_MAX_EVALUE  # evaluate()'s default; run_evaluate takes the model card's
CALL_DEFINITIONS = {
    "called": "a candidate is called at cutoff E when its evalue <= E (only the top-k candidates per protein are "
              "listed); a protein is called when one of its candidates is",
    "call_rate": "fraction of a group's proteins with >= 1 called candidate",
    "span_recall": "fraction of known NES spans overlapped by >= min_overlap residues by a called candidate",
    "candidate_precision": "fraction of the called candidates of proteins with known spans that overlap one",
    "evalue_calibration": "mean called candidates per protein of a negative group (all labels 0: every call is "
                          "false) vs the cutoff; expected = cutoff while far below the top-k cap",
    "reliability": "10 equal-width score bins: mean score vs observed fraction (candidates: overlaps a known span; "
                   "proteins: label); brier = mean (score - outcome)^2; ece = sum over bins n_bin/n |mean - fraction|"}
# (key, positive groups, negative groups, description)
TASKS = [
    ("T1", ("nes_annotated",), ("bacterial_control",), "nes_annotated vs bacterial_control"),
    ("T2", ("nes_annotated",), ("crm1_nonbinder",), "nes_annotated vs crm1_nonbinder"),
    ("T3", ("crm1_cargo",), ("crm1_nonbinder",), "crm1_cargo vs crm1_nonbinder"),
]


# ----------------------------------------------------------------------------- the command


def _tasks(inp: Inputs, ids: list[str]) -> list[tuple[str, np.ndarray, np.ndarray, str, str, str]]:
    """(key, index into ids, y, description, positive, negative) of each task with both classes."""
    lab = np.array([inp.labels[i]["label"] for i in ids])
    out = [("all", np.arange(len(ids)), lab, "label 1 vs label 0", "label 1", "label 0")]
    if inp.has_group:
        grp = np.array([inp.labels[i]["group"] for i in ids])
        for key, pos, neg, desc in TASKS:
            idx = np.nonzero(np.isin(grp, pos + neg))[0]
            y = np.isin(grp[idx], pos).astype(int)
            if y.sum() >= 2 and (1 - y).sum() >= 2:
                out.append((key, idx, y, desc, "+".join(pos), "+".join(neg)))
    return out


def evaluate(inp: Inputs, min_overlap: int = 1, seed: int = 0, folds: int = 5, max_evalue: float = MAX_EVALUE
             ) -> tuple[dict, dict]:
    """All metrics (JSON-ready after :func:`_nan_to_none`) and the data behind the plots."""
    ids = [pid for pid in inp.proteins if pid in inp.labels]
    counts = {"proteins_predicted": len(inp.proteins), "proteins_labelled": len(inp.labels),
              "labels_without_prediction": len(set(inp.labels) - set(inp.proteins)),
              "predictions_without_label": len(set(inp.proteins) - set(inp.labels)),
              "label_rows_without_label": inp.n_labels_unlabelled}
    scores = {c: np.array([inp.proteins[i][c] for i in ids]) for c in inp.score_columns}
    finite = np.all([np.isfinite(v) for v in scores.values()], axis=0)
    if not finite.all():
        counts["predictions_with_missing_score"] = int((~finite).sum())
    baseline_info: dict = {"model": "HistGradientBoostingClassifier (scikit-learn, default settings)",
                           "features": "fractions of the 20 standard amino acids + log(length)",
                           "seed": seed}
    if inp.sequences is not None:
        has_seq = np.array([i in inp.sequences for i in ids])
        if not has_seq.all():
            log.warning("%d evaluated proteins have no sequence in the FASTA: left out of every protein-level figure",
                        int((~has_seq).sum()))
            counts["evaluated_without_sequence"] = int((~has_seq).sum())
        finite &= has_seq
    else:
        log.warning("no --fasta: protein-level AUCs are reported WITHOUT the composition+length baseline "
                    "(composition and length alone reach ROC AUC ~0.85 on CRM1 data)")
        baseline_info = {"available": False, "reason": "no --fasta given: pass the sequences to get the "
                         "composition+length baseline every protein-level figure should be read against"}
    ids = [i for i, ok in zip(ids, finite) if ok]
    scores = {c: v[finite] for c, v in scores.items()}
    counts["proteins_evaluated"] = len(ids)
    y_all = np.array([inp.labels[i]["label"] for i in ids])
    counts["positives"], counts["negatives"] = int(y_all.sum()), int(len(y_all) - y_all.sum())
    if inp.has_group:
        g = [inp.labels[i]["group"] for i in ids]
        counts["groups"] = {k: g.count(k) for k in sorted(set(g))}
    if len(set(y_all)) < 2:
        raise NesscanError("the predicted proteins that have labels are all of one class: nothing to evaluate")
    X = groups = None
    if inp.sequences is not None:
        X = composition_length_features([inp.sequences[i] for i in ids])
        if inp.has_cluster:
            groups = np.array([inp.labels[i]["cluster"] for i in ids])

    protein_level: dict = {}
    curves: dict = {}
    baseline_by_task: dict[str, np.ndarray] = {}
    for key, idx, y, desc, pos, neg in _tasks(inp, ids):
        t = {"description": desc, "positive": pos, "negative": neg, "n_positive": int(y.sum()),
             "n_negative": int(len(y) - y.sum()), "scores": {}}
        curves[key] = {"description": desc, "n_pos": int(y.sum()), "n_neg": int(len(y) - y.sum()),
                       "prevalence": float(y.mean()), "scores": {}}
        task_scores = {c: v[idx] for c, v in scores.items()}
        if X is not None:
            oof, cv = baseline_oof(X[idx], y, groups[idx] if groups is not None else None, seed=seed, folds=folds)
            t["baseline_cv"] = cv
            if oof is not None:
                task_scores[BASELINE] = oof
                baseline_by_task[key] = (idx, oof)
        for c, s in task_scores.items():
            t["scores"][c] = score_metrics(y, s)
            curves[key]["scores"][c] = _curve_grid(y, s)
        if BASELINE in t["scores"]:
            b = t["scores"][BASELINE]["roc_auc"]
            t["roc_auc_minus_baseline"] = {c: t["scores"][c]["roc_auc"] - b for c in scores}
        protein_level[key] = t
    if X is not None:
        baseline_info["cv"] = ("cluster-grouped (labels' cluster column), stratified, per task"
                               if groups is not None else "stratified, per task (no cluster column: "
                               "homologues may straddle folds and inflate the baseline)")
        baseline_info["folds"] = folds

    dist_groups: dict[str, list[int]] = {}
    for n, pid in enumerate(ids):
        gname = inp.labels[pid]["group"] if inp.has_group and inp.labels[pid]["group"] else f"label {inp.labels[pid]['label']}"
        dist_groups.setdefault(gname, []).append(n)
    order = sorted(dist_groups, key=lambda gname: (-np.mean(y_all[dist_groups[gname]]), gname))
    dist = {"groups": order, "scores": {c: {gname: scores[c][dist_groups[gname]] for gname in order} for c in scores}}
    if "all" in baseline_by_task:
        idx, oof = baseline_by_task["all"]
        full = np.full(len(ids), np.nan)
        full[idx] = oof
        dist["scores"][BASELINE] = {gname: full[dist_groups[gname]] for gname in order}
    summary = {gname: {c: {"n": len(v), "median": float(np.median(v)) if len(v) else math.nan,
                           "mean": float(np.mean(v)) if len(v) else math.nan}
                       for c, vals in dist["scores"].items() for v in [vals[gname]]} for gname in order}

    metrics: dict = {"nesscan_version": __version__, "command": "evaluate", "counts": counts,
                     "baseline": baseline_info, "protein_level": protein_level,
                     "score_distribution": summary,
                     "definitions": {
                         "threshold": "a protein is called positive when its score >= threshold",
                         "at_mcc_optimal": "threshold chosen on this same data (optimistic); "
                                           "the highest threshold reaching the maximum MCC",
                         "pr_auc": "average precision (scikit-learn average_precision_score)",
                         "tasks": {k: d for k, _, _, d in TASKS} | {"all": "label 1 vs label 0"},
                         "hit@k": "fraction of proteins with known spans where the top candidate (k=1) / any "
                                  "of the top 5 candidates (k=5) overlaps a known span by >= min_overlap residues",
                         "residue_auc": "residues inside known spans vs other residues of the same proteins; "
                                        "a residue's score = best window (or candidate) covering it, 0 if none",
                         "window_auc": "windows overlapping a known span by >= half of the shorter of the two "
                                       "vs windows of the same proteins touching no span (partial overlaps left out)",
                         "phi": "per span: Φ positions of candidates overlapping it (minus other spans' Φ) vs "
                                "its hydrophobic_positions, micro-averaged over spans hit by a candidate; "
                                "*_all_spans also counts the Φ of missed spans as false negatives; "
                                "phi_region_*: per group of overlapping spans (alternative annotations of one "
                                "NES), all Φ of the candidates overlapping it vs the best-matching span's",
                         "motif_class": "family of the span's Kosugi class (c1a-AT-4 -> c1a, c2-rev -> c2R)"}}
    plot_data: dict = {"curves": curves, "distribution": dist}

    if inp.spans is not None:
        if inp.candidates is None and inp.windows is None:
            raise NesscanError("--spans needs --candidates (hit@k, Φ residues) and/or --windows (residue-level AUC)")
        loc = localisation(inp, min_overlap)
        if inp.candidates is None:
            for m in [loc["overall"], *loc["by_motif_class"].values()]:
                m.pop("hit@1", None)
                m.pop("hit@5", None)
        metrics["localisation"] = loc
    if inp.enrichment is not None:
        from scipy.stats import spearmanr

        eids = [n for n, pid in enumerate(ids) if pid in inp.enrichment]
        x = np.array([inp.enrichment[ids[n]] for n in eids])
        enr_scores = {c: scores[c][eids] for c in scores}
        if "all" in baseline_by_task:
            enr_scores[BASELINE] = full[eids]
        res: dict = {"n": len(eids), "spearman": {}, "spearman_binders_only": {}}
        rho_map = {}
        for c, s in enr_scores.items():
            ok = np.isfinite(s)
            for key, mask in (("spearman", ok), ("spearman_binders_only", ok & (x > 0))):
                # undefined on a constant input (scipy would warn and return nan): nan, quietly
                if mask.sum() >= 3 and np.ptp(s[mask]) > 0 and np.ptp(x[mask]) > 0:
                    r = spearmanr(s[mask], x[mask])
                    res[key][c] = {"rho": float(r.statistic), "p_value": float(r.pvalue), "n": int(mask.sum())}
                else:
                    res[key][c] = {"rho": math.nan, "p_value": math.nan, "n": int(mask.sum())}
            rho_map[c] = res["spearman"][c]["rho"]
        metrics["enrichment"] = res
        plot_data["enrichment"] = {"enrichment": x, "scores": enr_scores, "rho": rho_map}
    cc = call_curves(inp, max_evalue, min_overlap)
    if cc is not None:  # predictions with E-values (older tables have none: no call sections)
        metrics["calls"], calibration = cc
        if calibration is not None:
            metrics["evalue_calibration"] = calibration
        metrics["reliability"] = reliability(inp, min_overlap)
        metrics["definitions"].update(CALL_DEFINITIONS)
    return metrics, plot_data


def _default_name(proteins: str) -> str:
    return os.path.basename(os.path.dirname(os.path.abspath(proteins))) or "nesscan"


def run_evaluate(proteins: str, labels: str, outdir: str, candidates: str | None = None, spans: str | None = None,
                 enrichment: str | None = None, fasta: str | None = None, windows: str | None = None,
                 embeddings: str | None = None, name: str | None = None, min_overlap: int = 1,
                 tsne_max: int = 3000, seed: int = 0, folds: int = 5, plots: bool = True,
                 max_evalue: float | None = None, model: str | None = None) -> dict:
    """Read, check, evaluate; write ``metrics.json``, plots (PNG + SVG) and MultiQC content into
    ``outdir`` all at once. Returns the metrics. ``max_evalue`` None: the cutoff of ``model``'s
    card (default: the shipped model), the one ``nesscan predict`` calls high confidence at."""
    from . import mqc

    if max_evalue is None:
        max_evalue = card_max_evalue(model)
        log.debug("E-value cutoff %g (model card of %s)", max_evalue, model or "the shipped model")

    if min_overlap < 1:
        raise NesscanError(f"--min-overlap must be >= 1, got {min_overlap}")
    if folds < 2:
        raise NesscanError(f"--folds must be >= 2, got {folds}")
    if not (max_evalue > 0 and math.isfinite(max_evalue)):
        raise NesscanError(f"--max-evalue must be a number > 0, got {max_evalue}")
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise NesscanError(f"output path exists and is not a directory: {outdir}")
    inp = load_inputs(proteins, labels, candidates, spans, enrichment, fasta, windows, embeddings)
    metrics, pdata = evaluate(inp, min_overlap=min_overlap, seed=seed, folds=folds, max_evalue=max_evalue)
    metrics["inputs"] = {k: os.path.abspath(v) for k, v in (("proteins", proteins), ("labels", labels),
                         ("candidates", candidates), ("spans", spans), ("enrichment", enrichment), ("fasta", fasta),
                         ("windows", windows), ("embeddings", embeddings)) if v}
    name = name or _default_name(proteins)

    created = not os.path.isdir(outdir)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise NesscanError(f"cannot create output directory {outdir}: {e}") from None
    tmp = tempfile.mkdtemp(prefix=".nesscan-evaluate-", dir=outdir)
    try:
        files: list[str] = []
        tsne_png = None
        if plots:
            files += plot_curves(pdata["curves"], tmp, "roc")
            files += plot_curves(pdata["curves"], tmp, "pr")
            files += plot_distributions(pdata["distribution"], tmp)
            if "enrichment" in pdata and len(pdata["enrichment"]["enrichment"]):
                files += plot_enrichment(pdata["enrichment"], tmp)
            if "calls" in metrics:
                files += plot_calls(metrics["calls"], tmp)
                if "evalue_calibration" in metrics:
                    files += plot_calibration(metrics["evalue_calibration"], metrics["calls"]["max_evalue"], tmp)
                if any(k in metrics["reliability"] for k in ("candidates", "proteins")):
                    files += plot_reliability(metrics["reliability"], tmp)
            if embeddings:
                t = tsne_windows(inp, embeddings, tsne_max, seed)
                if t is not None:
                    tf = plot_tsne(*t, tmp)
                    files += tf
                    tsne_png = tf[0]
                    metrics["tsne"] = {"n_windows": int(len(t[1])), "seed": seed,
                                       "by_class": {WINDOW_CLASSES[k]: int((t[1] == k).sum()) for k in range(3)}}
        files += mqc.write_evaluate_mqc(tmp, metrics, pdata, name, tsne_png=tsne_png)
        metrics["outputs"] = sorted(os.path.basename(p) for p in files) + ["metrics.json"]
        with open(os.path.join(tmp, "metrics.json"), "w") as fh:
            json.dump(_nan_to_none(metrics), fh, indent=2, allow_nan=False)
            fh.write("\n")
        for fn in os.listdir(tmp):
            os.replace(os.path.join(tmp, fn), os.path.join(outdir, fn))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return _nan_to_none(metrics)


__all__ = ["run_evaluate", "evaluate", "load_inputs", "mcc_optimal_threshold", "score_metrics", "motif_family",
           "localisation", "residue_scores", "window_classes", "baseline_oof", "composition_length_features",
           # re-exported from the sibling modules (nesscan.evaluate.X keeps working)
           "Inputs", "SpanRec", "read_table", "read_proteins", "read_labels", "read_candidates", "read_spans",
           "read_enrichment", "read_sequences", "read_windows", "threshold_metrics", "THRESHOLDS", "BASELINE",
           "SCORE_LABELS", "WINDOW_CLASSES", "TASKS"]

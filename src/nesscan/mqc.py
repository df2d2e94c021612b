"""MultiQC custom content written by ``nesscan evaluate`` and ``nesscan predict``.

MultiQC picks up any file named ``*_mqc.yaml`` / ``*_mqc.html`` in the folders it scans (custom
content: https://docs.seqera.io/multiqc/custom_content). Each file here carries its own
``id`` (all start with ``nesscan_``), ``section_name``, ``description``, ``plot_type`` and
``pconfig``; the sections of one command are grouped under one report module through
``parent_id`` (``nesscan_evaluate`` / ``nesscan_predict``). The YAML is written in JSON-compatible
flow style by a small emitter (no PyYAML needed), with every float spelt with a decimal point
so that YAML 1.1 readers read it back as a number. Files are written under a temporary name and
renamed when complete.

``evaluate`` writes

* ``nesscan_evaluate_stats_mqc.yaml`` — General Statistics columns (one row per run): ROC AUC of
  ``score``, ``nes_score`` and the composition+length baseline, hit@1, hit@5, residue AUC, Φ F1;
* ``nesscan_metrics_mqc.yaml`` — table: every protein-level score × task (ROC AUC, PR AUC, and
  F1 / MCC / precision / recall / accuracy at the MCC-optimal threshold, 0.5 and 0.9);
* ``nesscan_localisation_mqc.yaml`` — table: hit@1, hit@5, residue/window AUC, Φ P/R/F1, overall
  and per motif class;
* ``nesscan_roc_mqc.yaml`` / ``nesscan_pr_mqc.yaml`` — line graphs, one tab per task, curves
  interpolated onto a fixed grid of 101 points, chance as a dashed extra series;
* ``nesscan_score_histogram_mqc.yaml`` — bar graph: per group, how its protein scores fall in
  ten bins (one tab per score);
* ``nesscan_score_box_mqc.yaml`` — box plot of the protein scores per group;
* ``nesscan_tsne_mqc.html`` — the t-SNE figure (PNG embedded), when made;
* with E-values in the predictions (:func:`write_calls_mqc`): ``nesscan_calls_mqc.yaml`` (call rate
  per group, span recall and candidate precision vs the E-value cutoff, log x), the values at
  ``--max-evalue`` as a table (``nesscan_calls_table_mqc.yaml``),
  ``nesscan_evalue_calibration_mqc.yaml`` (negatives' calls per protein vs cutoff, log-log) and
  ``nesscan_reliability_mqc.yaml`` (reliability diagrams of ``score``).

``predict`` (:func:`write_predict_mqc`) writes

* ``nesscan_predict_stats_mqc.yaml`` — General Statistics: proteins, high-confidence candidates (E-value cutoff),
  proteins with one, median protein score;
* ``nesscan_predict_score_histogram_mqc.yaml`` — bar graph of ``score`` / ``nes_score`` in ten bins;
* ``nesscan_predict_top_candidates_mqc.yaml`` — table of the best candidates over all proteins.
"""

from __future__ import annotations

import base64
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .calibrate import chance_calls, estimated_fdr

GRID = np.round(np.linspace(0.0, 1.0, 101), 2)
N_BINS = 10
# the column order of nesscan.report's proteins.tsv / candidates.tsv (rows may come as lists in that
# order); kept here so that this module does not import the scoring stack (tests/test_multiqc.py
# checks that the two agree)
PROTEIN_COLUMNS = ["id", "length", "score", "nes_score", "min_evalue", "best_start", "best_end", "best_sequence",
                   "n_high_confidence"]
CANDIDATE_COLUMNS = ["id", "rank", "start", "end", "sequence", "score", "evalue", "qvalue", "high_confidence",
                     "nn_score", "motif_score", "similarity_score", "fused_score", "motif_class", "phi_positions",
                     "window_start", "window_end", "accessibility", "plddt"]
SCORE_NAMES = {"score": "score", "nes_score": "nes_score", "baseline_composition_length": "baseline (composition+length)"}
EVALUATE_PARENT = {"parent_id": "nesscan_evaluate", "parent_name": "nesscan evaluate",
                   "parent_description": "NES prediction accuracy from <code>nesscan evaluate</code>. Protein-level "
                                         "scores are confounded by amino-acid composition and length: read every "
                                         "protein-level figure beside the composition+length baseline; NES detection "
                                         "is judged by localisation inside proteins with known NES."}
PREDICT_PARENT = {"parent_id": "nesscan_predict", "parent_name": "nesscan predict",
                  "parent_description": "Nuclear export signal candidates from <code>nesscan predict</code>."}


# ----------------------------------------------------------------------------- YAML (JSON-flow) writer


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "null"
    s = f"{x:.6f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


class Sci(float):
    """A float written in exponent notation (``1.0e-06``; YAML 1.1 reads it as a number): E-values."""


def to_yaml(obj: Any, indent: int = 0) -> str:
    """YAML in JSON-compatible flow style; floats always carry a decimal point (YAML 1.1 reads
    ``1e-05`` as a string), NaN/inf become null."""
    pad = "  " * (indent + 1)
    if obj is None:
        return "null"
    if isinstance(obj, (bool, np.bool_)):
        return "true" if obj else "false"
    if isinstance(obj, (int, np.integer)):
        return str(int(obj))
    if isinstance(obj, Sci):
        return f"{obj:.6e}" if math.isfinite(obj) else "null"
    if isinstance(obj, (float, np.floating)):
        return _num(float(obj))
    if isinstance(obj, str):
        return json.dumps(obj)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {to_yaml(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(obj, (list, tuple, np.ndarray)):
        if len(obj) == 0:
            return "[]"
        if all(not isinstance(v, (Mapping, list, tuple, np.ndarray)) for v in obj):
            return "[" + ", ".join(to_yaml(v) for v in obj) + "]"
        return "[\n" + ",\n".join(pad + to_yaml(v, indent + 1) for v in obj) + "\n" + "  " * indent + "]"
    raise TypeError(f"cannot write {type(obj).__name__} as YAML")


def _write(path: str, text: str) -> str:
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def write_section(outdir: str, filename: str, section: dict) -> str:
    """One custom-content file; ``section`` holds id, section_name, plot_type, pconfig, data, …"""
    head = f"# MultiQC custom content written by nesscan ({section.get('id')})\n"
    return _write(os.path.join(outdir, filename), head + to_yaml(section) + "\n")


# ----------------------------------------------------------------------------- helpers


def _bins(n: int = N_BINS) -> list[str]:
    return [f"{i / n:.1f}-{(i + 1) / n:.1f}" for i in range(n)]


def _histogram(values: Iterable[float], n: int = N_BINS) -> dict[str, int]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    counts = np.histogram(np.clip(v, 0.0, 1.0), bins=np.linspace(0.0, 1.0, n + 1))[0]
    return {b: int(c) for b, c in zip(_bins(n), counts)}


def _bin_categories(n: int = N_BINS) -> dict[str, dict]:
    # light (low score) to dark red (high score)
    import matplotlib

    cmap = matplotlib.colormaps["RdYlBu_r"]
    out = {}
    for i, b in enumerate(_bins(n)):
        r, g, bl, _ = cmap((i + 0.5) / n)
        out[b] = {"name": b, "color": f"#{int(r * 255):02x}{int(g * 255):02x}{int(bl * 255):02x}"}
    return out


def _interp_roc(fpr: np.ndarray, tpr: np.ndarray) -> dict[str, float]:
    y = np.interp(GRID, fpr, tpr)
    y[0] = float(np.max(tpr[fpr <= 0])) if np.any(fpr <= 0) else 0.0
    return {f"{x:.2f}": float(v) for x, v in zip(GRID, y)}


def _interp_pr(recall: np.ndarray, precision: np.ndarray) -> dict[str, float]:
    """Interpolated precision: the best precision at recall >= r (the usual PR envelope)."""
    order = np.argsort(recall, kind="mergesort")
    r, p = recall[order], precision[order]
    env = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.searchsorted(r, GRID, side="left")
    out = {}
    for x, i in zip(GRID, idx):
        out[f"{x:.2f}"] = float(env[i]) if i < len(env) else 0.0
    return out


def _fmt(v) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ----------------------------------------------------------------------------- evaluate


def write_evaluate_mqc(outdir: str, metrics: dict, plot_data: dict, name: str, tsne_png: str | None = None) -> list[str]:
    paths = []
    pl = metrics["protein_level"]
    loc = metrics.get("localisation")
    cols: dict[str, dict] = {}
    row: dict[str, Any] = {}
    for c, label in SCORE_NAMES.items():
        if c in pl["all"]["scores"]:
            key = f"nesscan_roc_auc_{c}"
            row[key] = pl["all"]["scores"][c]["roc_auc"]
            cols[key] = {"title": f"ROC AUC {label}", "description": f"protein-level ROC AUC of {label}, label 1 vs 0",
                         "min": 0, "max": 1, "format": "{:,.3f}", "scale": "RdYlGn" if c != "baseline_composition_length"
                         else "Greys"}
    if loc:
        for key, title, desc in (("hit@1", "NES hit@1", "top candidate overlaps a known NES"),
                                 ("hit@5", "NES hit@5", "one of the top 5 candidates overlaps a known NES"),
                                 ("residue_auc_pooled", "residue AUC", "NES residues vs other residues of the same proteins"),
                                 ("phi_f1", "Φ F1", "Φ residues of candidates overlapping a known NES vs its hydrophobic positions"),
                                 ("phi_region_f1", "Φ F1 region", "Φ residues of candidates overlapping an NES region "
                                  "vs the best-matching of its overlapping annotations")):
            v = loc["overall"].get(key)
            if v is not None and math.isfinite(v):
                k = "nesscan_" + key.replace("@", "_at_")
                row[k] = v
                cols[k] = {"title": title, "description": desc, "min": 0, "max": 1, "format": "{:,.3f}", "scale": "Blues"}
    paths.append(write_section(outdir, "nesscan_evaluate_stats_mqc.yaml", {
        "id": "nesscan_evaluate_stats", "plot_type": "generalstats", "namespace": "nesscan evaluate",
        "headers": cols, "data": {name: row}}))

    # metrics table: score x task
    table, headers = {}, {}
    spec = [("roc_auc", "ROC AUC", None), ("pr_auc", "PR AUC", None)]
    for tkey in ("at_mcc_optimal", "at_0.5", "at_0.9"):
        short = {"at_mcc_optimal": "MCC-opt", "at_0.5": "@0.5", "at_0.9": "@0.9"}[tkey]
        for m in ("threshold", "mcc", "f1", "precision", "recall", "accuracy"):
            if m == "threshold" and tkey != "at_mcc_optimal":
                continue
            spec.append((f"{tkey.replace('.', '_')}_{m}", f"{m} {short}", (tkey, m)))
    for task, t in pl.items():
        for c, sm in t["scores"].items():
            r: dict[str, Any] = {"task": f"{task}: {t['description']}", "score": SCORE_NAMES.get(c, c),
                                 "n_pos": t["n_positive"], "n_neg": t["n_negative"]}
            for key, _, tkey in spec:
                r[key] = sm[tkey[0]][tkey[1]] if tkey else sm[key]
            table[f"{task} {SCORE_NAMES.get(c, c)}"] = r
    headers = {"task": {"title": "task"}, "score": {"title": "score"},
               "n_pos": {"title": "n pos", "format": "{:,.0f}"}, "n_neg": {"title": "n neg", "format": "{:,.0f}"}}
    for key, title, _ in spec:
        headers[key] = {"title": title, "format": "{:,.3f}"}
        if not key.endswith("threshold"):
            headers[key].update({"min": 0 if "mcc" not in key else -1, "max": 1, "scale": "RdYlGn"})
    paths.append(write_section(outdir, "nesscan_metrics_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_metrics", "section_name": "Protein-level metrics",
        "description": "Every protein-level score beside the composition+length baseline (HistGradientBoosting on "
                       "amino-acid fractions and log length, out-of-fold). The MCC-optimal threshold is chosen on "
                       "this data (optimistic).",
        "plot_type": "table", "pconfig": {"id": "nesscan_metrics_table", "title": "nesscan: protein-level metrics",
                                          "col1_header": "task / score"},
        "headers": headers, "data": table}))

    if loc:
        ltable = {}
        lcols = ["n_proteins", "n_spans", "hit@1", "hit@5", "residue_auc_pooled", "residue_auc_mean_per_protein",
                 "window_auc_pooled", "window_auc_mean_per_protein", "phi_precision", "phi_recall", "phi_f1",
                 "phi_f1_all_spans", "phi_region_precision", "phi_region_recall", "phi_region_f1",
                 "motif_class_agreement"]
        for cls, m in [("all", loc["overall"]), *loc["by_motif_class"].items()]:
            ltable[cls] = {k.replace("@", "_at_"): _fmt(m[k]) for k in lcols if k in m}
        lheaders = {}
        for k in lcols:
            kk = k.replace("@", "_at_")
            if any(kk in r for r in ltable.values()):
                lheaders[kk] = {"title": k.replace("_", " "), "format": "{:,.0f}" if k.startswith("n_") else "{:,.3f}"}
                if not k.startswith("n_"):
                    lheaders[kk].update({"min": 0, "max": 1, "scale": "Blues"})
        paths.append(write_section(outdir, "nesscan_localisation_mqc.yaml", {
            **EVALUATE_PARENT, "id": "nesscan_localisation", "section_name": "NES localisation",
            "description": f"Inside proteins with known NES spans (scored from {loc['source']}): hit@1/hit@5 of the "
                           "ranked candidates, residue- and window-level AUC against the other residues/windows of the "
                           "same proteins, and Φ-residue precision/recall/F1 — overall and per motif-class family.",
            "plot_type": "table", "pconfig": {"id": "nesscan_localisation_table", "title": "nesscan: NES localisation",
                                              "col1_header": "motif class"},
            "headers": lheaders, "data": ltable}))

    curves = plot_data["curves"]
    tasks = list(curves)
    roc_data, pr_data, labels, pr_extra = [], [], [], []
    for task in tasks:
        c = curves[task]
        roc_data.append({f"{SCORE_NAMES.get(s, s)} (AUC {d['roc_auc']:.3f})": _interp_roc(d["fpr"], d["tpr"])
                         for s, d in c["scores"].items()})
        pr_data.append({f"{SCORE_NAMES.get(s, s)} (AP {d['pr_auc']:.3f})": _interp_pr(d["recall"], d["precision"])
                        for s, d in c["scores"].items()})
        labels.append({"name": f"{task}: {c['description']}", "ylab": "true positive rate"})
        pr_extra.append([{"name": f"chance ({c['prevalence']:.2f})", "pairs": [[0.0, c["prevalence"]], [1.0, c["prevalence"]]],
                          "dash": "dash", "color": "#888888", "width": 1}])
    paths.append(write_section(outdir, "nesscan_roc_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_roc", "section_name": "ROC curves",
        "description": "Protein-level ROC curves per task (interpolated onto a 0.01 FPR grid); the baseline is "
                       "composition+length alone; the dashed line is chance.",
        "plot_type": "linegraph",
        "pconfig": {"id": "nesscan_roc_plot", "title": "nesscan: ROC curves", "xlab": "false positive rate",
                    "ylab": "true positive rate", "xmin": 0, "xmax": 1, "ymin": 0, "ymax": 1, "smooth_points": None,
                    "data_labels": labels,
                    "extra_series": {"name": "chance", "pairs": [[0.0, 0.0], [1.0, 1.0]], "dash": "dash",
                                     "color": "#888888", "width": 1}},
        "data": roc_data if len(roc_data) > 1 else roc_data[0]}))
    paths.append(write_section(outdir, "nesscan_pr_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_pr", "section_name": "Precision-recall curves",
        "description": "Protein-level precision-recall curves per task (interpolated precision on a 0.01 recall "
                       "grid); the dashed line is the prevalence.",
        "plot_type": "linegraph",
        "pconfig": {"id": "nesscan_pr_plot", "title": "nesscan: precision-recall curves", "xlab": "recall",
                    "ylab": "precision", "xmin": 0, "xmax": 1, "ymin": 0, "ymax": 1, "smooth_points": None,
                    "data_labels": [{"name": lab["name"], "ylab": "precision"} for lab in labels],
                    "extra_series": pr_extra if len(pr_extra) > 1 else pr_extra[0]},
        "data": pr_data if len(pr_data) > 1 else pr_data[0]}))

    dist = plot_data["distribution"]
    hist_data, hist_labels, box_data, box_labels = [], [], [], []
    for s, by_group in dist["scores"].items():
        hist_data.append({f"{g} (n={len(v)})": _histogram(v) for g, v in by_group.items()})
        hist_labels.append({"name": SCORE_NAMES.get(s, s), "ylab": "proteins"})
        box_data.append({f"{g} (n={len(v)})": [float(x) for x in v if math.isfinite(x)] for g, v in by_group.items()})
        box_labels.append({"name": SCORE_NAMES.get(s, s), "xlab": SCORE_NAMES.get(s, s)})
    paths.append(write_section(outdir, "nesscan_score_histogram_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_score_histogram", "section_name": "Score distributions",
        "description": "How the protein scores of each group fall into ten bins (screened set vs negative control; "
                       "switch to percentages to compare groups of different size).",
        "plot_type": "bargraph", "categories": _bin_categories(),
        "pconfig": {"id": "nesscan_score_histogram_plot", "title": "nesscan: protein score distributions",
                    "ylab": "proteins", "cpswitch_c_active": False, "sort_samples": False,
                    "data_labels": hist_labels},
        "data": hist_data if len(hist_data) > 1 else hist_data[0]}))
    paths.append(write_section(outdir, "nesscan_score_box_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_score_box", "section_name": "Score box plots",
        "description": "Protein scores per group.",
        "plot_type": "box",
        "pconfig": {"id": "nesscan_score_box_plot", "title": "nesscan: protein scores per group",
                    "data_labels": box_labels},
        "data": box_data if len(box_data) > 1 else box_data[0]}))
    if tsne_png:
        with open(tsne_png, "rb") as fh:
            b64 = base64.b64encode(fh.read()).decode("ascii")
        head = {**EVALUATE_PARENT, "id": "nesscan_tsne", "section_name": "t-SNE of window embeddings",
                "description": "Mean-pooled residue embeddings of sampled windows, t-SNE (fixed seed): windows "
                               "holding a known NES, other windows of the same annotated proteins, and windows of "
                               "non-binders.",
                "plot_type": "html"}
        html = (f"<!--\n{to_yaml(head)}\n-->\n<div class=\"mqc-custom-content-image\">"
                f"<img src=\"data:image/png;base64,{b64}\" style=\"max-width: 100%;\" "
                f"alt=\"t-SNE of window embeddings\" /></div>\n")
        paths.append(_write(os.path.join(outdir, "nesscan_tsne_mqc.html"), html))
    if "calls" in metrics:
        paths += write_calls_mqc(outdir, metrics)
    return paths


def _pairs(xs, ys, positive: bool = False) -> list:
    return [[Sci(x), Sci(y) if positive else float(y)] for x, y in zip(xs, ys)
            if y is not None and math.isfinite(y) and (y > 0 or not positive)]


def write_calls_mqc(outdir: str, metrics: dict) -> list[str]:
    """Line graphs of the calls at an E-value cutoff: call rate / span recall vs cutoff, the
    E-value calibration on negatives (log-log) and the reliability diagrams."""
    from .calls import group_colours

    calls, paths = metrics["calls"], []
    grid, emax = [float(x) for x in calls["evalue_grid"]], calls["max_evalue"]
    colours = group_colours(calls["groups"])
    data, cols = {}, {}
    for g, d in calls["groups"].items():
        key = f"call rate: {g} (n={d['n_proteins']})"
        data[key], cols[key] = _pairs(grid, d["call_rate"]), colours[g]
    if "span_recall" in calls:
        data[f"span recall (n={calls['n_spans']})"] = _pairs(grid, calls["span_recall"])
        data["candidate precision"] = _pairs(grid, calls["candidate_precision"])
    vline = {"name": f"max E-value {emax:g}", "pairs": [[Sci(emax), 0.0], [Sci(emax), 1.0]], "dash": "dash",
             "color": "#888888", "width": 1}
    paths.append(write_section(outdir, "nesscan_calls_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_calls", "section_name": "Calls vs E-value cutoff",
        "description": f"Per group, the fraction of proteins with a candidate at <code>evalue</code> &le; cutoff (call "
                       f"rate), and inside proteins with known NES the recall of the spans and the precision of the "
                       f"called candidates. The dashed line is <code>--max-evalue</code> ({emax:g}).",
        "plot_type": "linegraph",
        "pconfig": {"id": "nesscan_calls_plot", "title": "nesscan: calls vs E-value cutoff", "xlab": "E-value cutoff",
                    "ylab": "fraction", "xlog": True, "ymin": 0, "ymax": 1, "smooth_points": None, "colors": cols,
                    "extra_series": vline},
        "data": data}))
    at = calls["at_max_evalue"]
    table = {g: {"n_proteins": d["n_proteins"], "call_rate": at["call_rate"][g],
                 **({"false_calls": at["mean_false_calls_per_protein"][g]}
                    if g in at.get("mean_false_calls_per_protein", {}) else {})} for g, d in calls["groups"].items()}
    if "span_recall" in at:
        table["known NES spans"] = {"n_proteins": calls["n_annotated_proteins"], "span_recall": _fmt(at["span_recall"]),
                                    "precision": _fmt(at["candidate_precision"])}
    heads = {"n_proteins": {"title": "proteins", "format": "{:,.0f}"}}
    for k, t in (("call_rate", "call rate"), ("false_calls", "false calls / protein"), ("span_recall", "span recall"),
                 ("precision", "candidate precision")):
        if any(k in r for r in table.values()):
            heads[k] = {"title": t, "format": "{:,.3f}", "min": 0, "scale": "Reds" if k == "false_calls" else "Blues"}
    paths.append(write_section(outdir, "nesscan_calls_table_mqc.yaml", {
        **EVALUATE_PARENT, "id": "nesscan_calls_table", "section_name": f"Calls at E-value <= {emax:g}",
        "description": "Per group at <code>--max-evalue</code>: proteins with a called candidate, and for groups with "
                       "label 0 only the called (false) candidates per protein; recall of the known NES spans and "
                       "precision of the called candidates in the annotated proteins.",
        "plot_type": "table", "pconfig": {"id": "nesscan_calls_table_table", "title": "nesscan: calls at max E-value",
                                          "col1_header": "group", "sort_rows": False},
        "headers": heads, "data": table}))
    cal = metrics.get("evalue_calibration")
    if cal:
        cdata = {f"{g} (n={d['n_proteins']})": _pairs(grid, d["observed_mean_calls"], positive=True)
                 for g, d in cal["groups"].items()}
        cdata = {k: v for k, v in cdata.items() if v}
        if cdata:
            paths.append(write_section(outdir, "nesscan_evalue_calibration_mqc.yaml", {
                **EVALUATE_PARENT, "id": "nesscan_evalue_calibration", "section_name": "E-value calibration",
                "description": "Negative groups (label 0, every call false): mean called candidates per protein vs the "
                               "E-value cutoff, beside the expected value (= cutoff, dashed), valid only well below "
                               f"the top-{cal['top_k']} cap of the candidate table.",
                "plot_type": "linegraph",
                "pconfig": {"id": "nesscan_evalue_calibration_plot", "title": "nesscan: E-value calibration",
                            "xlab": "E-value cutoff", "ylab": "called candidates per protein", "xlog": True,
                            "ylog": True, "smooth_points": None,
                            "colors": {k: colours.get(k.rsplit(" (", 1)[0], "#9467bd") for k in cdata},
                            "extra_series": {"name": "expected (= cutoff)", "pairs": [[Sci(grid[0]), Sci(grid[0])],
                                             [Sci(grid[-1]), Sci(grid[-1])]], "dash": "dash", "color": "#000000",
                                             "width": 1}},
                "data": cdata}))
    rel = metrics.get("reliability", {})
    rdata = {f"{k} (Brier {rel[k]['brier']:.3f}, ECE {rel[k]['ece']:.3f})":
             _pairs(rel[k]["mean_score"], rel[k]["observed_fraction"]) for k in ("candidates", "proteins") if k in rel}
    for k, v in list(rdata.items()):  # x (mean score) as plain floats
        rdata[k] = [[float(x), y] for x, y in v]
    if any(rdata.values()):
        paths.append(write_section(outdir, "nesscan_reliability_mqc.yaml", {
            **EVALUATE_PARENT, "id": "nesscan_reliability", "section_name": "Score reliability",
            "description": "Reliability of <code>score</code> as a probability, ten equal-width bins: candidates of "
                           "proteins with known NES (observed fraction overlapping a span) and labelled proteins "
                           "(observed fraction with label 1); the dashed diagonal is perfect calibration.",
            "plot_type": "linegraph",
            "pconfig": {"id": "nesscan_reliability_plot", "title": "nesscan: score reliability", "xlab": "mean score",
                        "ylab": "observed fraction", "xmin": 0, "xmax": 1, "ymin": 0, "ymax": 1, "smooth_points": None,
                        "style": "lines+markers",
                        "extra_series": {"name": "perfect calibration", "pairs": [[0.0, 0.0], [1.0, 1.0]],
                                         "dash": "dash", "color": "#888888", "width": 1}},
            "data": {k: v for k, v in rdata.items() if v}}))
    return paths


# ----------------------------------------------------------------------------- predict


def _as_dicts(rows: Sequence, columns: list[str]) -> list[dict]:
    out = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append(dict(r))
        else:
            out.append(dict(zip(columns, r)))
    return out


def _flt(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _cut_label(max_evalue: float | None) -> str:
    return f"E ≤ {max_evalue:g}" if max_evalue is not None else "high confidence"


def write_predict_mqc(outdir: str, proteins_rows: Sequence, candidates_rows: Sequence, sample: str | None = None,
                      max_evalue: float | None = None, top_n: int = 50) -> list[str]:
    """MultiQC custom content for one ``nesscan predict`` run.

    ``proteins_rows`` / ``candidates_rows``: dicts keyed by the ``proteins.tsv`` /
    ``candidates.tsv`` column names, or lists in those tables' column order (as
    :class:`nesscan.report.Ranked` holds them). ``sample`` names the run in General Statistics
    (default: the output folder's name). Returns the paths written."""
    os.makedirs(outdir, exist_ok=True)
    sample = sample or os.path.basename(os.path.abspath(outdir)) or "nesscan"
    prots = _as_dicts(proteins_rows, PROTEIN_COLUMNS)
    cands = _as_dicts(candidates_rows, CANDIDATE_COLUMNS)
    scores = np.array([_flt(p.get("score")) for p in prots])
    nes = np.array([_flt(p.get("nes_score")) for p in prots])
    cscore = np.array([_flt(c.get("score")) for c in cands])
    high = np.array([str(c.get("high_confidence", "")) == "yes" for c in cands], dtype=bool)
    cut = _cut_label(max_evalue)
    prot_high = {c.get("id") for c, h in zip(cands, high) if h}
    n = len(prots)
    paths = []
    stats = {"nesscan_proteins": n, "nesscan_candidates_high": int(high.sum()),
             "nesscan_proteins_with_high": len(prot_high),
             "nesscan_pct_proteins_with_high": 100.0 * len(prot_high) / n if n else math.nan,
             "nesscan_median_score": float(np.nanmedian(scores)) if n and np.isfinite(scores).any() else math.nan}
    if max_evalue is not None and any(np.isfinite(_flt(c.get("evalue"))) for c in cands):
        # the calls (all of them, as n_high_confidence counts them) beside what chance gives
        calls = int(sum(v for v in (_flt(p.get("n_high_confidence")) for p in prots) if np.isfinite(v)))
        stats["nesscan_calls_by_chance"] = chance_calls(n, max_evalue)
        stats["nesscan_est_fdr"] = 100.0 * estimated_fdr(calls, n, max_evalue)
    headers = {
        "nesscan_proteins": {"title": "Proteins", "description": "proteins scanned", "format": "{:,.0f}",
                             "scale": "Greys"},
        "nesscan_candidates_high": {"title": "NES calls",
                                    "description": f"high-confidence NES candidates ({cut}: expected false calls "
                                                   "per protein of its length under the shuffled-sequence null)",
                                    "format": "{:,.0f}", "scale": "Reds"},
        "nesscan_proteins_with_high": {"title": "Proteins with NES",
                                       "description": f"proteins with ≥ 1 high-confidence candidate ({cut})",
                                       "format": "{:,.0f}", "scale": "Reds"},
        "nesscan_pct_proteins_with_high": {"title": "% with NES", "min": 0, "max": 100, "suffix": "%",
                                           "description": f"% of proteins with ≥ 1 high-confidence candidate ({cut})",
                                           "format": "{:,.1f}", "scale": "Reds"},
        "nesscan_calls_by_chance": {"title": "By chance",
                                    "description": f"high-confidence candidates that chance alone gives in this many "
                                                   f"proteins without NES ({cut} per protein, whatever its length: "
                                                   "the shuffled-sequence null)", "format": "{:,.1f}",
                                    "scale": "Greys"},
        "nesscan_est_fdr": {"title": "Est. FDR", "min": 0, "max": 100, "suffix": "%",
                            "description": f"share of all the run's calls ({cut}; n_high_confidence summed) that "
                                           "chance alone gives if no protein had an NES: an upper estimate of "
                                           "their false discovery rate", "format": "{:,.0f}", "scale": "RdYlGn-rev"},
        "nesscan_median_score": {"title": "Median score", "min": 0, "max": 1, "format": "{:,.3f}",
                                 "description": "median protein-level score (NES evidence + composition + length)",
                                 "scale": "RdYlBu-rev"},
    }
    headers = {k: h for k, h in headers.items() if k in stats}
    paths.append(write_section(outdir, "nesscan_predict_stats_mqc.yaml", {
        "id": "nesscan_predict_stats", "plot_type": "generalstats", "namespace": "nesscan predict",
        "headers": headers, "data": {sample: stats}}))

    hist = [{f"{sample} score": _histogram(scores)}]
    labels = [{"name": "score", "ylab": "proteins"}]
    if np.isfinite(nes).any():
        hist.append({f"{sample} nes_score": _histogram(nes)})
        labels.append({"name": "nes_score", "ylab": "proteins"})
    paths.append(write_section(outdir, "nesscan_predict_score_histogram_mqc.yaml", {
        **PREDICT_PARENT, "id": "nesscan_predict_score_histogram", "section_name": "Protein score distribution",
        "description": "Proteins per score bin: <code>score</code> (NES evidence + composition + length) and "
                       "<code>nes_score</code> (best window of the classifier, NES evidence only).",
        "plot_type": "bargraph", "categories": _bin_categories(),
        "pconfig": {"id": "nesscan_predict_score_histogram_plot", "title": "nesscan: protein scores",
                    "ylab": "proteins", "data_labels": labels, "cpswitch_c_active": True},
        "data": hist if len(hist) > 1 else hist[0]}))

    order = np.argsort(-np.nan_to_num(cscore, nan=-1.0), kind="mergesort")[:top_n]
    table = {}
    cols = ["id", "rank", "start", "end", "sequence", "score", "evalue", "qvalue", "nn_score", "motif_score",
            "similarity_score", "motif_class", "phi_positions", "high_confidence", "accessibility", "plddt"]
    for i in order:
        c = cands[i]
        r = {}
        for k in cols:
            v = c.get(k)
            if v is None or v == "":
                continue
            if k in ("score", "evalue", "qvalue", "nn_score", "motif_score", "similarity_score", "accessibility", "plddt"):
                v = _flt(v)
                if not math.isfinite(v):
                    continue
            elif k in ("rank", "start", "end"):
                try:
                    v = int(v)
                except (TypeError, ValueError):
                    continue
            else:
                v = str(v)
            r[k if k != "id" else "protein"] = v
        table[f"{c.get('id')} #{c.get('rank')}"] = r
    theaders = {"protein": {"title": "protein"}, "rank": {"title": "rank", "format": "{:,.0f}"},
                "start": {"title": "start", "format": "{:,.0f}"}, "end": {"title": "end", "format": "{:,.0f}"},
                "sequence": {"title": "sequence"},
                "score": {"title": "fused score", "min": 0, "max": 1, "format": "{:,.3f}", "scale": "Reds"}}
    for k, t in (("evalue", "E-value"), ("qvalue", "q-value")):
        if any(k in r for r in table.values()):
            theaders[k] = {"title": t, "format": "{:,.3g}"}
    for k, t in (("nn_score", "classifier"), ("motif_score", "motif"), ("similarity_score", "similarity"),
                 ("accessibility", "RSA"), ("plddt", "pLDDT")):
        if any(k in r for r in table.values()):
            theaders[k] = {"title": t, "format": "{:,.3f}" if k != "plddt" else "{:,.1f}"}
    for k, t in (("motif_class", "class"), ("phi_positions", "Φ positions"), ("high_confidence", cut)):
        if any(k in r for r in table.values()):
            theaders[k] = {"title": t}
    if table:
        paths.append(write_section(outdir, "nesscan_predict_top_candidates_mqc.yaml", {
            **PREDICT_PARENT, "id": "nesscan_predict_top_candidates", "section_name": "Top NES candidates",
            "description": f"The {len(table)} best-scoring NES candidates over all proteins, with their Kosugi class "
                           "and Φ residues (1-based protein positions).",
            "plot_type": "table",
            "pconfig": {"id": "nesscan_predict_top_candidates_table", "title": "nesscan: top NES candidates",
                        "col1_header": "candidate", "sort_rows": False},
            "headers": theaders, "data": table}))
    return paths


def write_predict_mqc_from_tables(outdir: str, proteins_tsv: str, candidates_tsv: str, sample: str | None = None,
                                  max_evalue: float | None = None, top_n: int = 50) -> list[str]:
    """:func:`write_predict_mqc` for written ``proteins.tsv`` / ``candidates.tsv``, reading
    them as streams: only what the sections use is kept (two scores per protein; id and score
    of the high-confidence candidates; the ``top_n`` best candidates whole), so memory
    does not grow with the candidate table. Same files as passing every row."""
    import csv
    import heapq

    def rows(path):
        with open(path, newline="") as fh:
            yield from csv.DictReader(fh, delimiter="\t")

    prots = [{"score": r.get("score"), "nes_score": r.get("nes_score"), "n_high_confidence": r.get("n_high_confidence")}
             for r in rows(proteins_tsv)]
    # the top_n of write_predict_mqc's stable sort: highest score (NaN as -1), then file order
    best = heapq.nsmallest(top_n, ((-np.nan_to_num(_flt(r.get("score")), nan=-1.0), i)
                                   for i, r in enumerate(rows(candidates_tsv))))
    top = {i for _, i in best}
    cands = []  # kept in file order, so ties rank as in the full table
    for i, r in enumerate(rows(candidates_tsv)):
        if i in top:
            cands.append(r)
        elif r.get("high_confidence") == "yes":
            cands.append({"id": r.get("id"), "score": r.get("score"), "high_confidence": "yes"})
    return write_predict_mqc(outdir, prots, cands, sample=sample, max_evalue=max_evalue, top_n=top_n)


__all__ = ["write_predict_mqc", "write_predict_mqc_from_tables", "write_evaluate_mqc", "write_calls_mqc", "to_yaml",
           "write_section"]

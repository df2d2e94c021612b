"""`nesscan evaluate`: metrics checked against scikit-learn / scipy on synthetic data, localisation
on a hand-made case with known answers, plots, MultiQC files and error handling.

Every fixture here is synthetic (random sequences, made-up spans and scores)."""

import csv
import gzip
import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, matthews_corrcoef, precision_score,
                             recall_score, roc_auc_score)

from conftest import ROOT, run_cli
from nesscan.errors import NesscanError
from nesscan.evaluate import mcc_optimal_threshold, motif_family, residue_scores, run_evaluate

AA = "ACDEFGHIKLMNPQRSTVWY"
GROUPS = ["nes_annotated", "crm1_cargo", "crm1_nonbinder", "bacterial_control"]
CLASSES = ["c1a-5", "c3-4", "c1aR-4", "c2-rev", "c1a-AT-4"]
W = 20


def _tsv(path, header, rows):
    with open(path, "w") as fh:
        fh.write("\t".join(header) + "\n")
        for r in rows:
            fh.write("\t".join(str(x) for x in r) + "\n")
    return str(path)


def make_dataset(d, n=80, seed=0, phi=True, windows=True, embeddings=False, composition_signal=True):
    """A synthetic prediction folder + labels/spans/enrichment/FASTA. Returns a dict of paths and the
    underlying truth."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    d = str(d)
    os.makedirs(d, exist_ok=True)
    seqs, labels, spans, prot_rows, cand_rows, win_rows, enr_rows = {}, [], [], [], [], [], []
    truth = {"y": {}, "group": {}, "score": {}, "nes_score": {}, "enrichment": {}}
    for i in range(n):
        pid = f"S{i:03d}"
        group = GROUPS[i % 4]
        y = int(group in ("nes_annotated", "crm1_cargo"))
        L = rng.randint(60, 160)
        alphabet = AA + ("LLLEEK" if (y and composition_signal) else "GGSSPA")
        seq = "".join(rng.choice(alphabet) for _ in range(L))
        seqs[pid] = seq
        labels.append((pid, f"K{i // 2:03d}", group, f"{y}.0", L))
        truth["y"][pid], truth["group"][pid] = y, group
        sp = None
        if group == "nes_annotated":
            s = rng.randint(5, L - 20)
            e = s + rng.randint(9, 13)
            ph = sorted(rng.sample(range(s, e + 1), 5 if i % 2 else 4))
            cls = CLASSES[(i // 4) % len(CLASSES)]
            spans.append((pid, s, e, ";".join(map(str, ph)), cls))
            sp = (s, e, ph)
        # window scores: higher over the span
        starts = np.arange(1, max(L - W + 1, 1) + 1)
        ws = nrng.uniform(0, 0.6, len(starts))
        if sp:
            ov = np.clip(np.minimum(starts + W - 1, sp[1]) - np.maximum(starts, sp[0]) + 1, 0, None)
            ws = np.clip(ws + 0.5 * ov / (sp[1] - sp[0] + 1) + nrng.normal(0, 0.15, len(starts)), 0, 1)
        for s_, v in zip(starts, ws):
            win_rows.append((pid, int(s_), int(min(s_ + W - 1, L)), f"{v:.4f}"))
        # greedy non-overlapping candidates from the window scores
        order = np.argsort(-ws, kind="mergesort")
        taken = []
        for j in order:
            s_ = int(starts[j])
            if all(s_ + W - 1 < t0 or s_ > t0 + W - 1 for t0, _ in taken):
                taken.append((s_, float(ws[j])))
            if len(taken) == 5:
                break
        for rank, (s_, v) in enumerate(taken, 1):
            e_ = min(s_ + W - 1, L)
            ph = ""
            if phi:
                if sp and s_ <= sp[0] and e_ >= sp[1]:
                    p = list(sp[2])
                    if rng.random() < 0.3:
                        p[0] += 1  # a wrong Φ now and then
                    ph = ";".join(map(str, p))
                else:
                    ph = ";".join(map(str, [s_ + 2, s_ + 6, s_ + 9, s_ + 11]))
            cand_rows.append((pid, rank, s_, e_, seq[s_ - 1:e_], f"{v:.4f}", "yes" if v >= 0.9 else "no",
                              f"{v:.4f}", "0.5", "0.5", f"{v:.4f}", "1a", ph))
        nes_score = float(np.max(ws))
        score = float(np.clip(0.35 * y + 0.65 * nrng.uniform(), 0, 1))
        truth["score"][pid], truth["nes_score"][pid] = round(score, 4), round(nes_score, 4)
        prot_rows.append((pid, L, f"{score:.4f}", f"{nes_score:.4f}", taken[0][0], min(taken[0][0] + W - 1, L),
                          seq[taken[0][0] - 1:min(taken[0][0] + W - 1, L)], sum(v >= 0.9 for _, v in taken)))
        if group in ("crm1_cargo", "crm1_nonbinder"):
            enr = 0.0 if group == "crm1_nonbinder" else round(float(np.exp(3 * score + nrng.normal(0, 1))), 3)
            enr_rows.append((pid, "Cargo A" if enr else "Non-binder", enr))
            truth["enrichment"][pid] = enr
    paths = {"dir": d}
    paths["proteins"] = _tsv(os.path.join(d, "proteins.tsv"), ["id", "length", "score", "nes_score", "best_start",
                             "best_end", "best_sequence", "n_candidates_ge_0.9"], prot_rows)
    cand_header = ["id", "rank", "start", "end", "sequence", "score", "high_confidence", "nn_score", "motif_score",
                   "similarity_score", "fused_score", "motif_class", "phi_positions"]
    if not phi:
        cand_header = cand_header[:7]
        cand_rows = [r[:7] for r in cand_rows]
    paths["candidates"] = _tsv(os.path.join(d, "candidates.tsv"), cand_header, cand_rows)
    paths["labels"] = _tsv(os.path.join(d, "labels.tsv"), ["accession", "cluster", "group", "label", "length"], labels)
    paths["spans"] = _tsv(os.path.join(d, "spans.tsv"), ["accession", "start", "end", "hydrophobic_positions",
                                                         "motif_class"], spans)
    paths["enrichment"] = _tsv(os.path.join(d, "kirli.tsv"), ["accession", "category", "enrichment_from_input"],
                               enr_rows)
    with open(os.path.join(d, "seqs.fasta"), "w") as fh:
        for pid, s in seqs.items():
            fh.write(f">{pid}\n{s}\n")
    paths["fasta"] = os.path.join(d, "seqs.fasta")
    if windows:
        paths["windows"] = os.path.join(d, "windows.tsv.gz")
        with gzip.open(paths["windows"], "wt") as fh:
            fh.write("id\tstart\tend\tscore\n")
            for r in win_rows:
                fh.write("\t".join(map(str, r)) + "\n")
    if embeddings:
        from nesscan.store import EmbeddingWriter

        paths["embeddings"] = os.path.join(d, "emb.h5")
        meta = {"embedder": "synthetic", "layer": 0, "dimension": 8, "weights_sha256": "0" * 64}
        w = EmbeddingWriter(paths["embeddings"], meta)
        for pid, s in seqs.items():
            w.write(pid, s, nrng.normal(size=(len(s), 8)).astype(np.float32))
        w.close(True)
    return paths, truth


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaluate")
    paths, truth = make_dataset(d / "pred", n=96, embeddings=True)
    out = str(d / "out")
    metrics = run_evaluate(paths["proteins"], paths["labels"], out, candidates=paths["candidates"],
                           spans=paths["spans"], enrichment=paths["enrichment"], fasta=paths["fasta"],
                           windows=paths["windows"], embeddings=paths["embeddings"], tsne_max=300)
    return paths, truth, out, metrics


def _task_ids(truth, task):
    groups = {"all": None, "T1": (("nes_annotated",), ("bacterial_control",)),
              "T2": (("nes_annotated",), ("crm1_nonbinder",)), "T3": (("crm1_cargo",), ("crm1_nonbinder",))}[task]
    if groups is None:
        ids = sorted(truth["y"])
        return ids, np.array([truth["y"][i] for i in ids])
    ids = sorted(i for i, g in truth["group"].items() if g in groups[0] + groups[1])
    return ids, np.array([int(truth["group"][i] in groups[0]) for i in ids])


@pytest.mark.parametrize("task", ["all", "T1", "T2", "T3"])
@pytest.mark.parametrize("col", ["score", "nes_score"])
def test_protein_metrics_match_sklearn(evaluated, task, col):
    _, truth, out, metrics = evaluated
    with open(os.path.join(out, "metrics.json")) as fh:
        on_disk = json.load(fh)
    m = on_disk["protein_level"][task]["scores"][col]
    ids, y = _task_ids(truth, task)
    s = np.array([truth[col][i] for i in ids])
    assert on_disk["protein_level"][task]["n_positive"] == y.sum()
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    for key, t in (("at_0.5", 0.5), ("at_0.9", 0.9)):
        pred = (s >= t).astype(int)
        assert m[key]["threshold"] == t
        assert m[key]["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
        assert m[key]["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
        assert m[key]["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert m[key]["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
        assert m[key]["recall"] == pytest.approx(recall_score(y, pred, zero_division=0))
    # MCC-optimal: brute force over every distinct score with scikit-learn
    best = max(matthews_corrcoef(y, (s >= t).astype(int)) for t in np.unique(s))
    opt = m["at_mcc_optimal"]
    assert opt["mcc"] == pytest.approx(best)
    assert matthews_corrcoef(y, (s >= opt["threshold"]).astype(int)) == pytest.approx(best)
    assert opt["f1"] == pytest.approx(f1_score(y, (s >= opt["threshold"]).astype(int)))


def test_mcc_optimal_threshold_ties():
    y = np.array([0, 0, 1, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.2])
    t = mcc_optimal_threshold(y, s)
    best = max(matthews_corrcoef(y, (s >= u).astype(int)) for u in np.unique(s))
    assert matthews_corrcoef(y, (s >= t).astype(int)) == pytest.approx(best)


def test_baseline_beside_every_protein_level_figure(evaluated):
    _, _, _, metrics = evaluated
    assert "cluster-grouped" in metrics["baseline"]["cv"]
    for task in ("all", "T1", "T2", "T3"):
        t = metrics["protein_level"][task]
        b = t["scores"]["baseline_composition_length"]
        assert 0.0 <= b["roc_auc"] <= 1.0 and "at_mcc_optimal" in b
        assert set(t["roc_auc_minus_baseline"]) == {"score", "nes_score"}
    # the synthetic positives are L/E/K-rich: composition alone must see it
    assert metrics["protein_level"]["all"]["scores"]["baseline_composition_length"]["roc_auc"] > 0.8
    assert "baseline_composition_length" in metrics["enrichment"]["spearman"]


def test_baseline_is_chance_without_composition_signal(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=160, seed=3, windows=False, composition_signal=False)
    m = run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o"), fasta=paths["fasta"])
    assert 0.3 < m["protein_level"]["all"]["scores"]["baseline_composition_length"]["roc_auc"] < 0.7
    again = run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o2"), fasta=paths["fasta"])
    assert again["protein_level"] == m["protein_level"]  # fixed seed: deterministic


def test_no_fasta_reports_missing_baseline(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=40, windows=False)
    m = run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o"))
    assert m["baseline"]["available"] is False and "--fasta" in m["baseline"]["reason"]
    assert "baseline_composition_length" not in m["protein_level"]["all"]["scores"]


def test_spearman_matches_scipy(evaluated):
    _, truth, _, metrics = evaluated
    ids = sorted(truth["enrichment"])
    x = np.array([truth["enrichment"][i] for i in ids])
    for col in ("score", "nes_score"):
        s = np.array([truth[col][i] for i in ids])
        ref = spearmanr(s, x)
        got = metrics["enrichment"]["spearman"][col]
        assert got["rho"] == pytest.approx(ref.statistic) and got["p_value"] == pytest.approx(ref.pvalue)
        assert got["n"] == len(ids)
        b = x > 0
        assert metrics["enrichment"]["spearman_binders_only"][col]["rho"] == pytest.approx(spearmanr(s[b], x[b]).statistic)


def test_spearman_on_constant_enrichment_is_nan_without_a_warning(tmp_path):
    """Spearman is undefined when the enrichment is constant: nan, and no scipy warning on stderr."""
    import warnings

    paths, truth = make_dataset(tmp_path / "pred", n=24)
    with open(paths["enrichment"]) as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    with open(paths["enrichment"], "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(rows[0])
        for r in rows[1:]:
            w.writerow(r[:2] + ["1.5"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (scipy's ConstantInputWarning) fails the test
        m = run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o"), enrichment=paths["enrichment"])
    for c, r in m["enrichment"]["spearman"].items():
        assert (r["rho"] is None or math.isnan(r["rho"])) and r["n"] == len(truth["enrichment"]), c  # null in JSON


def test_plots_and_mqc_files_exist(evaluated):
    _, _, out, metrics = evaluated
    for stem in ("roc_curves", "pr_curves", "score_histogram", "score_boxplot", "score_vs_enrichment", "tsne_windows"):
        png, svg = os.path.join(out, stem + ".png"), os.path.join(out, stem + ".svg")
        with open(png, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(png) > 2000
        with open(svg) as fh:
            text = fh.read()
        assert "<svg" in text and len(text) > 2000
    for fn in ("nesscan_evaluate_stats_mqc.yaml", "nesscan_metrics_mqc.yaml", "nesscan_localisation_mqc.yaml",
               "nesscan_roc_mqc.yaml", "nesscan_pr_mqc.yaml", "nesscan_score_histogram_mqc.yaml",
               "nesscan_score_box_mqc.yaml", "nesscan_tsne_mqc.html"):
        assert os.path.getsize(os.path.join(out, fn)) > 0, fn
    assert metrics["tsne"]["n_windows"] <= 300
    assert sum(metrics["tsne"]["by_class"].values()) == metrics["tsne"]["n_windows"]
    assert set(metrics["outputs"]) == set(os.listdir(out))  # nothing partial or temporary left
    assert not [f for f in os.listdir(out) if f.startswith(".") or f.endswith(".partial")]


def test_mqc_yaml_is_valid_json_flow(evaluated):
    """The emitter writes JSON-compatible YAML: check it parses and numbers stay numbers."""
    _, _, out, metrics = evaluated
    with open(os.path.join(out, "nesscan_roc_mqc.yaml")) as fh:
        text = fh.read()
    doc = json.loads(text.split("\n", 1)[1])  # after the comment line
    assert doc["id"] == "nesscan_roc" and doc["plot_type"] == "linegraph"
    assert len(doc["data"]) == 4  # one dataset per task
    first = next(iter(doc["data"][0].values()))
    assert len(first) == 101 and all(isinstance(v, float) for v in first.values())
    assert doc["pconfig"]["extra_series"]["dash"] == "dash"


def test_localisation_present(evaluated):
    _, _, _, metrics = evaluated
    loc = metrics["localisation"]
    assert loc["source"] == "windows"
    o = loc["overall"]
    for k in ("hit@1", "hit@5", "residue_auc_pooled", "residue_auc_mean_per_protein", "window_auc_pooled", "phi_f1"):
        assert 0.0 <= o[k] <= 1.0, k
    assert o["hit@5"] >= o["hit@1"]
    assert o["residue_auc_pooled"] > 0.6  # the synthetic window scores rise over the spans
    assert set(loc["by_motif_class"]) == {"c1a", "c3", "c1aR", "c2R"}  # c1a-AT-4 -> c1a, c2-rev -> c2R
    assert sum(m["n_spans"] for m in loc["by_motif_class"].values()) == o["n_spans"]


# ----------------------------------------------------------------------------- hand-made localisation


def _hand_made(d, with_phi=True, with_windows=False):
    d = str(d)
    os.makedirs(d, exist_ok=True)
    prot = [("A", 100, 0.9, 0.9), ("B", 100, 0.8, 0.7), ("C", 100, 0.6, 0.5), ("N1", 100, 0.2, 0.3), ("N2", 100, 0.1, 0.2)]
    _tsv(os.path.join(d, "proteins.tsv"), ["id", "length", "score", "nes_score"], prot)
    _tsv(os.path.join(d, "labels.tsv"), ["id", "label"], [("A", 1), ("B", 1), ("C", 1), ("N1", 0), ("N2", 0)])
    # A: c1a span 10-23, Φ 11;14;18;21;23  -> rank 1 hits, Φ 11;14;18;21 (TP4 FN1)
    # B: c3 span 50-63, Φ 51;55;59;62     -> rank 3 hits, Φ 52;55;59;62 (TP3 FP1 FN1)
    # C: c1a span 70-80, Φ 71;74;78;80     -> no candidate overlaps (miss)
    spans = [("A", 10, 23, "11;14;18;21;23", "c1a-5"), ("B", 50, 63, "51;55;59;62", "c3-4"),
             ("C", 70, 80, "71;74;78;80", "c1a-AT-4")]
    _tsv(os.path.join(d, "spans.tsv"), ["accession", "start", "end", "hydrophobic_positions", "motif_class"], spans)
    cands = [("A", 1, 5, 24, "0.95", "11;14;18;21", "1a"), ("A", 2, 40, 59, "0.5", "41;45", "2"),
             ("B", 1, 1, 20, "0.9", "2;5", "1a"), ("B", 2, 21, 40, "0.8", "22;25", "1a"),
             ("B", 3, 45, 64, "0.7", "52;55;59;62", "3"),
             ("C", 1, 1, 20, "0.9", "3;4", "1a"), ("C", 2, 30, 49, "0.4", "", "none")]
    header = ["id", "rank", "start", "end", "score", "phi_positions", "motif_class"]
    rows = cands if with_phi else [c[:5] for c in cands]
    _tsv(os.path.join(d, "candidates.tsv"), header if with_phi else header[:5], rows)
    p = {k: os.path.join(d, f"{k}.tsv") for k in ("proteins", "labels", "spans", "candidates")}
    if with_windows:
        with open(os.path.join(d, "windows.tsv"), "w") as fh:
            fh.write("id\tstart\tend\tscore\n")
            for pid in ("A", "B", "C"):
                for s in range(1, 82):
                    fh.write(f"{pid}\t{s}\t{s + 19}\t{((s * 37) % 101) / 100:.2f}\n")
        p["windows"] = os.path.join(d, "windows.tsv")
    return p


def test_hit_at_k_and_phi_f1_known_answers(tmp_path):
    p = _hand_made(tmp_path / "in")
    m = run_evaluate(p["proteins"], p["labels"], str(tmp_path / "out"), candidates=p["candidates"], spans=p["spans"])
    o = m["localisation"]["overall"]
    assert o["n_proteins"] == 3 and o["n_spans"] == 3
    assert o["hit@1"] == pytest.approx(1 / 3)
    assert o["hit@5"] == pytest.approx(2 / 3)
    # Φ over spans hit by a candidate: TP 4+3, FP 0+1, FN 1+1
    assert (o["phi_tp"], o["phi_fp"], o["phi_fn"]) == (7, 1, 2)
    assert o["phi_precision"] == pytest.approx(7 / 8)
    assert o["phi_recall"] == pytest.approx(7 / 9)
    assert o["phi_f1"] == pytest.approx(14 / 17)
    assert o["phi_n_spans"] == 2
    # counting the missed span's 4 Φ as false negatives
    assert o["phi_f1_all_spans"] == pytest.approx(14 / (14 + 1 + 6))
    assert o["motif_class_agreement"] == pytest.approx(1.0)  # 1a on c1a, 3 on c3
    by = m["localisation"]["by_motif_class"]
    assert set(by) == {"c1a", "c3"}
    assert by["c1a"]["n_proteins"] == 2 and by["c1a"]["hit@1"] == pytest.approx(0.5) and by["c1a"]["hit@5"] == pytest.approx(0.5)
    assert by["c3"]["hit@1"] == 0.0 and by["c3"]["hit@5"] == 1.0
    assert by["c3"]["phi_f1"] == pytest.approx(6 / 8)
    assert by["c1a"]["phi_f1"] == pytest.approx(8 / 9)
    # residue-level AUC from candidates: best candidate score covering each residue, 0 elsewhere
    ys, ss = [], []
    cand = {"A": [(5, 24, 0.95), (40, 59, 0.5)], "B": [(1, 20, 0.9), (21, 40, 0.8), (45, 64, 0.7)],
            "C": [(1, 20, 0.9), (30, 49, 0.4)]}
    span = {"A": (10, 23), "B": (50, 63), "C": (70, 80)}
    per = []
    for pid in ("A", "B", "C"):
        y = [int(span[pid][0] <= r <= span[pid][1]) for r in range(1, 101)]
        s = [max([sc for a, b, sc in cand[pid] if a <= r <= b] + [0.0]) for r in range(1, 101)]
        ys += y
        ss += s
        per.append(roc_auc_score(y, s))
    assert o["residue_auc_pooled"] == pytest.approx(roc_auc_score(ys, ss))
    assert o["residue_auc_mean_per_protein"] == pytest.approx(np.mean(per))
    assert m["localisation"]["source"] == "candidates"


def test_min_overlap_and_no_phi_column(tmp_path):
    p = _hand_made(tmp_path / "in", with_phi=False)
    m = run_evaluate(p["proteins"], p["labels"], str(tmp_path / "out"), candidates=p["candidates"], spans=p["spans"],
                     min_overlap=15)
    o = m["localisation"]["overall"]
    assert "phi_f1" not in o  # no phi_positions column: no Φ metrics
    assert o["hit@1"] == pytest.approx(0.0)  # A's rank-1 shares 14 residues with its span
    assert o["hit@5"] == pytest.approx(0.0)


def test_residue_and_window_auc_from_windows(tmp_path):
    p = _hand_made(tmp_path / "in", with_windows=True)
    m = run_evaluate(p["proteins"], p["labels"], str(tmp_path / "out"), candidates=p["candidates"], spans=p["spans"],
                     windows=p["windows"])
    o = m["localisation"]["overall"]
    span = {"A": (10, 23), "B": (50, 63), "C": (70, 80)}
    ys, ss, wy, wsc = [], [], [], []
    for pid in ("A", "B", "C"):
        wins = [(s, s + 19, ((s * 37) % 101) / 100) for s in range(1, 82)]
        for r in range(1, 101):
            ys.append(int(span[pid][0] <= r <= span[pid][1]))
            ss.append(max([sc for a, b, sc in wins if a <= r <= b] + [0.0]))
        a0, a1 = span[pid]
        for a, b, sc in wins:
            ov = max(0, min(b, a1) - max(a, a0) + 1)
            if ov >= math.ceil(min(20, a1 - a0 + 1) / 2):
                wy.append(1), wsc.append(sc)
            elif ov == 0:
                wy.append(0), wsc.append(sc)
    assert m["localisation"]["source"] == "windows"
    assert o["residue_auc_pooled"] == pytest.approx(roc_auc_score(ys, ss))
    assert o["window_auc_pooled"] == pytest.approx(roc_auc_score(wy, wsc))


def test_residue_scores_helper():
    r = residue_scores(10, np.array([1, 3, 8]), np.array([4, 6, 12]), np.array([0.2, 0.7, 0.5]))
    assert r.tolist() == [0.2, 0.2, 0.7, 0.7, 0.7, 0.7, 0.0, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("given, family", [("c1a-5", "c1a"), ("c1a-AT-4", "c1a"), ("c2-rev", "c2R"), ("c1aR-5", "c1aR"),
                                           ("c3-AT", "c3"), ("1c-AT+phi0", "c1c"), ("2R", "c2R"), ("none", "unknown")])
def test_motif_family(given, family):
    assert motif_family(given) == family


# ----------------------------------------------------------------------------- errors, CLI


def test_missing_input_file_one_line_error_no_output(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=40, windows=False)
    out = tmp_path / "out"
    with pytest.raises(NesscanError, match="spans file not found"):
        run_evaluate(paths["proteins"], paths["labels"], str(out), spans=str(tmp_path / "nope.tsv"))
    assert not out.exists()
    r = run_cli("evaluate", "--proteins", paths["proteins"], "--labels", str(tmp_path / "missing.tsv"), "--outdir", out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nesscan evaluate: error: labels file not found")
    assert not out.exists()


def test_error_leaves_existing_outdir_untouched(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=40, windows=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    bad = tmp_path / "bad_labels.tsv"
    bad.write_text("accession\tlabel\nS000\tmaybe\n")
    r = run_cli("evaluate", "-p", paths["proteins"], "-l", bad, "-o", out)
    assert r.returncode == 2 and "is not a number" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(out)) == ["keep.txt"]


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    import nesscan.evaluate as ev

    paths, _ = make_dataset(tmp_path / "p", n=40, windows=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")

    def boom(*a, **k):
        raise NesscanError("disk full (simulated)")

    monkeypatch.setattr(ev, "plot_distributions", boom)
    with pytest.raises(NesscanError, match="simulated"):
        run_evaluate(paths["proteins"], paths["labels"], str(out), fasta=paths["fasta"])
    assert sorted(os.listdir(out)) == ["keep.txt"]  # no metrics.json, no half the plots, no temp folder
    with pytest.raises(NesscanError, match="simulated"):
        run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "new"), fasta=paths["fasta"])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("case, expected", [
    ("no_label_column", "lacks column(s) label"),
    ("bad_label", "must be 0 or 1"),
    ("one_class", "needs both labels"),
    ("no_overlap", "no protein of"),
])
def test_bad_labels(tmp_path, case, expected):
    paths, _ = make_dataset(tmp_path / "p", n=20, windows=False)
    text = {"no_label_column": "accession\tgroup\nS000\tx\n",
            "bad_label": "accession\tlabel\nS000\t2\n",
            "one_class": "accession\tlabel\nS000\t1\nS001\t1\n",
            "no_overlap": "accession\tlabel\nX1\t1\nX2\t0\n"}[case]
    lab = tmp_path / "labels.tsv"
    lab.write_text(text)
    with pytest.raises(NesscanError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        run_evaluate(paths["proteins"], str(lab), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_embeddings_need_windows(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=20, windows=False)
    with pytest.raises(NesscanError, match="needs --windows"):
        run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o"), embeddings=paths["fasta"])


def test_cli_and_bin_shim(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=40, windows=False)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "evaluate"), "-p", paths["proteins"],
                        "-c", paths["candidates"], "-l", paths["labels"], "-s", paths["spans"], "-f", paths["fasta"],
                        "--enrichment", paths["enrichment"], "-o", str(out), "--name", "run1", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["localisation"]["source"] == "candidates" and "T3" in m["protein_level"]
    assert '"run1"' in (out / "nesscan_evaluate_stats_mqc.yaml").read_text()
    h = run_cli("evaluate", "--help")
    assert h.returncode == 0 and "--windows" in h.stdout and "--embeddings" in h.stdout


def test_phi_region_f1_scores_overlapping_annotations_against_the_best_one(tmp_path):
    """Two overlapping annotations of one NES (alternative Φ sets): the strict per-span Φ-F1
    cannot credit one prediction against both, the region metric scores it against the one it
    matches; a candidate's Φ outside every span still count as false positives."""
    d = tmp_path / "in"
    d.mkdir()
    _tsv(d / "proteins.tsv", ["id", "length", "score"], [("A", 100, 0.9), ("B", 100, 0.8), ("N", 100, 0.1)])
    _tsv(d / "labels.tsv", ["id", "label"], [("A", 1), ("B", 1), ("N", 0)])
    # A: one NES annotated twice (10-23 Φ 11;14;18;21 and 12-27 Φ 14;18;21;25); B: one span
    _tsv(d / "spans.tsv", ["accession", "start", "end", "hydrophobic_positions", "motif_class"],
         [("A", 10, 23, "11;14;18;21", "c1a-4"), ("A", 12, 27, "14;18;21;25", "c1a-4"),
          ("B", 50, 63, "51;55;59;62", "c3-4")])
    # A's candidate matches the first annotation exactly; B's has one wrong and one missing Φ
    _tsv(d / "candidates.tsv", ["id", "rank", "start", "end", "score", "phi_positions", "motif_class"],
         [("A", 1, 5, 24, "0.95", "11;14;18;21", "1a"), ("B", 1, 45, 64, "0.9", "52;55;59", "3")])
    m = run_evaluate(str(d / "proteins.tsv"), str(d / "labels.tsv"), str(tmp_path / "out"),
                     candidates=str(d / "candidates.tsv"), spans=str(d / "spans.tsv"))
    o = m["localisation"]["overall"]
    assert o["phi_n_regions"] == 2
    # region: A TP4 FP0 FN0 against its first annotation; B TP2 FP1 FN2
    assert o["phi_region_precision"] == pytest.approx(6 / 7)
    assert o["phi_region_recall"] == pytest.approx(6 / 8)
    assert o["phi_region_f1"] == pytest.approx(12 / 15)
    # strict per span: each annotation of A is scored on its own (the other's Φ left out):
    # first TP4; second TP3 FN1 (25 missed); B TP2 FP1 FN2 — A's NES counts twice
    assert (o["phi_tp"], o["phi_fp"], o["phi_fn"]) == (9, 1, 3)
    assert o["phi_n_spans"] == 3

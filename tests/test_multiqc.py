"""The real MultiQC on a folder written by `nesscan evaluate` + `write_predict_mqc`: every nesscan
section must reach the report, and the data MultiQC parsed must be ours (synthetic fixtures only)."""

import csv
import importlib.util
import json
import subprocess
import sys

import pytest

from nesscan.evaluate import run_evaluate
from nesscan.mqc import write_predict_mqc
from test_evaluate import make_dataset

pytestmark = pytest.mark.skipif(importlib.util.find_spec("multiqc") is None,
                                reason="multiqc is not installed (pip install multiqc) - cannot check the report")

SECTIONS = {  # section id -> title as shown in the report
    "nesscan_metrics": "Protein-level metrics",
    "nesscan_localisation": "NES localisation",
    "nesscan_roc": "ROC curves",
    "nesscan_pr": "Precision-recall curves",
    "nesscan_score_histogram": "Score distributions",
    "nesscan_score_box": "Score box plots",
    "nesscan_tsne": "t-SNE of window embeddings",
    "nesscan_predict_score_histogram": "Protein score distribution",
    "nesscan_predict_top_candidates": "Top NES candidates",
}
PLOTS = ["nesscan_metrics_table", "nesscan_localisation_table", "nesscan_roc_plot", "nesscan_pr_plot",
         "nesscan_score_histogram_plot", "nesscan_score_box_plot", "nesscan_predict_score_histogram_plot",
         "nesscan_predict_top_candidates_table"]


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("mqc")
    paths, _ = make_dataset(d / "pred", n=64, embeddings=True)
    results = str(d / "results")
    metrics = run_evaluate(paths["proteins"], paths["labels"], results, candidates=paths["candidates"],
                           spans=paths["spans"], enrichment=paths["enrichment"], fasta=paths["fasta"],
                           windows=paths["windows"], embeddings=paths["embeddings"], tsne_max=200, name="sampleA")
    # predict's rows as nesscan.report holds them (lists in column order) for proteins, dicts for candidates
    prot = [list(r.values()) for r in _rows(paths["proteins"])]
    cand = _rows(paths["candidates"])
    written = write_predict_mqc(results, prot, cand, sample="sampleA", top_n=20)
    out = d / "report"
    r = subprocess.run([sys.executable, "-m", "multiqc", results, "-o", str(out), "-f", "--no-ansi", "--strict",
                        "--no-version-check", "--no-ai"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    html = (out / "multiqc_report.html").read_text()
    return {"html": html, "out": out, "log": r.stdout + r.stderr, "metrics": metrics, "written": written}


@pytest.mark.parametrize("sid", sorted(SECTIONS))
def test_report_has_section(report, sid):
    html = report["html"]
    assert f'id="{sid}"' in html, f"section {sid} missing from the MultiQC report"
    assert SECTIONS[sid] in html
    assert "Not able to parse custom data" not in report["log"]


def test_report_groups_and_plots(report):
    html = report["html"]
    assert 'id="nesscan_evaluate"' in html and "nesscan evaluate" in html
    assert 'id="nesscan_predict"' in html and "nesscan predict" in html
    for pid in PLOTS:
        assert pid in html, pid
    for fn in ("nesscan_predict_stats_mqc.yaml", "nesscan_predict_score_histogram_mqc.yaml",
               "nesscan_predict_top_candidates_mqc.yaml"):
        assert any(p.endswith(fn) for p in report["written"])


def test_general_stats_and_parsed_values(report):
    data = report["out"] / "multiqc_data"
    gs = _rows(data / "multiqc_general_stats.txt")
    row = next(r for r in gs if r["Sample"] == "sampleA")
    roc_col = next(k for k in row if k.endswith("nesscan_roc_auc_score"))
    base_col = next(k for k in row if k.endswith("nesscan_roc_auc_baseline_composition_length"))
    assert float(row[roc_col]) == pytest.approx(report["metrics"]["protein_level"]["all"]["scores"]["score"]["roc_auc"],
                                                abs=1e-5)
    assert float(row[base_col]) == pytest.approx(
        report["metrics"]["protein_level"]["all"]["scores"]["baseline_composition_length"]["roc_auc"], abs=1e-5)
    assert any(k.endswith("nesscan_hit_at_1") for k in row) and any(k.endswith("nesscan_proteins") for k in row)
    assert int(float(row[next(k for k in row if k.endswith("-nesscan_proteins"))])) == 64
    # the ROC line graph: one curve per score on the fixed 101-point grid, ending at (1, 1)
    roc = _rows(data / "multiqc_nesscan_roc_plot.txt")
    assert len(roc) == 3 and all(len(r) == 102 for r in roc)
    assert all(float(r["1.00"]) == pytest.approx(1.0) for r in roc)
    mj = json.loads((data / "multiqc_data.json").read_text())
    assert "nesscan_roc_plot" in json.dumps(mj)


def test_mqc_column_order_is_the_report_s():
    """write_predict_mqc reads list rows in nesscan.report's column order; the copies must agree."""
    from nesscan import mqc, report as rep
    assert mqc.PROTEIN_COLUMNS == rep.PROTEIN_COLUMNS
    assert mqc.CANDIDATE_COLUMNS == rep.CANDIDATE_COLUMNS

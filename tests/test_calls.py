"""`nesscan evaluate` on predictions with E-values: call rate vs cutoff per group, span recall,
candidate precision, E-value calibration on negatives and score reliability, on a hand-made
table whose answers are worked out below (synthetic ids and numbers only); older tables without
E-values still evaluate and simply lack these sections; bad E-values are one-line errors."""

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import run_cli
from nesscan.calls import EVALUE_GRID, order_groups, reliability_bins
from nesscan.errors import NesscanError
from nesscan.evaluate import run_evaluate
from test_evaluate import _tsv, make_dataset

NEW_FILES = {"calls_vs_evalue.png", "calls_vs_evalue.svg", "evalue_calibration.png", "evalue_calibration.svg",
             "reliability.png", "reliability.svg", "nesscan_calls_mqc.yaml", "nesscan_evalue_calibration_mqc.yaml",
             "nesscan_calls_table_mqc.yaml",
             "nesscan_reliability_mqc.yaml"}

# id, group, label, protein score, [(start, end, candidate score, evalue)]  (ranked by score)
PROTEINS = [
    ("A1", "nes_annotated", 1, 0.95, [(8, 25, 0.85, 2e-5), (40, 55, 0.15, 0.5)]),
    ("A2", "nes_annotated", 1, 0.85, [(30, 45, 0.75, 0.005), (55, 70, 0.65, 0.05), (100, 110, 0.05, 5.0)]),
    ("N1", "crm1_nonbinder", 0, 0.45, [(10, 25, 0.55, 0.003), (60, 75, 0.45, 0.2)]),
    ("N2", "crm1_nonbinder", 0, 0.35, [(5, 20, 0.35, 2.0)]),
    ("B1", "bacterial_control", 0, 0.05, [(5, 20, 0.25, 0.5)]),
    ("B2", "bacterial_control", 0, 0.15, []),  # no candidate at all
    ("S1", "shuffled", 0, 0.25, [(5, 20, 0.12, 0.008)]),
    ("S2", "shuffled", 0, 0.22, [(5, 20, 0.08, 0.02)]),
    ("S3", "shuffled", 0, 0.05, [(5, 20, 0.02, 30.0)]),
    ("S4", "shuffled", 0, 0.55, [(5, 20, 0.22, 0.009), (40, 55, 0.18, 0.0095)]),
]
# A1: one span hit by its rank 1; A2: 50-60 hit by rank 2 only, 80-90 by none
SPANS = [("A1", 10, 20), ("A2", 50, 60), ("A2", 80, 90)]


def _hand_made(d, evalue_fmt="{:g}", min_evalue=True, candidates=True):
    os.makedirs(d, exist_ok=True)
    prot_cols = ["id", "length", "score"] + (["min_evalue"] if min_evalue else [])
    prot = []
    for pid, _, _, s, cands in PROTEINS:
        best = min((c[3] for c in cands), default=None)
        prot.append((pid, 120, s) + ((f"{best:g}" if best is not None else "",) if min_evalue else ()))
    paths = {"proteins": _tsv(os.path.join(d, "proteins.tsv"), prot_cols, prot),
             "labels": _tsv(os.path.join(d, "labels.tsv"), ["id", "label", "group"],
                            [(pid, lab, g) for pid, g, lab, _, _ in PROTEINS]),
             "spans": _tsv(os.path.join(d, "spans.tsv"), ["accession", "start", "end"], SPANS)}
    rows = [(pid, k, a, b, sc, evalue_fmt.format(ev), "0.1", "yes" if ev <= 0.01 else "no")
            for pid, _, _, _, cands in PROTEINS for k, (a, b, sc, ev) in enumerate(cands, 1)]
    if candidates:
        paths["candidates"] = _tsv(os.path.join(d, "candidates.tsv"), ["id", "rank", "start", "end", "score", "evalue",
                                                                        "qvalue", "high_confidence"], rows)
    return paths


@pytest.fixture(scope="module")
def calls_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("calls")
    p = _hand_made(str(d / "in"))
    out = str(d / "out")
    m = run_evaluate(p["proteins"], p["labels"], out, candidates=p["candidates"], spans=p["spans"], name="hand",
                     max_evalue=0.01)
    return p, out, m


def test_call_rates_recall_precision_at_max_evalue(calls_run):
    _, out, m = calls_run
    with open(os.path.join(out, "metrics.json")) as fh:
        assert json.load(fh)["calls"] == m["calls"]
    c = m["calls"]
    assert c["max_evalue"] == 0.01 and c["source"] == "candidates"
    assert list(c["groups"]) == ["nes_annotated", "crm1_nonbinder", "bacterial_control", "shuffled"]
    assert c["negative_groups"] == ["crm1_nonbinder", "bacterial_control", "shuffled"]
    assert c["groups"]["nes_annotated"]["label"] == 1 and c["groups"]["shuffled"]["n_proteins"] == 4
    at = c["at_max_evalue"]
    # called (evalue <= 0.01): A1 2e-5, A2 0.005, N1 0.003, S1 0.008, S4 0.009 + 0.0095
    assert at["call_rate"] == {"nes_annotated": 1.0, "crm1_nonbinder": 0.5, "bacterial_control": 0.0, "shuffled": 0.5}
    assert at["span_recall"] == pytest.approx(1 / 3)  # only A1's span; A2's 50-60 needs 0.05
    assert at["candidate_precision"] == 0.5  # A1 rank 1 on its span, A2 rank 1 (30-45) on none
    assert at["n_called_candidates_annotated"] == 2
    assert at["mean_false_calls_per_protein"] == {"crm1_nonbinder": 0.5, "bacterial_control": 0.0, "shuffled": 0.75}
    assert c["n_spans"] == 3 and c["n_annotated_proteins"] == 2


def test_curves_on_the_grid(calls_run):
    _, _, m = calls_run
    c = m["calls"]
    grid = c["evalue_grid"]
    assert len(grid) == 41 and grid[0] == pytest.approx(1e-6) and grid[-1] == pytest.approx(100.0)
    assert grid == pytest.approx(list(EVALUE_GRID))
    for g, d in c["groups"].items():
        assert len(d["call_rate"]) == 41 and d["call_rate"][0] == 0.0  # nothing at 1e-6
        assert all(a <= b for a, b in zip(d["call_rate"], d["call_rate"][1:]))
    # at 100 every listed candidate is called; B2 has none
    assert [d["call_rate"][-1] for d in c["groups"].values()] == [1.0, 1.0, 0.5, 1.0]
    assert c["span_recall"][0] == 0.0 and c["span_recall"][-1] == pytest.approx(2 / 3)
    assert c["candidate_precision"][0] is None  # nothing called: undefined
    assert c["candidate_precision"][-1] == pytest.approx(2 / 5)
    # every grid point against a direct count
    for i, e in enumerate(grid):
        sh = [ev for pid, g, _, _, cs in PROTEINS if g == "shuffled" for *_, ev in cs]
        assert c["groups"]["shuffled"]["call_rate"][i] == pytest.approx(
            sum(any(ev <= e for *_, ev in cs) for _, g, _, _, cs in PROTEINS if g == "shuffled") / 4)
        assert m["evalue_calibration"]["groups"]["shuffled"]["observed_mean_calls"][i] == pytest.approx(
            sum(ev <= e for ev in sh) / 4)


def test_evalue_calibration(calls_run):
    _, _, m = calls_run
    cal = m["evalue_calibration"]
    assert cal["top_k"] == 3 and set(cal["groups"]) == {"crm1_nonbinder", "bacterial_control", "shuffled"}
    nb, sh, bc = (cal["groups"][g]["at"] for g in ("crm1_nonbinder", "shuffled", "bacterial_control"))
    assert [nb[k]["observed"] for k in ("0.001", "0.01", "0.1", "1")] == [0.0, 0.5, 0.5, 1.0]
    assert [sh[k]["observed"] for k in ("0.001", "0.01", "0.1", "1")] == [0.0, 0.75, 1.0, 1.0]
    assert [bc[k]["observed"] for k in ("0.001", "0.01", "0.1", "1")] == [0.0, 0.0, 0.0, 0.5]
    assert nb["0.01"]["observed_over_expected"] == pytest.approx(50.0)
    assert sh["0.1"]["observed_over_expected"] == pytest.approx(10.0)
    assert nb["1"]["expected"] == 1.0 and nb["1"]["observed_over_expected"] == pytest.approx(1.0)


def test_reliability_bins_by_hand(calls_run):
    _, _, m = calls_run
    r = m["reliability"]
    c = r["candidates"]  # A1, A2 candidates: 0.85 hit, 0.15, 0.75, 0.65 hit, 0.05
    assert c["count"] == [1, 1, 0, 0, 0, 0, 1, 1, 1, 0] and c["n"] == 5
    assert c["observed_fraction"] == [0.0, 0.0, None, None, None, None, 1.0, 0.0, 1.0, None]
    assert c["mean_score"][6] == pytest.approx(0.65) and c["mean_score"][2] is None
    assert c["brier"] == pytest.approx((0.05 ** 2 + 0.15 ** 2 + 0.35 ** 2 + 0.75 ** 2 + 0.15 ** 2) / 5)
    assert c["ece"] == pytest.approx((0.05 + 0.15 + 0.35 + 0.75 + 0.15) / 5)
    p = r["proteins"]
    assert p["count"] == [2, 1, 2, 1, 1, 1, 0, 0, 1, 1] and p["n"] == 10
    assert p["observed_fraction"] == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, None, 1.0, 1.0]
    assert p["mean_score"][2] == pytest.approx((0.25 + 0.22) / 2)
    neg = [0.45, 0.35, 0.05, 0.15, 0.25, 0.22, 0.05, 0.55]
    assert p["brier"] == pytest.approx((sum(x * x for x in neg) + 0.05 ** 2 + 0.15 ** 2) / 10)
    assert p["ece"] == pytest.approx((sum(neg) + 0.05 + 0.15) / 10)


def test_reliability_bins_edges():
    r = reliability_bins([0.0, 0.1, 1.0, 1.2, -0.1], [0, 1, 1, 1, 0])  # clipped; 1.0 in the last bin
    assert r["count"].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert r["ece"] == pytest.approx(0.2 * 0.9)


def test_group_order():
    assert order_groups({"zz", "shuffled", "nes_annotated", "aa"}) == ["nes_annotated", "shuffled", "aa", "zz"]


def test_files_and_mqc_yaml(calls_run):
    _, out, m = calls_run
    assert NEW_FILES <= set(os.listdir(out)) and set(m["outputs"]) == set(os.listdir(out))
    for stem in ("calls_vs_evalue", "evalue_calibration", "reliability"):
        with open(os.path.join(out, stem + ".png"), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((open(os.path.join(out, "nesscan_calls_mqc.yaml")).read()).split("\n", 1)[1])
    assert doc["pconfig"]["xlog"] is True and doc["plot_type"] == "linegraph"
    sh = doc["data"]["call rate: shuffled (n=4)"]
    assert len(sh) == 41 and sh[0][0] == pytest.approx(1e-6) and sh[-1] == [pytest.approx(100.0), 1.0]
    cal = json.loads(open(os.path.join(out, "nesscan_evalue_calibration_mqc.yaml")).read().split("\n", 1)[1])
    assert cal["pconfig"]["ylog"] is True and all(y > 0 for s in cal["data"].values() for _, y in s)


def test_proteins_min_evalue_only(tmp_path):
    p = _hand_made(str(tmp_path / "in"), candidates=False)
    m = run_evaluate(p["proteins"], p["labels"], str(tmp_path / "out"), max_evalue=0.1)
    c = m["calls"]
    assert c["source"] == "proteins min_evalue" and "span_recall" not in c and "evalue_calibration" not in m
    assert c["at_max_evalue"]["call_rate"] == {"nes_annotated": 1.0, "crm1_nonbinder": 0.5, "bacterial_control": 0.0,
                                               "shuffled": 0.75}
    assert "evalue_calibration.png" not in os.listdir(tmp_path / "out")


def test_old_tables_have_no_call_sections(tmp_path):
    paths, _ = make_dataset(tmp_path / "p", n=20, windows=False)
    m = run_evaluate(paths["proteins"], paths["labels"], str(tmp_path / "o"), candidates=paths["candidates"],
                     spans=paths["spans"])
    assert not {"calls", "evalue_calibration", "reliability"} & set(m)
    assert not NEW_FILES & set(os.listdir(tmp_path / "o"))
    assert m["localisation"]["overall"]["n_proteins"] > 0


@pytest.mark.parametrize("value, message", [("abc", "evalue of 'A1' is not a number: 'abc'"),
                                            ("-1", "evalue of 'A1' must be >= 0"),
                                            ("", "empty evalue for 'A1'")])
def test_bad_evalue_one_line_error(tmp_path, value, message):
    p = _hand_made(str(tmp_path / "in"))
    with open(p["candidates"]) as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    rows[1][5] = value
    with open(p["candidates"], "w") as fh:
        fh.write("\n".join("\t".join(r) for r in rows) + "\n")
    out = tmp_path / "out"
    r = run_cli("evaluate", "-p", p["proteins"], "-l", p["labels"], "-c", p["candidates"], "-o", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("nesscan evaluate: error: candidates file") and message in lines[0]
    assert not out.exists()


def test_max_evalue_option(tmp_path):
    p = _hand_made(str(tmp_path / "in"))
    out = tmp_path / "out"
    r = run_cli("evaluate", "-p", p["proteins"], "-l", p["labels"], "-c", p["candidates"], "-s", p["spans"],
                "-o", out, "--max-evalue", "1", "-q")
    assert r.returncode == 0, r.stderr
    at = json.loads((out / "metrics.json").read_text())["calls"]["at_max_evalue"]
    assert at["span_recall"] == pytest.approx(2 / 3) and at["candidate_precision"] == 0.5  # 2 of 4 called
    assert at["call_rate"]["bacterial_control"] == 0.5
    assert at["mean_false_calls_per_protein"]["shuffled"] == 1.0
    with pytest.raises(NesscanError, match="--max-evalue must be a number > 0"):
        run_evaluate(p["proteins"], p["labels"], str(tmp_path / "o2"), max_evalue=0.0)
    assert not (tmp_path / "o2").exists()
    h = run_cli("evaluate", "--help")
    assert "--max-evalue" in h.stdout


@pytest.mark.skipif(importlib.util.find_spec("multiqc") is None, reason="multiqc is not installed")
def test_real_multiqc_parses_the_call_sections(calls_run, tmp_path):
    _, out, m = calls_run
    r = subprocess.run([sys.executable, "-m", "multiqc", out, "-o", str(tmp_path / "report"), "-f", "--no-ansi",
                        "--strict", "--no-version-check", "--no-ai"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    html = (tmp_path / "report" / "multiqc_report.html").read_text()
    for sid, title in (("nesscan_calls", "Calls vs E-value cutoff"), ("nesscan_evalue_calibration", "E-value calibration"),
                       ("nesscan_reliability", "Score reliability"), ("nesscan_calls_table", "Calls at E-value")):
        assert f'id="{sid}"' in html and title in html, sid
    assert "Not able to parse custom data" not in r.stdout + r.stderr
    data = tmp_path / "report" / "multiqc_data"
    with open(data / "multiqc_nesscan_calls_plot.txt") as fh:  # one series a line: name, then "[x, y]" pairs
        rows = {r[0]: [json.loads(x) for x in r[1:]] for r in csv.reader(fh, delimiter="\t")}
    sh = rows["call rate: shuffled (n=4)"]
    assert [x for x, _ in sh] == pytest.approx(m["calls"]["evalue_grid"], rel=1e-6)
    assert [y for _, y in sh] == pytest.approx(m["calls"]["groups"]["shuffled"]["call_rate"], abs=1e-6)
    assert math.isclose(rows["span recall (n=3)"][-1][1], 2 / 3, abs_tol=1e-5)
    assert len(rows["candidate precision"]) == 34  # undefined (nothing called) below 2e-5: left out
    with open(data / "multiqc_nesscan_calls_table_table.txt") as fh:
        table = {r["Sample"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert float(table["shuffled"]["false_calls"]) == pytest.approx(0.75)
    assert float(table["crm1_nonbinder"]["call_rate"]) == pytest.approx(0.5)
    assert float(table["known NES spans"]["span_recall"]) == pytest.approx(1 / 3, abs=1e-5)


def test_default_cutoff_is_the_model_card_s(tmp_path):
    """Without --max-evalue, evaluate reports calls at the cutoff predict used: the card's of
    --model (default: the shipped model's)."""
    from nesscan.registry import card_max_evalue

    shipped = card_max_evalue()
    assert 0 < shipped < 1
    p = _hand_made(str(tmp_path / "in"))
    r = run_cli("evaluate", "-p", p["proteins"], "-l", p["labels"], "-c", p["candidates"], "-o", tmp_path / "a", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["calls"]["max_evalue"] == pytest.approx(shipped)
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"calibration": {"max_evalue": 1.0}}))
    r = run_cli("evaluate", "-p", p["proteins"], "-l", p["labels"], "-c", p["candidates"], "-s", p["spans"],
                "-o", tmp_path / "b", "--model", model, "-q")
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "b" / "metrics.json").read_text())["calls"]
    assert c["max_evalue"] == 1.0 and c["at_max_evalue"]["span_recall"] == pytest.approx(2 / 3)
    r = run_cli("evaluate", "-p", p["proteins"], "-l", p["labels"], "-o", tmp_path / "c", "--model", tmp_path / "none")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "model" in r.stderr and "not found" in r.stderr
    assert not (tmp_path / "c").exists()


def test_run_statistics_put_the_calls_beside_what_chance_gives(tmp_path):
    """General Statistics of a predict run: the calls that chance alone gives at the cutoff
    (cutoff x proteins: an E-value is the expected number of null candidates at least as good,
    whatever the protein's length) and the share of the run's calls that is (estimated FDR)."""
    from nesscan.calibrate import chance_calls, chance_summary, estimated_fdr
    from nesscan.mqc import write_predict_mqc

    assert chance_calls(20000, 0.0398) == pytest.approx(796.0)
    assert estimated_fdr(1592, 20000, 0.0398) == pytest.approx(0.5)
    assert estimated_fdr(10, 20000, 0.0398) == 1.0  # capped
    assert math.isnan(estimated_fdr(0, 20000, 0.0398))
    assert "796.0 in 20000 proteins" in chance_summary(1592, 20000, 0.0398) and "FDR <= 50%" in chance_summary(1592, 20000, 0.0398)

    prots = [{"id": f"p{i}", "score": 0.5, "nes_score": 0.5, "n_high_confidence": n} for i, n in enumerate((2, 0, 1, 0))]
    cands = [{"id": "p0", "score": 0.9, "evalue": 0.001, "high_confidence": "yes"},
             {"id": "p0", "score": 0.8, "evalue": 0.2, "high_confidence": "yes"},
             {"id": "p2", "score": 0.7, "evalue": 0.4, "high_confidence": "yes"},
             {"id": "p3", "score": 0.1, "evalue": 3.0, "high_confidence": "no"}]

    def stats(name, rows=cands, **kw):
        write_predict_mqc(str(tmp_path / name), prots, rows, sample="s", **kw)
        text = (tmp_path / name / "nesscan_predict_stats_mqc.yaml").read_text()
        return json.loads(text[text.index("{"):])

    s = stats("a", max_evalue=0.5)
    assert s["data"]["s"]["nesscan_calls_by_chance"] == pytest.approx(2.0)  # 4 proteins x 0.5
    assert s["data"]["s"]["nesscan_est_fdr"] == pytest.approx(100 * 2 / 3)  # 3 calls in all
    assert {"nesscan_calls_by_chance", "nesscan_est_fdr"} <= set(s["headers"])
    assert "E ≤ 0.5" in s["headers"]["nesscan_calls_by_chance"]["description"]
    # no cutoff, or tables without E-values: no such columns
    for s in (stats("b"), stats("c", rows=[dict(c, evalue="") for c in cands], max_evalue=0.5)):
        assert "nesscan_calls_by_chance" not in s["data"]["s"] and "nesscan_est_fdr" not in s["headers"]


def test_run_log_leaves_chance_out_without_evalues(tmp_path):
    """predict's and fuse's closing log line (ResultWriter.summary): the calls beside what chance
    gives when the candidates have E-values; the calls alone for a model without a null."""
    from nesscan.report import Ranked, ResultWriter

    def run(name, pvalues):
        with ResultWriter(str(tmp_path / name), 0.5, multiqc=False) as out:
            for i in range(4):
                out.add(Ranked([f"p{i}"], [], [], 1 if i == 0 else 0, pvalues), 30)
        return out.summary()

    assert run("with", [0.01, 0.3]) == ("1 high-confidence candidate at E-value <= 0.5; chance alone gives about "
                                        "2.0 in 4 proteins without NES (estimated FDR <= 100%)")
    assert run("without", [math.nan, math.nan]) == "1 high-confidence candidate"

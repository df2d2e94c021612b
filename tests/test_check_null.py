"""benchmarks/check_null.py: the false-call count against E x N, on tables whose answer is known."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from nesscan.report import CANDIDATE_COLUMNS

SCRIPT = os.path.join(ROOT, "benchmarks", "check_null.py")
PKI = "NSNELALKLAGLDINK"  # one of make_proteome.py's planted peptides


def _candidates(path, rows):
    with open(path, "w") as fh:
        fh.write("\t".join(CANDIDATE_COLUMNS) + "\n")
        for pid, rank, start, end, evalue in rows:
            row = dict.fromkeys(CANDIDATE_COLUMNS, "")
            row.update(id=pid, rank=rank, start=start, end=end, evalue=evalue)
            fh.write("\t".join(str(row[c]) for c in CANDIDATE_COLUMNS) + "\n")


def test_false_calls_are_counted_against_chance(tmp_path):
    plain = "M" + "AGSDEKR" * 14  # 99 residues, no planted peptide
    planted = "MAGSDEKRAGSDEK" + PKI + "AGSDEKRAGSDEKRAGSDEKR"
    (tmp_path / "p.fasta").write_text("".join(f">p{i}\n{plain}\n" for i in range(8)) + f">n1\n{planted}\n")
    out = tmp_path / "res"
    out.mkdir()
    a = planted.index(PKI) + 1
    _candidates(out / "candidates.tsv", [
        ("p0", 1, 10, 29, "0.01"), ("p0", 2, 40, 59, "0.03"),  # two false calls in one plain protein
        ("p1", 1, 10, 29, "0.5"),  # above the cutoff: not a call
        ("p2", 1, 10, 29, ""),  # no E-value: not a call
        ("n1", 1, 60, 70, "0.02"),  # elsewhere in the planted protein: a false call, ranked first
        ("n1", 2, a + 2, a + 21, "0.001"),  # overlaps the planted peptide: found
    ])
    r = subprocess.run([sys.executable, SCRIPT, "--fasta", tmp_path / "p.fasta", "--results", out,
                        "--max-evalue", "0.04", "--json", tmp_path / "n.json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "n.json").read_text())
    p = got["plain_random_proteins"]
    assert (p["proteins"], p["false_calls"]) == (8, 2)
    assert p["expected_by_chance"] == pytest.approx(0.32)
    assert p["ratio"] == pytest.approx(2 / 0.32)
    assert p["ratio_95ci"][0] < p["ratio"] < p["ratio_95ci"][1]
    assert p["share_with_a_call"] == pytest.approx(1 / 8)
    q = got["planted_proteins_outside_the_peptide"]
    assert (q["proteins"], q["false_calls"]) == (1, 1)
    f = got["planted_peptides_found"]
    assert (f["found"], f["proteins"], f["top_candidate"]) == (1, 1, 0)
    assert f["per_peptide"][PKI] == {"found": 1, "top_candidate": 0, "planted": 1, "median_evalue": 0.001}
    assert "planted NES peptides found by a call: 1 / 1" in r.stdout

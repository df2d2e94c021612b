"""Every Φ residue lies inside its reported candidate, on the whole training set, and GFF3 child
features (the Φ residues' binding sites) lie inside their parent NES feature.

Runs the real ``nesscan predict`` (shipped model) on every protein of ../shared/data (skipped when
the data are not beside the checkout; CI has them)."""

from __future__ import annotations

import csv
import os

import pytest

from conftest import SHARED_DATA, run_cli, write_fasta

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(SHARED_DATA, "proteins.fasta")),
                                reason="../shared/data not present")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    from nesscan.data import load_dataset

    d = tmp_path_factory.mktemp("phi_inside")
    records = load_dataset(SHARED_DATA)  # the valid proteins (RNA chains of the controls skipped)
    fa = write_fasta(d / "train.fasta", [(r.id, r.sequence) for r in records])
    r = run_cli("predict", "-i", fa, "-o", d / "out", "-q")
    assert r.returncode == 0, r.stderr
    return d / "out", len(records)


def test_every_phi_inside_its_candidate(predicted):
    out, n = predicted
    with open(out / "candidates.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len({r["id"] for r in rows}) == n
    outside, with_phi = 0, 0
    for r in rows:
        start, end = int(r["start"]), int(r["end"])
        ws, we = int(r["window_start"]), int(r["window_end"])
        assert start <= ws <= we <= end
        phi = [int(p) for p in r["phi_positions"].split(";") if p]
        with_phi += bool(phi)
        outside += sum(not start <= p <= end for p in phi)
        assert r["sequence"] and len(r["sequence"]) == end - start + 1
    assert outside == 0
    assert with_phi > len(rows) // 2  # the check is not vacuous


def test_gff3_children_inside_their_parents(predicted):
    out, _ = predicted
    parents, children = {}, []
    with open(out / "candidates.gff3") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            attrs = dict(kv.split("=", 1) for kv in cols[8].split(";"))
            if cols[2] == "nuclear_export_signal":
                parents[attrs["ID"]] = (int(cols[3]), int(cols[4]))
                assert cols[5] == "." or float(cols[5]) >= 0  # column 6: the E-value
            else:
                children.append((attrs["Parent"], int(cols[3]), int(cols[4])))
    assert children
    for parent, s, e in children:
        ps, pe = parents[parent]
        assert ps <= s <= e <= pe

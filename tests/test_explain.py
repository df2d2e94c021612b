import csv
import random

import numpy as np
import pytest

from conftest import random_protein, run_cli, write_fasta
from nesscan.embedders import BuiltinEmbedder
from nesscan.explain import integrated_gradients, phi_fraction
from nesscan.model import load
from nesscan.window_score import net_scores


@pytest.mark.parametrize("n", [0, 3])
def test_integrated_gradients_completeness(tiny_model, n):
    m = load(tiny_model)
    emb = BuiltinEmbedder().embed(random_protein(random.Random(n), 40))
    x = emb[n : n + m.window]
    ig, fx, fb = integrated_gradients(m.net, x, steps=256)
    assert ig.shape == x.shape
    assert abs(ig.sum() - (fx - fb)) < 0.02 * max(1.0, abs(fx - fb))  # completeness
    # F(x) is the classifier's logit for this window
    p = net_scores(m, [emb])[0][n]  # attributions explain the window model's network
    assert abs(1 / (1 + np.exp(-fx)) - p) < 1e-5
    # a zero baseline difference gives zero attribution
    ig0, _, _ = integrated_gradients(m.net, x, baseline=x, steps=8)
    assert np.allclose(ig0, 0)


def test_phi_fraction():
    assert phi_fraction(np.array([1.0, -5.0, 3.0, 0.0]), [2]) == pytest.approx(0.75)
    assert np.isnan(phi_fraction(np.array([-1.0, -2.0]), [0]))


def test_explain_cli_writes_attributions_and_plots(tmp_path, tiny_model):
    fasta = write_fasta(tmp_path / "in.fasta", [("a/1", "MKKEEDSNELALKLAGLDINKTEQKRLEESKKDEK"), ("b", "MKLV")])
    r = run_cli("explain", "-i", fasta, "-m", tiny_model, "-o", tmp_path / "x", "--top-k", "2", "--steps", "16")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "x" / "attributions.tsv"), delimiter="\t"))
    assert rows and {row["id"] for row in rows} == {"a/1"}
    assert all(row["is_phi"] in ("yes", "no") for row in rows)
    for ext in ("png", "svg"):
        f = tmp_path / "x" / "profiles" / f"a%2F1.{ext}"
        assert f.exists() and f.stat().st_size > 5000
    assert (tmp_path / "x" / "profiles" / "b.png").stat().st_size > 5000
    assert "a%252F1.png" in (tmp_path / "x" / "index.html").read_text()

"""The NES profile (nesscan.nes_profile) and its place in the fusion."""

from __future__ import annotations

import numpy as np
import pytest

from nesscan import nes_profile as npf
from nesscan.data import Record, Span
from nesscan.scoring import component_scores, fit_fusion, fuse_protein, n_windows, with_profile

NES = "LQKKLEELEL"  # PKI-like core: Φ1 L at 1, Φ2 L at 5, Φ3 L at 8, Φ4 L at 10 (1-based in the core)


def _records(n=30, seed=0):
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACDEGHKNPQRSTWY"))  # no Φ letters in the background
    recs = []
    for i in range(n):
        left = "".join(rng.choice(letters, 25))
        right = "".join(rng.choice(letters, 25))
        seq = left + "SD" + NES + "DS" + right
        a = len(left) + 3  # 1-based Φ1
        phi = (a, a + 4, a + 7, a + 9)
        recs.append(Record(f"p{i}", seq, f"c{i}", "nes_annotated", 1, [Span(a, a + 9, phi, "1a")]))
    return recs


def test_profile_learns_the_spans_around_phi1_and_scores_each_anchor():
    recs = _records()
    prof = npf.fit_profile(recs)
    lo, hi = prof["offsets"]
    M = np.array(prof["log_odds"])
    assert M.shape == (hi - lo + 1, 20) and prof["n_spans"] == len(recs)
    L = npf.ALPHABET.index("L")
    assert M[-lo, L] > 2.0  # Φ1 is always L in the spans, L absent from the background
    assert M[-lo + 1, npf.ALPHABET.index("Q")] > M[-lo + 1, npf.ALPHABET.index("W")]
    seq = recs[0].sequence
    s = npf.residue_profile(seq, prof)
    assert s.shape == (len(seq),) and int(np.argmax(s)) == recs[0].spans[0].phi[0] - 1
    # by hand at the best anchor
    a = recs[0].spans[0].phi[0] - 1
    want = sum(M[o - lo, npf.ALPHABET.index(seq[a + o])] for o in range(lo, hi + 1) if 0 <= a + o < len(seq))
    assert s[a] == pytest.approx(want)


def test_window_profile_has_one_value_per_window_and_ignores_odd_letters():
    prof = npf.fit_profile(_records())
    W = 20
    for seq in ("M" * 5, "M" * 20, "MKQLLEELELSDKRRA" * 3, "MXXBZLQKKLEELELU*"):
        w = npf.window_profile(seq, prof, W)
        assert w.shape == (n_windows(len(seq), W),) and np.isfinite(w).all()
    seq = "MKQAAKSDLQKKLEELELSDRRKGNSTPAAKQ"
    w = npf.window_profile(seq, prof, W)
    s = npf.residue_profile(seq, prof)
    assert np.allclose(w, [s[i : i + W].max() for i in range(len(seq) - W + 1)])
    assert npf.residue_profile("XXXX", prof).tolist() == [0.0] * 4  # unknown letters score 0


def test_fit_profile_without_spans_is_none():
    recs = [Record("a", "MKLLAE", "c", "crm1_nonbinder", 0)]
    assert npf.fit_profile(recs) is None


def test_profile_weight_reranks_windows_and_zero_weight_changes_nothing():
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random(n) < 0.3).astype(int)
    nn = np.clip(0.3 + 0.05 * y + 0.2 * rng.random(n), 0.01, 0.99)  # weak on its own
    mf = rng.random((n, 6))
    sr = rng.normal(size=n)
    pf = 3.0 * y + rng.normal(size=n)
    params = fit_fusion(nn, mf, sr, y)
    assert with_profile(params, 0.0, nn, pf, y) is params
    base = component_scores(params, nn, mf, sr)["fused_score"]
    p2 = with_profile(params, 0.5, base, pf, y)
    assert p2["profile_weight"] == 0.5 and p2["profile_calibration"]["coef"] > 0
    fused = component_scores(p2, nn, mf, sr, pf)["fused_score"]
    assert ((0 < fused) & (fused < 1)).all()
    z = np.log(base / (1 - base)) + 0.5 * pf
    assert (np.argsort(fused, kind="stable") == np.argsort(z, kind="stable")).all()  # ranked by the sum
    assert not (np.argsort(fused) == np.argsort(base)).all()

    def auc(s):
        return (s[y == 1][:, None] > s[y == 0][None, :]).mean()

    assert auc(fused) > auc(base)
    with pytest.raises(ValueError, match="profile_raw is required"):
        component_scores(p2, nn, mf, sr)


def test_fuse_protein_reads_the_stored_profile():
    from nesscan.embedders import BuiltinEmbedder
    from nesscan.scoring import fit_centroids, pooled_windows, similarity_raw, window_motif_features

    recs = _records()
    prof = npf.fit_profile(recs)
    emb = BuiltinEmbedder()
    seq = recs[0].sequence
    e = emb.embed_batch([seq])[0]
    W = 20
    nw = n_windows(len(seq), W)
    rng = np.random.default_rng(1)
    nn = rng.uniform(0.2, 0.8, nw)
    pooled = pooled_windows(e, W)
    cents = fit_centroids(pooled[: nw // 2], pooled[nw // 2 :], k=2)
    mf = window_motif_features(seq, W)
    sr = similarity_raw(pooled, cents)
    y = (np.arange(nw) % 3 == 0).astype(int)
    params = fit_fusion(nn, mf, sr, y)
    p2 = {**with_profile(params, 0.3, component_scores(params, nn, mf, sr)["fused_score"],
                         npf.window_profile(seq, prof, W), y), "profile": prof}
    got = fuse_protein(seq, e, nn, W, p2, cents)["fused_score"]
    want = component_scores(p2, nn, mf, sr, npf.window_profile(seq, prof, W))["fused_score"]
    assert np.array_equal(got, want)
    assert not np.allclose(got, fuse_protein(seq, e, nn, W, params, cents)["fused_score"])


def test_hit_rates_equal_localisation_metrics_hits():
    """The fusion grid search reads hit@1/hit@5 through the cheap path; it must agree."""
    from nesscan.train_metrics import hit_rates, localisation_metrics

    recs = _records(40, seed=3) + [Record("n", "MKLLAE" * 10, "cn", "crm1_nonbinder", 0)]
    rng = np.random.default_rng(5)
    for trial in range(3):
        scores = {r.id: rng.random(n_windows(len(r.sequence), 20)) for r in recs}
        for r in recs[: 10 * trial]:  # some proteins scored right on their NES
            s = r.spans[0].start - 1
            scores[r.id][max(0, s - 5) : s + 1] += 1.0
        full = localisation_metrics(recs, scores, 20)
        fast = hit_rates(recs, scores, 20)
        assert (fast["hit_at_1"], fast["hit_at_5"], fast["n_annotated"]) == (full["hit_at_1"], full["hit_at_5"], full["n_annotated"])
    assert hit_rates(recs[-1:], scores, 20) == {"n_annotated": 0}

"""E-values, q-values, shuffles, stored trees and the disorder channels (issue: trustworthy calls)."""

import collections
import json
import math
import random

import numpy as np
import pytest

from nesscan import calibrate, gbm
from nesscan.errors import NesscanError


def test_shuffle_keeps_composition_and_is_reproducible():
    seq = "MKLAEELLKRLEELAKKLGVDPSSLEXBZU"
    a = calibrate.shuffle_sequence(seq, 0, "P1")
    assert collections.Counter(a) == collections.Counter(seq)
    assert a == calibrate.shuffle_sequence(seq, 0, "P1")  # no dependence on the process
    assert a != calibrate.shuffle_sequence(seq, 1, "P1")
    assert a != seq


def test_bh_qvalues_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted 0.01, 0.03, 0.04, 0.20 -> p*n/rank = 0.04, 0.06, 0.0533, 0.20 -> monotone from the top
    q = calibrate.bh_qvalues(p)
    assert q == pytest.approx([0.04, 0.0533333, 0.0533333, 0.20], rel=1e-5)
    assert calibrate.bh_qvalues(np.array([0.9, 0.95])).max() <= 1.0


def test_pvalue_is_poisson_at_least_one():
    assert calibrate.pvalue(0.0) == 0.0
    assert calibrate.pvalue(1.0) == pytest.approx(1 - math.exp(-1))
    assert calibrate.pvalue(1e-8) == pytest.approx(1e-8)


def _null(seed=0, n=5000, residues=200_000):
    rng = np.random.default_rng(seed)
    scores = 1 / (1 + np.exp(-rng.normal(-3, 1.5, n)))
    return calibrate.fit_null(scores, residues), scores


def test_evalue_matches_the_empirical_rate_and_falls_monotonically():
    null, scores = _null()
    # below the tail: E for a protein of 1000 residues = 1000 * (#null >= s) / residues
    s = float(np.quantile(scores, 0.5))
    expected = 1000 * (scores >= s).sum() / 200_000
    assert calibrate.evalue(null, s, 1000) == pytest.approx(expected, rel=0.05)
    grid = np.linspace(0.01, 0.999999, 500)
    e = calibrate.evalue(null, grid, 500)
    assert np.all(np.diff(e) <= 1e-12)
    # the exponential tail keeps falling beyond the best null candidate instead of flooring
    top = scores.max()
    assert calibrate.evalue(null, 0.999999, 500) < calibrate.evalue(null, top, 500) / 10
    # E scales with length
    assert calibrate.evalue(null, s, 2000) == pytest.approx(2 * calibrate.evalue(null, s, 1000))


def test_score_at_inverts_evalue():
    null, _ = _null(1)
    for L in (50, 400, 3000):
        for e in (1e-3, 0.01, 0.5):
            s = calibrate.score_at(null, e, L)
            assert calibrate.evalue(null, s, L) <= e * (1 + 1e-6)
            assert calibrate.evalue(null, s - 1e-6, L) >= e * 0.999 or s < 1e-6


def test_calibrated_on_fresh_null_draws():
    """On new draws from the null's own distribution, the fraction of 'proteins' with a
    candidate at E <= c is about 1 - exp(-c) (the E-value means what it says)."""
    rng = np.random.default_rng(3)
    L, per_res = 400, 0.02  # 8 candidates per protein on average

    def draw(n_prot):
        k = rng.poisson(L * per_res, n_prot)
        return [1 / (1 + np.exp(-rng.normal(-3, 1.5, kk))) for kk in k]

    fit = draw(4000)
    null = calibrate.fit_null(np.concatenate(fit), 4000 * L)
    test = draw(4000)
    for c in (0.05, 0.2):
        called = np.mean([len(t) and calibrate.evalue(null, t.max(), L) <= c for t in test])
        assert called == pytest.approx(1 - math.exp(-c), abs=0.02)


def test_fit_null_refuses_too_little():
    with pytest.raises(ValueError):
        calibrate.fit_null(np.array([0.5, 0.6]), 100)


def test_trees_round_trip_exactly():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=12, random_state=0)
    clf = gbm.fit(X, y, seed=0, max_iter=40)
    arrays = gbm.export(clf)
    b = gbm.Booster({k: np.array(v) for k, v in arrays.items()})
    assert np.allclose(b.raw(X), clf.decision_function(X), atol=1e-12)
    assert np.allclose(b.proba(X), clf.predict_proba(X)[:, 1], atol=1e-12)
    with pytest.raises(ValueError):
        b.raw(X[:, :5])
    bad = dict(arrays)
    bad["gbm.feature_idx"] = bad["gbm.feature_idx"] + 100
    with pytest.raises(ValueError):
        gbm.Booster(bad)


def test_few_rows_walk_in_python_exactly_as_the_compiled_walker():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=12, random_state=3)
    X[::7, 2] = np.nan  # missing values take each node's learned side
    clf = gbm.fit(X, y, seed=0, max_iter=30)
    b = gbm.Booster({k: np.array(v) for k, v in gbm.export(clf).items()})
    many = b.raw(X)  # compiled (more than PYTHON_ROWS rows)
    assert X.shape[0] > gbm.PYTHON_ROWS
    for i in range(0, 40):
        rows = X[i : i + 1 + i % gbm.PYTHON_ROWS]
        assert np.array_equal(b.raw(rows), many[i : i + len(rows)])  # bit for bit
    assert np.allclose(many, clf.decision_function(X), atol=1e-12)
    # a threshold tie goes left in both walkers
    nodes = b._trees[0].nodes
    split = int(np.flatnonzero(~nodes["is_leaf"].astype(bool))[0])
    row = X[:1].copy()
    row[0, nodes["feature_idx"][split]] = nodes["num_threshold"][split]
    assert np.array_equal(b.raw(row), b.raw(np.repeat(row, gbm.PYTHON_ROWS + 1, 0))[:1])


def test_binned_trees_give_the_float_walkers_values_bit_for_bit():
    """The uint8 paths (bins of each feature against its nodes' thresholds, scikit-learn's
    predict_binned) against the float64 walker: NaN, threshold ties, 0/1 channels, and the
    window layout walked over one overlapping view of a per-residue bin table, with channels
    binned once for all positions or once per position."""
    from nesscan.window_score import tree_features, tree_raw

    rng = np.random.default_rng(5)
    W, C = 6, 3  # channel 0: 0/1 (one-hot like), 1: 20 distinct values, 2: continuous with NaN
    prots = []
    for L in (40, 90, 3, 61, 25):
        e = np.stack([rng.integers(0, 2, L), rng.choice(np.linspace(-1, 1, 20), L), rng.normal(size=L)], 1)
        e[rng.random(L) < 0.1, 2] = np.nan
        prots.append(e)
    X = np.concatenate([tree_features(e, [0, 1, 2], W) for e in prots])
    y = (np.nan_to_num(X[:, 2::3]).sum(1) + X[:, 0::3].sum(1) * 0.5 + rng.normal(size=len(X)) > 1.5).astype(int)
    b = gbm.Booster({k: np.array(v) for k, v in gbm.export(gbm.fit(X, y, seed=0, max_iter=40)).items()})
    assert b.binned
    ref = b.raw(X)
    assert np.array_equal(b.raw_binned(b.bin(X)), ref)
    assert np.array_equal(tree_raw(b, prots, [0, 1, 2], W), ref)
    for e in prots:  # one protein at a time: no windows straddling two proteins to drop
        assert np.array_equal(tree_raw(b, [e], [0, 1, 2], W), b.raw(tree_features(e, [0, 1, 2], W)))
    R = np.concatenate([np.concatenate([e, np.zeros((max(0, W - len(e)), C))]) for e in prots])
    n_thr = [len(np.unique(np.concatenate([b.thresholds[p * C + c] for p in range(W)]))) for c in range(C)]
    for limit, per_position in ((gbm.MISSING_BIN, 0), (n_thr[2], 1), (0, 3)):
        wt = gbm.WindowTrees(b, W, C, shared_limit=limit)
        assert wt.width == C - per_position + per_position * W
        Xr = tree_features(R, [0, 1, 2], W)
        assert np.array_equal(wt.raw(wt.table(R)), b.raw(Xr))
    assert b.window_trees(W, C) is b.window_trees(W, C) and b.window_trees(W, 2) is None
    # every threshold itself (a tie goes left) and the values just above it
    f = int(np.flatnonzero([len(t) > 2 for t in b.thresholds])[0])
    for t in b.thresholds[f]:
        for v in (t, np.nextafter(t, np.inf)):
            Z = X[:8].copy()
            Z[:, f] = v
            assert np.array_equal(b.raw_binned(b.bin(Z)), b.raw(Z))
            Rz = R[:W].copy()
            Rz[f // C, f % C] = v
            wt = gbm.WindowTrees(b, W, C, shared_limit=0)
            assert np.array_equal(wt.raw(wt.table(Rz)), b.raw(tree_features(Rz, [0, 1, 2], W)))
    # a 0/1 channel that is not 0/1 in the input is binned by its thresholds
    odd = [p.copy() for p in prots]
    odd[1][5, 0] = 0.25
    Xo = np.concatenate([tree_features(e, [0, 1, 2], W) for e in odd])
    assert np.array_equal(tree_raw(b, odd, [0, 1, 2], W), b.raw(Xo))
    with pytest.raises(ValueError):
        b.raw_binned(b.bin(X)[:, :5])


def test_trees_save_and_load_as_safetensors(tmp_path):
    from safetensors.numpy import load_file, save_file
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=6, random_state=1)
    clf = gbm.fit(X, y, seed=0, max_iter=10)
    save_file({k: np.ascontiguousarray(v) for k, v in gbm.export(clf).items()}, str(tmp_path / "t.safetensors"))
    b = gbm.Booster(load_file(str(tmp_path / "t.safetensors")))
    assert np.allclose(b.raw(X), clf.decision_function(X))


# ------------------------------------------------------------------------------ disorder channels

def test_disorder_channels_are_appended_and_named():
    from nesscan.embedders import get_embedder

    base = get_embedder("builtin")
    ctx = get_embedder("builtin", context="disorder")
    seqs = ["MSEEKKAAEEPKSPEKKSSEEGSSKKEE" * 3, "MLLIVLAVLLFLIVALLGAIVWLLAIL" * 2, "ACDXBZUOK" * 5]
    a, b = base.embed_batch(seqs), ctx.embed_batch(seqs)
    assert ctx.dim == base.dim + 2
    for x, y_, s in zip(a, b, seqs):
        assert y_.shape == (len(s), base.dim + 2)
        assert np.array_equal(y_[:, : base.dim], x)
        assert np.all((y_[:, -2:] >= 0) & (y_[:, -2:] <= 1))
    # a disordered, charged repeat is predicted more disordered than a hydrophobic stretch
    assert b[0][:, -2].mean() > b[1][:, -2].mean() + 0.3
    assert b[0][:, -1].mean() < b[1][:, -1].mean()  # and with lower predicted pLDDT
    assert ctx.meta()["context"].startswith("metapredict-") and base.meta()["context"] == "none"


def test_length_chunks_cover_each_sequence_once_within_the_budget():
    from nesscan.disorder import length_chunks

    rng = random.Random(5)
    lengths = [rng.choice([30, 31, 200, 900, 5000, 9000]) for _ in range(300)]
    chunks = length_chunks(lengths, max_tokens=4096, max_sequences=32)
    flat = [i for c in chunks for i in c]
    assert sorted(flat) == list(range(len(lengths)))
    # longest first, ties in input order
    assert flat == sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for c in chunks:
        assert len(c) <= 32
        assert len(c) == 1 or len(c) * lengths[c[0]] <= 4096
    assert [len(c) for c in chunks if lengths[c[0]] > 4096] == [1] * sum(n > 4096 for n in lengths)


def test_disorder_tracks_in_length_chunks_are_the_per_sequence_tracks(monkeypatch):
    """DisorderTracks.predict cuts the input into length-sorted chunks (many metapredict
    batches): every sequence gets its own tracks back, in input order, as predicted alone
    (metapredict's batches move values by ~1e-7 at most)."""
    from nesscan import disorder

    rng = random.Random(11)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    seqs = ["".join(rng.choice(aa) for _ in range(n)) for n in (45, 300, 45, 120, 700, 60, 300)]
    seqs[3] = "MSEEKKAAEEPKSPEKKSSEEGSSKKEE" * 4 + "X"
    monkeypatch.setattr(disorder, "CHUNK_TOKENS", 700)  # several chunks, one of them a lone long sequence
    tracks = disorder.DisorderTracks(batch_size=32)
    many = tracks.predict(seqs)
    assert len(disorder.length_chunks([len(s) for s in seqs], max_sequences=32)) >= 3
    for s, t in zip(seqs, many):
        alone = tracks.predict([s])[0]
        assert t.shape == (len(s), 2) and t.dtype == np.float32
        assert np.allclose(t, alone, atol=1e-5)
    assert many[3][:, 0].mean() > many[4][:, 0].mean()  # the charged repeat stays the disordered one


def test_unknown_context_is_refused():
    from nesscan.embedders import get_embedder

    with pytest.raises(NesscanError, match="context channels"):
        get_embedder("builtin", context="metapredict-000000000000")


def test_model_refuses_embeddings_without_its_context(tmp_path):
    from nesscan.model import check_compatible, load
    from nesscan.predict import resolve_model

    m = load(resolve_model(None))
    meta = {"embedder": m.card.embedder, "dimension": m.card.dimension, "layer": m.card.layer,
            "weights_sha256": m.card.weights_sha256, "context": "none"}
    if m.card.context == "none":
        pytest.skip("the shipped model has no context channels")
    with pytest.raises(NesscanError, match="context channels none"):
        check_compatible(m, meta, "emb.h5")


def test_random_sequences_seldom_get_calls(tmp_path):
    """Random uniform-composition proteins (the null HMMER-style E-values are about): at the
    shipped cutoff few of them get a high-confidence call (the v1 score >= 0.9 called 45 %)."""
    import csv

    from conftest import run_cli, write_fasta

    rng = random.Random(11)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    recs = [(f"R{i}", "".join(rng.choice(aa) for _ in range(rng.randint(100, 900)))) for i in range(150)]
    fa = write_fasta(tmp_path / "random.fasta", recs)
    r = run_cli("predict", "-i", fa, "-o", tmp_path / "out", "-q")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "out" / "proteins.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    called = sum(int(x["n_high_confidence"]) > 0 for x in rows)
    assert called / len(rows) <= 0.10, called
    with open(tmp_path / "out" / "candidates.tsv") as fh:
        cands = list(csv.DictReader(fh, delimiter="\t"))
    ev = np.array([float(c["evalue"]) for c in cands])
    q = np.array([float(c["qvalue"]) for c in cands])
    assert np.all(q >= 0) and np.all(q <= 1)
    # q-values are BH over every candidate of the run, recomputed here from the E-values
    p = calibrate.pvalue(ev)
    assert np.allclose(q, calibrate.bh_qvalues(p), rtol=2e-2, atol=1e-3)


def test_threshold_flag_is_gone_with_a_pointer(tmp_path):
    from conftest import EXAMPLE, run_cli

    r = run_cli("predict", "-i", EXAMPLE, "-o", tmp_path / "o", "--threshold", "0.9")
    assert r.returncode == 2
    assert "--max-evalue" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


def _write_chunks(tmp_path, rng, with_evalues: bool = True) -> tuple[dict, list]:
    """Three chunks of predict-like tables (20 proteins, 3 candidates each); without E-values
    the tables are those of a model without a background null (empty evalue / min_evalue)."""
    import csv

    from nesscan.report import CANDIDATE_COLUMNS, PROTEIN_COLUMNS

    files = {"proteins": [], "candidates": [], "gff3": []}
    all_e = []
    for k in range(3):
        d = tmp_path / f"chunk{k}"
        d.mkdir()
        prows, crows = [], []
        for i in range(20):
            pid = f"c{k}p{i}"
            ev = np.sort(rng.exponential(0.5, 3) ** 2)
            n_high = int((ev <= 0.01).sum()) if with_evalues else 0
            prows.append([pid, 100, "0.5", "0.9", f"{ev[0]:.3g}" if with_evalues else "", 1, 20, "L" * 20, n_high])
            for r, e in enumerate(ev):
                all_e.append(float(f"{e:.3g}"))
                row = dict.fromkeys(CANDIDATE_COLUMNS, "")
                row.update(id=pid, rank=r + 1, start=1 + 20 * r, end=20 + 20 * r, sequence="L" * 20, score="0.9",
                           evalue=f"{e:.3g}" if with_evalues else "", qvalue="0.5" if with_evalues else "",
                           high_confidence="yes" if with_evalues and e <= 0.01 else "no")
                crows.append([row[c] for c in CANDIDATE_COLUMNS])
        for name, cols, rows in (("proteins.tsv", PROTEIN_COLUMNS, prows), ("candidates.tsv", CANDIDATE_COLUMNS, crows)):
            with open(d / name, "w", newline="") as fh:
                w = csv.writer(fh, delimiter="\t", lineterminator="\n")
                w.writerow(cols)
                w.writerows(rows)
        (d / "candidates.gff3").write_text("##gff-version 3\n")
        for key, name in (("proteins", "proteins.tsv"), ("candidates", "candidates.tsv"), ("gff3", "candidates.gff3")):
            files[key].append(str(d / name))
    return files, all_e


def test_gather_recomputes_qvalues_over_all_chunks(tmp_path):
    """Each chunk's q-values only know that chunk; gather's are BH over the whole run."""
    import csv

    from conftest import run_cli

    files, all_e = _write_chunks(tmp_path, np.random.default_rng(5))
    r = run_cli("gather", "--proteins", *files["proteins"], "--candidates", *files["candidates"],
                "--gff3", *files["gff3"], "-o", tmp_path / "all")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "all" / "candidates.tsv") as fh:
        got = [float(x["qvalue"]) for x in csv.DictReader(fh, delimiter="\t")]
    want = calibrate.bh_qvalues(calibrate.pvalue(np.array(all_e)))
    assert np.allclose(got, want, rtol=6e-3, atol=1e-6)  # (3 significant digits in the table)
    assert not np.allclose(got, 0.5)
    # no --max-evalue: the run's statistics use the cutoff of the (shipped) model's card
    from nesscan.registry import card_max_evalue

    text = (tmp_path / "all" / "nesscan_predict_stats_mqc.yaml").read_text()
    stats = json.loads(text[text.index("{"):])["data"]["all"]
    assert stats["nesscan_calls_by_chance"] == pytest.approx(60 * card_max_evalue())
    assert f"chance alone gives about {60 * card_max_evalue():.1f} in 60 proteins" in r.stderr


def test_gather_log_leaves_chance_out_without_evalues(tmp_path):
    """Chunks from a model without a background null have no E-values and no calls: gather's
    log gives the calls alone, not a chance figure at some card's cutoff (as predict and fuse)."""
    from conftest import run_cli

    files, _ = _write_chunks(tmp_path, np.random.default_rng(5), with_evalues=False)
    r = run_cli("gather", "--proteins", *files["proteins"], "--candidates", *files["candidates"],
                "--gff3", *files["gff3"], "-o", tmp_path / "all", "--max-evalue", "0.5")
    assert r.returncode == 0, r.stderr
    assert "gathered 3 chunks, 60 proteins" in r.stderr
    assert "0 high-confidence candidates" in r.stderr and "chance alone" not in r.stderr
    text = (tmp_path / "all" / "nesscan_predict_stats_mqc.yaml").read_text()
    assert "nesscan_calls_by_chance" not in text

import csv
import gzip
import json
import os
import random

import h5py
import numpy as np
import pytest
import torch

from conftest import EXAMPLE, random_protein, run_cli, write_fasta
from nesscan.embed import run_embed
from nesscan.embedders import BuiltinEmbedder, get_embedder
from nesscan.errors import NesscanError
from nesscan.model import load
from nesscan.store import EmbeddingReader, EmbeddingWriter, read_meta
from nesscan.window_score import pick_candidates, score_many, score_windows, window_bounds



def _counts(result: dict) -> dict:
    """run_embed's counts (without the list of skipped records, empty without --skip-invalid)."""
    return {k: v for k, v in result.items() if k != "skipped_records"}

def _tsv(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# --------------------------------------------------------------------------- builtin embedder


def test_builtin_embedder_shape_and_locality():
    e = BuiltinEmbedder()
    a = e.embed("MSNELALKLAGLDINKTEQ")
    assert a.shape == (19, e.dim) and a.dtype == np.float32
    # context reaches at most 15 residues: a change 40 residues away leaves residue 0 unchanged
    s = random_protein(random.Random(1), 80)
    s2 = s[:60] + ("W" if s[60] != "W" else "A") + s[61:]
    assert np.array_equal(e.embed(s)[:40], e.embed(s2)[:40])
    assert not np.array_equal(e.embed(s)[50:70], e.embed(s2)[50:70])
    # ambiguity codes are handled explicitly
    x = e.embed("BZUOX")
    assert np.allclose(x[0, 21:41], (e.embed("D")[0, 21:41] + e.embed("N")[0, 21:41]) / 2)
    assert np.allclose(x[2, :47], e.embed("C")[0, :47])
    assert x[4, 20] == 1.0


# --------------------------------------------------------------------------- window scoring


def test_window_scores_equal_naive_loop(tiny_model):
    m = load(tiny_model)
    rng = random.Random(3)
    e = BuiltinEmbedder()
    for n in (5, 20, 21, 57):
        emb = e.embed(random_protein(rng, n))
        fast = score_windows(m, emb, batch=7)
        starts, ends = window_bounds(n, m.window)
        naive = []
        with torch.no_grad():
            for s, t in zip(starts, ends):  # the seed's way: one window at a time
                w = torch.as_tensor(emb[s - 1 : t]).unsqueeze(0)
                z = float(m.net(w, torch.ones(w.shape[:2], dtype=torch.bool)))
                if m.card.arch == "stack":  # + the trees on this window's channels, stacked
                    x = np.zeros((m.window, len(m.raw["trees"]["channels"])))
                    x[: t - s + 1] = emb[s - 1 : t][:, m.raw["trees"]["channels"]]
                    tree = float(m.booster.raw(x.reshape(1, -1))[0])
                    p = min(max(1 / (1 + np.exp(-z)), 1e-7), 1 - 1e-7)
                    st = m.raw["stack"]
                    z = st["coef"][0] * np.log(p / (1 - p)) + st["coef"][1] * tree + st["intercept"]
                naive.append(float(1 / (1 + np.exp(-z))))
        assert len(fast) == max(n - m.window + 1, 1)
        np.testing.assert_allclose(fast, naive, rtol=1e-5, atol=1e-6)
    # several proteins at once give the same scores as one at a time
    embs = [e.embed(random_protein(rng, n)) for n in (30, 8, 45)]
    for a, b in zip(score_many(m, embs), [score_windows(m, x) for x in embs]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_pick_candidates_non_overlapping_ranked():
    scores = np.array([0.1, 0.9, 0.95, 0.2, 0.3, 0.8, 0.1, 0.05, 0.85, 0.2])
    c = pick_candidates(scores, length=10 + 3, window=4, top_k=5)
    assert [x.rank for x in c] == list(range(1, len(c) + 1))
    assert c[0].start == 3 and c[0].score == 0.95
    taken = set()
    for x in c:
        span = set(range(x.start, x.end + 1))
        assert not (span & taken)
        taken |= span
    assert all(a.score >= b.score for a, b in zip(c, c[1:]))


# --------------------------------------------------------------------------- HDF5 store


def test_hdf5_layout_and_resume(tmp_path):
    rng = random.Random(5)
    recs = [(f"sp|P{i}|X/Y", random_protein(rng, rng.randint(10, 60))) for i in range(6)]
    fasta = write_fasta(tmp_path / "a.fasta", recs[:4])
    out = str(tmp_path / "e.h5")
    emb = BuiltinEmbedder()
    r1 = run_embed(fasta, out, emb, progress=False)
    assert _counts(r1) == {"proteins": 4, "embedded": 4, "reused": 0} and r1["skipped_records"] == ()
    meta = read_meta(out)
    assert meta["embedder"] == "builtin" and meta["dimension"] == emb.dim and meta["complete"]
    with h5py.File(out) as f:
        ds = f["proteins"]["sp%7CP0%7CX%2FY"]
        assert ds.attrs["id"] == "sp|P0|X/Y" and ds.shape == (len(recs[0][1]), emb.dim)
        assert len(ds.attrs["sequence_sha256"]) == 64 and ds.attrs["weights_sha256"] == emb.weights_sha256
        mtime_payload = ds[()].copy()
    # resume: same proteins skipped, new ones added, a changed sequence re-embedded
    changed = (recs[1][0], recs[1][1][::-1])
    fasta2 = write_fasta(tmp_path / "b.fasta", [recs[0], changed, recs[2], recs[3], recs[4], recs[5]])
    r2 = run_embed(fasta2, out, emb, progress=False)
    assert _counts(r2) == {"proteins": 6, "embedded": 3, "reused": 3}
    got = {pid: (seq, a) for pid, seq, a in EmbeddingReader(out)}
    assert len(got) == 6 and got[changed[0]][0] == changed[1]
    np.testing.assert_array_equal(got[recs[0][0]][1], mtime_payload)
    np.testing.assert_allclose(got[changed[0]][1], emb.embed(changed[1]))
    assert not os.path.exists(out + ".partial")


def test_interrupted_embed_leaves_valid_resumable_file(tmp_path, monkeypatch):
    rng = random.Random(9)
    recs = [(f"p{i}", random_protein(rng, 30 + i)) for i in range(40)]
    fasta = write_fasta(tmp_path / "a.fasta", recs)
    out = str(tmp_path / "e.h5")
    emb = BuiltinEmbedder()
    emb.max_batch_tokens = 200  # several batches
    calls = {"n": 0}
    real = emb.embed_batch

    def flaky(seqs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(seqs)

    monkeypatch.setattr(emb, "embed_batch", flaky)
    with pytest.raises(NesscanError, match="interrupted .* re-run resumes"):
        run_embed(fasta, out, emb, progress=False)
    meta = read_meta(out)  # a valid HDF5 file, marked incomplete
    assert not meta["complete"] and 0 < meta["n"] < 40
    done = meta["n"]
    monkeypatch.setattr(emb, "embed_batch", real)
    r = run_embed(fasta, out, emb, progress=False)
    assert r["reused"] == done and r["embedded"] == 40 - done and read_meta(out)["complete"]


def _h5_content(path):
    """Everything a reader can see in an embeddings file: root attributes, and per dataset its
    attributes, dtype, compression and values."""
    with h5py.File(path, "r") as f:
        root = {k: f.attrs[k] for k in f.attrs}
        data = {}
        for key in f["proteins"]:
            ds = f["proteins"][key]
            data[key] = ({k: ds.attrs[k] for k in ds.attrs}, ds.dtype, ds.compression, ds.compression_opts, ds[()])
    return root, data


def _assert_same_h5(a, b):
    (ra, da), (rb, db) = _h5_content(a), _h5_content(b)
    assert ra == rb and sorted(da) == sorted(db)
    for key in da:
        (aa, ta, ca, oa, xa), (ab, tb, cb, ob, xb) = da[key], db[key]
        assert aa == ab and ta == tb and ca == cb and oa == ob
        np.testing.assert_array_equal(xa, xb)


def _many_batches(n=40, seed=9):
    rng = random.Random(seed)
    recs = [(f"p{i}|x/{i}", random_protein(rng, 30 + (7 * i) % 50)) for i in range(n)]
    emb = BuiltinEmbedder()
    emb.max_batch_tokens = 200  # several batches
    return recs, emb


def test_embed_background_writes_equal_synchronous_writes(tmp_path, monkeypatch):
    """The HDF5 writes run in a background thread (the next batch is embedded meanwhile); the
    file holds exactly what the synchronous loop writes: ids, sequences, checksums, indices,
    arrays, attributes; also when resuming (float16 storage here)."""
    import threading

    recs, emb = _many_batches()
    fasta = write_fasta(tmp_path / "a.fasta", recs)
    first = write_fasta(tmp_path / "first.fasta", recs[::3])
    threads = set()
    real_write = EmbeddingWriter.write

    def spy(self, *a, **k):
        threads.add(threading.current_thread().name)
        return real_write(self, *a, **k)

    monkeypatch.setattr(EmbeddingWriter, "write", spy)
    out = {}
    for mode in (True, False):
        path = out[mode] = str(tmp_path / f"e-{mode}.h5")
        threads.clear()
        assert _counts(run_embed(fasta, path, emb, progress=False, async_write=mode)) == {"proteins": 40, "embedded": 40, "reused": 0}
        assert threads == ({"nesscan-hdf5-writer"} if mode else {threading.current_thread().name})
        assert not os.path.exists(path + ".partial")
    _assert_same_h5(out[True], out[False])
    assert [pid for pid, _, _ in EmbeddingReader(out[True])] == [pid for pid, _ in recs]
    for mode in (True, False):  # resume on top of a partial run
        path = out[mode] = str(tmp_path / f"r-{mode}.h5")
        run_embed(first, path, emb, progress=False, dtype="float16", async_write=mode)
        assert run_embed(fasta, path, emb, progress=False, dtype="float16", async_write=mode)["reused"] == 14
    _assert_same_h5(out[True], out[False])


@pytest.mark.parametrize("fail_at", [1, 3])
def test_embed_writer_error_stops_the_run_and_is_raised(tmp_path, monkeypatch, fail_at):
    """An error inside the background writer reaches the caller, stops the embedding, and the
    output is what the synchronous loop leaves: nothing when no protein was stored, else a valid
    incomplete file that a re-run resumes from."""
    recs, emb = _many_batches()
    fasta = write_fasta(tmp_path / "a.fasta", recs)
    from nesscan.fasta import iter_fasta

    n_batches = len(list(emb.batches(list(iter_fasta(fasta)))))
    assert n_batches >= 8
    real_write, real_embed = EmbeddingWriter.write, emb.embed_batch
    paths, embedded = {}, {}
    for mode in (True, False):
        calls = {"write": 0, "embed": 0}

        def failing(self, *a, **k):
            calls["write"] += 1
            if calls["write"] == fail_at:
                raise OSError("disk full (simulated)")
            return real_write(self, *a, **k)

        def counting(seqs):
            calls["embed"] += 1
            return real_embed(seqs)

        monkeypatch.setattr(EmbeddingWriter, "write", failing)
        monkeypatch.setattr(emb, "embed_batch", counting)
        path = paths[mode] = str(tmp_path / f"e-{mode}.h5")
        with pytest.raises(OSError, match="disk full"):
            run_embed(fasta, path, emb, progress=False, async_write=mode)
        embedded[mode] = calls["embed"]
        assert not os.path.exists(path + ".partial")
        if fail_at == 1:
            assert not os.path.exists(path)
        else:
            meta = read_meta(path)
            assert not meta["complete"] and meta["n"] == fail_at - 1
    assert embedded[False] == 1 and embedded[True] <= 4 < n_batches  # the run stopped (bounded queue)
    if fail_at > 1:
        _assert_same_h5(paths[True], paths[False])
        monkeypatch.setattr(EmbeddingWriter, "write", real_write)
        monkeypatch.setattr(emb, "embed_batch", real_embed)
        r = run_embed(fasta, paths[True], emb, progress=False)
        assert _counts(r) == {"proteins": 40, "embedded": 40 - (fail_at - 1), "reused": fail_at - 1} and read_meta(paths[True])["complete"]


def test_embed_error_while_embedding_keeps_what_was_written(tmp_path, monkeypatch):
    """An error in the embedder (not an interrupt) after some batches: the background writer
    finishes the batches already embedded, then the file is closed as the synchronous loop
    closes it (valid, incomplete, same proteins)."""
    recs, emb = _many_batches()
    fasta = write_fasta(tmp_path / "a.fasta", recs)
    real = emb.embed_batch
    paths = {}
    for mode in (True, False):
        calls = {"n": 0}

        def flaky(seqs):
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("embedder failed (simulated)")
            return real(seqs)

        monkeypatch.setattr(emb, "embed_batch", flaky)
        path = paths[mode] = str(tmp_path / f"e-{mode}.h5")
        with pytest.raises(RuntimeError, match="embedder failed"):
            run_embed(fasta, path, emb, progress=False, async_write=mode)
        meta = read_meta(path)
        assert not meta["complete"] and meta["n"] > 0
    _assert_same_h5(paths[True], paths[False])


def test_embed_refuses_other_embedder_output(tmp_path):
    fasta = write_fasta(tmp_path / "a.fasta", [("p", "MKLVLLAAGLL")])
    out = str(tmp_path / "e.h5")
    run_embed(fasta, out, BuiltinEmbedder(), progress=False)

    class Other(BuiltinEmbedder):
        pass

    other = Other()
    other.weights_sha256 = "0" * 64
    with pytest.raises(NesscanError, match="holds embeddings from builtin"):
        EmbeddingWriter(out, other.meta())
    assert read_meta(out)["n"] == 1  # untouched


# --------------------------------------------------------------------------- window-score CLI


def test_window_score_cli_and_mismatch(tmp_path, tiny_model):
    rng = random.Random(11)
    recs = [("a", random_protein(rng, 45)), ("b", random_protein(rng, 12)), ("c/d", random_protein(rng, 80))]
    fasta = write_fasta(tmp_path / "a.fasta", recs)
    h5 = tmp_path / "e.h5"
    r = run_cli("embed", "-i", fasta, "-o", h5, "--context", "none")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "w.tsv.gz"
    r = run_cli("window-score", "-e", h5, "-m", tiny_model, "-o", out)
    assert r.returncode == 0, r.stderr
    rows = _tsv(out)
    assert len(rows) == (45 - 19) + 1 + (80 - 19)
    # the gzip output is byte-reproducible: no file name, no time stamp in its header
    again = tmp_path / "again.tsv.gz"
    assert run_cli("window-score", "-e", h5, "-m", tiny_model, "-o", again).returncode == 0
    assert again.read_bytes() == out.read_bytes() and out.read_bytes()[3:8] == bytes(5)  # FLG, MTIME
    summ = {row["id"]: row for row in _tsv(tmp_path / "w.summary.tsv")}
    assert set(summ) == {"a", "b", "c/d"}
    for pid, seq in recs:
        mine = [float(x["score"]) for x in rows if x["id"] == pid]
        best = max(mine)
        assert abs(float(summ[pid]["max_score"]) - best) < 1e-6
        s, e = int(summ[pid]["best_start"]), int(summ[pid]["best_end"])
        assert summ[pid]["best_sequence"] == seq[s - 1 : e]
    # a model card that names another embedder/dimension is refused with a clear message
    bad = tmp_path / "badmodel"
    bad.mkdir()
    card = json.load(open(os.path.join(tiny_model, "model.json")))
    card["embedder"] = "esm2_t6_8M_UR50D"
    json.dump(card, open(bad / "model.json", "w"))
    os.link(os.path.join(tiny_model, "model.safetensors"), bad / "model.safetensors")
    os.link(os.path.join(tiny_model, "trees.safetensors"), bad / "trees.safetensors")
    out2 = tmp_path / "w2.tsv"
    r = run_cli("window-score", "-e", h5, "-m", bad, "-o", out2)
    assert r.returncode == 2
    assert "does not match model" in r.stderr and "embedder builtin != esm2_t6_8M_UR50D" in r.stderr
    assert not out2.exists() and not (tmp_path / "w2.summary.tsv").exists()


def test_model_weights_are_safetensors_only(tiny_model, tmp_path):
    bad = tmp_path / "m"
    bad.mkdir()
    (bad / "model.json").write_text(open(os.path.join(tiny_model, "model.json")).read())
    torch.save({"x": torch.zeros(1)}, bad / "model.safetensors")  # a pickle pretending to be safetensors
    with pytest.raises(NesscanError, match="cannot load classifier weights"):
        load(str(bad))


# --------------------------------------------------------------------------- training


def test_training_inputs_are_what_train_and_repeat_cv_share(tiny_data):
    from nesscan.data import load_dataset
    from nesscan.train import TrainConfig, training_inputs

    records = load_dataset(tiny_data)
    stack = training_inputs(records, BuiltinEmbedder(), TrainConfig(arch="stack", seed=3), progress=False)
    assert set(stack.embs) >= {r.id for r in records}
    assert [n.group for n in stack.nulls] == ["shuffled"] * len(records)
    assert set(stack.null_embs) == {n.id for n in stack.nulls}
    assert all(sorted(n.sequence) == sorted(r.sequence) for n, r in zip(stack.nulls, records))  # composition kept
    assert stack.cfg.tree_channels and stack.context is False
    cnn = training_inputs(records, BuiltinEmbedder(), TrainConfig(arch="cnn", seed=4), progress=False)
    assert not cnn.cfg.tree_channels
    assert [n.sequence for n in cnn.nulls] != [n.sequence for n in stack.nulls]  # the seed sets the shuffles


def test_training_reproducible_with_seed(tiny_data, tmp_path):
    from nesscan.train import TrainConfig, run_train

    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_train(tiny_data, str(tmp_path / name), BuiltinEmbedder(),
                  TrainConfig(epochs=2, folds=2, seed=seed, tree_iterations=10), cv=True, progress=False)
        outs.append([(tmp_path / name / f).read_bytes()
                     for f in ("model.safetensors", "references.safetensors", "model.json", "trees.safetensors")])
    assert outs[0] == outs[1]  # weights, similarity references and card (incl. CV figures) identical
    assert outs[0][0] != outs[2][0]
    card = json.load(open(tmp_path / "a" / "model.json"))
    cv = card["cross_validation"]
    assert "StratifiedGroupKFold" in cv["scheme"]
    comps = cv["pooled_out_of_fold"]["components"]
    assert set(comps) == {"nn_score", "motif_score", "similarity_score", "fused_score", "net_alone", "tree_alone",
                          "profile_alone"}
    assert card["arch"] == "stack" and card["net_arch"] == "cnn" and set(card["stack"]) >= {"coef", "intercept"}
    calls = cv["calls"]
    assert calls["final_cutoff"] in calls["curve"] or str(calls["final_cutoff"]) in calls["curve"]
    assert card["calibration"]["max_evalue"] == calls["final_cutoff"]
    # the card says what the cutoff means in false calls per proteome, from the CV's own rates
    meaning = card["calibration"]["meaning"]
    at = calls["curve"][str(calls["final_cutoff"])]
    assert meaning["expected_false_candidates_per_proteome"] == round(calls["final_cutoff"] * meaning["proteome_proteins"])
    for g in ("shuffled", "crm1_nonbinder"):
        m = meaning["out_of_fold"][g]
        assert m["share_with_a_call"] == at[f"call_rate_{g}"]
        assert m["share_with_a_call_nested"] == calls["pooled_at_nested_cutoffs"][f"call_rate_{g}"]
        assert m["proteins_with_a_call_per_proteome"] == round(at[f"call_rate_{g}"] * meaning["proteome_proteins"])
    assert f"E <= {calls['final_cutoff']:g}" in meaning["text"]
    assert set(cv["pooled_out_of_fold"]["localisation_baselines"]) == {"gbm_onehot_hydropathy", "kosugi_wregex_counts"}
    for task in ("T2_annotated_vs_nonbinder", "T3_cargo_vs_nonbinder"):
        pl = cv["pooled_out_of_fold"]["protein_level"][task]
        lo, hi = pl["score_minus_baseline_95ci"]
        assert lo <= hi
    assert 0.0 <= comps["fused_score"]["hit_at_1"] <= comps["fused_score"]["hit_at_5"] <= 1.0
    assert set(card["fusion"]) >= {"motif", "similarity", "fusion"}
    fs = cv["fusion_shrinkage"]  # the NES-profile weight: chosen on the grid per outer fold and for the model
    assert len(fs["profile_weight_per_outer_fold"]) == 2
    assert set(fs["profile_weight_per_outer_fold"] + [fs["final_profile_weight"]]) <= set(fs["profile_weight_grid"])
    if fs["final_profile_weight"]:
        assert card["fusion"]["profile_weight"] == fs["final_profile_weight"] and card["fusion"]["profile"]["n_spans"] > 0
    else:
        assert "profile_weight" not in card["fusion"]
    assert card["training"]["data_sha256"] and card["embedder"] == "builtin"


def test_protein_model_disorder_context_is_chosen_nested_and_read_at_prediction(tiny_data, tmp_path):
    """With the disorder channels, training reports the protein-level figures beside both
    baselines (composition + length, and with the disorder context) and records, per outer fold,
    whether its inner folds chose the context features. A protein model that reads them gets
    each protein's own disorder tracks at prediction: its ``score`` is the trees' probability of
    exactly those features (recomputed here from the model's own files)."""
    import csv

    from safetensors.numpy import load_file, save_file

    from nesscan import protein_model as pm
    from nesscan.train import TrainConfig, run_train

    emb = get_embedder("builtin", context="disorder")
    out = tmp_path / "m"
    run_train(tiny_data, str(out), emb, TrainConfig(epochs=2, folds=2, seed=0, tree_iterations=10), cv=True,
              progress=False)
    card = json.load(open(out / "model.json"))
    po = card["cross_validation"]["pooled_out_of_fold"]
    ctx = po["protein_context_features"]
    assert ctx["features"] == pm.CONTEXT_FEATURES and len(ctx["used_per_outer_fold"]) == 2
    assert pm.uses_context(card["protein_model"]) == ctx["used_by_shipped_model"]
    for task in ("T2_annotated_vs_nonbinder", "T3_cargo_vs_nonbinder"):
        t = po["protein_level"][task]
        assert 0.0 <= t["baseline_composition_length_disorder"] <= 1.0
        lo, hi = t["score_minus_disorder_baseline_95ci"]
        assert lo <= hi
    # a protein model that reads the context (refitted here if the tiny data's CV left it out)
    if not ctx["used_by_shipped_model"]:
        rng = np.random.default_rng(0)
        n = len(pm.NES_FEATURES + pm.COMP_FEATURES + pm.CONTEXT_FEATURES)
        X = rng.random((80, n))
        y = (X[:, -3] + 0.5 * rng.random(80) > 0.75).astype(int)  # mostly mean disorder
        params, arrays = pm.fit_gbm(X, y)
        trees = {k: v for k, v in load_file(str(out / "trees.safetensors")).items() if not k.startswith("protein.")}
        save_file({**trees, **arrays}, str(out / "trees.safetensors"))
        card["protein_model"] = params
        json.dump(card, open(out / "model.json", "w"))
    assert pm.uses_context(json.load(open(out / "model.json"))["protein_model"])
    from nesscan.model import load as load_model
    from nesscan.report import score_and_rank
    from nesscan.scoring import fuse_protein

    seqs = [("a", "MSDEKLLLSALEKLSLDGSPEEAKRRKKS" * 3), ("b", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAV")]
    fasta = write_fasta(tmp_path / "in.fasta", seqs)
    res = run_cli("predict", "--input", fasta, "--outdir", tmp_path / "p", "--model", out, "-q")
    assert res.returncode == 0, res.stderr
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "p" / "proteins.tsv"), delimiter="\t")}
    m = load_model(str(out))
    for pid, seq in seqs:
        e = emb.embed_batch([seq])[0]
        nn = score_many(m, [e])[0]
        fused = fuse_protein(seq, e, nn, m.window, m.raw["fusion"], m.references)["fused_score"]
        top = [c.score for c in pick_candidates(fused, len(seq), m.window, top_k=5)]
        feats = pm.feature_vector(seq, fused, top, e[:, -2:])  # disorder, pLDDT / 100
        assert feats.shape[0] == m.protein_booster.n_features
        prob = float(m.protein_booster.proba(feats[None])[0])
        assert float(score_and_rank(m, pid, seq, e, nn, 5, 1.0).protein_row[2]) == pytest.approx(prob, abs=6e-5)
        assert float(rows[pid]["score"]) == pytest.approx(prob, abs=6e-5)  # printed with 4 decimals


def test_shuffled_hard_negatives_are_chance_motifs_of_the_fold_s_own_proteins(tiny_data):
    from collections import Counter

    from nesscan.calibrate import shuffle_sequence
    from nesscan.data import load_dataset
    from nesscan.fitting import HARD_GROUP, TrainConfig, example_windows, hard_shuffle_records, with_hard_negatives
    from nesscan.motifs import kosugi_matches

    recs = load_dataset(tiny_data)
    cfg = TrainConfig(neg_per_shuffled=3)
    hard = hard_shuffle_records(recs, cfg)
    assert [h.id for h in hard] == [f"{r.id}|hard" for r in recs]
    for r, h in zip(recs, hard):
        assert Counter(h.sequence) == Counter(r.sequence) and h.cluster == r.cluster and h.label == 0
        # never the background null's shuffle (seed + k)
        assert h.sequence != shuffle_sequence(r.sequence, cfg.seed, r.id)
    fold = recs[: len(recs) // 2]
    with pytest.raises(NesscanError, match="not embedded"):
        with_hard_negatives(fold, {}, cfg)
    aug = with_hard_negatives(fold, {h.id: None for h in hard}, cfg)
    assert {a.id for a in aug if a.group == HARD_GROUP} == {f"{r.id}|hard" for r in fold}  # this fold's only
    assert with_hard_negatives(fold, {}, TrainConfig()) is fold  # off by default
    ex = [e for e in example_windows(aug, cfg, np.random.default_rng(0), mutants=False) if e[0].endswith("|hard")]
    assert ex and all(e[2] == 0.0 for e in ex)
    seqs = {a.id: a.sequence for a in aug}
    per = Counter(e[0] for e in ex)
    assert max(per.values()) <= cfg.neg_per_shuffled
    for pid, s0, _, _ in ex:  # each window holds a whole consensus match of the shuffle
        assert any(s0 <= m.phi[0] and m.phi[-1] < s0 + cfg.window for m in kosugi_matches(seqs[pid], phi0=False))


def test_listwise_loss_is_the_softmax_mass_missed_by_a_protein_s_nes_windows():
    from nesscan.fitting import Examples, _listwise_loss, _protein_lists

    z = torch.tensor([2.0, 0.0, -1.0, 1.0, 3.0, 0.5, 0.0])  # the "network" reads channel 0 of residue 0
    X = torch.zeros((7, 4, 2))
    X[:, 0, 0] = z
    y = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    prot = ["A", "A", "A", "B", "B", "B", "C"]  # C has no positive: not a list
    mutant = np.array([False, False, True, False, False, False, False])  # a Φ->A mutant never competes
    ex = Examples(X, y, prot, list(range(7)), mutant)
    lists = _protein_lists(ex)
    assert [i.tolist() for i, _ in lists] == [[0, 1], [3, 4, 5]] and [p.tolist() for _, p in lists][0] == [True, False]
    net = lambda x, mask: x[:, 0, 0]  # noqa: E731
    expect_a = -np.log(np.exp(2.0) / (np.exp(2.0) + np.exp(0.0)))
    expect_b = -np.log((np.exp(3.0) + np.exp(0.5)) / (np.exp(1.0) + np.exp(3.0) + np.exp(0.5)))
    got = float(_listwise_loss(net, ex, lists))
    assert abs(got - (expect_a + expect_b) / 2) < 1e-6
    X2 = X.clone()
    X2[0, 0, 0] = -2.0  # A's NES window now ranks below its other window: the loss grows
    assert float(_listwise_loss(net, Examples(X2, y, prot, list(range(7)), mutant), lists)) > got


def test_phi_labels_mark_annotated_phi_residues_of_real_windows_only():
    from nesscan.data import Record, Span
    from nesscan.fitting import phi_labels

    r = Record("P", "M" * 60, "c", "nes_annotated", 1, [Span(20, 33, (21, 24, 28, 31), "c1a-4")])
    other = Record("Q", "M" * 60, "d", "crm1_nonbinder", 0)
    ex = [("P", 15, 1.0, False), ("P", 15, 0.0, True), ("P", 40, 0.0, False), ("Q", 15, 0.0, False)]
    lab = phi_labels([r, other], ex, 20).numpy()
    assert lab.shape == (4, 20)
    assert np.flatnonzero(lab[0]).tolist() == [5, 8, 12, 15]  # residues 21, 24, 28, 31 at window start 16
    assert lab[1:].sum() == 0  # the Φ->A mutant, a window away from the NES, another protein


def test_phi_head_learns_phi_residues_and_leaves_the_saved_network_unchanged():
    """The multitask Φ head (training only) learns which residues are Φ in a toy task where a
    channel marks them, its validation residue AUC is recorded, and the network it shaped has
    exactly the plain CNN's parameters (nothing of the head is saved)."""
    from dataclasses import replace

    from nesscan.fitting import Examples, TrainConfig, fit_classifier

    rng = np.random.default_rng(0)

    def examples(n):
        X = rng.normal(size=(n, 20, 6)).astype(np.float32)
        y = (rng.random(n) < 0.5).astype(np.float32)
        phi = np.zeros((n, 20), dtype=np.float32)
        for i in np.flatnonzero(y):
            phi[i, rng.choice(20, 4, replace=False)] = 1.0
        X[:, :, 0] += 3.0 * phi  # channel 0 marks the Φ residues
        return Examples(torch.as_tensor(X), torch.as_tensor(y), ["p"] * n, [0] * n, np.zeros(n, bool),
                        torch.as_tensor(phi))

    tr, va = examples(512), examples(256)
    cfg = TrainConfig(window=20, arch="cnn", epochs=4, patience=10, batch_size=64, phi_head=1.0)
    net, info = fit_classifier(tr, va, 6, cfg)
    assert info["history"][-1]["val_phi_auc"] > 0.9
    plain, info0 = fit_classifier(tr, va, 6, replace(cfg, phi_head=0.0))
    assert "val_phi_auc" not in info0["history"][-1]
    sd, sd0 = net.state_dict(), plain.state_dict()
    assert sd.keys() == sd0.keys() and all(sd[k].shape == sd0[k].shape for k in sd)
    with pytest.raises(NesscanError, match="phi-head"):
        fit_classifier(tr, va, 6, replace(cfg, arch="mlp"))


def test_cv_folds_never_share_a_cluster(tiny_data):
    from sklearn.model_selection import StratifiedGroupKFold

    from nesscan.data import load_dataset

    recs = load_dataset(tiny_data)
    skf = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0)
    for tr, te in skf.split(recs, [r.group for r in recs], [r.cluster for r in recs]):
        assert not ({recs[i].cluster for i in tr} & {recs[i].cluster for i in te})


# --------------------------------------------------------------------------- predict


def test_predict_on_example(tmp_path):
    out = tmp_path / "pred"
    r = run_cli("predict", "-i", EXAMPLE, "-o", out)
    assert r.returncode == 0, r.stderr
    prots = _tsv(out / "proteins.tsv")
    cands = _tsv(out / "candidates.tsv")
    from nesscan.report import PROTEIN_COLUMNS

    assert list(prots[0]) == PROTEIN_COLUMNS
    assert PROTEIN_COLUMNS[:5] == ["id", "length", "score", "nes_score", "min_evalue"]
    from nesscan.report import CANDIDATE_COLUMNS

    assert list(cands[0]) == CANDIDATE_COLUMNS
    assert CANDIDATE_COLUMNS[:9] == ["id", "rank", "start", "end", "sequence", "score", "evalue", "qvalue",
                                     "high_confidence"]
    cutoff = json.load(open(os.path.join(os.path.dirname(os.path.dirname(EXAMPLE)), "models", "nesscan-builtin-v2",
                                         "model.json")))["calibration"]["max_evalue"]
    assert (out / "candidates.gff3").read_text().startswith("##gff-version 3\n")
    ids = [p["id"] for p in prots]
    assert ids[0] == "demo_PKIa_NES" and len(ids) == 8  # input order kept
    for p in prots:
        assert 0 <= float(p["score"]) <= 1 and 0 <= float(p["nes_score"]) <= 1
    seqs = {}
    from nesscan.fasta import read_fasta

    for pr in read_fasta(EXAMPLE):
        seqs[pr.id] = pr.sequence
    for c in cands:
        s, e = int(c["start"]), int(c["end"])
        assert c["sequence"] == seqs[c["id"]][s - 1 : e]
        ev = float(c["evalue"])
        if abs(ev - cutoff) > 0.01 * cutoff:  # (the column is rounded to 3 significant digits)
            assert c["high_confidence"] == ("yes" if ev <= cutoff else "no")
        assert int(c["start"]) <= int(c["window_start"]) <= int(c["window_end"]) <= int(c["end"])
    for p in prots:  # E-values fall with the score inside a protein: the best candidate has the smallest
        mine = [float(c["evalue"]) for c in cands if c["id"] == p["id"]]
        assert float(p["min_evalue"]) == pytest.approx(min(mine), rel=1e-2)
    # the planted NES are found among the top candidates
    truth = _tsv(os.path.join(os.path.dirname(EXAMPLE), "example_nes.tsv"))
    found = 0
    for t in truth:
        top = [c for c in cands if c["id"] == t["id"] and int(c["rank"]) <= 3]
        found += any(int(c["start"]) <= int(t["end"]) and int(c["end"]) >= int(t["start"]) for c in top)
    assert found >= 3, found


def test_get_embedder_rejects_weights_for_builtin():
    with pytest.raises(NesscanError, match="takes no --weights"):
        get_embedder("builtin", weights="x.pt")

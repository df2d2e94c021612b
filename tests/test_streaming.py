"""Streaming and batched paths give the results of the plain ones (not timed; see benchmarks/).

* ``nesscan predict`` in many small batches == in one batch == one protein at a time through the
  plain classifier call (the seed's way);
* ``score_many`` (windows streamed in bounded batches; per-residue evaluation of the transformer
  stem and of the CNN) == the classifier called on the cut windows, for every architecture;
* the vectorised Kosugi scan, fusion features and built-in embedder == straightforward
  reference versions;
* the built-in pipeline computes with one torch thread per stage and restores the caller's
  setting;
* ``score_many(..., device=...)`` == the default path, exactly, for every architecture (and the
  accelerator code path run on the CPU too); predict with ESM-2 through that path writes the
  same tables;
* ESM-2: the token-batched path (length-sorted, padded, chunked) == one sequence at a time, on
  CPU with a tiny random checkpoint, down to the window scores of ``predict``; a batch that runs
  out of memory (the real forward pass refusing large batches, as CUDA would) is halved and
  retried, and ``predict`` writes the same tables.
"""

import argparse
import collections
import csv
import hashlib
import os
import random

import numpy as np
import pytest
import torch

from conftest import AA, EXAMPLE, NES_PEPTIDES, random_protein, write_fasta
from nesscan import fuse, predict
from nesscan.embedders import BuiltinEmbedder, _running_mean
from nesscan.model import ModelCard, build, load, save
from nesscan.motifs import kosugi_matches, wregex_matches
from nesscan.window_score import score_many, score_windows, window_bounds


def _proteins(seed: int, n: int, lo: int = 5, hi: int = 400):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        seq = random_protein(rng, rng.randint(lo, hi), AA + "LLIVFM")
        if i % 3 == 0 and len(seq) > 30:
            nes = rng.choice(NES_PEPTIDES)
            pos = rng.randint(0, len(seq) - len(nes))
            seq = seq[:pos] + nes + seq[pos + len(nes):]
        out.append((f"s{i:03d}", seq))
    return out


def _random_model(tmp_path, arch: str, dim: int = None, embedder: str = "builtin", sha: str = "", layer: int = 0,
                  window: int = 20, seed: int = 0) -> str:
    """A classifier with random weights (no fusion block: ranking on the classifier score)."""
    e = BuiltinEmbedder() if embedder == "builtin" else None
    dim = dim or e.dim
    card = ModelCard(embedder, dim, window, layer, arch, {}, weights_sha256=sha or (e.weights_sha256 if e else ""))
    torch.manual_seed(seed)
    net = build(card)
    with torch.no_grad():  # a non-trivial input standardisation, as a trained model has
        net.norm_in.mean.copy_(torch.randn(dim) * 0.1)
        net.norm_in.std.copy_(torch.rand(dim) + 0.5)
    out = tmp_path / f"{arch}-{embedder}"
    save(net.eval(), card, str(out))
    return str(out)


def _plain_scores(m, emb) -> np.ndarray:
    """The classifier called on the protein's windows, cut one by one (copies, no views) and
    scored in one plain ``net(windows, mask)`` call: one protein at a time, no streaming, no
    per-residue shortcuts. (tests/test_core.py checks this against a per-window loop.)"""
    W = m.window
    starts, ends = window_bounds(len(emb), W)
    wins = torch.stack([torch.tensor(emb[s - 1 : t]) for s, t in zip(starts, ends)])
    arch = m.card.arch
    if m.net is not None:
        with torch.no_grad():
            logit = m.net(wins, torch.ones(wins.shape[:2], dtype=torch.bool)).double().numpy()
        if arch not in ("gbm", "stack"):
            return 1 / (1 + np.exp(-logit))
    # the trees: each window's chosen channels flattened position by position, one row per window
    ch = m.raw["trees"]["channels"]
    X = np.stack([np.asarray(emb[s - 1 : t], dtype=np.float64)[:, ch].reshape(-1) for s, t in zip(starts, ends)])
    tree = m.booster.raw(X)
    if arch == "gbm":
        return 1 / (1 + np.exp(-tree))
    st = m.raw["stack"]
    p = np.clip(1 / (1 + np.exp(-logit)), 1e-7, 1 - 1e-7)
    z = st["coef"][0] * np.log(p / (1 - p)) + st["coef"][1] * tree + st["intercept"]
    return 1 / (1 + np.exp(-z))


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# ----------------------------------------------------------------------------- window scoring


@pytest.mark.parametrize("arch", ["cnn", "transformer", "mlp"])
def test_score_many_equals_plain_classifier(tmp_path, arch):
    m = load(_random_model(tmp_path, arch, seed=1))
    e = BuiltinEmbedder()
    # short (masked), exactly W, W+1 and long proteins; batch 37 splits proteins across batches,
    # and a protein longer than the batch is cut into overlapping segments (CNN)
    seqs = [s for _, s in _proteins(3, 14, 3, 260)] + ["L" * 20, "A" * 21, random_protein(random.Random(5), 700)]
    embs = [e.embed(s) for s in seqs]
    for batch in (8192, 37):
        got = score_many(m, embs, batch=batch)
        for s, x, g in zip(seqs, embs, got):
            ref = _plain_scores(m, x)
            assert g.shape == ref.shape == (max(len(s) - m.window + 1, 1),)
            np.testing.assert_allclose(g, ref, rtol=1e-5, atol=2e-6)
    # and the per-protein entry point agrees with the batched one
    for a, b in zip(score_many(m, embs), [score_windows(m, x) for x in embs]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)


def test_cnn_fast_path_follows_the_module(tmp_path):
    """A CNN whose layers differ from the layout the per-residue path was written for goes the
    generic way (same scores), so a change to WindowCNN cannot silently change predictions."""
    from nesscan import window_score

    m = load(_random_model(tmp_path, "cnn", seed=2))
    assert window_score._cnn_plan(m.net, m.window) is not None
    m.net.net[1] = torch.nn.ReLU()  # not the GELU the plan expects
    assert window_score._cnn_plan(m.net, m.window) is None
    x = BuiltinEmbedder().embed(random_protein(random.Random(1), 90))
    np.testing.assert_allclose(score_many(m, [x])[0], _plain_scores(m, x), rtol=1e-5, atol=2e-6)
    m.net.train()
    assert window_score._cnn_plan(m.net, m.window) is None


@pytest.mark.parametrize("arch", ["cnn", "transformer", "mlp"])
def test_score_many_device_argument_equals_default(tmp_path, monkeypatch, arch):
    """``score_many(..., device=...)``: on the CPU the very same computation as the default
    (``model.net`` itself, no copies), so identical scores; and the accelerator code path (a
    cached copy of the classifier on the device, inputs moved there, one transfer of all scores
    at the end), forced to run on the CPU, gives identical scores too, with tensor inputs as well."""
    from nesscan import window_score

    m = load(_random_model(tmp_path, arch, seed=8))
    e = BuiltinEmbedder()
    seqs = [s for _, s in _proteins(13, 12, 3, 260)] + ["L" * 20, "A" * 21, random_protein(random.Random(6), 700)]
    embs = [e.embed(s) for s in seqs]
    for batch in (8192, 37):
        ref = score_many(m, embs, batch=batch)
        for device in ("cpu", torch.device("cpu")):
            got = score_many(m, embs, batch=batch, device=device)
            for a, b in zip(got, ref):
                assert a.dtype == b.dtype == np.float64
                np.testing.assert_array_equal(a, b)
        with monkeypatch.context() as mp:
            mp.setattr(window_score, "_on_host", lambda dev: False)  # the GPU path, on the CPU
            for inputs in (embs, [torch.from_numpy(x) for x in embs]):
                got = score_many(m, inputs, batch=batch, device="cpu")
                for a, b in zip(got, ref):
                    assert a.dtype == np.float64 and a.shape == b.shape
                    np.testing.assert_array_equal(a, b)
    # the device copy is made once per model and device, and leaves model.net as it was
    net = window_score.device_net(m, "cpu")
    assert net is window_score.device_net(m, torch.device("cpu")) and net is not m.net and not net.training
    assert all(p.device.type == "cpu" for p in m.net.parameters())
    m.net = build(m.card)  # a replaced classifier gets a new copy
    assert window_score.device_net(m, "cpu") is not net


def test_predict_scores_on_the_embedders_gpu_only_for_esm2():
    from nesscan.predict import scoring_device

    class FakeESM2:
        name = "esm2_t6_8M_UR50D"

        def __init__(self, device):
            self.device = device

    assert scoring_device(BuiltinEmbedder()) is None  # the built-in CPU path is unchanged
    assert scoring_device(FakeESM2("cpu")) is None
    assert scoring_device(FakeESM2("cuda")) == "cuda"
    assert scoring_device(FakeESM2("cuda:1")) == "cuda:1"


# ----------------------------------------------------------------------------- predict


def _predict(fasta, outdir, model, batch_tokens, monkeypatch):
    monkeypatch.setattr(predict, "BUILTIN_STREAM_TOKENS", batch_tokens)
    predict.run_predict(fasta, str(outdir), model=model, progress=False)
    return {name: open(os.path.join(outdir, name)).read() for name in ("proteins.tsv", "candidates.tsv", "candidates.gff3")}


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_predict_streaming_equals_one_batch_and_per_protein(tmp_path, monkeypatch, arch):
    records = _proteins(11, 25, 8, 300)
    fasta = write_fasta(tmp_path / "in.fasta", records)
    model = _random_model(tmp_path, arch, seed=4)
    seen = []
    real = predict._consecutive_batches

    def spy(proteins, max_tokens):
        for b in real(proteins, max_tokens):
            seen.append(len(b))
            yield b

    monkeypatch.setattr(predict, "_consecutive_batches", spy)
    small = _predict(fasta, tmp_path / "small", model, 600, monkeypatch)  # many batches
    n_small = len(seen)
    seen.clear()
    one = _predict(fasta, tmp_path / "one", model, 1 << 30, monkeypatch)  # a single batch
    assert n_small > 5 and len(seen) == 1
    assert small == one  # byte-identical tables
    # one protein at a time, windows scored one by one with the plain classifier call
    m = load(model)
    e = BuiltinEmbedder()
    rows = {r["id"]: r for r in _read(tmp_path / "one" / "proteins.tsv")}
    cands = _read(tmp_path / "one" / "candidates.tsv")
    assert [r["id"] for r in _read(tmp_path / "one" / "proteins.tsv")] == [pid for pid, _ in records]
    for pid, seq in records:
        emb = e.embed(seq)
        ranked = predict.score_and_rank(m, pid, seq, emb, _plain_scores(m, emb), 5, 0.01)
        got = rows[pid]
        assert abs(float(got["nes_score"]) - float(ranked.protein_row[3])) <= 2e-4
        mine = [c for c in cands if c["id"] == pid]
        assert [(int(c["start"]), int(c["end"])) for c in mine] == [(c[2], c[3]) for c in ranked.candidate_rows]
        assert [c["evalue"] for c in mine] == [c[6] for c in ranked.candidate_rows]
        for c, r in zip(mine, ranked.candidate_rows):
            assert abs(float(c["score"]) - float(r[5])) <= 2e-4


def test_predict_batches_keep_input_order_and_budget():
    from nesscan.fasta import Protein

    prots = [Protein(f"p{i}", "A" * n) for i, n in enumerate([50, 10, 3000, 7, 400, 400, 20])]
    batches = list(predict._consecutive_batches(iter(prots), 1000))
    assert [p.id for b in batches for p in b] == [p.id for p in prots]
    for b in batches:
        assert len(b) == 1 or max(min(len(p), 1022) + 2 for p in b) * len(b) <= 1000
    assert predict.stream_batch_tokens(BuiltinEmbedder()) == predict.BUILTIN_STREAM_TOKENS


# ----------------------------------------------------------------------------- fusion and embedder


def _reference_motif_features(seq: str, W: int) -> np.ndarray:
    """The straightforward per-match loop (the first implementation of window_motif_features)."""
    L = len(seq)
    nW = max(L - W + 1, 1)
    feats = np.zeros((nW, len(fuse.MOTIF_FEATURES)))
    best_quality = np.full(nW, -1.0)

    def rng(start, end):
        if L < W:
            return 0, 0
        return max(0, end - W + 1), min(start, nW - 1)

    for tolerant in (False, True):
        for m in kosugi_matches(seq, at_tolerant=tolerant):
            a, b = rng(m.start, m.end)
            if a > b:
                continue
            feats[a : b + 1, 1 if tolerant else 0] = 1.0
            if "+phi0" in m.motif_class:
                feats[a : b + 1, 2] = 1.0
            core = seq[m.start : m.end + 1]
            q = (0.0 if tolerant else 2.0) + ("+phi0" in m.motif_class) - core.count("P")
            for w in range(a, b + 1):
                if q > best_quality[w]:
                    best_quality[w] = q
                    feats[w, 4] = core.count("P")
                    flank = seq[max(0, m.start - 3) : m.start] + seq[m.end + 1 : m.end + 4]
                    feats[w, 5] = sum(c in "DE" for c in flank)
    for s, e in wregex_matches(seq):
        a, b = rng(s, e)
        if a <= b:
            feats[a : b + 1, 3] = 1.0
    return feats


def _reference_kosugi(seq: str, at_tolerant: bool, phi0: bool = True) -> list:
    """Kosugi classes scanned position by position, character by character."""
    from nesscan.motifs import CLASSES, PHI, PHI_AT

    s = seq.upper()
    out = []
    for name, offs in CLASSES.items():
        for i in range(len(s) - offs[-1]):
            c = [s[i + o] for o in offs]
            strict = all(x in PHI for x in c)
            tolerant = not strict and c[0] in PHI_AT and c[1] in PHI_AT and c[2] in PHI and c[3] in PHI
            if not (tolerant if at_tolerant else strict):
                continue
            pos, cls = [i + o for o in offs], name
            if phi0 and not name.endswith("R"):
                for back in (3, 4):
                    if i - back >= 0 and s[i - back] in PHI:
                        pos, cls = [i - back] + pos, name + "+phi0"
                        break
            out.append((cls, tuple(pos), at_tolerant))
    return out


def test_kosugi_scan_equals_reference():
    rng = random.Random(12)
    alphabet = AA + "LLLIIVVFMAATlivat"
    n = 0
    for L in list(range(0, 30)) + [rng.randint(30, 1500) for _ in range(40)]:
        seq = random_protein(rng, L, alphabet)
        for tol in (False, True):
            for phi0 in (True, False):
                got = [(m.motif_class, m.phi, m.at_tolerant) for m in kosugi_matches(seq, at_tolerant=tol, phi0=phi0)]
                assert got == _reference_kosugi(seq, tol, phi0)
                n += len(got)
    assert n > 1000  # the sequences do contain matches of both kinds


def test_fusion_features_equal_reference():
    rng = random.Random(8)
    alphabet = AA + "LLLIIVFMPPDEAT"
    for n in list(range(1, 45)) + [rng.randint(45, 900) for _ in range(60)]:
        seq = random_protein(rng, n, alphabet)
        for W in (20, 12):
            np.testing.assert_array_equal(fuse.window_motif_features(seq, W), _reference_motif_features(seq, W))
    emb = np.random.default_rng(0).standard_normal((130, 7)).astype(np.float32)
    pw = fuse.pooled_windows(emb, 20)
    np.testing.assert_allclose(pw, np.stack([emb[i : i + 20].astype(np.float64).mean(0) for i in range(111)]), atol=1e-12)
    np.testing.assert_allclose(fuse.pooled_windows(emb[:9], 20), emb[:9].mean(0, keepdims=True), rtol=1e-6)


def test_builtin_embedder_context_tracks():
    e = BuiltinEmbedder()
    seq = random_protein(random.Random(2), 120) + "XBZUO"
    x = e.embed(seq)
    assert x.dtype == np.float32 and x.shape == (len(seq), e.dim)
    hyd = e.embed(seq)[:, 41]  # Kyte-Doolittle column of the scales
    for width, col in ((9, 47), (31, 48)):
        half = width // 2
        ref = [hyd[max(0, i - half) : i + half + 1].astype(np.float64).mean() for i in range(len(seq))]
        np.testing.assert_allclose(x[:, col], ref, rtol=1e-5, atol=1e-6)
    vals = np.random.default_rng(1).standard_normal((50, 3))
    np.testing.assert_array_equal(_running_mean(vals, 9), np.stack([_running_mean(vals[:, k], 9) for k in range(3)], 1))
    assert np.array_equal(e.embed_batch([seq, seq[:30]])[1], e.embed(seq[:30]))


# ----------------------------------------------------------------------------- ESM-2 (tiny, CPU)

esm = pytest.importorskip("esm")


def _tiny_esm2(path, layers=2, dim=32, heads=4, seed=0) -> str:
    """A random ESM-2 checkpoint in fair-esm's release layout (as in test_esm2.py)."""
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                 alphabet=esm.data.Alphabet.from_architecture("ESM-1b"))
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("contact_head.regression"):
            continue
        state[("encoder." if k.startswith("lm_head") else "encoder.sentence_encoder.") + k] = v.clone()
    cfg = argparse.Namespace(arch="esm2", encoder_layers=layers, encoder_embed_dim=dim, encoder_ffn_embed_dim=4 * dim,
                             encoder_attention_heads=heads, token_dropout=True, max_positions=1024, dropout=0.0)
    torch.save({"model": state, "cfg": {"model": cfg}}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny_esm(tmp_path_factory):
    return _tiny_esm2(tmp_path_factory.mktemp("esm") / "tiny.pt")


def test_esm2_batched_equals_per_sequence(tiny_esm):
    import nesscan.esm2 as esm2
    from nesscan.esm2 import ESM2Embedder

    rng = random.Random(4)
    seqs = [random_protein(rng, n) for n in (5, 31, 64, 200, 17, 150, 90)] + [random_protein(rng, 1100)]  # one chunked
    batched = ESM2Embedder("esm2_tiny", weights=tiny_esm, device="cpu", max_batch_tokens=4096)
    single = ESM2Embedder("esm2_tiny", weights=tiny_esm, device="cpu")
    real, forwards = batched._forward, []
    batched._forward = lambda rows: forwards.append([len(r) + 2 for r in rows]) or real(rows)
    many = batched.embed_batch(seqs)
    assert max(map(len, forwards)) > 1 and sum(map(len, forwards)) == len(seqs) + 1  # batches; 1100 -> 2 chunks
    for widths in forwards:  # within the token budget, and padding bounded by PAD_SLACK
        assert len(widths) * max(widths) <= 4096
        assert len(widths) == 1 or len(widths) * max(widths) <= (1 + esm2.PAD_SLACK) * sum(widths)
    for s, x in zip(seqs, many):
        y = single.embed_batch([s])[0]
        assert x.shape == y.shape == (len(s), 32)
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_predict_esm2_batched_equals_per_sequence(tmp_path, tiny_esm, monkeypatch):
    """The GPU code path (token batches from a length-sorted pool) run on CPU: predict's window
    scores equal those of one sequence at a time through the plain classifier call."""
    from nesscan.esm2 import ESM2Embedder

    sha = hashlib.sha256(open(tiny_esm, "rb").read()).hexdigest()
    model = _random_model(tmp_path, "cnn", dim=32, embedder="esm2_tiny", sha=sha, layer=2, seed=6)
    records = _proteins(21, 12, 10, 260)
    fasta = write_fasta(tmp_path / "esm.fasta", records)
    monkeypatch.setattr(predict, "ESM2_POOL_BATCHES", 1)
    real_init = ESM2Embedder.__init__

    def small_batches(self, *a, **k):  # several token batches per predict batch
        real_init(self, *a, **k)
        self.max_batch_tokens = 700

    monkeypatch.setattr(ESM2Embedder, "__init__", small_batches)
    predict.run_predict(fasta, str(tmp_path / "out"), model=model, weights=tiny_esm, device="cpu", progress=False)
    monkeypatch.setattr(ESM2Embedder, "__init__", real_init)
    got = {r["id"]: r for r in _read(tmp_path / "out" / "proteins.tsv")}
    m = load(model)
    single = ESM2Embedder("esm2_tiny", weights=tiny_esm, device="cpu")
    for pid, seq in records:
        ref = _plain_scores(m, single.embed_batch([seq])[0])
        b = int(np.argmax(ref))
        assert abs(float(got[pid]["nes_score"]) - ref[b]) <= 2e-4
        assert int(got[pid]["best_start"]) == window_bounds(len(seq), m.window)[0][b]


def test_predict_esm2_out_of_memory_halves_and_gives_the_same_tables(tmp_path, tiny_esm, monkeypatch, caplog):
    """A token batch that does not fit (simulated: the real forward pass refuses more than 600
    tokens, as CUDA would raise) is halved and retried inside ``predict``'s worker thread; the
    tables equal those of a run that never ran out of memory."""
    import logging

    import nesscan.esm2 as esm2

    sha = hashlib.sha256(open(tiny_esm, "rb").read()).hexdigest()
    model = _random_model(tmp_path, "cnn", dim=32, embedder="esm2_tiny", sha=sha, layer=2, seed=7)
    fasta = write_fasta(tmp_path / "oom.fasta", _proteins(23, 16, 20, 200))

    def run(name):
        predict.run_predict(fasta, str(tmp_path / name), model=model, weights=tiny_esm, device="cpu", progress=False)
        return {f: open(tmp_path / name / f).read() for f in ("proteins.tsv", "candidates.tsv", "candidates.gff3")}

    plain = run("plain")
    real_forward = esm2.ESM2Embedder._forward
    calls = []

    def forward(self, rows):
        tokens = len(rows) * (max(len(r) for r in rows) + 2)
        calls.append((len(rows), tokens))
        if tokens > 600:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(self, rows)

    monkeypatch.setattr(esm2.ESM2Embedder, "_forward", forward)
    with caplog.at_level(logging.WARNING, logger="nesscan.esm2"):
        halved = run("halved")
    assert any(t > 600 for _, t in calls) and any(n > 1 and t <= 600 for n, t in calls)  # refused, then halved
    assert sum(1 for r in caplog.records if "out of memory" in r.getMessage()) >= 1
    assert halved == plain


def test_predict_esm2_with_the_classifier_on_the_embedders_device_gives_the_same_tables(tmp_path, tiny_esm, monkeypatch):
    """ESM-2 on a GPU: predict scores windows on the embedder's device (``score_many(...,
    device=...)``). Run on the CPU through that code path (classifier copy, inputs moved, one
    transfer back), the tables are those of the default path."""
    from nesscan import window_score

    sha = hashlib.sha256(open(tiny_esm, "rb").read()).hexdigest()
    for arch in ("cnn", "transformer", "mlp"):
        model = _random_model(tmp_path, arch, dim=32, embedder="esm2_tiny", sha=sha, layer=2, seed=9)
        fasta = write_fasta(tmp_path / f"dev-{arch}.fasta", _proteins(29, 10, 10, 240))

        def run(name):
            out = tmp_path / f"{arch}-{name}"
            predict.run_predict(fasta, str(out), model=model, weights=tiny_esm, device="cpu", progress=False)
            return {f: open(out / f).read() for f in ("proteins.tsv", "candidates.tsv", "candidates.gff3")}

        plain = run("plain")
        devices = []
        real_score_many = predict.score_many

        def spy(m, embs, device=None, **k):
            devices.append(device)
            return real_score_many(m, embs, device=device, **k)

        with monkeypatch.context() as mp:
            mp.setattr(predict, "scoring_device", lambda embedder: "cpu")
            mp.setattr(predict, "score_many", spy)
            mp.setattr(window_score, "_on_host", lambda dev: False)
            on_device = run("device")
        assert devices and set(devices) == {"cpu"}
        assert on_device == plain


def test_predict_builtin_runs_torch_on_one_thread_per_stage(tmp_path, monkeypatch):
    """The built-in pipeline's threads (window network, trees, disorder networks) compute with
    one torch thread each (the pipeline's threads already fill two cores; more only
    oversubscribe them), and the caller's setting is restored afterwards."""
    import threading

    from nesscan import disorder, window_score
    from nesscan.model import load

    seen = collections.defaultdict(set)
    real = predict._embed_and_score
    real_trees = window_score._tree_logits_many
    real_tracks = disorder.DisorderTracks.predict

    def spy(*args):
        seen["net"].add((threading.current_thread().name.split("_")[0], torch.get_num_threads()))
        return real(*args)

    def spy_trees(*args):
        seen["trees"].add((threading.current_thread().name.split("_")[0], torch.get_num_threads()))
        return real_trees(*args)

    def spy_tracks(self, seqs):
        seen["disorder"].add((threading.current_thread().name.split("_")[0], torch.get_num_threads()))
        return real_tracks(self, seqs)

    monkeypatch.setattr(predict, "_embed_and_score", spy)
    monkeypatch.setattr(window_score, "_tree_logits_many", spy_trees)
    monkeypatch.setattr(disorder.DisorderTracks, "predict", spy_tracks)
    fasta = write_fasta(tmp_path / "t.fasta", _proteins(5, 6, 30, 120))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predict.run_predict(fasta, str(tmp_path / "o"), progress=False)
        assert seen["net"] == {("nesscan-embed", 1)}
        card = load(predict.resolve_model(None)).card
        if card.arch == "stack":
            assert seen["trees"] == {("nesscan-trees", 1)}
        if card.context != "none":
            assert seen["disorder"] == {("nesscan-disorder", 1)}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert predict.pipeline_torch_threads(BuiltinEmbedder()) == 1


def test_multiqc_content_streamed_equals_all_rows(tmp_path):
    """predict's MultiQC sections read back from the written tables as streams (bounded
    memory) are the files the all-rows-in-memory call writes: ties, NaN and blank scores,
    candidates above and below the threshold, a top-N cut inside a tie."""
    from nesscan.mqc import write_predict_mqc, write_predict_mqc_from_tables
    from nesscan.report import CANDIDATE_COLUMNS, PROTEIN_COLUMNS

    rng = random.Random(3)
    prot_rows, cand_rows = [], []
    for i in range(300):
        pid = f"p{i}"
        score = rng.choice(["", "nan", f"{rng.random():.4f}", "0.9500"])
        prot_rows.append([pid, 100, score, f"{rng.random():.4f}", f"{rng.random():.3g}", 1, 20, "L" * 20, 0])
        for k in range(rng.randint(0, 5)):
            s = rng.choice(["0.9500", "0.9000", "", "nan", f"{rng.random():.4f}", f"{0.85 + rng.random() / 10:.4f}"])
            cand_rows.append([pid, k + 1, 5 * k + 1, 5 * k + 20, "L" * 20, s, "0.01", "0.02", "yes" if s >= "0.9" else "no",
                              "0.5", "0.5", "0.5", s, "1a", "1;5;8;10", 5 * k + 1, 5 * k + 20, "", ""])
    header = PROTEIN_COLUMNS
    for name, cols, rows in (("proteins.tsv", header, prot_rows), ("candidates.tsv", CANDIDATE_COLUMNS, cand_rows)):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(cols)
            w.writerows(rows)
    ties = sum(r[5] == "0.9500" for r in cand_rows)
    for top_n in (ties - 3, 50):  # cut inside the tie at 0.95, and below it
        a = write_predict_mqc(str(tmp_path / f"all{top_n}"), _read(tmp_path / "proteins.tsv"),
                              _read(tmp_path / "candidates.tsv"), sample="s", top_n=top_n)
        b = write_predict_mqc_from_tables(str(tmp_path / f"stream{top_n}"), str(tmp_path / "proteins.tsv"),
                                          str(tmp_path / "candidates.tsv"), sample="s", top_n=top_n)
        assert [os.path.basename(p) for p in a] == [os.path.basename(p) for p in b] and len(a) == 3
        for pa, pb in zip(a, b):
            assert open(pa).read() == open(pb).read()


def test_predict_disorder_groups_do_not_change_the_tables(tmp_path, monkeypatch):
    """predict predicts the disorder channels group by group, one group ahead in a thread of
    its own: with many small groups (each spanning batches, and batches split across groups)
    the tables are those of one group for the whole input (same rows in the same order; values
    equal up to metapredict's ~1e-7 batch effect, far below the printed precision)."""
    from nesscan import disorder

    fasta = write_fasta(tmp_path / "g.fasta", _proteins(21, 40, 15, 300))

    def run(first, group, tokens, name):
        monkeypatch.setattr(disorder, "FIRST_GROUP_RESIDUES", first)
        monkeypatch.setattr(disorder, "GROUP_RESIDUES", group)
        monkeypatch.setattr(predict, "BUILTIN_STREAM_TOKENS", tokens)
        out = tmp_path / name
        predict.run_predict(fasta, str(out), progress=False)
        return _read(out / "proteins.tsv"), _read(out / "candidates.tsv")

    one = run(1 << 30, 1 << 30, 1 << 16, "one")
    many = run(150, 700, 600, "many")
    for a, b in zip(one, many):
        assert len(a) == len(b) > 0
        for ra, rb in zip(a, b):
            assert [ra["id"], ra.get("rank"), ra.get("start")] == [rb["id"], rb.get("rank"), rb.get("start")]
            for k in ("score", "nes_score", "evalue"):
                if k in ra and ra[k] not in ("", "nan"):
                    assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-3, abs=1e-4), k


def test_bound_heap_sets_glibc_thresholds():
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    from nesscan.memory import bound_heap

    assert bound_heap() is True



_RESIDENT_CUDA = """
import json, sys
import numpy as np
import torch
from nesscan.memory import CUDA_LIBRARY, page_out_cuda_libraries

def resident():  # kB resident in the CUDA libraries' read-only mappings
    total, take = 0, False
    for line in open("/proc/self/smaps"):
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            take = len(head) >= 6 and "w" not in head[1] and bool(CUDA_LIBRARY.search(head[-1]))
        elif head[0] == "Rss:" and take:
            total += int(head[1])
    return total

before = resident()
if sys.argv[1] == "advise":
    advised = page_out_cuda_libraries()
elif sys.argv[1] == "predict":  # a whole CPU-only predict run
    from nesscan.predict import run_predict
    run_predict(sys.argv[2], sys.argv[3], device="cpu", progress=False)
    advised = None
elif sys.argv[1] == "explain":  # a whole CPU-only explain run
    from nesscan.explain import run_explain
    run_explain(sys.argv[2], sys.argv[3], device="cpu", plots=1, steps=8, progress=False)
    advised = None
else:  # a CPU-only embed run
    from nesscan.embed import run_embed
    from nesscan.embedders import get_embedder
    run_embed(sys.argv[2], sys.argv[3], get_embedder("builtin", device="cpu"), progress=False)
    advised = None
after = resident()
a = np.arange(16.0).reshape(4, 4)
same = float((torch.from_numpy(a) @ torch.from_numpy(a)).sum()) == float((a @ a).sum())
print(json.dumps([before, advised, after, same]))
"""


def _resident_cuda(*args):
    import json
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("Linux /proc and madvise only")
    # the kernel reclaims only pages that no other process maps: this test process imported
    # torch too, so it lets go of its own CUDA library pages first
    from nesscan.memory import page_out_cuda_libraries

    page_out_cuda_libraries()
    res = subprocess.run([sys.executable, "-c", _RESIDENT_CUDA, *args], capture_output=True, text=True, check=True)
    before, advised, after, same = json.loads(res.stdout.strip().splitlines()[-1])
    if before == 0:
        pytest.skip("this torch build loads no CUDA libraries (CPU-only wheel)")
    return before, advised, after, same


def test_page_out_cuda_libraries_drops_their_resident_pages():
    before, advised, after, same = _resident_cuda("advise")
    assert advised > 0
    assert after < before / 4, (before, after)  # kB resident before and after the advice
    assert same  # torch still computes, and right


def test_cpu_predict_runs_without_the_cuda_libraries_resident(tmp_path):
    before, _, after, _ = _resident_cuda("predict", EXAMPLE, str(tmp_path / "out"))
    assert after < before / 4, (before, after)
    assert (tmp_path / "out" / "candidates.tsv").stat().st_size > 0


def test_cpu_embed_runs_without_the_cuda_libraries_resident(tmp_path):
    before, _, after, _ = _resident_cuda("embed", EXAMPLE, str(tmp_path / "emb.h5"))
    assert after < before / 4, (before, after)
    assert (tmp_path / "emb.h5").stat().st_size > 0


def test_cpu_explain_runs_without_the_cuda_libraries_resident(tmp_path):
    before, _, after, _ = _resident_cuda("explain", EXAMPLE, str(tmp_path / "explain"))
    assert after < before / 4, (before, after)
    assert (tmp_path / "explain" / "attributions.tsv").stat().st_size > 0


def test_uses_cuda_follows_the_embedder_and_its_disorder_tracks():
    from nesscan.embedders import get_embedder
    from nesscan.memory import uses_cuda

    assert uses_cuda(get_embedder("builtin", device="cpu")) is False
    assert uses_cuda(None) is torch.cuda.is_initialized()

    class OnCuda:  # where an ESM-2 embedder on a GPU keeps its device
        device = torch.device("cuda:0")

    assert uses_cuda(OnCuda()) is True

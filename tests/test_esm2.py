"""ESM-2 embedder: tiny random-weight checkpoints in fair-esm's on-disk format (no downloads)."""

import argparse
import hashlib
import logging
import os
import shutil
import urllib.error
import warnings

import h5py
import numpy as np
import pytest
import torch

esm = pytest.importorskip("esm")
pytest.importorskip("esm.pretrained")  # binds esm.pretrained
from esm.model.esm2 import ESM2  # noqa: E402

from nesscan.embedders import get_embedder  # noqa: E402
from nesscan.errors import NesscanError  # noqa: E402
from nesscan.fasta import Protein  # noqa: E402
from esm.multihead_attention import MultiheadAttention  # noqa: E402

from nesscan.esm2 import ESM2Embedder, chunk_spans  # noqa: E402
from nesscan.esm2_kernels import _SdpaAttention, to_half, use_sdpa  # noqa: E402
import nesscan.esm2 as esm2  # noqa: E402

AA = "ACDEFGHIKLMNPQRSTVWY"
NAME = "esm2_t2_test"


def random_seq(rng: np.random.Generator, n: int, alphabet: str = AA) -> str:
    return "".join(rng.choice(list(alphabet), size=n))


def write_checkpoint(path, layers=2, dim=64, heads=4, seed=0, attn_scale=None):
    """An ESM-2 checkpoint laid out like fair-esm's release files (fairseq prefixes, cfg Namespace,
    no contact-regression weights)."""
    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                 alphabet=esm.data.Alphabet.from_architecture("ESM-1b"))
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("contact_head.regression"):
            continue
        v = v.clone()
        if attn_scale is not None and k.endswith("self_attn.out_proj.weight"):
            v *= attn_scale
        prefix = "encoder." if k.startswith("lm_head") else "encoder.sentence_encoder."
        state[prefix + k] = v
    cfg = argparse.Namespace(arch="esm2", encoder_layers=layers, encoder_embed_dim=dim,
                             encoder_ffn_embed_dim=4 * dim, encoder_attention_heads=heads,
                             token_dropout=True, max_positions=1024, dropout=0.0)
    torch.save({"model": state, "cfg": {"model": cfg}}, str(path))
    return str(path)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def reference(path, name=NAME):
    """fair-esm's own model and alphabet for a checkpoint (trusted test file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, alphabet = esm.pretrained.load_model_and_alphabet_core(
            name, torch.load(str(path), map_location="cpu", weights_only=False))
    return model.eval(), alphabet


def reference_repr(model, alphabet, seq, layer):
    _, _, tokens = alphabet.get_batch_converter()([("p", seq)])
    with torch.no_grad():
        rep = model(tokens, repr_layers=[layer])["representations"][layer]
    return rep[0, 1:len(seq) + 1].numpy()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("esm") / "tiny.pt")


@pytest.fixture(scope="module")
def ckpt_local(tmp_path_factory):
    """Attention outputs scaled by 0.01: per-residue identity dominates the representation."""
    return write_checkpoint(tmp_path_factory.mktemp("esm") / "local.pt", seed=1, attn_scale=0.01)


@pytest.fixture(scope="module")
def ckpt_t6(tmp_path_factory):
    """A correctly shaped (random) esm2_t6_8M_UR50D."""
    return write_checkpoint(tmp_path_factory.mktemp("esm") / "esm2_t6_8M_UR50D.pt", layers=6, dim=320, heads=20)


@pytest.fixture(scope="module")
def emb(ckpt):
    return ESM2Embedder(NAME, weights=ckpt, device="cpu")


@pytest.fixture(scope="module")
def ref(ckpt):
    return reference(ckpt)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("NESSCAN_OFFLINE", raising=False)
    return home / "hub" / "checkpoints"


# ---- loading and equality with fair-esm -----------------------------------------------------


def test_load_through_get_embedder(ckpt):
    e = get_embedder(NAME, weights=ckpt, device="cpu")
    assert isinstance(e, ESM2Embedder)
    assert (e.name, e.dim, e.layer, e.num_layers) == (NAME, 64, 2, 2)
    assert e.weights_sha256 == sha256(ckpt)
    assert e.device == "cpu" and e.precision == "float32" and e.attention == "sdpa"
    assert e.max_batch_tokens == esm2.CPU_BATCH_TOKENS == 1024
    assert not e.model.training
    assert e.meta() == {"embedder": NAME, "layer": 2, "dimension": 64, "weights_sha256": sha256(ckpt), "context": "none"}


def test_esm2_with_disorder_channels(ckpt):
    """The disorder channels work for ESM-2 as for the built-in embedder: ESM-2's features
    unchanged, two channels appended, the specification in the metadata."""
    base = get_embedder(NAME, weights=ckpt, device="cpu")
    ctx = get_embedder(NAME, weights=ckpt, device="cpu", context="disorder")
    seqs = ["MSEEKKAAEEPKSPEKKSSEEGSSKKEE", "MLLIVLAVLLFLIVALLGAIVWLLAILX"]
    a, b = base.embed_batch(seqs), ctx.embed_batch(seqs)
    assert ctx.dim == 66 and ctx.name == NAME and ctx.weights_sha256 == base.weights_sha256
    for x, y, s in zip(a, b, seqs):
        assert y.shape == (len(s), 66)
        np.testing.assert_array_equal(y[:, :64], x)
        assert np.all((y[:, 64:] >= 0) & (y[:, 64:] <= 1))
    assert ctx.meta()["context"].startswith("metapredict-") and ctx.meta()["dimension"] == 66


def test_matches_fair_esm_and_padding(emb, ref):
    rng = np.random.default_rng(0)
    seqs = [random_seq(rng, n) for n in (7, 45, 130)] + ["MKXBZUOLLAGXX" + random_seq(rng, 20)]
    together = emb.embed_batch(seqs)
    for s, a in zip(seqs, together):
        assert a.shape == (len(s), 64) and a.dtype == np.float32
        np.testing.assert_allclose(a, reference_repr(*ref, s, 2), atol=1e-5, rtol=0)
        np.testing.assert_allclose(a, emb.embed_batch([s])[0], atol=1e-5, rtol=0)
    # lower case is accepted like upper case; characters without a token are refused
    np.testing.assert_allclose(emb.embed_batch([seqs[0].lower()])[0], together[0], atol=1e-6)
    with pytest.raises(NesscanError, match="position 3"):
        emb.embed_batch(["AC-D"])


def test_layer_choice(ckpt, emb, ref):
    e1 = ESM2Embedder(NAME, weights=ckpt, layer=1, device="cpu")
    seq = random_seq(np.random.default_rng(1), 60)
    a1, a2 = e1.embed_batch([seq])[0], emb.embed_batch([seq])[0]
    assert e1.layer == 1 and e1.meta()["layer"] == 1
    assert np.abs(a1 - a2).max() > 0.1
    np.testing.assert_allclose(a1, reference_repr(*ref, seq, 1), atol=1e-5, rtol=0)
    assert ESM2Embedder(NAME, weights=ckpt, layer=-1, device="cpu").layer == 2
    e0 = ESM2Embedder(NAME, weights=ckpt, layer=-3, device="cpu")
    assert e0.layer == 0
    np.testing.assert_allclose(e0.embed_batch([seq])[0], reference_repr(*ref, seq, 0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("layer", [3, -4, 100])
def test_layer_out_of_range(ckpt, layer):
    with pytest.raises(NesscanError, match=r"layer .* out of range .*0\.\.2"):
        ESM2Embedder(NAME, weights=ckpt, layer=layer, device="cpu")


def test_cuda_request_falls_back_to_cpu(ckpt, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="nesscan.esm2"):
        e = ESM2Embedder(NAME, weights=ckpt, device="cuda")
    assert e.device == "cpu" and e.precision == "float32"
    assert any("falling back to CPU" in r.getMessage() for r in caplog.records)
    assert ESM2Embedder(NAME, weights=ckpt, device="auto").device == "cpu"
    with pytest.raises(NesscanError, match="unknown device"):
        ESM2Embedder(NAME, weights=ckpt, device="tpu")


def test_half_precision_keeps_rotary_tables_exact(ckpt):
    """The GPU path (model.half()) checked on CPU: rotary tables computed in float32."""
    model, alphabet = reference(ckpt)
    seq = random_seq(np.random.default_rng(2), 300)
    _, _, tokens = alphabet.get_batch_converter()([("p", seq)])
    with torch.no_grad():
        full = model(tokens, repr_layers=[2])["representations"][2]
        to_half(model)
        half = model(tokens, repr_layers=[2])["representations"][2]
    rot = model.layers[0].self_attn.rot_emb
    assert rot.inv_freq.dtype == torch.float32 and rot._cos_cached.dtype == torch.float16
    t = torch.arange(1000, dtype=torch.float32)
    emb_ = torch.cat([torch.outer(t, rot.inv_freq)] * 2, dim=-1)
    rot._update_cos_sin_tables(torch.zeros(1, 1000, 16, dtype=torch.float16), seq_dimension=-2)
    assert torch.equal(rot._cos_cached[0], emb_.cos().half())
    assert half.dtype == torch.float16
    assert (half.float() - full).abs().max().item() < 0.05


# ---- scaled-dot-product attention -----------------------------------------------------------


@pytest.fixture(scope="module")
def emb_explicit(ckpt):
    return ESM2Embedder(NAME, weights=ckpt, device="cpu", sdpa=False)


def sdpa_spy(monkeypatch):
    """Counts calls of torch's real scaled_dot_product_attention and keeps the masks passed."""
    real = torch.nn.functional.scaled_dot_product_attention
    calls = []

    def spy(q, k, v, attn_mask=None, **kw):
        calls.append((tuple(q.shape), attn_mask, kw))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return calls


def test_sdpa_is_installed_and_used(emb, emb_explicit, monkeypatch):
    assert emb.attention == "sdpa" and emb_explicit.attention == "explicit"
    for layer in emb.model.layers:
        assert isinstance(layer.self_attn, _SdpaAttention)
        assert type(layer.self_attn).forward is not MultiheadAttention.forward
    for layer in emb_explicit.model.layers:
        assert type(layer.self_attn) is MultiheadAttention
    assert use_sdpa(emb.model) == 2  # idempotent: both layers already switched
    with pytest.raises(NesscanError, match="ESM-2"):
        use_sdpa(torch.nn.Linear(2, 2))

    calls = sdpa_spy(monkeypatch)
    rng = np.random.default_rng(11)
    lengths = (20, 26, 30)
    rows = [emb._encode(random_seq(rng, n)) for n in lengths]
    emb._forward(rows)
    assert len(calls) == emb.num_layers
    for shape, mask, kw in calls:
        assert shape == (3, 4, 32, 16)  # (batch, heads, tokens, head_dim)
        assert kw["scale"] == 1.0  # q is pre-scaled as in fair-esm
        assert mask.dtype == torch.bool and tuple(mask.shape) == (3, 1, 1, 32)
        want = torch.arange(32)[None, :] < torch.tensor(lengths)[:, None] + 2  # BOS..EOS may be attended
        assert torch.equal(mask[:, 0, 0], want)
    calls.clear()
    emb._forward(rows[:1])  # no padding: no mask, so CUDA may take FlashAttention
    assert len(calls) == emb.num_layers and all(mask is None for _, mask, _ in calls)
    calls.clear()
    emb_explicit._forward(rows)
    assert calls == []


def test_sdpa_matches_explicit_attention(ckpt, emb, emb_explicit):
    rng = np.random.default_rng(12)
    # one token batch with padding (lengths within PAD_SLACK and the 1024-token budget)
    rows = [emb._encode(random_seq(rng, n)) for n in (100, 110, 118, 120)]
    fused, explicit = emb._forward(rows), emb_explicit._forward(rows)
    for r, a, b in zip(rows, fused, explicit):
        assert a.shape == b.shape == (len(r), 64)
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    # the padded rows are what they are alone: the key-padding mask is honoured
    np.testing.assert_allclose(fused[0], emb._forward(rows[:1])[0], atol=1e-5, rtol=1e-4)
    # whole embed_batch, with a protein chunked at the default 1,022 residues
    seqs = [random_seq(rng, n) for n in (7, 45, 46, 130, 1500)]
    for a, b in zip(emb.embed_batch(seqs), emb_explicit.embed_batch(seqs)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    # small chunks batched with short proteins, padding inside the batches
    small = ESM2Embedder(NAME, weights=ckpt, device="cpu", max_residues=30, overlap=8)
    small_x = ESM2Embedder(NAME, weights=ckpt, device="cpu", max_residues=30, overlap=8, sdpa=False)
    seqs = [random_seq(rng, n) for n in (12, 95, 30, 31, 64, 8, 27)]
    for a, b in zip(small.embed_batch(seqs), small_x.embed_batch(seqs)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_sdpa_falls_back_for_attention_maps(ckpt, ref):
    model, alphabet = ref
    fused, _ = reference(ckpt)
    assert use_sdpa(fused) == 2
    seqs = [("a", random_seq(np.random.default_rng(13), 40)), ("b", random_seq(np.random.default_rng(14), 25))]
    _, _, tokens = alphabet.get_batch_converter()(seqs)
    with torch.no_grad():
        want = model(tokens, repr_layers=[1, 2], need_head_weights=True)
        got = fused(tokens, repr_layers=[1, 2], need_head_weights=True)
        plain = fused(tokens, repr_layers=[1, 2])
    # need_head_weights runs fair-esm's own attention: identical maps and representations
    assert got["attentions"].shape == (2, 2, 4, 42, 42)
    assert torch.equal(got["attentions"], want["attentions"])
    for layer in (1, 2):
        assert torch.equal(got["representations"][layer], want["representations"][layer])
        torch.testing.assert_close(plain["representations"][layer], want["representations"][layer],
                                   atol=1e-5, rtol=1e-4)
    assert "attentions" not in plain


# ---- long proteins --------------------------------------------------------------------------


def test_chunk_spans_rule():
    assert chunk_spans(500) == [(0, 500, 0, 500)]
    assert chunk_spans(1022) == [(0, 1022, 0, 1022)]
    assert chunk_spans(2500) == [(0, 1022, 0, 880), (739, 1761, 880, 1619), (1478, 2500, 1619, 2500)]
    for m, ov in [(1022, 256), (30, 8), (10, 0), (50, 49), (7, 3)]:
        for n in list(range(1, 200)) + [999, 1023, 2045, 5000, 35991]:
            spans = chunk_spans(n, m, ov)
            assert spans[0][2] == 0 and spans[-1][3] == n
            for i, (s, e, a, b) in enumerate(spans):
                assert e - s == min(n, m)  # every chunk is full length
                assert s <= a < b <= e  # keeps a non-empty part of itself
                if i:
                    assert a == spans[i - 1][3]  # kept parts tile the protein
                    assert spans[i - 1][1] - s >= ov  # neighbours overlap by at least `overlap`
                    assert a - s >= ov // 2  # kept residues are >= overlap/2 from an inner chunk edge
                if i < len(spans) - 1:
                    assert e - b >= ov // 2
            if n > m:
                assert len(spans) == -(-(n - ov) // (m - ov))
    with pytest.raises(NesscanError):
        chunk_spans(10, 5, 5)


def test_long_protein_stitching(ckpt_local):
    rng = np.random.default_rng(3)
    seq = random_seq(rng, 2500)
    e = ESM2Embedder(NAME, weights=ckpt_local, device="cpu")
    assert e.max_residues == 1022 and e.token_length(Protein("long", seq)) == 3 * 1024
    stitched = e.embed_batch([seq])[0]
    assert stitched.shape == (2500, 64)
    spans = chunk_spans(2500)
    # (a) each residue comes from the chunk that owns it, at the right offset
    for s, end, a, b in spans:
        alone = e.embed_batch([seq[s:end]])[0]
        np.testing.assert_allclose(stitched[a:b], alone[a - s:b - s], atol=1e-5, rtol=0)
    # (b) against one unchunked run of all 2,500 residues (rotary positions accept it)
    model, alphabet = reference(ckpt_local)
    full = reference_repr(model, alphabet, seq, 2)
    diff = np.abs(stitched - full).max()
    shifted = np.abs(stitched[1:] - full[:-1]).max(axis=1).mean()
    assert diff < 0.02, diff
    assert shifted > 20 * diff, (shifted, diff)
    # a boundary that is off by one residue would be caught as well
    a = spans[1][2]
    wrong = stitched.copy()
    wrong[a:a + 10] = stitched[a - 1:a + 9]
    assert np.abs(wrong - full).max() > 20 * diff


def test_chunks_batch_with_short_proteins(ckpt):
    rng = np.random.default_rng(4)
    seqs = [random_seq(rng, n) for n in (12, 95, 30, 31, 64, 8)]
    small = ESM2Embedder(NAME, weights=ckpt, device="cpu", max_residues=30, overlap=8)
    together = small.embed_batch(seqs)
    for s, a in zip(seqs, together):
        assert a.shape == (len(s), 64)
        np.testing.assert_allclose(a, small.embed_batch([s])[0], atol=1e-5, rtol=0)
    # stitched from the right chunks
    s95 = seqs[1]
    for s, e, a, b in chunk_spans(95, 30, 8):
        np.testing.assert_allclose(together[1][a:b], small.embed_batch([s95[s:e]])[0][a - s:b - s], atol=1e-5)
    # a tiny token budget gives the same numbers (sub-batches inside embed_batch)
    small.max_batch_tokens = 40
    for a, b in zip(small.embed_batch(seqs), together):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    # batches(): chunked proteins count one row per chunk against the budget
    small.max_batch_tokens = 128
    proteins = [Protein(f"p{i}", s) for i, s in enumerate(seqs * 3)]
    batches = list(small.batches(proteins))
    assert sorted(p.id for b in batches for p in b) == sorted(p.id for p in proteins)
    for b in batches:
        rows = [small._rows(len(p)) for p in b]
        cost = max(w for _, w in rows) * sum(r for r, _ in rows)
        assert cost <= 128 or len(b) == 1
    assert small.token_length(Protein("x", s95)) == len(chunk_spans(95, 30, 8)) * 32
    assert small.token_length(Protein("x", "ACD")) == 5


def test_out_of_memory_halves_the_batch(ckpt, emb, caplog):
    e = ESM2Embedder(NAME, weights=ckpt, device="cpu")
    real = e._forward
    sizes = []

    def forward(rows):
        sizes.append(len(rows))
        if len(rows) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(rows)

    e._forward = forward
    seqs = [random_seq(np.random.default_rng(7), n) for n in (20, 21, 22, 23, 24, 25, 26)]
    with caplog.at_level(logging.WARNING, logger="nesscan.esm2"):
        got = e.embed_batch(seqs)
    assert sizes[0] == 7 and max(sizes[1:]) <= 7 and e.max_batch_tokens < 4096
    assert any("out of memory" in r.getMessage() for r in caplog.records)
    for a, b in zip(got, emb.embed_batch(seqs)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    e._forward = lambda rows: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("simulated"))
    with pytest.raises(NesscanError, match="out of GPU memory embedding one 22-token sequence"):
        e.embed_batch([seqs[0]])


# ---- errors ---------------------------------------------------------------------------------


class Custom:
    def __init__(self):
        self.x = 1


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_missing_weights_file(tmp_path):
    p = tmp_path / "nope.pt"
    with pytest.raises(NesscanError, match=f"ESM-2 weights file not found: {p}"):
        ESM2Embedder(NAME, weights=str(p))
    with pytest.raises(NesscanError, match="directory"):
        ESM2Embedder(NAME, weights=str(tmp_path))


def test_architecture_mismatch(ckpt):
    with pytest.raises(NesscanError) as ei:
        get_embedder("esm2_t6_8M_UR50D", weights=ckpt, device="cpu")
    msg = str(ei.value)
    assert "2-layer 64-dim ESM-2, not esm2_t6_8M_UR50D (6 layers, 320 dims)" in msg and "\n" not in msg


def test_not_a_torch_file(tmp_path):
    p = tmp_path / "random.pt"
    p.write_bytes(np.random.default_rng(5).bytes(4096))
    with pytest.raises(NesscanError, match="not a PyTorch checkpoint") as ei:
        ESM2Embedder(NAME, weights=str(p))
    assert "\n" not in str(ei.value)
    p.write_bytes(b"")
    with pytest.raises(NesscanError, match="ESM-2 weights file is empty"):
        ESM2Embedder(NAME, weights=str(p))


@pytest.mark.parametrize("content, expect", [
    ({"state_dict": {"w": torch.zeros(2)}}, "expected a dict with 'model' and 'cfg'"),
    ([torch.zeros(3)], "expected a dict"),
    ({"model": {"w": torch.zeros(2)}, "cfg": {"model": {"encoder_layers": 2}}}, "encoder_embed_dim"),
    ({"model": {"w": torch.zeros(2)}, "cfg": {}}, "cfg"),
])
def test_torch_file_that_is_not_esm2(tmp_path, content, expect):
    p = tmp_path / "other.pt"
    torch.save(content, str(p))
    with pytest.raises(NesscanError, match=expect):
        ESM2Embedder(NAME, weights=str(p))


def test_checkpoint_with_wrong_tensors(tmp_path, ckpt):
    data = torch.load(ckpt, weights_only=False)
    data["cfg"]["model"].encoder_layers = 3  # cfg claims 3 layers, the state dict holds 2
    p = tmp_path / "bad.pt"
    torch.save(data, str(p))
    with pytest.raises(NesscanError, match="do not fit a 3-layer 64-dim ESM-2: 17 missing tensors") as ei:
        ESM2Embedder(NAME, weights=str(p))
    assert "\n" not in str(ei.value)
    data["cfg"]["model"].encoder_layers = 2
    data["model"]["encoder.sentence_encoder.layers.0.fc1.weight"] = torch.zeros(3, 3)
    torch.save(data, str(p))
    with pytest.raises(NesscanError, match="do not fit .* wrong shape for layers.0.fc1.weight"):
        ESM2Embedder(NAME, weights=str(p))


@pytest.mark.parametrize("kind", ["custom_class", "code_payload"])
def test_forbidden_global_is_never_unpickled(tmp_path, ckpt, kind):
    data = torch.load(ckpt, weights_only=False)
    marker = tmp_path / "pwned"
    data["extra"] = Custom() if kind == "custom_class" else Payload(str(marker))
    p = tmp_path / "evil.pt"
    torch.save(data, str(p))
    with pytest.raises(NesscanError, match="does not unpickle") as ei:
        ESM2Embedder(NAME, weights=str(p))
    assert "\n" not in str(ei.value)
    assert not marker.exists()


def test_offline_without_weights(empty_hub, monkeypatch):
    monkeypatch.setenv("NESSCAN_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded while offline"))
    with pytest.raises(NesscanError) as ei:
        get_embedder("esm2_t6_8M_UR50D")
    msg = str(ei.value)
    assert "esm2_t6_8M_UR50D" in msg and "--weights" in msg and "NESSCAN_OFFLINE" in msg
    assert str(empty_hub / "esm2_t6_8M_UR50D.pt") in msg
    with pytest.raises(NesscanError, match="--weights"):
        ESM2Embedder("esm2_t6_8M_UR50D", download=False)


def test_custom_name_needs_weights(empty_hub):
    with pytest.raises(NesscanError, match="custom ESM-2 model esm2_mine needs its checkpoint: pass --weights"):
        get_embedder("esm2_mine")
    with pytest.raises(NesscanError, match="not an ESM-2 model name"):
        ESM2Embedder("esm2_../../etc", weights=None)


def test_download_failure(empty_hub, monkeypatch):
    def fail(url, dst, *a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(NesscanError, match="download from https://dl.fbaipublicfiles.com/fair-esm/models/"
                                           "esm2_t6_8M_UR50D.pt failed .*--weights"):
        ESM2Embedder("esm2_t6_8M_UR50D")


# ---- torch hub cache and download -----------------------------------------------------------


def test_custom_name_from_hub_cache(empty_hub, ckpt):
    empty_hub.mkdir(parents=True)
    shutil.copy(ckpt, empty_hub / f"{NAME}.pt")
    e = get_embedder(NAME, device="cpu")
    assert e.weights_path == str(empty_hub / f"{NAME}.pt")
    assert (e.dim, e.layer, e.weights_sha256) == (64, 2, sha256(ckpt))


def test_known_name_from_hub_cache(empty_hub, ckpt_t6, monkeypatch):
    monkeypatch.setenv("NESSCAN_OFFLINE", "1")
    empty_hub.mkdir(parents=True)
    os.symlink(ckpt_t6, empty_hub / "esm2_t6_8M_UR50D.pt")
    e = get_embedder("esm2_t6_8M_UR50D", device="cpu")
    assert (e.dim, e.layer, e.heads, e.weights_sha256) == (320, 6, 20, sha256(ckpt_t6))
    assert e.embed_batch(["MKLVAEXQ"])[0].shape == (8, 320)


def test_known_name_downloaded_into_cache(empty_hub, ckpt_t6, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst))
        shutil.copy(ckpt_t6, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    e = ESM2Embedder("esm2_t6_8M_UR50D", layer=-2, device="cpu")
    dst = str(empty_hub / "esm2_t6_8M_UR50D.pt")
    assert calls == [("https://dl.fbaipublicfiles.com/fair-esm/models/esm2_t6_8M_UR50D.pt", dst)]
    assert e.weights_path == dst and os.path.isfile(dst) and e.layer == 5
    ESM2Embedder("esm2_t6_8M_UR50D", device="cpu")  # second time: from the cache
    assert len(calls) == 1


# ---- end to end -----------------------------------------------------------------------------


def test_run_embed_end_to_end(tmp_path, ckpt):
    from nesscan.embed import run_embed
    from nesscan.store import EmbeddingReader, sequence_sha256

    rng = np.random.default_rng(6)
    records = {"sp|P1|A": random_seq(rng, 40), "P2": random_seq(rng, 75) + "XBZUO", "P3": random_seq(rng, 9)}
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{k} some description\n{v}\n" for k, v in records.items()))
    e = ESM2Embedder(NAME, weights=ckpt, device="cpu", max_residues=30, overlap=8)
    out = tmp_path / "emb.h5"
    summary = run_embed(str(fasta), str(out), e, progress=False)
    assert summary["embedded"] == 3
    with h5py.File(out, "r") as f:
        assert f.attrs["embedder"] == NAME and int(f.attrs["layer"]) == 2
        assert int(f.attrs["dimension"]) == 64 and f.attrs["weights_sha256"] == sha256(ckpt)
        assert bool(f.attrs["complete"])
        assert len(f["proteins"]) == 3
        for ds in f["proteins"].values():
            seq = records[ds.attrs["id"]]
            assert ds.shape == (len(seq), 64)
            assert ds.attrs["sequence_sha256"] == sequence_sha256(seq)
            assert ds.attrs["weights_sha256"] == sha256(ckpt)
            assert ds.attrs["embedder"] == NAME and int(ds.attrs["layer"]) == 2
    got = {pid: a for pid, _, a in EmbeddingReader(str(out))}
    for pid, seq in records.items():
        np.testing.assert_allclose(got[pid], e.embed_batch([seq])[0], atol=1e-5, rtol=0)
    # a re-run reuses everything
    assert run_embed(str(fasta), str(out), e, progress=False)["reused"] == 3

#!/usr/bin/env python3
"""ESM-2 embedding throughput: nesscan's token-batched path vs fair-esm's plain loop.

* **nesscan** — what ``nesscan predict`` does with an ESM-2 model: consecutive predict batches
  (a pool of a few token batches, :func:`nesscan.predict.stream_batch_tokens`), which
  :class:`nesscan.esm2.ESM2Embedder` sorts by length and packs into batches of at most
  ``max_batch_tokens`` tokens (padding included); float16 weights on CUDA (float32 on CPU);
  attention through torch's scaled_dot_product_attention (``--no-sdpa``: fair-esm's explicit
  attention); proteins over 1,022 residues in overlapping chunks; out-of-memory halves the batch.
  ``--compare-attention`` times the nesscan path with both attention modes and reports the
  speed-up of SDPA and the largest difference between the two modes' embeddings.
* **fair-esm loop** — the plain way: one sequence per forward pass, float32, fair-esm's own
  batch converter, truncated to 1,022 residues (fair-esm cannot take more).

Reported: residues per second (median of ``--runs``), the time a 20,000-protein / 11 M-residue
proteome would take at that rate, and the fraction of the FLOP-bound limit: one residue costs
about ``2 x parameters`` FLOPs (the linear layers; attention adds a little more at 1,000
residues), so the bound is ``peak FLOP/s / (2 x parameters)`` residues/s. On CUDA the peak is
the device's dense float16 tensor-core figure (table below, or ``--peak-tflops``); on CPU it
is the float32 matrix-product rate measured here (a large ``torch.mm``).

Weights are random (timing does not depend on them): a checkpoint of the named architecture
is written in fair-esm's layout to a temporary folder. ``--end-to-end`` also times the whole
``nesscan predict`` (embedding + window scoring + fusion + writing) with a random classifier.

    python benchmarks/bench_gpu.py                      # CUDA if present: esm2_t33_650M_UR50D
    python benchmarks/bench_gpu.py --device cpu         # CPU test: esm2_t6_8M_UR50D, few proteins
    python benchmarks/bench_gpu.py --compare-attention  # SDPA vs fair-esm's explicit attention
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_proteome  # noqa: E402

# dense float16/bfloat16 tensor-core peaks (TFLOP/s, no sparsity), vendor data sheets
PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0,
               "H100": 756.0, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0, "V100": 125.0, "T4": 65.0}
PROTEOME_RESIDUES = 11_000_000


def write_random_checkpoint(path: str, layers: int, dim: int, heads: int, seed: int = 0) -> str:
    """A random ESM-2 checkpoint in fair-esm's release layout (no contact-regression weights)."""
    import argparse as ap

    import esm
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                 alphabet=esm.data.Alphabet.from_architecture("ESM-1b"))
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("contact_head.regression"):
            continue
        state[("encoder." if k.startswith("lm_head") else "encoder.sentence_encoder.") + k] = v
    cfg = ap.Namespace(arch="esm2", encoder_layers=layers, encoder_embed_dim=dim, encoder_ffn_embed_dim=4 * dim,
                       encoder_attention_heads=heads, token_dropout=True, max_positions=1024, dropout=0.0)
    torch.save({"model": state, "cfg": {"model": cfg}}, path)
    return path


def flop_params(model: torch.nn.Module) -> int:
    """Parameters that cost 2 FLOPs per residue: all but the token embedding (a lookup; the LM
    head's output matrix shares it) and the contact head (not run)."""
    seen, n = set(), 0
    skip = {id(p) for p in model.embed_tokens.parameters()}
    skip |= {id(p) for p in getattr(model, "contact_head", torch.nn.Module()).parameters()}
    for p in model.parameters():
        if id(p) in seen or id(p) in skip:
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def device_peak(device: torch.device, override: float | None) -> tuple[float, str]:
    """(peak FLOP/s, how it was found)."""
    if override:
        return override * 1e12, "--peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
            if key in name:
                return PEAK_TFLOPS[key] * 1e12, f"{name}: dense fp16 tensor-core peak {PEAK_TFLOPS[key]} TFLOP/s (data sheet)"
        raise SystemExit(f"unknown GPU '{name}': pass --peak-tflops")
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t))
    return best, f"measured float32 torch.mm 2048^3 on {torch.get_num_threads()} threads: {best / 1e9:.0f} GFLOP/s"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def read_proteins(path: str, n: int):
    from nesscan.fasta import iter_fasta

    out = []
    for p in iter_fasta(path):
        out.append(p)
        if len(out) >= n:
            break
    return out


def time_nesscan(embedder, proteins) -> float:
    from nesscan.predict import _consecutive_batches, stream_batch_tokens

    sync(embedder._device)
    t = time.perf_counter()
    for batch in _consecutive_batches(iter(proteins), stream_batch_tokens(embedder)):
        embedder.embed_batch([p.sequence for p in batch])
    sync(embedder._device)
    return time.perf_counter() - t


@torch.inference_mode()
def time_fair_esm_loop(model, alphabet, layer, proteins, device) -> tuple[float, int]:
    convert = alphabet.get_batch_converter()
    sync(device)
    t = time.perf_counter()
    residues = 0
    for p in proteins:
        seq = p.sequence[:1022]
        _, _, tokens = convert([(p.id, seq)])
        rep = model(tokens.to(device), repr_layers=[layer])["representations"][layer]
        rep[0, 1 : len(seq) + 1].float().cpu().numpy()
        residues += len(seq)
    sync(device)
    return time.perf_counter() - t, residues


def bench_nesscan(name, ckpt, device, max_batch_tokens, proteins, runs, sdpa, probe) -> dict:
    """Times the nesscan path in one attention mode; ``probe``: proteins whose embeddings are kept."""
    from nesscan.esm2 import ESM2Embedder

    cuda = device.type == "cuda"
    residues = sum(len(p) for p in proteins)
    emb = ESM2Embedder(name, weights=ckpt, device=str(device), max_batch_tokens=max_batch_tokens, sdpa=sdpa)
    out = {"attention": emb.attention, "precision": emb.precision, "max_batch_tokens": emb.max_batch_tokens,
           "params_flop": flop_params(emb.model), "probe": emb.embed_batch([p.sequence for p in probe])}
    time_nesscan(emb, proteins[: min(8, len(proteins))])  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t = []
    for r in range(runs):
        t.append(time_nesscan(emb, proteins))
        print(f"  nesscan ({emb.attention}) run {r + 1}: {t[-1]:.2f} s, {residues / t[-1]:,.0f} residues/s", flush=True)
    if cuda:
        out["max_memory_allocated_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    out.update(runs_s=t, residues_per_s=residues / statistics.median(t), max_batch_tokens_after=emb.max_batch_tokens)
    del emb
    if cuda:
        torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    from nesscan.embedders import ESM2_MODELS
    from nesscan.esm2 import _pick_device

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--model", default=None, help="ESM-2 architecture (default: esm2_t33_650M_UR50D on CUDA, esm2_t6_8M_UR50D on CPU)")
    ap.add_argument("--fasta", default=None, help="proteins to embed (default: proteome_20000.fasta from make_proteome.py)")
    ap.add_argument("--proteins", type=int, default=None, help="first N proteins (default 2000 on CUDA, 24 on CPU)")
    ap.add_argument("--baseline-proteins", type=int, default=None, help="proteins for the fair-esm loop (default 300 on CUDA, 8 on CPU)")
    ap.add_argument("--max-batch-tokens", type=int, default=None, help="nesscan token budget (default: the embedder's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for the FLOP bound")
    ap.add_argument("--end-to-end", action="store_true", help="also time nesscan predict with a random classifier")
    ap.add_argument("--no-sdpa", action="store_true", help="nesscan path with fair-esm's explicit attention")
    ap.add_argument("--compare-attention", action="store_true",
                    help="time the nesscan path with SDPA and with explicit attention, and compare their embeddings")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    device = _pick_device(a.device)
    cuda = device.type == "cuda"
    name = a.model or ("esm2_t33_650M_UR50D" if cuda else "esm2_t6_8M_UR50D")
    layers, dim, heads = ESM2_MODELS[name]
    n = a.proteins or (2000 if cuda else 24)
    nb = a.baseline_proteins or (300 if cuda else 8)
    fasta = a.fasta or os.path.join(make_proteome.DEFAULT_OUT, "proteome_20000.fasta")
    if not os.path.exists(fasta):
        make_proteome.generate(os.path.dirname(fasta))
    proteins = read_proteins(fasta, n)
    residues = sum(len(p) for p in proteins)

    with tempfile.TemporaryDirectory(prefix="nesscan-esm-") as tmp:
        ckpt = write_random_checkpoint(os.path.join(tmp, f"{name}.pt"), layers, dim, heads)
        # nesscan token-batched path, in the chosen attention mode (and the other one to compare)
        modes = [not a.no_sdpa] + ([a.no_sdpa] if a.compare_attention else [])
        probe = proteins[: min(16, len(proteins))] if a.compare_attention else []
        results = [bench_nesscan(name, ckpt, device, a.max_batch_tokens, proteins, a.runs, m, probe) for m in modes]
        first = results[0]
        params = first["params_flop"]
        peak, peak_note = device_peak(device, a.peak_tflops)
        bound = peak / (2 * params)
        info = {"model": name, "params_flop": params, "device": str(device),
                "device_name": torch.cuda.get_device_name(device) if cuda else "CPU", "torch": torch.__version__,
                "precision": first["precision"], "attention": first["attention"],
                "max_batch_tokens": first["max_batch_tokens"], "peak_flops": peak,
                "peak_note": peak_note, "bound_residues_per_s": bound, "proteins": len(proteins), "residues": residues}
        print(json.dumps({k: v for k, v in info.items() if k != "peak_flops"}), flush=True)
        t_new, rate_new = first["runs_s"], first["residues_per_s"]
        max_tokens_after = first["max_batch_tokens_after"]
        if "max_memory_allocated_gb" in first:
            info["max_memory_allocated_gb"] = first["max_memory_allocated_gb"]
        if a.compare_attention:
            by = {r["attention"]: r for r in results}
            diff = max(float(np.abs(x - y).max()) for x, y in zip(by["sdpa"]["probe"], by["explicit"]["probe"]))
            scale = max(float(np.abs(y).max()) for y in by["explicit"]["probe"])
            info["attention_compare"] = {
                m: {k: v for k, v in r.items() if k not in ("probe", "params_flop")} for m, r in by.items()}
            info["attention_compare"].update(
                sdpa_speedup=by["sdpa"]["residues_per_s"] / by["explicit"]["residues_per_s"],
                probe_proteins=len(probe), max_abs_diff=diff, max_abs_value=scale)

        # fair-esm plain loop, float32
        import warnings

        import esm.pretrained

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, alphabet = esm.pretrained.load_model_and_alphabet_core(name, torch.load(ckpt, map_location="cpu", weights_only=False))
        model = model.eval().to(device)
        base = proteins[:nb]
        time_fair_esm_loop(model, alphabet, layers, base[:2], device)  # warm-up
        t_old, res_old = [], 0
        for r in range(a.runs):
            t, res_old = time_fair_esm_loop(model, alphabet, layers, base, device)
            t_old.append(t)
            print(f"  fair-esm loop run {r + 1}: {t:.2f} s, {res_old / t:,.0f} residues/s", flush=True)
        rate_old = res_old / statistics.median(t_old)
        del model

        info.update({"nesscan_runs_s": t_new, "nesscan_residues_per_s": rate_new, "fair_esm_runs_s": t_old,
                     "fair_esm_proteins": len(base), "fair_esm_residues": res_old, "fair_esm_residues_per_s": rate_old,
                     "speedup": rate_new / rate_old, "max_batch_tokens_after": max_tokens_after})

        if a.end_to_end:
            from nesscan.model import ModelCard, build, save
            from nesscan.predict import run_predict

            sha = hashlib.sha256(open(ckpt, "rb").read()).hexdigest()
            card = ModelCard(name, dim, 20, layers, "cnn", {}, weights_sha256=sha)
            torch.manual_seed(0)
            save(build(card).eval(), card, os.path.join(tmp, "clf"))
            sub = os.path.join(tmp, "sub.fasta")
            with open(sub, "w") as fh:
                for p in proteins:
                    fh.write(f">{p.id}\n{p.sequence}\n")
            t_e2e = []
            for r in range(a.runs):
                t = time.perf_counter()
                run_predict(sub, os.path.join(tmp, f"out{r}"), model=os.path.join(tmp, "clf"), weights=ckpt,
                            device=str(device), progress=False)
                t_e2e.append(time.perf_counter() - t)
                print(f"  nesscan predict run {r + 1}: {t_e2e[-1]:.2f} s", flush=True)
            info["predict_runs_s"] = t_e2e
            info["predict_residues_per_s"] = residues / statistics.median(t_e2e)

    print()
    print(f"{name} on {info['device_name']} ({info['precision']} {info['attention']} nesscan / float32 fair-esm), "
          f"{params / 1e6:.0f} M FLOP-parameters; bound {bound:,.0f} residues/s ({peak_note})")
    print("| path | proteins | residues/s (median) | 11 M-residue proteome | fraction of FLOP bound |")
    print("|---|---:|---:|---:|---:|")
    rows = [(f"nesscan token-batched ({info['attention']})", len(proteins), rate_new)]
    if a.compare_attention:
        other = [m for m in info["attention_compare"] if m in ("sdpa", "explicit") and m != info["attention"]][0]
        rows.append((f"nesscan token-batched ({other})", len(proteins), info["attention_compare"][other]["residues_per_s"]))
    rows.append(("fair-esm one-sequence loop", len(base), rate_old))
    if a.end_to_end:
        rows.append(("nesscan predict end to end", len(proteins), info["predict_residues_per_s"]))
    for label, k, rate in rows:
        print(f"| {label} | {k:,} | {rate:,.0f} | {PROTEOME_RESIDUES / rate / 60:.1f} min | {rate / bound:.1%} |")
    print(f"speed-up (embedding): {info['speedup']:.1f}x")
    if a.compare_attention:
        c = info["attention_compare"]
        print(f"SDPA vs explicit attention: {c['sdpa_speedup']:.2f}x; max |difference| {c['max_abs_diff']:.3g} "
              f"over {c['probe_proteins']} proteins (values up to {c['max_abs_value']:.3g})")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(info, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

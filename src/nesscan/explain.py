"""``nesscan explain``: per-residue attributions of the window classifier (integrated gradients).

For a window ``x`` (``W x D`` embedding) and a baseline ``x'``, integrated gradients
(Sundararajan et al. 2017) attribute the classifier's logit ``F``::

    IG_ij = (x_ij - x'_ij) * mean_{k=1..m} dF/dx_ij (x' + (k - 0.5)/m * (x - x'))

(midpoint Riemann sum). Summing over the ``D`` features gives one number per residue.
Completeness holds up to the quadrature error: ``sum IG = F(x) - F(x')``. The baseline is the
training-set mean embedding (the classifier's standardisation centre), i.e. "an average
residue at every position"; attributions say which residues move the window away from it.

Written per protein for its top candidates: ``attributions.tsv`` with ``id, candidate_rank,
position, residue, attribution, is_phi`` (``is_phi``: one of the candidate's annotated Φ
residues). DeepLocRNA uses the same practice for RNA localisation signals.
"""

from __future__ import annotations

import numpy as np
import torch


def integrated_gradients(net, x: np.ndarray, baseline: np.ndarray | None = None, steps: int = 64) -> tuple[np.ndarray, float, float]:
    """Attributions (``W x D``) of the logit for one window, plus ``F(x)`` and ``F(baseline)``."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    if baseline is None:
        baseline = net.norm_in.mean.detach().numpy()[None, :].repeat(x.shape[0], 0)
    bt = torch.as_tensor(baseline, dtype=torch.float32)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    path = bt.unsqueeze(0) + alphas.view(-1, 1, 1) * (xt - bt).unsqueeze(0)
    path.requires_grad_(True)
    mask = torch.ones(path.shape[:2], dtype=torch.bool)
    was_training = net.training
    net.eval()
    with torch.enable_grad():
        out = net(path, mask)
        grads = torch.autograd.grad(out.sum(), path)[0]
    with torch.no_grad():
        ends = net(torch.stack([xt, bt]), torch.ones((2, x.shape[0]), dtype=torch.bool))
    net.train(was_training)
    ig = ((xt - bt) * grads.mean(0)).numpy()
    return ig, float(ends[0]), float(ends[1])


def residue_attributions(net, emb: np.ndarray, start: int, window: int, steps: int = 64) -> np.ndarray:
    """Per-residue attribution (sum over features) for the window starting at 1-based ``start``."""
    x = emb[start - 1 : start - 1 + window]
    ig, _, _ = integrated_gradients(net, x, steps=steps)
    return ig.sum(1)


def phi_fraction(attr: np.ndarray, phi_offsets: list[int]) -> float:
    """Share of the positive attribution mass that falls on the Φ residues."""
    pos = np.clip(attr, 0, None)
    total = pos.sum()
    if total <= 0:
        return float("nan")
    return float(pos[phi_offsets].sum() / total)


def plot_profile(path_stem: str, pid: str, seq: str, window: int, comps: dict, cands_rows: list[list],
                 attributions: dict[int, np.ndarray] | None = None, rsa: np.ndarray | None = None) -> list[str]:
    """A protein's track: window scores along the sequence (fused, classifier, motif), candidates
    shaded with their Φ residues, Kosugi and Wregex matches, accessibility when given, and the
    top candidate's per-residue attributions. Writes ``<stem>.png`` and ``<stem>.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .motifs import kosugi_matches, wregex_matches

    L = len(seq)
    centre = np.arange(len(comps["nn_score"])) + 1 + (min(window, L) - 1) / 2
    n_rows = 3 if attributions else 2
    fig, axes = plt.subplots(n_rows, 1, figsize=(11, 2.2 * n_rows + 0.6), sharex=False,
                             gridspec_kw={"height_ratios": [3, 1] + ([2] if attributions else [])})
    ax = axes[0]
    for name, style in (("fused_score", dict(color="black", lw=1.6)), ("nn_score", dict(color="tab:blue", lw=0.9, alpha=0.8)),
                        ("motif_score", dict(color="tab:orange", lw=0.9, alpha=0.8)),
                        ("similarity_score", dict(color="tab:green", lw=0.9, alpha=0.6))):
        if name in comps:
            ax.plot(centre, comps[name], label=name.replace("_", " "), **style)
    if rsa is not None:
        ax.plot(np.arange(1, L + 1), rsa, color="tab:purple", lw=0.7, ls=":", label="rel. accessibility")
    for row in cands_rows:
        s, e, score, phi = int(row[2]), int(row[3]), float(row[5]), [int(p) for p in str(row[14]).split(";") if p]
        ax.axvspan(s - 0.5, e + 0.5, color="red" if row[8] == "yes" else "salmon", alpha=0.18)
        ax.text((s + e) / 2, 1.02, f"#{row[1]}", ha="center", va="bottom", fontsize=7)
        ax.plot(phi, [score] * len(phi), "v", color="red", ms=4)
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0.5, L + 0.5)
    ax.set_ylabel("window score")
    ax.set_title(f"{pid} ({L} aa)", fontsize=10, loc="left")
    ax.legend(fontsize=7, ncol=5, loc="upper right", frameon=False)
    ax2 = axes[1]
    for k, m in enumerate(kosugi_matches(seq)):
        ax2.plot([m.start + 1, m.end + 1], [1 + (k % 3) * 0.15] * 2, color="tab:orange", lw=2)
    for a, b in wregex_matches(seq):
        ax2.plot([a + 1, b + 1], [0.4, 0.4], color="tab:brown", lw=3)
    ax2.set_yticks([0.4, 1.15], ["Wregex", "Kosugi"])
    ax2.set_ylim(0, 1.6)
    ax2.set_xlim(0.5, L + 0.5)
    ax2.set_xlabel("residue")
    if attributions:
        ax3 = axes[2]
        rank = min(attributions)
        row = next(r for r in cands_rows if int(r[1]) == rank)
        s = int(row[15])
        attr = attributions[rank]
        pos = np.arange(s, s + len(attr))
        phi = {int(p) for p in str(row[14]).split(";") if p}
        ax3.bar(pos, attr, color=["red" if p in phi else "grey" for p in pos])
        ax3.set_xticks(pos, list(seq[s - 1 : s - 1 + len(attr)]), fontsize=7)
        ax3.axhline(0, color="black", lw=0.5)
        ax3.set_ylabel("IG attribution")
        ax3.set_title(f"candidate #{rank} ({s}-{int(row[3])}): red = Φ residues", fontsize=8, loc="left")
    fig.tight_layout()
    out = []
    for ext in ("png", "svg"):
        fig.savefig(f"{path_stem}.{ext}", dpi=110)
        out.append(f"{path_stem}.{ext}")
    plt.close(fig)
    return out


def run_explain(input_fasta: str, outdir: str, model: str | None = None, top_k: int = 3, plots: int = 20,
                weights: str | None = None, device: str = "auto", steps: int = 64, progress: bool = True,
                skip_invalid: bool = False) -> dict:
    """Attributions for the top candidates of every protein, and profile plots for the first
    ``plots`` proteins (by protein score), with an ``index.html`` that links them."""
    from .embedders import get_embedder
    from .fasta import validate_fasta
    from .guard import outdir_lock
    from .memory import page_out_cuda_libraries, uses_cuda
    from .model import check_compatible, load
    from .predict import resolve_model

    fasta_summary = validate_fasta(input_fasta, skip_invalid=skip_invalid)
    m = load(resolve_model(model))
    emb_model = get_embedder(m.card.embedder, weights=weights, layer=m.card.layer, device=device,
                             context=m.card.context)
    check_compatible(m, emb_model.meta(), f"embedder {emb_model.name}")
    if not uses_cuda(emb_model):
        page_out_cuda_libraries()  # a CPU-only run (the pipeline's --explain runs it per chunk)
    with outdir_lock(outdir, fasta_summary.skipped if skip_invalid else None):
        return _explain(input_fasta, outdir, m, emb_model, top_k, plots, steps, progress, skip_invalid)


def _explain(input_fasta, outdir, m, emb_model, top_k, plots, steps, progress, skip_invalid) -> dict:
    import csv
    import heapq
    import html
    import os
    from urllib.parse import quote

    from tqdm import tqdm

    from . import scoring
    from .fasta import iter_fasta
    from .report import CANDIDATE_COLUMNS, rank_protein
    from .window_score import score_many

    os.makedirs(outdir, exist_ok=True)
    tmp = os.path.join(outdir, "attributions.tsv.partial")
    summary: list = []  # min-heap of (protein score, -input index, ...): bounded by ``plots``
    n_seen = 0
    try:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(["id", "candidate_rank", "position", "residue", "attribution", "is_phi"])
            for p in tqdm(iter_fasta(input_fasta, skip_invalid=skip_invalid), desc="explain", unit="prot", disable=not progress):
                emb = emb_model.embed_batch([p.sequence])[0]
                nn = score_many(m, [emb])[0]
                params = m.raw.get("fusion")
                comps = scoring.fuse_protein(p.sequence, emb, nn, m.window, params, m.references) if params and m.references is not None else {"nn_score": nn}
                ranked = rank_protein(p.id, p.sequence, m.window, comps, None, top_k, m.raw.get("calibration"),
                                      float((m.raw.get("calibration") or {}).get("max_evalue", 0.01)))
                attrs = {}
                for row in ranked.candidate_rows:
                    rank, s = int(row[1]), int(row[CANDIDATE_COLUMNS.index("window_start")])
                    if len(p.sequence) < m.window or m.net is None:
                        continue
                    a = residue_attributions(m.net, emb, s, m.window, steps)
                    attrs[rank] = a
                    phi = {int(x) for x in row[CANDIDATE_COLUMNS.index("phi_positions")].split(";") if x}
                    for k, v in enumerate(a):
                        pos = s + k
                        w.writerow([p.id, rank, pos, p.sequence[pos - 1], f"{v:.5f}", "yes" if pos in phi else "no"])
                # keep only what the profile plots need: the ``plots`` best proteins so far
                item = (float(ranked.protein_row[2]), -n_seen, p, comps, ranked, attrs)
                n_seen += 1
                if len(summary) < plots:
                    heapq.heappush(summary, item)
                elif plots and item[:2] > summary[0][:2]:
                    heapq.heapreplace(summary, item)
        os.replace(tmp, os.path.join(outdir, "attributions.tsv"))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    summary.sort(key=lambda t: (-t[0], -t[1]))  # best first; ties in input order
    links = []
    os.makedirs(os.path.join(outdir, "profiles"), exist_ok=True)
    for score, _, p, comps, ranked, attrs in summary:
        stem = os.path.join(outdir, "profiles", quote(p.id, safe=""))
        plot_profile(stem, p.id, p.sequence, m.window, comps, ranked.candidate_rows, attrs or None)
        links.append((p.id, score, "profiles/" + quote(quote(p.id, safe=""), safe="") + ".png"))
    with open(os.path.join(outdir, "index.html"), "w") as fh:
        fh.write("<!doctype html><meta charset='utf-8'><title>nesscan profiles</title><h1>nesscan protein profiles</h1>\n")
        for pid, score, href in links:
            fh.write(f"<h2>{html.escape(pid)} — protein score {score:.3f}</h2><img src='{html.escape(href)}' width='900'>\n")
    return {"proteins": n_seen, "plots": len(links)}

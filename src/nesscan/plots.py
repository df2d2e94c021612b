"""Matplotlib figures of ``nesscan evaluate`` (Agg, through :class:`matplotlib.figure.Figure`;
each saved as PNG and SVG) and the t-SNE of window embeddings behind one of them."""

from __future__ import annotations

import logging
import os

import numpy as np

from .calls import group_colours
from .evaluate_io import Inputs
from .metrics import BASELINE, window_classes

log = logging.getLogger("nesscan.evaluate")

SCORE_LABELS = {"score": "score", "nes_score": "nes_score", BASELINE: "baseline (composition+length)"}
WINDOW_CLASSES = ("known NES window", "other window, annotated protein", "window of a non-binder (label 0)")

# ----------------------------------------------------------------------------- plots


def _save(fig, outdir: str, stem: str) -> list[str]:
    paths = []
    for ext in ("png", "svg"):
        p = os.path.join(outdir, f"{stem}.{ext}")
        fig.savefig(p, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight",
                    metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def plot_curves(curves: dict, outdir: str, kind: str) -> list[str]:
    """ROC (kind="roc") or PR (kind="pr") curves, one panel per task."""
    tasks = list(curves)
    fig = _figure(4.2 * len(tasks), 4.2)
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        c = curves[task]
        for name, d in c["scores"].items():
            if kind == "roc":
                ax.plot(d["fpr"], d["tpr"], lw=1.6, label=f"{SCORE_LABELS.get(name, name)} (AUC {d['roc_auc']:.3f})",
                        ls=":" if name == BASELINE else "-")
            else:
                ax.plot(d["recall"], d["precision"], lw=1.6, drawstyle="steps-post",
                        label=f"{SCORE_LABELS.get(name, name)} (AP {d['pr_auc']:.3f})", ls=":" if name == BASELINE else "-")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
        else:
            ax.axhline(c["prevalence"], ls="--", color="grey", lw=1, label=f"chance ({c['prevalence']:.2f})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{task}: {c['description']}\n(n = {c['n_pos']} + {c['n_neg']})", fontsize=9)
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    fig.tight_layout()
    return _save(fig, outdir, "roc_curves" if kind == "roc" else "pr_curves")


def plot_distributions(dist: dict, outdir: str) -> list[str]:
    """Histogram and box plot of the protein scores per group (screened set vs negative control)."""
    names = list(dist["scores"])
    groups = dist["groups"]
    fig = _figure(4.5 * len(names), 3.8)
    bins = np.linspace(0, 1, 21)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for g in groups:
            v = dist["scores"][name][g]
            if len(v):
                lo, hi = min(0.0, float(np.min(v))), max(1.0, float(np.max(v)))
                b = bins if (lo, hi) == (0.0, 1.0) else np.linspace(lo, hi, 21)
                ax.hist(v, bins=b, histtype="step", lw=1.5, density=True, label=f"{g} (n = {len(v)})")
        ax.set_xlabel(SCORE_LABELS.get(name, name))
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths = _save(fig, outdir, "score_histogram")
    fig = _figure(4.5 * len(names), 3.8)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        data = [dist["scores"][name][g] for g in groups]
        ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(groups) + 1), [f"{g}\n(n = {len(d)})" for g, d in zip(groups, data)], fontsize=7,
                      rotation=20)
        ax.set_ylabel(SCORE_LABELS.get(name, name))
    fig.tight_layout()
    return paths + _save(fig, outdir, "score_boxplot")


def plot_enrichment(enr: dict, outdir: str) -> list[str]:
    names = list(enr["scores"])
    fig = _figure(4.2 * len(names), 3.8)
    x = np.asarray(enr["enrichment"])
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        ax.scatter(np.log10(x + 1.0), enr["scores"][name], s=6, alpha=0.5)
        rho = enr["rho"][name]
        ax.set_title(f"Spearman ρ = {rho:.3f} (n = {len(x)})" if np.isfinite(rho) else f"n = {len(x)}", fontsize=9)
        ax.set_xlabel("log10(CRM1 enrichment from input + 1)")
        ax.set_ylabel(SCORE_LABELS.get(name, name))
    fig.tight_layout()
    return _save(fig, outdir, "score_vs_enrichment")


def plot_tsne(xy: np.ndarray, cls: np.ndarray, outdir: str) -> list[str]:
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    colours = ["#d62728", "#7f7f7f", "#1f77b4"]
    for k in (2, 1, 0):  # known NES windows on top
        m = cls == k
        if m.any():
            ax.scatter(xy[m, 0], xy[m, 1], s=5 if k else 8, alpha=0.6 if k else 0.9, c=colours[k],
                       label=f"{WINDOW_CLASSES[k]} (n = {int(m.sum())})")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title("window embeddings (mean-pooled)", fontsize=9)
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    return _save(fig, outdir, "tsne_windows")


def plot_calls(calls: dict, outdir: str) -> list[str]:
    """Call rate per group and span recall (and candidate precision) vs the E-value cutoff."""
    grid = np.asarray(calls["evalue_grid"], dtype=float)
    names = list(calls["groups"])
    colours = group_colours(names)
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for g in names:
        d = calls["groups"][g]
        ax.plot(grid, d["call_rate"], lw=1.6, color=colours[g], label=f"call rate: {g} (n = {d['n_proteins']})")
    if "span_recall" in calls:
        ax.plot(grid, calls["span_recall"], lw=2.2, color="black", label=f"span recall (n = {calls['n_spans']})")
        ax.plot(grid, calls["candidate_precision"], lw=1.4, color="black", ls=":", label="candidate precision")
    ax.axvline(calls["max_evalue"], ls="--", color="grey", lw=1, label=f"max E-value {calls['max_evalue']:g}")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("E-value cutoff (candidate called when evalue <= cutoff)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _save(fig, outdir, "calls_vs_evalue")


def plot_calibration(cal: dict, max_evalue: float, outdir: str) -> list[str]:
    """Observed mean calls per protein of each negative group vs the cutoff (log-log), beside
    the expected diagonal and the top-k cap."""
    grid = np.asarray(cal["evalue_grid"], dtype=float)
    names = list(cal["groups"])
    colours = group_colours(names)
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for g in names:
        obs = np.asarray(cal["groups"][g]["observed_mean_calls"], dtype=float)
        ax.plot(grid, np.where(obs > 0, obs, np.nan), lw=1.6, marker=".", color=colours[g],
                label=f"{g} (n = {cal['groups'][g]['n_proteins']})")
    ax.plot(grid, grid, ls="--", color="black", lw=1, label="expected (= cutoff)")
    if cal["top_k"]:
        ax.axhline(cal["top_k"], ls=":", color="grey", lw=1, label=f"top-k cap ({cal['top_k']})")
    ax.axvline(max_evalue, ls="--", color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("E-value cutoff")
    ax.set_ylabel("called candidates per protein (all false)")
    ax.set_title("E-value calibration on negatives", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, outdir, "evalue_calibration")


def plot_reliability(rel: dict, outdir: str) -> list[str]:
    """Reliability diagrams: mean score vs observed fraction per bin (candidates, proteins)."""
    parts = [(k, t) for k, t in (("candidates", "candidate score vs overlapping a known NES"),
                                 ("proteins", "protein score vs label")) if k in rel]
    fig = _figure(4.4 * len(parts), 4.4)
    for i, (k, title) in enumerate(parts):
        d = rel[k]
        ax = fig.add_subplot(1, len(parts), i + 1)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
        m, f, n = (np.asarray(d[c], dtype=float) for c in ("mean_score", "observed_fraction", "count"))
        ok = n > 0
        ax.plot(m[ok], f[ok], marker="o", lw=1.6, color="#d62728",
                label=f"Brier {d['brier']:.3f}, ECE {d['ece']:.3f} (n = {d['n']})")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("mean score in bin")
        ax.set_ylabel("observed fraction")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, outdir, "reliability")


# ----------------------------------------------------------------------------- t-SNE


def tsne_windows(inp: Inputs, embeddings: str, max_windows: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Sample up to ``max_windows`` windows (a third per class where available), mean-pool each
    window's residue embeddings and embed them in 2-D with t-SNE (fixed seed)."""
    import h5py
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from .store import EmbeddingReader, key_for

    with h5py.File(embeddings, "r") as f:
        stored = set(f["proteins"].keys())
    rng = np.random.default_rng(seed)
    pools: list[list[tuple[str, int, int]]] = [[], [], []]
    spans = inp.spans or {}
    for pid, (st, en, _) in sorted((inp.windows or {}).items()):
        if key_for(pid) not in stored:
            continue
        if pid in spans:
            wc = window_classes(st, en, spans[pid])
            for s, e, c in zip(st, en, wc):
                if c == 1:
                    pools[0].append((pid, int(s), int(e)))
                elif c == 0:
                    pools[1].append((pid, int(s), int(e)))
        elif inp.labels.get(pid, {}).get("label") == 0:
            pools[2].extend((pid, int(s), int(e)) for s, e in zip(st, en))
    per = max_windows // 3
    chosen: list[tuple[str, int, int, int]] = []
    # windows left over by a small class go to the others
    sizes = [len(p) for p in pools]
    quota = [min(per, n) for n in sizes]
    spare = max_windows - sum(quota)
    for k in np.argsort(sizes)[::-1]:
        extra = min(spare, sizes[k] - quota[k])
        quota[k] += extra
        spare -= extra
    for k, pool in enumerate(pools):
        if quota[k]:
            for j in sorted(rng.choice(len(pool), size=quota[k], replace=False)):
                chosen.append((*pool[j], k))
    if len(chosen) < 10:
        log.warning("t-SNE skipped: only %d windows to show", len(chosen))
        return None
    reader = EmbeddingReader(embeddings)
    by_pid: dict[str, list[int]] = {}
    for i, (pid, *_rest) in enumerate(chosen):
        by_pid.setdefault(pid, []).append(i)
    X = np.zeros((len(chosen), reader.meta["dimension"]), dtype=np.float32)
    ok = np.zeros(len(chosen), dtype=bool)
    with h5py.File(reader.path, "r") as f:
        g = f["proteins"]
        for pid, idxs in by_pid.items():
            key = key_for(pid)
            if key not in g:
                continue
            emb = g[key][()].astype(np.float32)
            for i in idxs:
                _, s, e, _k = chosen[i]
                seg = emb[max(s - 1, 0):min(e, len(emb))]
                if len(seg):
                    X[i] = seg.mean(0)
                    ok[i] = True
    if ok.sum() < 10:
        log.warning("t-SNE skipped: the embeddings file holds too few of the windows' proteins")
        return None
    X, cls = X[ok], np.array([c[3] for c in chosen])[ok]
    if X.shape[1] > 50:
        X = PCA(n_components=50, random_state=seed).fit_transform(X)
    perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3.0)))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # deterministic, and no OpenMP spinning on a busy machine
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                  random_state=seed).fit_transform(X)
    return xy, cls



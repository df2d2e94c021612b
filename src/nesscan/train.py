"""``nesscan train``: window examples from NES data, cluster-grouped CV, the shipped model.

Examples (window size ``W``, default 20):
* positives — every window that contains a known NES's hydrophobic core (first to last Φ
  residue of ``hydrophobic_positions``; the span itself where none are listed);
* negatives — random windows of CRM1 non-binders and bacterial controls, and windows of the
  NES-annotated proteins that overlap none of their annotated NES ("other windows of the same
  proteins": they teach ranking inside a protein, not protein composition);
* hard negatives (``--phi-mutants``, seed idea) — the positive windows re-embedded after every
  Φ residue is mutated to alanine.

Splits are by ``cluster`` (mmseqs2 40 % identity) everywhere: the outer k-fold CV uses
``StratifiedGroupKFold`` (stratified on the group), and early stopping uses a validation set
of held-out clusters inside each training fold. Early stopping watches validation window
ROC AUC. Seeds fix numpy, torch and the fold assignment; torch runs deterministic kernels.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from . import __version__
from . import fuse, protein_model
from .data import Record, data_checksum, load_dataset
from .embedders import Embedder
from .model import ModelCard, build, save
from .window_score import pick_candidates, score_many, window_bounds

log = logging.getLogger("nesscan.train")


@dataclass
class TrainConfig:
    window: int = 20
    arch: str = "transformer"
    hparams: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 5
    seed: int = 0
    folds: int = 5
    neg_per_nonbinder: int = 30
    neg_per_bacterial: int = 5
    neg_per_annotated: int = 20
    phi_mutants: bool = True
    val_fraction: float = 0.15


def set_seed(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- examples


def _core(span) -> tuple[int, int]:
    if span.phi:
        return min(span.phi), max(span.phi)
    return span.start, span.end


def _mutant(seq: str, records_spans) -> str:
    s = list(seq)
    for sp in records_spans:
        for p in sp.phi:
            if 1 <= p <= len(s):
                s[p - 1] = "A"
    return "".join(s)


@dataclass
class Examples:
    X: torch.Tensor  # (N, W, D)
    y: torch.Tensor  # (N,)
    protein: list[str]
    start0: list[int]
    mutant: np.ndarray  # bool


def example_windows(records: list[Record], cfg: TrainConfig, rng: np.random.Generator,
                    mutants: bool) -> list[tuple[str, int, float, bool]]:
    """(protein id, 0-based window start, label, from the Φ->A mutant) for every example."""
    W = cfg.window
    out = []
    for r in records:
        L = len(r.sequence)
        if L < W:
            continue
        if r.group == "nes_annotated" and r.spans:
            pos_starts = set()
            for sp in r.spans:
                lo, hi = _core(sp)
                pos_starts.update(range(max(1, hi - W + 1), min(lo, L - W + 1) + 1))
            for s in sorted(pos_starts):
                out.append((r.id, s - 1, 1.0, False))
                if mutants:
                    out.append((r.id, s - 1, 0.0, True))
            covered = np.zeros(L + 2, dtype=bool)
            for sp in r.spans:
                covered[max(1, sp.start - 3) : min(L, sp.end + 3) + 1] = True
            free = [s for s in range(1, L - W + 2) if not covered[s : s + W].any()]
            if free:
                pick = rng.choice(free, size=min(cfg.neg_per_annotated, len(free)), replace=False)
                out.extend((r.id, int(s) - 1, 0.0, False) for s in sorted(pick))
        elif r.group in ("crm1_nonbinder", "bacterial_control"):
            n = cfg.neg_per_nonbinder if r.group == "crm1_nonbinder" else cfg.neg_per_bacterial
            starts = rng.choice(L - W + 1, size=min(n, L - W + 1), replace=False)
            out.extend((r.id, int(s0), 0.0, False) for s0 in sorted(starts))
    return out


def build_examples(records: list[Record], embs: dict[str, np.ndarray], mutant_embs: dict[str, np.ndarray],
                   cfg: TrainConfig, rng: np.random.Generator) -> Examples:
    ex = example_windows(records, cfg, rng, mutants=cfg.phi_mutants)
    ex = [e for e in ex if not e[3] or e[0] in mutant_embs]
    W = cfg.window
    xs = [(mutant_embs if m else embs)[pid][s0 : s0 + W] for pid, s0, _, m in ex]
    X = torch.as_tensor(np.stack(xs)) if xs else torch.zeros((0, W, 1))
    return Examples(X, torch.tensor([e[2] for e in ex], dtype=torch.float32), [e[0] for e in ex], [e[1] for e in ex],
                    np.array([e[3] for e in ex], dtype=bool))


# ----------------------------------------------------------------------------- training


def _auc(y, s) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


@torch.inference_mode()
def _predict(net, X: torch.Tensor, batch: int = 4096) -> np.ndarray:
    net.eval()
    mask = torch.ones(X.shape[:2], dtype=torch.bool)
    out = [torch.sigmoid(net(X[i : i + batch], mask[i : i + batch])) for i in range(0, len(X), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def fit_classifier(train: Examples, val: Examples | None, dim: int, cfg: TrainConfig, epochs: int | None = None,
                   progress: bool = False):
    """Train one classifier; early-stops on ``val`` window AUC, or runs ``epochs`` epochs."""
    set_seed(cfg.seed)
    card = ModelCard("?", dim, cfg.window, 0, cfg.arch, dict(cfg.hparams))
    net = build(card)
    flat = train.X.reshape(-1, train.X.shape[-1])
    net.norm_in.mean.copy_(flat.mean(0))
    net.norm_in.std.copy_(flat.std(0).clamp(min=1e-4))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_pos = float(train.y.sum())
    pos_weight = torch.tensor((len(train.y) - n_pos) / max(n_pos, 1.0))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    gen = torch.Generator().manual_seed(cfg.seed)
    mask_full = torch.ones((cfg.batch_size, cfg.window), dtype=torch.bool)
    best_auc, best_state, best_epoch, stale = -1.0, None, 0, 0
    history = []
    n_epochs = epochs or cfg.epochs
    for epoch in range(1, n_epochs + 1):
        net.train()
        perm = torch.randperm(len(train.y), generator=gen)
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            logits = net(train.X[idx], mask_full[: len(idx)])
            loss = loss_fn(logits, train.y[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        rec = {"epoch": epoch, "loss": total / len(perm)}
        if val is not None and epochs is None:
            auc = _auc(val.y.numpy(), _predict(net, val.X))
            rec["val_auc"] = auc
            if auc > best_auc + 1e-4:
                best_auc, best_epoch, stale = auc, epoch, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        history.append(rec)
        if progress:
            log.info("epoch %d %s", epoch, json.dumps(rec))
        if val is not None and epochs is None and stale >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        best_epoch = n_epochs
    net.eval()
    return net, {"best_epoch": best_epoch, "best_val_auc": best_auc if best_state is not None else None,
                 "history": history}


# ----------------------------------------------------------------------------- evaluation


class _NetModel:
    """Duck-typed LoadedModel for scoring with an in-memory network."""

    def __init__(self, net, window):
        self.net, self.window = net, window


def protein_outputs(net, window: int, records: list[Record], embs: dict[str, np.ndarray], refs: dict) -> dict[str, dict]:
    """Per record: classifier scores of every window, motif features, raw similarity."""
    model = _NetModel(net, window)
    out = {}
    for i in range(0, len(records), 64):
        chunk = records[i : i + 64]
        scores = score_many(model, [embs[r.id] for r in chunk])
        for r, sc in zip(chunk, scores):
            out[r.id] = {
                "nn": sc,
                "mf": fuse.window_motif_features(r.sequence, window),
                "sr": fuse.similarity_raw(fuse.pooled_windows(embs[r.id], window), refs),
            }
    return out


def localisation_metrics(records: list[Record], scores: dict[str, np.ndarray], window: int) -> dict:
    """hit@1/hit@5 of greedy candidates, residue-level AUC and window AUC inside NES-annotated
    proteins, for one per-window score array per protein."""
    hit1 = hit5 = n = 0
    res_y, res_s, win_y, win_s, res_auc_each = [], [], [], [], []
    for r in records:
        if r.group != "nes_annotated" or not r.spans or r.id not in scores:
            continue
        sc = scores[r.id]
        L = len(r.sequence)
        inside = np.zeros(L + 1, dtype=bool)
        for sp in r.spans:
            inside[sp.start : sp.end + 1] = True
        cands = pick_candidates(sc, L, window, top_k=5)
        n += 1
        hit1 += bool(cands and inside[cands[0].start : cands[0].end + 1].any())
        hit5 += any(inside[c.start : c.end + 1].any() for c in cands)
        starts, ends = window_bounds(L, window)
        rs = np.full(L, -1.0)
        for k in range(min(window, L)):
            idx = starts - 1 + k
            ok = idx < L
            np.maximum.at(rs, idx[ok], sc[ok])
        res_y.append(inside[1:].astype(int))
        res_s.append(rs)
        if 0 < inside[1:].sum() < L:
            res_auc_each.append(_auc(inside[1:].astype(int), rs))
        cores = [_core(sp) for sp in r.spans]
        for s, e, v in zip(starts, ends, sc):
            if any(s <= lo and hi <= e for lo, hi in cores):
                win_y.append(1), win_s.append(v)
            elif not inside[s : e + 1].any():
                win_y.append(0), win_s.append(v)
    if n == 0:
        return {"n_annotated": 0}
    return {
        "n_annotated": n,
        "hit_at_1": hit1 / n,
        "hit_at_5": hit5 / n,
        "residue_auc_pooled": _auc(np.concatenate(res_y), np.concatenate(res_s)),
        "residue_auc_per_protein_mean": float(np.nanmean(res_auc_each)) if res_auc_each else float("nan"),
        "window_auc_within_annotated": _auc(win_y, win_s),
    }


def phi_metrics(records: list[Record], scores: dict[str, np.ndarray], window: int, top_k: int = 5) -> dict:
    """Φ-residue precision/recall/F1 of the top candidates picked on ``scores`` (Φ from
    :func:`nesscan.fuse.annotate_phi`), computed by ``nesscan evaluate``'s own code: per span
    (strict) and per region of overlapping annotations (best-matching annotation)."""
    from . import evaluate

    inp = evaluate.Inputs(has_phi=True, proteins={}, candidates={}, spans={}, sequences={})
    for r in records:
        if r.group != "nes_annotated" or not r.spans or r.id not in scores:
            continue
        L = len(r.sequence)
        rows = []
        for c in pick_candidates(scores[r.id], L, window, top_k=top_k):
            cls, phi = fuse.annotate_phi(r.sequence, c.start, c.end)
            rows.append({"rank": c.rank, "start": c.start, "end": c.end, "score": c.score, "phi": phi, "motif_class": cls})
        inp.proteins[r.id] = {"length": L}
        inp.sequences[r.id] = r.sequence
        inp.candidates[r.id] = rows
        inp.spans[r.id] = [evaluate.SpanRec(sp.start, sp.end, list(sp.phi), evaluate.motif_family(sp.motif_class),
                                            sp.motif_class) for sp in r.spans]
    o = evaluate.localisation(inp)["overall"]
    keys = ("phi_precision", "phi_recall", "phi_f1", "phi_n_spans", "phi_f1_all_spans", "phi_region_precision",
            "phi_region_recall", "phi_region_f1", "phi_n_regions", "hit@1", "hit@5")
    return {k.replace("@", "_at_"): o[k] for k in keys if k in o}


def protein_aucs(records: list[Record], score: dict[str, float]) -> dict:
    def auc(pos_group, neg_group):
        y, s = [], []
        for r in records:
            if r.id in score and r.group in (pos_group, neg_group):
                y.append(int(r.group == pos_group))
                s.append(score[r.id])
        return _auc(y, s)

    return {
        "T1_annotated_vs_bacterial": auc("nes_annotated", "bacterial_control"),
        "T2_annotated_vs_nonbinder": auc("nes_annotated", "crm1_nonbinder"),
        "T3_cargo_vs_nonbinder": auc("crm1_cargo", "crm1_nonbinder"),
    }


# ----------------------------------------------------------------------------- driver


def embed_records(records: list[Record], embedder: Embedder, progress: bool = True):
    embs, mut = {}, {}
    seqs = {r.id: r.sequence for r in records}
    muts = {r.id: _mutant(r.sequence, r.spans) for r in records if r.group == "nes_annotated" and r.spans}
    jobs = [(k, s, embs) for k, s in seqs.items()] + [(k, s, mut) for k, s in muts.items()]
    jobs.sort(key=lambda j: len(j[1]))
    bar = tqdm(total=len(jobs), desc=f"embed[{embedder.name}]", unit="prot", disable=not progress)
    step = 64
    for i in range(0, len(jobs), step):
        chunk = jobs[i : i + step]
        for (k, _, target), a in zip(chunk, embedder.embed_batch([j[1] for j in chunk])):
            target[k] = a
        bar.update(len(chunk))
    bar.close()
    return embs, mut


def _split_val(records: list[Record], frac: float, seed: int):
    rng = np.random.default_rng(seed + 7)
    clusters = sorted({r.cluster for r in records})
    rng.shuffle(clusters)
    n_val = max(1, int(round(frac * len(clusters))))
    val_c = set(clusters[:n_val])
    return [r for r in records if r.cluster not in val_c], [r for r in records if r.cluster in val_c]


def train_one(records, embs, mut, dim, cfg: TrainConfig, progress=False):
    """Classifier (early-stopped on held-out clusters) and similarity references."""
    rng = np.random.default_rng(cfg.seed)
    tr, va = _split_val(records, cfg.val_fraction, cfg.seed)
    ex_tr = build_examples(tr, embs, mut, cfg, rng)
    ex_va = build_examples(va, embs, mut, cfg, rng)
    net, info = fit_classifier(ex_tr, ex_va, dim, cfg, progress=progress)
    info.update({"n_train_windows": len(ex_tr.y), "n_train_positive": int(ex_tr.y.sum()),
                 "n_val_windows": len(ex_va.y)})
    # reference windows for the similarity component: training positives vs real negatives
    # (Φ mutants excluded: they are near-copies of the positives)
    pooled = ex_tr.X.numpy().mean(1).astype(np.float64)
    ypos = ex_tr.y.numpy() == 1
    refs = fuse.fit_centroids(pooled[ypos], pooled[~ypos & ~ex_tr.mutant], seed=cfg.seed)
    return net, info, refs


def _summary(values: list[dict]) -> dict:
    keys = [k for k in values[0] if isinstance(values[0][k], (int, float))]
    out = {}
    for k in keys:
        v = np.array([d[k] for d in values], dtype=float)
        out[k] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)), "folds": [float(x) for x in v]}
    return out


def _fusion_examples(records, outs, cfg):
    """Window examples (no mutants) with their out-of-fold component inputs."""
    ex = example_windows(records, cfg, np.random.default_rng(cfg.seed + 1), mutants=False)
    nn = np.array([outs[p]["nn"][s] for p, s, _, _ in ex])
    mf = np.array([outs[p]["mf"][s] for p, s, _, _ in ex])
    sr = np.array([outs[p]["sr"][s] for p, s, _, _ in ex])
    y = np.array([lab for _, _, lab, _ in ex])
    return [p for p, _, _, _ in ex], nn, mf, sr, y


def _component_arrays(params, outs, ids):
    return {i: fuse.component_scores(params, outs[i]["nn"], outs[i]["mf"], outs[i]["sr"]) for i in ids}


SHRINK_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)


def select_fusion_shrink(records, oof: dict, fold_of: dict, ex_ids, nn, mf, sr, y, window: int,
                         seed: int = 0, grid=SHRINK_GRID) -> tuple[float, dict]:
    """Pick the fusion's shrinkage (:func:`nesscan.fuse.fit_fusion`) by cross-validation over
    the folds present in ``fold_of``: for each fold, fit the fusion on the other folds' window
    examples and score this fold's proteins at every grid value; the value with the highest
    pooled hit@1 + hit@5 wins (ties: the larger value, i.e. the plain fit is preferred).
    Returns the value and the per-value table; with fewer than two folds (the inner loop of a
    2-fold CV) there is nothing to choose on and the plain fit (1.0) is returned with an empty
    table."""
    ex_fold = np.array([fold_of[i] for i in ex_ids])
    folds = sorted(set(ex_fold.tolist()))
    if len(folds) < 2 or any(len(set(y[ex_fold != k].tolist())) < 2 for k in folds):
        # nothing to cross-validate on (e.g. the inner loop of a 2-fold CV): the plain fit
        return 1.0, {}
    by_fold = {k: [r.id for r in records if fold_of.get(r.id) == k] for k in folds}
    arrays: dict[float, dict] = {g: {} for g in grid}
    for k in folds:
        tr = ex_fold != k
        for g, params in fuse.fit_fusion_grid(nn[tr], mf[tr], sr[tr], y[tr], seed=seed, shrinks=grid).items():
            arrays[g].update({i: c["fused_score"] for i, c in _component_arrays(params, oof, by_fold[k]).items()})
    sub = [r for r in records if r.id in fold_of]
    table = {}
    for g in grid:
        m = localisation_metrics(sub, arrays[g], window)
        table[g] = {"hit_at_1": m.get("hit_at_1", float("nan")), "hit_at_5": m.get("hit_at_5", float("nan"))}
    best = max(grid, key=lambda g: (round(table[g]["hit_at_1"] + table[g]["hit_at_5"], 9), g))
    return float(best), {str(g): v for g, v in table.items()}


def cross_validate(records, embs, mut, dim, cfg: TrainConfig, progress=True) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold

    skf = StratifiedGroupKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    oof: dict[str, dict] = {}
    fold_of: dict[str, int] = {}
    per_fold, epochs = [], []
    for k, (tr_idx, te_idx) in enumerate(skf.split(records, [r.group for r in records], [r.cluster for r in records])):
        t0 = time.time()
        tr = [records[i] for i in tr_idx]
        te = [records[i] for i in te_idx]
        net, info, refs = train_one(tr, embs, mut, dim, cfg)
        outs = protein_outputs(net, cfg.window, te, embs, refs)
        fold_of.update({r.id: k for r in te})
        oof.update(outs)
        m = localisation_metrics(te, {i: o["nn"] for i, o in outs.items()}, cfg.window)
        m.update(protein_aucs(te, {i: float(o["nn"].max()) for i, o in outs.items()}))
        m["best_epoch"] = info["best_epoch"]
        epochs.append(info["best_epoch"])
        per_fold.append(m)
        log.info("fold %d/%d (%.0fs, classifier alone): %s", k + 1, cfg.folds, time.time() - t0,
                 json.dumps({a: round(b, 3) for a, b in m.items() if isinstance(b, float)}))
    ids = [r.id for r in records]
    folds = np.array([fold_of[i] for i in ids])
    # fusion weights: learned on the other folds' out-of-fold windows, applied to this fold
    ex_ids, nn, mf, sr, y = _fusion_examples(records, oof, cfg)
    ex_fold = np.array([fold_of[i] for i in ex_ids])
    # the shrinkage is chosen inside the other folds too (nested), so fold k's figures stay unseen
    comps: dict[str, dict] = {}
    shrinks = []
    for k in range(cfg.folds):
        inner = {i: f for i, f in fold_of.items() if f != k}
        keep = ex_fold != k
        g, _ = select_fusion_shrink(records, oof, inner, [i for i, m in zip(ex_ids, keep) if m],
                                    nn[keep], mf[keep], sr[keep], y[keep], cfg.window, seed=cfg.seed)
        shrinks.append(g)
        params = fuse.fit_fusion(nn[keep], mf[keep], sr[keep], y[keep], seed=cfg.seed, shrink=g)
        comps.update(_component_arrays(params, oof, [i for i, f in zip(ids, folds) if f == k]))
    log.info("fusion shrinkage chosen per outer fold: %s", shrinks)
    final_shrink, shrink_table = select_fusion_shrink(records, oof, fold_of, ex_ids, nn, mf, sr, y, cfg.window,
                                                      seed=cfg.seed)
    components = {}
    for name in ("nn_score", "motif_score", "similarity_score", "fused_score"):
        arrays = {i: c[name] for i, c in comps.items()}
        loc = localisation_metrics(records, arrays, cfg.window)
        loc.update(protein_aucs(records, {i: float(a.max()) for i, a in arrays.items()}))
        components[name] = loc
    components["fused_score"]["phi_residues"] = phi_metrics(records, {i: c["fused_score"] for i, c in comps.items()},
                                                            cfg.window)
    # protein level on the fused NES evidence, same folds
    Xn = np.array([protein_model.feature_vector(
        r.sequence, comps[r.id]["fused_score"],
        [c.score for c in pick_candidates(comps[r.id]["fused_score"], len(r.sequence), cfg.window, top_k=2)])
        for r in records])
    Xc = np.array([protein_model.comp_features(r.sequence) for r in records])
    lab = np.array([r.label for r in records])
    p_comb, p_comp = np.zeros(len(ids)), np.zeros(len(ids))
    for k in range(cfg.folds):
        tr, te = folds != k, folds == k
        p_comb[te] = protein_model.predict(protein_model.fit(Xn[tr], lab[tr], seed=cfg.seed), Xn[te])
        gb = HistGradientBoostingClassifier(random_state=cfg.seed).fit(Xc[tr], lab[tr])
        p_comp[te] = gb.predict_proba(Xc[te])[:, 1]
    protein_level = {
        "nes_score (fused NES evidence, max over windows)": protein_aucs(records, {i: float(comps[i]["fused_score"].max()) for i in ids}),
        "nn_score alone (window classifier, max over windows)": protein_aucs(records, {i: float(oof[i]["nn"].max()) for i in ids}),
        "score (protein model: NES evidence + composition + length)": protein_aucs(records, dict(zip(ids, p_comb))),
        "baseline: composition + length only (gradient boosting, no NES evidence)": protein_aucs(records, dict(zip(ids, p_comp))),
    }
    return {
        "scheme": f"{cfg.folds}-fold StratifiedGroupKFold by mmseqs2 cluster (stratified on group), seed {cfg.seed}; "
                  "fusion and protein-level weights learned on the other folds' out-of-fold scores",
        "classifier_per_fold": _summary(per_fold),
        "pooled_out_of_fold": {"components": components, "protein_level_roc_auc": protein_level},
        "best_epochs": epochs,
        "fusion_shrinkage": {"rule": "highest pooled out-of-fold hit@1 + hit@5; chosen by nested CV on the "
                                     "training folds for each outer fold, and on all folds for the shipped model",
                             "per_outer_fold": shrinks, "final": final_shrink, "final_table": shrink_table},
        "_fusion_data": (nn, mf, sr, y, final_shrink),
        "_protein_data": (Xn, lab),
    }


def _arch_summary(metrics: dict) -> dict:
    comps = metrics["pooled_out_of_fold"]["components"]
    return {
        "classifier_hit_at_1": comps["nn_score"]["hit_at_1"],
        "classifier_hit_at_5": comps["nn_score"]["hit_at_5"],
        "classifier_window_auc_within_annotated": comps["nn_score"]["window_auc_within_annotated"],
        "classifier_T2": comps["nn_score"]["T2_annotated_vs_nonbinder"],
        "fused_hit_at_1": comps["fused_score"]["hit_at_1"],
        "fused_hit_at_5": comps["fused_score"]["hit_at_5"],
        "fused_window_auc_within_annotated": comps["fused_score"]["window_auc_within_annotated"],
    }


def run_train(data_dir: str, outdir: str, embedder: Embedder, cfg: TrainConfig, cv: bool = True,
              progress: bool = True, compare_archs: list[str] | None = None) -> dict:
    set_seed(cfg.seed)
    torch_threads = torch.get_num_threads()
    records = load_dataset(data_dir)
    log.info("%d proteins from %s (%s)", len(records), data_dir,
             ", ".join(f"{g}: {sum(r.group == g for r in records)}" for g in sorted({r.group for r in records})))
    embs, mut = embed_records(records, embedder, progress=progress)
    dim = embedder.dim
    card_extra = {
        "nesscan_version": __version__,
        "training": {
            "data_sha256": data_checksum(data_dir),
            "n_proteins": len(records),
            "n_spans": sum(len(r.spans) for r in records),
            "config": asdict(cfg),
            "torch": torch.__version__,
            "torch_threads": torch_threads,
        },
    }
    metrics = None
    if cv and compare_archs:
        from dataclasses import replace

        results = {}
        for arch in compare_archs:
            log.info("cross-validating the %s classifier", arch)
            results[arch] = cross_validate(records, embs, mut, dim, replace(cfg, arch=arch), progress=progress)
        table = {a: _arch_summary(m) for a, m in results.items()}
        best = max(table, key=lambda a: (round(table[a]["fused_hit_at_1"], 6), table[a]["classifier_window_auc_within_annotated"]))
        log.info("architecture comparison: %s -> %s", json.dumps(table), best)
        cfg = replace(cfg, arch=best)
        card_extra["training"]["config"] = asdict(cfg)
        card_extra["architecture_comparison"] = {
            "selected": best, "rule": "highest pooled out-of-fold hit@1 of the fused score, then classifier window AUC",
            "results": table}
        metrics = results[best]
        fusion_data, protein_data = metrics.pop("_fusion_data"), metrics.pop("_protein_data")
    elif cv:
        metrics = cross_validate(records, embs, mut, dim, cfg, progress=progress)
        fusion_data, protein_data = metrics.pop("_fusion_data"), metrics.pop("_protein_data")
    net, info, refs = train_one(records, embs, mut, dim, cfg, progress=progress)
    if not cv:  # no out-of-fold scores: fit the fusion and protein model in-sample (flagged in the card)
        outs = protein_outputs(net, cfg.window, records, embs, refs)
        _, nn, mf, sr, y = _fusion_examples(records, outs, cfg)
        fusion_data = (nn, mf, sr, y, 1.0)
        params = fuse.fit_fusion(nn, mf, sr, y, seed=cfg.seed)
        comps = _component_arrays(params, outs, [r.id for r in records])
        Xn = np.array([protein_model.feature_vector(
            r.sequence, comps[r.id]["fused_score"],
            [c.score for c in pick_candidates(comps[r.id]["fused_score"], len(r.sequence), cfg.window, top_k=2)])
            for r in records])
        protein_data = (Xn, np.array([r.label for r in records]))
    fusion_params = fuse.fit_fusion(*fusion_data[:4], seed=cfg.seed, shrink=fusion_data[4])
    protein_params = protein_model.fit(*protein_data, seed=cfg.seed)
    if not cv:
        fusion_params["note"] = protein_params["note"] = "fitted on in-sample scores (trained without cross-validation)"
    card_extra["training"]["final"] = {k: v for k, v in info.items() if k != "history"}
    card_extra["fusion"] = fusion_params
    card_extra["protein_model"] = protein_params
    if metrics is not None:
        card_extra["cross_validation"] = metrics
    card = ModelCard(embedder.name, dim, cfg.window, int(embedder.layer), cfg.arch, dict(cfg.hparams),
                     weights_sha256=embedder.weights_sha256, extra=card_extra)
    save(net, card, outdir, references=refs)
    log.info("saved model to %s", outdir)
    return card.to_json()

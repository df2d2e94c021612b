"""Cluster-grouped cross-validation of the whole scoring stack, every choice nested.

For each outer fold (``StratifiedGroupKFold`` by mmseqs2 cluster, stratified on the group):

1. the window model is fitted on the other folds: the neural classifier (early-stopped on held-out
   clusters of the training folds), the gradient-boosted trees, or both;
2. the *stack* (a logistic regression over the network's and the trees' logits) and the fusion
   with motifs, similarity and the NES profile (with its shrinkage and profile weight) are fitted
   on the other folds' out-of-fold scores, shrinkage and weight chosen by CV inside those folds;
3. the background null (:mod:`nesscan.calibrate`) is fitted on composition-preserving shuffles of
   the *training* proteins scored by this fold's pipeline; the held-out proteins and their own
   shuffles get E-values from it;
4. the default E-value cutoff is chosen on the other folds' out-of-fold E-values by the stated
   rule (:func:`choose_cutoff`), and this fold's call rates are measured at it.

Figures pooled over the outer folds are therefore for proteins never used to fit or choose
anything applied to them. The shipped model applies the same fits and rules to all folds.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from . import calibrate, scoring
from .fitting import example_windows, fit_trees, fit_window_model, raw_outputs
from .train_metrics import (calls_at, hit_rates, localisation_metrics, phi_metrics, protein_aucs,
                            summarise_folds)

log = logging.getLogger("nesscan.train")

SHRINK_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
# weight of the NES-profile score (log-odds units) added to the fused logit; 0 = no profile
PROFILE_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
EVALUE_GRID = tuple(float(f"{v:.3g}") for v in np.logspace(-4, 1, 26))
# the one-hot + hydropathy baseline's trees: fixed, whatever the window model's trees are
BASELINE_TREES = {"tree_iterations": 200, "tree_learning_rate": 0.1, "tree_max_leaf_nodes": 31}
# the false-call limits the default cutoff must respect on out-of-fold data (fraction of proteins
# with >= 1 high-confidence call), in order of the groups checked
CALL_LIMITS = {"shuffled": 0.05, "bacterial_control": 0.10, "crm1_nonbinder": 0.15}


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


# ----------------------------------------------------------------------------- stacking


def fit_stack(net_p: np.ndarray, tree_z: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Logistic regression over (logit of the network's probability, the trees' logit)."""
    from sklearn.linear_model import LogisticRegression

    X = np.stack([_logit(net_p), np.asarray(tree_z, dtype=np.float64)], 1)
    lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed, class_weight="balanced").fit(X, y)
    return {"inputs": ["logit net", "trees logit"], "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0])}


def window_model_scores(arch: str, out: dict, stack: dict | None) -> np.ndarray:
    """The window model's probability per window from a protein's raw outputs."""
    if arch == "gbm":
        return _sigmoid(out["tree"])
    if arch == "stack":
        return _sigmoid(stack["coef"][0] * _logit(out["net"]) + stack["coef"][1] * out["tree"] + stack["intercept"])
    return out["net"]


def _examples(records, cfg, seed_offset=1):
    return example_windows(records, cfg, np.random.default_rng(cfg.seed + seed_offset), mutants=False)


def _stack_for(records, outs, cfg):
    ex = _examples(records, cfg)
    net = np.array([outs[p]["net"][s] for p, s, _, _ in ex])
    tree = np.array([outs[p]["tree"][s] for p, s, _, _ in ex])
    y = np.array([lab for _, _, lab, _ in ex])
    return fit_stack(net, tree, y, cfg.seed)


def _fusion_data(records, outs, nn, cfg):
    ex = _examples(records, cfg)
    pf = np.array([outs[p]["pf"][s] if outs[p].get("pf") is not None else 0.0 for p, s, _, _ in ex])
    return ([p for p, _, _, _ in ex], np.array([nn[p][s] for p, s, _, _ in ex]),
            np.array([outs[p]["mf"][s] for p, s, _, _ in ex]), np.array([outs[p]["sr"][s] for p, s, _, _ in ex]),
            np.array([lab for _, _, lab, _ in ex]), pf)


def select_fusion(records, nn: dict, outs: dict, fold_of: dict, cfg, grid=SHRINK_GRID,
                  weights=PROFILE_GRID) -> tuple[tuple[float, float], dict]:
    """The fusion shrinkage and NES-profile weight with the highest pooled hit@1 + hit@5 over the
    folds in ``fold_of`` (each fold scored by a fusion fitted on the others); ties go to the
    larger shrinkage, then the smaller profile weight. Without profile scores in ``outs`` only
    weight 0 is tried. With fewer than two folds: the plain fit, no profile (1.0, 0.0)."""
    sub = [r for r in records if r.id in fold_of]
    folds = sorted(set(fold_of.values()))
    ids, nnx, mf, sr, y, _ = _fusion_data(sub, outs, nn, cfg)
    ex_fold = np.array([fold_of[i] for i in ids])
    if len(folds) < 2 or any(len(set(y[ex_fold != k].tolist())) < 2 for k in folds):
        return (1.0, 0.0), {}
    nes = [r for r in sub if r.group == "nes_annotated" and r.spans]  # localisation reads only these
    if any(outs[r.id].get("pf") is None for r in nes):
        weights = (0.0,)
    arrays: dict[tuple, dict] = {(g, a): {} for g in grid for a in weights}
    for k in folds:
        tr = ex_fold != k
        for g, params in scoring.fit_fusion_grid(nnx[tr], mf[tr], sr[tr], y[tr], seed=cfg.seed, shrinks=grid).items():
            for r in nes:
                if fold_of[r.id] == k:
                    z = scoring._logit(scoring.component_scores(params, nn[r.id], outs[r.id]["mf"], outs[r.id]["sr"])["fused_score"])
                    for a in weights:  # ranking only: the recalibration of with_profile is monotone
                        arrays[(g, a)][r.id] = z + a * outs[r.id]["pf"] if a else z
    table = {ga: hit_rates(sub, arr, cfg.window) for ga, arr in arrays.items()}
    table = {ga: {"hit_at_1": m.get("hit_at_1", float("nan")), "hit_at_5": m.get("hit_at_5", float("nan"))}
             for ga, m in table.items()}
    best = max(table, key=lambda ga: (round(table[ga]["hit_at_1"] + table[ga]["hit_at_5"], 9), ga[0], -ga[1]))
    return (float(best[0]), float(best[1])), {f"shrink={g} profile={a}": v for (g, a), v in table.items()}


def fit_fusion_on(records, nn, outs, cfg, shrink, profile_weight=0.0):
    _, nnx, mf, sr, y, pf = _fusion_data(records, outs, nn, cfg)
    params = scoring.fit_fusion(nnx, mf, sr, y, seed=cfg.seed, shrink=shrink)
    if profile_weight:
        fused_ex = scoring.component_scores(params, nnx, mf, sr)["fused_score"]
        params = scoring.with_profile(params, profile_weight, fused_ex, pf, y, seed=cfg.seed)
    return params


def fused(params, nn_arr, out):
    return scoring.component_scores(params, nn_arr, out["mf"], out["sr"], out.get("pf"))


# ----------------------------------------------------------------------------- calls


def choose_cutoff(min_e: dict[str, float], groups: dict[str, str], grid=EVALUE_GRID, limits=CALL_LIMITS) -> float:
    """The largest E-value cutoff of ``grid`` at which every group of ``limits`` has at most its
    fraction of proteins with a call (``min_e <= cutoff``); the smallest grid value if none."""
    ok = []
    for c in grid:
        good = True
        for g, lim in limits.items():
            v = [e for i, e in min_e.items() if groups.get(i) == g]
            if v and np.mean(np.array(v) <= c) > lim:
                good = False
        if good:
            ok.append(c)
    return float(max(ok)) if ok else float(min(grid))


PROTEOME = 20000  # proteins in the proteome the card's call counts are scaled to (human: ~20,400)


def calls_meaning(calls: dict, cutoff: float, proteome: int = PROTEOME) -> dict:
    """What the default E-value cutoff means in false calls per proteome, for the model card:
    the shuffled null's expectation (by the E-value's definition, ``cutoff`` null candidates per
    protein at E <= cutoff, whatever its length) and the out-of-fold share of proteins with >= 1
    call per group, at this cutoff (``calls["curve"]``) and at the nested cutoffs, scaled to a
    ``proteome``-protein proteome."""
    at = calls["curve"][str(cutoff)]
    nested = calls["pooled_at_nested_cutoffs"]
    groups = ("shuffled", "bacterial_control", "crm1_nonbinder")
    per = {g: {"share_with_a_call": at[f"call_rate_{g}"], "share_with_a_call_nested": nested[f"call_rate_{g}"],
               "proteins_with_a_call_per_proteome": round(at[f"call_rate_{g}"] * proteome),
               "proteins_with_a_call_per_proteome_nested": round(nested[f"call_rate_{g}"] * proteome)}
           for g in groups if f"call_rate_{g}" in at and f"call_rate_{g}" in nested}
    return {
        "max_evalue": cutoff,
        "proteome_proteins": proteome,
        "expected_false_candidates_per_protein": cutoff,
        "expected_false_candidates_per_proteome": round(cutoff * proteome),
        "out_of_fold": per,
        "nes_span_recall": at.get("nes_span_recall"),
        "precision_in_nes_proteins": at.get("precision_in_nes_proteins"),
        "text": (f"At E <= {cutoff:g} (the default high-confidence cutoff) a protein with no NES gets, against the "
                 f"shuffled background, {cutoff:g} false candidates on average whatever its length: about "
                 f"{round(cutoff * proteome):,} in a {proteome:,}-protein proteome. Measured out of fold at this "
                 "cutoff (nested cutoffs in brackets), proteins with >= 1 call: "
                 + "; ".join(f"{g} {v['share_with_a_call']:.1%} ({v['share_with_a_call_nested']:.1%}), "
                             f"~{v['proteins_with_a_call_per_proteome']:,} per {proteome:,}" for g, v in per.items())
                 + ". Real proteins without NES get fewer calls than their shuffles: the shuffled figure is an "
                   "upper bound for folded proteins."),
    }


def protein_evalues(null: dict, score: np.ndarray, length: int, window: int, top_k: int = 5):
    from .window_score import pick_candidates

    cands = pick_candidates(score, length, window, top_k=top_k)
    ev = calibrate.evalue(null, [c.score for c in cands], length)
    return [(c.start, c.end, float(e)) for c, e in zip(cands, ev)]


def null_from(scores: dict[str, np.ndarray], lengths: dict[str, int], window: int) -> dict:
    cs = [calibrate.null_candidate_scores(scores[i], lengths[i], window) for i in scores]
    return calibrate.fit_null(np.concatenate(cs), int(sum(lengths[i] for i in scores)))


# ----------------------------------------------------------------------------- driver


def cross_validate(records, embs, mut, null_records, null_embs, dim, cfg, progress=True) -> dict:
    """Out-of-fold figures for the configured window model and the rest of the stack; also
    returns (under ``_final``) what the shipped model's fits need."""
    from sklearn.model_selection import StratifiedGroupKFold

    arch = cfg.arch
    skf = StratifiedGroupKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    splits = list(skf.split(records, [r.group for r in records], [r.cluster for r in records]))
    outs: dict[str, dict] = {}
    fold_of: dict[str, int] = {}
    fold_models, per_fold, epochs = [], [], []
    baseline_gbm: dict[str, np.ndarray] = {}
    nulls = {r.id: n for r, n in zip(records, null_records)}
    for k, (tr_idx, te_idx) in enumerate(splits):
        t0 = time.time()
        tr = [records[i] for i in tr_idx]
        te = [records[i] for i in te_idx]
        wm = fit_window_model(tr, embs, mut, dim, cfg)
        outs.update(raw_outputs(wm, te, embs, cfg.window))
        if cfg.tree_channels:  # the simplest learned baseline on the same folds: trees on one-hot + hydropathy
            from dataclasses import replace as _replace

            from .window_score import tree_raw

            base_ch = list(cfg.tree_channels[:21])
            b, _ = fit_trees(tr, embs, mut, _replace(cfg, phi_mutants=False, **BASELINE_TREES), base_ch)
            baseline_gbm.update({r.id: tree_raw(b, [embs[r.id]], base_ch, cfg.window) for r in te})
        fold_models.append(wm)
        fold_of.update({r.id: k for r in te})
        epochs.append(wm.info.get("best_epoch"))
        log.info("fold %d/%d fitted (%.0fs)", k + 1, cfg.folds, time.time() - t0)
    ids = [r.id for r in records]
    # stack per outer fold on the other folds' out-of-fold outputs, then the window score
    nn: dict[str, np.ndarray] = {}
    stacks = []
    for k in range(cfg.folds):
        other = [r for r in records if fold_of[r.id] != k]
        st = _stack_for(other, outs, cfg) if arch == "stack" else None
        stacks.append(st)
        for r in records:
            if fold_of[r.id] == k:
                nn[r.id] = window_model_scores(arch, outs[r.id], st)
    # fusion per outer fold, its shrinkage chosen inside the other folds
    comps: dict[str, dict] = {}
    shrinks, profile_weights, fusions = [], [], []
    for k in range(cfg.folds):
        inner = {i: f for i, f in fold_of.items() if f != k}
        other = [r for r in records if fold_of[r.id] != k]
        (g, a), _ = select_fusion(records, nn, outs, inner, cfg)
        shrinks.append(g)
        profile_weights.append(a)
        params = fit_fusion_on(other, nn, outs, cfg, g, a)
        fusions.append(params)
        for r in records:
            if fold_of[r.id] == k:
                comps[r.id] = fused(params, nn[r.id], outs[r.id])
    log.info("fusion shrinkage chosen per outer fold: %s; NES-profile weight: %s", shrinks, profile_weights)
    # background null per fold: shuffles of the training proteins through this fold's pipeline
    lengths = {r.id: len(r.sequence) for r in records}
    null_len = {n.id: len(n.sequence) for n in null_records}
    min_e: dict[str, float] = {}
    cand_e: dict[str, list] = {}
    null_min_e: dict[str, float] = {}
    null_fits = []
    for k, wm in enumerate(fold_models):
        fold_null = [nulls[r.id] for r in records]
        raw = raw_outputs(wm, fold_null, null_embs, cfg.window)
        fused_null = {n.id: fused(fusions[k], window_model_scores(arch, raw[n.id], stacks[k]), raw[n.id])["fused_score"]
                      for n in fold_null}
        train_null = {nulls[r.id].id: fused_null[nulls[r.id].id] for r in records if fold_of[r.id] != k}
        null = null_from(train_null, null_len, cfg.window)
        null_fits.append({"n_null_candidates": null["n_null_candidates"], "n_null_residues": null["n_null_residues"]})
        for r in records:
            if fold_of[r.id] != k:
                continue
            c = protein_evalues(null, comps[r.id]["fused_score"], lengths[r.id], cfg.window)
            cand_e[r.id] = c
            min_e[r.id] = c[0][2]
            n = nulls[r.id]
            null_min_e[n.id] = protein_evalues(null, fused_null[n.id], null_len[n.id], cfg.window)[0][2]
        log.info("fold %d/%d: null from %d shuffled training proteins (%d candidates)", k + 1, cfg.folds,
                 len(train_null), null["n_null_candidates"])
    groups = {r.id: r.group for r in records}
    groups.update({n.id: "shuffled" for n in null_records})
    all_min = {**min_e, **null_min_e}
    shuffle_fold = {nulls[r.id].id: fold_of[r.id] for r in records}
    all_fold = {**fold_of, **shuffle_fold}
    cutoffs = []
    per_fold_calls = []
    for k in range(cfg.folds):
        c = choose_cutoff({i: e for i, e in all_min.items() if all_fold[i] != k}, groups)
        cutoffs.append(c)
        per_fold_calls.append(calls_at([r for r in records if fold_of[r.id] == k], cand_e,
                                       {i: e for i, e in all_min.items() if all_fold[i] == k}, groups, c))
    final_cut = choose_cutoff(all_min, groups)
    # pooled at each fold's own (nested) cutoff
    pooled_calls = calls_at(records, cand_e, all_min, groups, None, per_protein_cut={i: cutoffs[all_fold[i]] for i in all_min})
    curve = {str(c): calls_at(records, cand_e, all_min, groups, c) for c in EVALUE_GRID}
    components = {}
    for name in ("nn_score", "motif_score", "similarity_score", "fused_score"):
        arrays = {i: c[name] for i, c in comps.items()}
        loc = localisation_metrics(records, arrays, cfg.window)
        loc.update(protein_aucs(records, {i: float(a.max()) for i, a in arrays.items()}))
        components[name] = loc
    for part in ("net", "tree", "pf"):
        if outs[ids[0]].get(part) is not None:
            arrays = {i: outs[i][part] for i in ids}
            loc = localisation_metrics(records, arrays, cfg.window)
            loc.update(protein_aucs(records, {i: float(a.max()) for i, a in arrays.items()}))
            components[{"pf": "profile"}.get(part, part) + "_alone"] = loc
    baselines = {}
    if baseline_gbm:
        baselines["gbm_onehot_hydropathy"] = localisation_metrics(records, baseline_gbm, cfg.window)
    counts = {i: o["mf"][:, :4].sum(1) + 1e-3 * o["mf"][:, 5] for i, o in outs.items()}  # consensus matches in the window
    baselines["kosugi_wregex_counts"] = localisation_metrics(records, counts, cfg.window)
    components["fused_score"]["phi_residues"] = phi_metrics(records, {i: c["fused_score"] for i, c in comps.items()},
                                                            cfg.window)
    per_fold = [localisation_metrics([r for r in records if fold_of[r.id] == k],
                                     {i: comps[i]["fused_score"] for i in ids if fold_of[i] == k}, cfg.window)
                for k in range(cfg.folds)]
    return {
        "scheme": f"{cfg.folds}-fold StratifiedGroupKFold by mmseqs2 cluster (stratified on group), seed {cfg.seed}; "
                  "stack, fusion, shrinkage, background null and E-value cutoff fitted or chosen on the other "
                  "folds (nested) for each outer fold",
        "fused_per_fold": summarise_folds(per_fold),
        "pooled_out_of_fold": {"components": components, "localisation_baselines": baselines},
        "best_epochs": epochs,
        "fusion_shrinkage": {"rule": "highest pooled out-of-fold hit@1 + hit@5 (nested)", "per_outer_fold": shrinks,
                             "profile_weight_per_outer_fold": profile_weights,
                             "profile_weight_grid": list(PROFILE_GRID)},
        "calls": {"rule": "largest E-value cutoff on the grid at which out-of-fold call rates stay within "
                          + ", ".join(f"{g} <= {v:.0%}" for g, v in CALL_LIMITS.items())
                          + " (proteins with >= 1 high-confidence call); nested: chosen on the other folds",
                  "limits": CALL_LIMITS, "cutoff_per_outer_fold": cutoffs, "final_cutoff": final_cut,
                  "pooled_at_nested_cutoffs": pooled_calls, "per_fold": per_fold_calls,
                  "curve": curve, "null_per_fold": null_fits},
        "_final": {"outs": outs, "nn": nn, "comps": comps, "fold_of": fold_of, "min_e": min_e,
                   "fusion_final": select_fusion(records, nn, outs, fold_of, cfg)},
    }

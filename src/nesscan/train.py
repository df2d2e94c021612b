"""``nesscan train``: the shipped model from NES data, with its nested cluster-grouped CV.

Drives :mod:`nesscan.fitting` (window examples, the network, the trees, the similarity
references) and :mod:`nesscan.crossval` (the nested CV of the whole stack); imports go one way:
``train -> crossval -> fitting``. The fitting names are re-exported here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import __version__, crossval, protein_model
from .data import Record, data_checksum, load_dataset
from .embedders import Embedder
from .fitting import (Examples, TrainConfig, WindowModel, _NetModel, build_examples, embed_records,  # noqa: F401
                      example_windows, fit_classifier, fit_trees, fit_window_model, hard_shuffle_records, raw_outputs,
                      set_seed, similarity_references, train_one, tree_channels)
from .model import ModelCard, save
from .window_score import pick_candidates

log = logging.getLogger("nesscan.train")


def null_records(records: list[Record], cfg: TrainConfig) -> list[Record]:
    """Composition-preserving shuffles of the proteins (``cfg.null_shuffles`` each; only the
    first is used by the cross-validation), as records of group ``shuffled``."""
    from . import calibrate

    out = []
    for k in range(cfg.null_shuffles):
        for r in records:
            out.append(Record(f"{r.id}|shuffle{k}", calibrate.shuffle_sequence(r.sequence, cfg.seed + k, r.id),
                              r.cluster, "shuffled", 0))
    return out


def _protein_features(records, fused_scores, window):
    return np.array([protein_model.feature_vector(
        r.sequence, fused_scores[r.id],
        [c.score for c in pick_candidates(fused_scores[r.id], len(r.sequence), window, top_k=2)]) for r in records])


def _context_features(records, embs) -> np.ndarray:
    """The proteins' disorder context features (the embeddings' last two channels)."""
    return np.array([protein_model.context_features(embs[r.id][:, -2:]) for r in records])


@dataclass
class TrainingInputs:
    """What training and its cross-validation read: the proteins, their embeddings (with the
    Φ-mutant and hard-negative embeddings), the background-null shuffles and theirs, and the
    configuration completed for the embedder (:func:`training_inputs`)."""

    records: list[Record]
    embs: dict
    mut: dict
    nulls: list[Record]
    null_embs: dict
    cfg: TrainConfig
    context: bool


def training_inputs(records: list[Record], embedder: Embedder, cfg: TrainConfig, progress: bool = True,
                    trees: bool | None = None) -> TrainingInputs:
    """Embed the proteins, their Φ mutants, the shuffled hard negatives (``cfg.neg_per_shuffled``)
    and the background-null shuffles, and set the trees' channels for the embedder when ``trees``
    (default: the arch has trees). ``nesscan train`` and ``scripts/repeat_cv.py`` both start here."""
    from dataclasses import replace

    context = getattr(embedder, "context", "none") != "none"
    if cfg.arch in ("gbm", "stack") if trees is None else trees:
        cfg = replace(cfg, tree_channels=tree_channels(embedder.name, embedder.dim, context))
    embs, mut = embed_records(records, embedder, progress=progress)
    if cfg.neg_per_shuffled:  # shuffled hard negatives; each fold uses the shuffles of its own proteins
        hard_embs, _ = embed_records(hard_shuffle_records(records, cfg), embedder, progress=progress, mutants=False)
        embs.update(hard_embs)
    nulls = null_records(records, cfg)
    null_embs, _ = embed_records(nulls, embedder, progress=progress, mutants=False)
    return TrainingInputs(records, embs, mut, nulls, null_embs, cfg, context)


def run_train(data_dir: str, outdir: str, embedder: Embedder, cfg: TrainConfig, cv: bool = True,
              progress: bool = True, compare_archs: list[str] | None = None) -> dict:
    """Train the window model, the stack, the fusion, the background null (E-values) and the
    protein model; with ``cv``, every figure of the model card from nested cluster-grouped CV."""
    from dataclasses import replace

    set_seed(cfg.seed)
    torch_threads = torch.get_num_threads()
    records = load_dataset(data_dir)
    log.info("%d proteins from %s (%s)", len(records), data_dir,
             ", ".join(f"{g}: {sum(r.group == g for r in records)}" for g in sorted({r.group for r in records})))
    inputs = training_inputs(records, embedder, cfg, progress=progress,
                             trees=cfg.arch in ("gbm", "stack") or bool(compare_archs))
    embs, mut, nulls, null_embs, cfg, context = (inputs.embs, inputs.mut, inputs.nulls, inputs.null_embs,
                                                 inputs.cfg, inputs.context)
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
    if context:
        from .disorder import spec

        card_extra["context_channels"] = spec()
    metrics = None
    if cv and compare_archs:
        results = {a: crossval.cross_validate(records, embs, mut, nulls, null_embs, dim, replace(cfg, arch=a),
                                              progress=progress) for a in compare_archs}
        table = {a: _arch_summary(m) for a, m in results.items()}
        best = max(table, key=lambda a: (round(table[a]["fused_hit_at_1"] + table[a]["fused_hit_at_5"], 6), a))
        log.info("window model comparison: %s -> %s", json.dumps(table), best)
        cfg = replace(cfg, arch=best)
        card_extra["training"]["config"] = asdict(cfg)
        card_extra["window_model_comparison"] = {
            "selected": best, "rule": "highest pooled out-of-fold hit@1 + hit@5 of the fused score", "results": table}
        metrics = results[best]
        for a, m in results.items():
            m.pop("_final", None) if a != best else None
    elif cv:
        metrics = crossval.cross_validate(records, embs, mut, nulls, null_embs, dim, cfg, progress=progress)
    wm = fit_window_model(records, embs, mut, dim, cfg, progress=progress)
    outs = raw_outputs(wm, records, embs, cfg.window)
    if metrics is not None:
        fin = metrics.pop("_final")
        oof_outs = fin["outs"]
        stack = crossval._stack_for(records, oof_outs, cfg) if cfg.arch == "stack" else None
        (shrink, weight), shrink_table = fin["fusion_final"]
        metrics["fusion_shrinkage"].update({"final": shrink, "final_profile_weight": weight, "final_table": shrink_table})
        fusion_params = crossval.fit_fusion_on(records, fin["nn"], oof_outs, cfg, shrink, weight)
        if weight:  # the shipped profile: fitted on every training span
            fusion_params["profile"] = wm.profile
        oof_fused = {i: c["fused_score"] for i, c in fin["comps"].items()}
        max_evalue = metrics["calls"]["final_cutoff"]
    else:  # no out-of-fold scores: stack and fusion fitted in-sample (flagged in the card)
        stack = crossval._stack_for(records, outs, cfg) if cfg.arch == "stack" else None
        nn = {r.id: crossval.window_model_scores(cfg.arch, outs[r.id], stack) for r in records}
        fusion_params = crossval.fit_fusion_on(records, nn, outs, cfg, 1.0)
        fusion_params["note"] = "fitted on in-sample scores (trained without cross-validation)"
        oof_fused = {r.id: crossval.fused(fusion_params, nn[r.id], outs[r.id])["fused_score"] for r in records}
        max_evalue = 0.01
    # the background null of the shipped model: every shuffle through the final pipeline
    null_raw = raw_outputs(wm, nulls, null_embs, cfg.window)
    null_fused = {n.id: crossval.fused(fusion_params, crossval.window_model_scores(cfg.arch, null_raw[n.id], stack),
                                       null_raw[n.id])["fused_score"] for n in nulls}
    null = crossval.null_from(null_fused, {n.id: len(n.sequence) for n in nulls}, cfg.window)
    null["max_evalue"] = max_evalue
    null["null_proteins"] = f"{len(nulls)} composition-preserving shuffles of the training proteins"
    if metrics is not None:
        null["meaning"] = crossval.calls_meaning(metrics["calls"], max_evalue)
    card_extra["calibration"] = null
    # protein model on the (out-of-fold) fused NES evidence
    from . import protein_model as pm

    Xn = _protein_features(records, oof_fused, cfg.window)
    Xd = _context_features(records, embs) if context else None
    y = np.array([r.label for r in records])
    # the disorder context joins the protein model when cross-validation over all folds prefers it
    # (the outer folds' figures below choose it on their own training folds)
    use_context = Xd is not None and metrics is not None and pm.choose_context(
        Xn, Xd, y, np.array([fin["fold_of"][r.id] for r in records]), seed=cfg.seed)
    protein_params, protein_trees = pm.fit_gbm(np.hstack([Xn, Xd]) if use_context else Xn, y, seed=cfg.seed)
    if metrics is None:
        protein_params["note"] = "fitted on in-sample scores (trained without cross-validation)"
    else:
        pl = pm.cross_validated_aucs(records, Xn, fin["fold_of"], seed=cfg.seed, Xd=Xd)
        ctx = pl.pop("context_features", None)
        metrics["pooled_out_of_fold"]["protein_level"] = pl
        if ctx is not None:
            metrics["pooled_out_of_fold"]["protein_context_features"] = {**ctx, "used_by_shipped_model": use_context}
    card_extra["training"]["final"] = {k: v for k, v in wm.info.items() if k != "history"}
    if stack is not None:
        card_extra["stack"] = stack
    if wm.booster is not None:
        card_extra["trees"] = {"channels": wm.channels, "iterations": cfg.tree_iterations,
                               "learning_rate": cfg.tree_learning_rate, "max_leaf_nodes": cfg.tree_max_leaf_nodes}
    card_extra["fusion"] = fusion_params
    card_extra["protein_model"] = protein_params
    if metrics is not None:
        card_extra["cross_validation"] = metrics
    card = ModelCard(embedder.name, dim, cfg.window, int(embedder.layer), cfg.arch, dict(cfg.hparams),
                     weights_sha256=embedder.weights_sha256, extra=card_extra,
                     context=getattr(embedder, "context", "none"), net_arch=cfg.net_arch if cfg.arch == "stack" else "")
    save(wm.net, card, outdir, references=wm.refs, trees={**(wm.trees or {}), **protein_trees})
    log.info("saved model to %s", outdir)
    return card.to_json()


def _arch_summary(metrics: dict) -> dict:
    comps = metrics["pooled_out_of_fold"]["components"]
    calls = metrics["calls"]["pooled_at_nested_cutoffs"]
    return {
        "window_model_hit_at_1": comps["nn_score"]["hit_at_1"],
        "window_model_hit_at_5": comps["nn_score"]["hit_at_5"],
        "window_model_window_auc_within_annotated": comps["nn_score"]["window_auc_within_annotated"],
        "fused_hit_at_1": comps["fused_score"]["hit_at_1"],
        "fused_hit_at_5": comps["fused_score"]["hit_at_5"],
        "fused_window_auc_within_annotated": comps["fused_score"]["window_auc_within_annotated"],
        **{k: v for k, v in calls.items() if k.startswith(("call_rate", "nes_span", "precision"))},
    }

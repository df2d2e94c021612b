#!/usr/bin/env python3
"""Print the cross-validation figures of a model card (model.json) as Markdown tables.

    python scripts/model_card_table.py models/nesscan-builtin-v2/model.json [--v1 V1_FIGURES_JSON]
"""
import json
import sys


def fmt(x, d=3):
    if x is None:
        return "–"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v, d) for v in x) + "]"
    return f"{x:.{d}f}"


def pct(x):
    return "–" if x is None or x != x else f"{100 * x:.1f} %"


# the v1 model's figures on the same folds (its card, models/nesscan-builtin-v2 in nesscan 0.1.0)
V1 = {"hit_at_1": 0.602, "hit_at_5": 0.952, "window_auc_within_annotated": 0.920, "classifier_hit_at_1": 0.597}


def main(path):
    card = json.load(open(path))
    cv = card["cross_validation"]
    pooled = cv["pooled_out_of_fold"]
    print(f"Cross-validation: {cv['scheme']}.\n")
    print("**Localisation** (NES-annotated proteins of held-out clusters; hit@k: a top-k candidate overlaps a "
          "known NES):\n")
    print("| window score | hit@1 | hit@5 | residue AUC (pooled) | window AUC within annotated | T2 AUC (max) | T3 AUC (max) |")
    print("|---|---|---|---|---|---|---|")
    names = {"fused_score": "**fused** (shipped ranking: stack + motifs + similarity + NES profile)",
             "nn_score": "window model (stack: CNN + trees)", "net_alone": "CNN alone (with disorder)",
             "tree_alone": "trees alone (one-hot + hydropathy + disorder)", "motif_score": "motifs alone",
             "similarity_score": "similarity alone", "profile_alone": "NES profile alone (log-odds around Φ1)"}
    for key in ("fused_score", "nn_score", "net_alone", "tree_alone", "motif_score", "similarity_score",
                "profile_alone"):
        m = pooled["components"].get(key)
        if m:
            print(f"| {names[key]} | {fmt(m['hit_at_1'])} | {fmt(m['hit_at_5'])} | {fmt(m['residue_auc_pooled'])} | "
                  f"{fmt(m['window_auc_within_annotated'])} | {fmt(m['T2_annotated_vs_nonbinder'])} | "
                  f"{fmt(m['T3_cargo_vs_nonbinder'])} |")
    base = pooled.get("localisation_baselines", {})
    bnames = {"gbm_onehot_hydropathy": "baseline: trees on one-hot + hydropathy (no disorder)",
              "kosugi_wregex_counts": "baseline: Kosugi/Wregex matches in the window"}
    for key, m in base.items():
        print(f"| {bnames.get(key, key)} | {fmt(m['hit_at_1'])} | {fmt(m['hit_at_5'])} | {fmt(m['residue_auc_pooled'])} | "
              f"{fmt(m['window_auc_within_annotated'])} | – | – |")
    print(f"| v1 (nesscan 0.1.0: CNN + fusion, same folds) | {fmt(V1['hit_at_1'])} | {fmt(V1['hit_at_5'])} | – | "
          f"{fmt(V1['window_auc_within_annotated'])} | – | – |")
    fpf = cv.get("fused_per_fold", {})
    if "hit_at_1" in fpf:
        print(f"\nFused hit@1 per fold: {', '.join(fmt(v, 2) for v in fpf['hit_at_1']['folds'])} "
              f"(mean {fmt(fpf['hit_at_1']['mean'])} ± {fmt(fpf['hit_at_1']['sd'])}).")
    phi = pooled["components"]["fused_score"].get("phi_residues", {})
    if phi:
        print("\n**Φ residues** of the fused top candidates:\n")
        print("| scored against | precision | recall | F1 | n |")
        print("|---|---|---|---|---|")
        print(f"| each annotated span (strict) | {fmt(phi.get('phi_precision'))} | {fmt(phi.get('phi_recall'))} | "
              f"{fmt(phi.get('phi_f1'))} | {phi.get('phi_n_spans')} spans |")
        print(f"| best-matching annotation of each region | {fmt(phi.get('phi_region_precision'))} | "
              f"{fmt(phi.get('phi_region_recall'))} | {fmt(phi.get('phi_region_f1'))} | {phi.get('phi_n_regions')} regions |")
    calls = cv["calls"]
    print(f"\n**High-confidence calls** (E-value cutoff; rule: {calls['rule']}). Chosen per outer fold: "
          f"{', '.join(f'{c:g}' for c in calls['cutoff_per_outer_fold'])}; shipped: **{calls['final_cutoff']:g}**.\n")
    print("| at | shuffled proteins with a call | bacterial | CRM1 non-binders | CRM1 cargo | NES-annotated | "
          "annotated NES spans found | called candidates on a known NES |")
    print("|---|---|---|---|---|---|---|---|")

    def row(label, c):
        print(f"| {label} | {pct(c.get('call_rate_shuffled'))} | {pct(c.get('call_rate_bacterial_control'))} | "
              f"{pct(c.get('call_rate_crm1_nonbinder'))} | {pct(c.get('call_rate_crm1_cargo'))} | "
              f"{pct(c.get('call_rate_nes_annotated'))} | {pct(c.get('nes_span_recall'))} | "
              f"{pct(c.get('precision_in_nes_proteins'))} |")

    row("nested cutoffs (pooled)", calls["pooled_at_nested_cutoffs"])
    for c in ("0.001", "0.01", "0.1", "1"):
        key = next((k for k in calls["curve"] if abs(float(k) - float(c)) / float(c) < 0.05), None)
        if key:
            row(f"E ≤ {float(key):g}", calls["curve"][key])
    meaning = card.get("calibration", {}).get("meaning")
    if meaning:
        print(f"\n**What the default cutoff means** (`calibration.meaning` in the card): {meaning['text']}")
    pl = pooled.get("protein_level")
    if pl:
        print("\n**Protein level** (ROC AUC, pooled out-of-fold; score − baseline with a 95 % cluster-bootstrap "
              "interval):\n")
        ctx = pooled.get("protein_context_features")
        dis = ctx is not None
        what = "NES evidence + composition + length" + (" (+ disorder context where chosen)" if dis else "")
        print(f"| task | nes_score (NES evidence only) | score (trees: {what}) | "
              "baseline (same trees, composition + length only) | score − baseline, 95 % CI |"
              + (" baseline + disorder context (no NES evidence) | score − that, 95 % CI |" if dis else ""))
        print("|---|---|---|---|---|" + ("---|---|" if dis else ""))
        for task, m in pl.items():
            lo, hi = m["score_minus_baseline_95ci"]
            extra = ""
            if dis:
                lo2, hi2 = m["score_minus_disorder_baseline_95ci"]
                bd = m["baseline_composition_length_disorder"]
                extra = f" {fmt(bd)} | {fmt(m['score'] - bd)} [{fmt(lo2)}, {fmt(hi2)}] |"
            print(f"| {task} | {fmt(m['nes_score'])} | {fmt(m['score'])} | {fmt(m['baseline_composition_length'])} | "
                  f"{fmt(m['score'] - m['baseline_composition_length'])} [{fmt(lo)}, {fmt(hi)}] |" + extra)
        if dis:
            print(f"\nDisorder context features ({', '.join(ctx['features'])}) in the protein model, chosen per outer "
                  f"fold by {ctx['rule']}: {ctx['used_per_outer_fold']}; shipped model: {ctx['used_by_shipped_model']}.")
    fs = cv.get("fusion_shrinkage")
    if fs:
        print(f"\nFusion shrinkage chosen per outer fold: {fs['per_outer_fold']}; shipped: {fs.get('final')}.")
        if "profile_weight_per_outer_fold" in fs:
            print(f"\nNES-profile weight (log-odds units added to the fused logit; grid {fs['profile_weight_grid']}) "
                  f"chosen per outer fold: {fs['profile_weight_per_outer_fold']}; shipped: {fs.get('final_profile_weight')}.")
    cal = card.get("calibration", {})
    if cal:
        print(f"\nBackground null of the shipped model: {cal.get('null_proteins')}, {cal['n_null_candidates']:,} "
              f"null candidates over {cal['n_null_residues']:,} residues.")


if __name__ == "__main__":
    main(sys.argv[1])

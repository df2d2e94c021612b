#!/usr/bin/env python3
"""Print the cross-validation figures of a model card (model.json) as Markdown tables.

    python scripts/model_card_table.py models/nesscan-builtin-v1/model.json
"""
import json
import sys


def fmt(x):
    return "–" if x is None else f"{x:.3f}"


def main(path):
    card = json.load(open(path))
    cv = card["cross_validation"]
    print(f"Cross-validation: {cv['scheme']}.\n")
    comps = cv["pooled_out_of_fold"]["components"]
    print("| score | hit@1 | hit@5 | residue AUC (pooled) | residue AUC (per protein) | window AUC within annotated | T2 AUC (max) | T3 AUC (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in comps.items():
        print(f"| `{name}` | {fmt(m['hit_at_1'])} | {fmt(m['hit_at_5'])} | {fmt(m['residue_auc_pooled'])} | "
              f"{fmt(m['residue_auc_per_protein_mean'])} | {fmt(m['window_auc_within_annotated'])} | "
              f"{fmt(m['T2_annotated_vs_nonbinder'])} | {fmt(m['T3_cargo_vs_nonbinder'])} |")
    print("\nProtein-level ROC AUC (pooled out-of-fold):\n")
    print("| protein score | T1 annotated vs bacterial | T2 annotated vs non-binder | T3 cargo vs non-binder |")
    print("|---|---|---|---|")
    for name, m in cv["pooled_out_of_fold"]["protein_level_roc_auc"].items():
        print(f"| {name} | {fmt(m['T1_annotated_vs_bacterial'])} | {fmt(m['T2_annotated_vs_nonbinder'])} | {fmt(m['T3_cargo_vs_nonbinder'])} |")
    if "architecture_comparison" in card:
        ac = card["architecture_comparison"]
        print(f"\nClassifier architectures (same folds; selected: **{ac['selected']}**, rule: {ac['rule']}):\n")
        keys = list(next(iter(ac["results"].values())))
        print("| arch | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for a, r in ac["results"].items():
            print(f"| {a} | " + " | ".join(fmt(r[k]) for k in keys) + " |")
        if ac.get("note"):
            print(f"\nNote: {ac['note']}")
    fs = cv.get("fusion_shrinkage")
    if fs:
        print(f"\nFusion shrinkage (motif and similarity weights relative to the classifier's; rule: {fs['rule']}): "
              f"chosen per outer fold {', '.join(f'{x:g}' for x in fs['per_outer_fold'])}; shipped model **{fs['final']:g}**.\n")
        print("| shrink | hit@1 | hit@5 |")
        print("|---|---|---|")
        for g, m in fs["final_table"].items():
            print(f"| {g} | {fmt(m['hit_at_1'])} | {fmt(m['hit_at_5'])} |")
    phi = cv.get("pooled_out_of_fold", {}).get("components", {}).get("fused_score", {}).get("phi_residues")
    if phi:
        print("\nΦ residues of the fused top candidates (out of fold; `nesscan evaluate`'s definitions):\n")
        print("| scored against | precision | recall | F1 | n |")
        print("|---|---|---|---|---|")
        print(f"| each annotated span on its own (strict) | {fmt(phi['phi_precision'])} | {fmt(phi['phi_recall'])} "
              f"| {fmt(phi['phi_f1'])} | {phi['phi_n_spans']} spans |")
        print(f"| the best-matching of overlapping annotations (region) | {fmt(phi['phi_region_precision'])} "
              f"| {fmt(phi['phi_region_recall'])} | {fmt(phi['phi_region_f1'])} | {phi['phi_n_regions']} regions |")
    pf = cv.get("classifier_per_fold", {})
    if "hit_at_1" in pf:
        print(f"\nClassifier alone, per fold: hit@1 {pf['hit_at_1']['mean']:.3f} ± {pf['hit_at_1']['sd']:.3f} "
              f"(folds {', '.join(f'{x:.2f}' for x in pf['hit_at_1']['folds'])}).")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/nesscan-builtin-v1/model.json")

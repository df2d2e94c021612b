#!/usr/bin/env python3
"""Side-by-side nested-CV figures of several trained models, from their model cards.

Reads each ``<dir>/model.json`` (written by ``nesscan train`` with cross-validation) and prints
one markdown table: localisation (hit@1, hit@5, Φ F1), calls at each card's own E-value cutoff
(the share of shuffled / bacterial / non-binder proteins with >= 1 high-confidence call, the
recall of annotated NES spans, the precision of calls inside NES proteins), the recall of
annotated spans when the cutoff is set instead by the share of CRM1 non-binders called
(``--nonbinder-rate``: the largest grid cutoff whose out-of-fold non-binder call rate stays at or
below it — real proteins as the null rather than shuffles), and the protein score minus the
composition + length baseline on T2 and T3 (bootstrap 95 % interval).

    python scripts/compare_models.py NAME=DIR [NAME=DIR ...] (the last "=" splits) [--nonbinder-rate 0.05] [--json out.json]
"""

from __future__ import annotations

import argparse
import json


def summary(card: dict, nonbinder_rate: float) -> dict:
    cv = card["cross_validation"]
    po = cv["pooled_out_of_fold"]
    fs = po["components"]["fused_score"]
    calls = cv["calls"]
    at = calls["pooled_at_nested_cutoffs"]
    curve = calls["curve"]
    ok = [c for c in sorted(curve, key=float) if curve[c]["call_rate_crm1_nonbinder"] <= nonbinder_rate]
    matched = curve[ok[-1]] if ok else None
    pl = po.get("protein_level", {})
    out = {
        "hit_at_1": fs["hit_at_1"], "hit_at_5": fs["hit_at_5"],
        "phi_f1": fs.get("phi_residues", {}).get("phi_f1"),
        "gbm_baseline_hit_at_1": po["localisation_baselines"].get("gbm_onehot_hydropathy", {}).get("hit_at_1"),
        "cutoff": calls["final_cutoff"],
        "shuffled": at["call_rate_shuffled"], "bacterial": at["call_rate_bacterial_control"],
        "nonbinder": at["call_rate_crm1_nonbinder"], "span_recall": at["nes_span_recall"],
        "precision_in_nes_proteins": at["precision_in_nes_proteins"],
        "matched_cutoff": float(ok[-1]) if ok else None,
        "matched_span_recall": matched["nes_span_recall"] if matched else None,
        "matched_shuffled": matched["call_rate_shuffled"] if matched else None,
    }
    for task in ("T2_annotated_vs_nonbinder", "T3_cargo_vs_nonbinder"):
        if task in pl:
            out[task[:2] + "_score_minus_baseline_95ci"] = pl[task].get("score_minus_baseline_95ci")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="NAME=DIR")
    ap.add_argument("--nonbinder-rate", type=float, default=0.05)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = {}
    for spec in args.models:
        name, _, path = spec.rpartition("=")
        with open(f"{path or name}/model.json") as fh:
            rows[name] = summary(json.load(fh), args.nonbinder_rate)

    def f(v, pct=False):
        if v is None:
            return "–"
        if isinstance(v, list):
            return f"[{v[0]:+.3f}, {v[1]:+.3f}]"
        return f"{v:.1%}" if pct else f"{v:.3f}"

    r = args.nonbinder_rate
    print("| model | hit@1 | hit@5 | Φ F1 | cutoff E | shuffled | bacterial | non-binders | span recall | precision "
          f"| span recall at non-binders ≤ {r:.0%} (E, shuffled) | T2 score − baseline | T3 score − baseline |")
    print("|---|" + "---:|" * 12)
    for name, s in rows.items():
        print(f"| {name} | {f(s['hit_at_1'])} | {f(s['hit_at_5'])} | {f(s['phi_f1'])} | {s['cutoff']:g} "
              f"| {f(s['shuffled'], 1)} | {f(s['bacterial'], 1)} | {f(s['nonbinder'], 1)} | {f(s['span_recall'], 1)} "
              f"| {f(s['precision_in_nes_proteins'], 1)} | {f(s['matched_span_recall'], 1)} "
              f"({s['matched_cutoff']:g}, {f(s['matched_shuffled'], 1)}) "
              f"| {f(s.get('T2_score_minus_baseline_95ci'))} | {f(s.get('T3_score_minus_baseline_95ci'))} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"nonbinder_rate": r, "models": rows}, fh, indent=2)


if __name__ == "__main__":
    main()

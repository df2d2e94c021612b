#!/usr/bin/env python3
"""Windows vs zero-shot segments as candidate generators, and the share of integrated-gradients
attribution on Φ residues — both on cluster-grouped cross-validation (issue 8's measurements).

    python scripts/compare_candidates.py --data ../shared/data --arch cnn --out scripts/compare_candidates.json

Per fold a classifier is trained on the other folds (same recipe as ``nesscan train``); on the
held-out NES-annotated proteins it reports hit@1/hit@5 of candidates from (a) greedy
non-overlapping windows and (b) segments of :mod:`nesscan.segment`, both ranked by the same
classifier; T2 ROC AUC (annotated vs non-binders) of the best candidate; and, for every known
NES, the share of positive IG attribution on its Φ residues in the window centred on its core
(versus the share expected if attribution were uniform over the window).
"""
import argparse
import json
import logging

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from nesscan.data import load_dataset
from nesscan.embedders import BuiltinEmbedder
from nesscan.explain import phi_fraction, residue_attributions
from nesscan.segment import segment, segment_scores
from nesscan.train import TrainConfig, _NetModel, embed_records, train_one
from nesscan.window_score import pick_candidates, score_windows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    recs = load_dataset(a.data)
    emb = BuiltinEmbedder()
    embs, mut = embed_records(recs, emb, progress=False)
    cfg = TrainConfig(arch=a.arch, seed=a.seed)
    W = cfg.window
    skf = StratifiedGroupKFold(n_splits=a.folds, shuffle=True, random_state=a.seed)
    res = {"windows": {"hit1": [], "hit5": []}, "segments": {"hit1": [], "hit5": []}}
    best = {"windows": {}, "segments": {}}
    fracs, expected = [], []
    for k, (tr, te) in enumerate(skf.split(recs, [r.group for r in recs], [r.cluster for r in recs])):
        net, _, _ = train_one([recs[i] for i in tr], embs, mut, emb.dim, cfg)
        model = _NetModel(net, W)
        for i in te:
            r = recs[i]
            L = len(r.sequence)
            sc = score_windows(model, embs[r.id])
            segs = segment(embs[r.id])
            ssc = segment_scores(sc, segs, L, W)
            order = np.argsort(-ssc, kind="stable")
            seg_c = [(segs[j][0] + 1, segs[j][1]) for j in order[:5]]
            win_c = [(c.start, c.end) for c in pick_candidates(sc, L, W, top_k=5)]
            best["windows"][r.id] = float(sc.max())
            best["segments"][r.id] = float(ssc.max())
            if r.group != "nes_annotated" or not r.spans:
                continue
            inside = np.zeros(L + 1, dtype=bool)
            for sp in r.spans:
                inside[sp.start : sp.end + 1] = True
            for name, cands in (("windows", win_c), ("segments", seg_c)):
                res[name]["hit1"].append(bool(inside[cands[0][0] : cands[0][1] + 1].any()))
                res[name]["hit5"].append(any(inside[s : e + 1].any() for s, e in cands))
            if L < W:
                continue
            for sp in r.spans:
                if not sp.phi:
                    continue
                centre = (min(sp.phi) + max(sp.phi)) / 2
                start = int(min(max(round(centre - (W - 1) / 2), 1), L - W + 1))
                offs = [p - start for p in sp.phi if 0 <= p - start < W]
                attr = residue_attributions(net, embs[r.id], start, W, steps=32)
                f = phi_fraction(attr, offs)
                if np.isfinite(f):
                    fracs.append(f)
                    expected.append(len(offs) / W)
        logging.info("fold %d done", k + 1)
    out = {"arch": a.arch, "folds": a.folds, "seed": a.seed}
    for name in ("windows", "segments"):
        ids = [r.id for r in recs if r.group in ("nes_annotated", "crm1_nonbinder")]
        y = [int(r.group == "nes_annotated") for r in recs if r.group in ("nes_annotated", "crm1_nonbinder")]
        out[name] = {"hit_at_1": float(np.mean(res[name]["hit1"])), "hit_at_5": float(np.mean(res[name]["hit5"])),
                     "n_annotated": len(res[name]["hit1"]),
                     "T2_roc_auc_best_candidate": float(roc_auc_score(y, [best[name][i] for i in ids]))}
    out["ig_phi_fraction"] = {"mean": float(np.mean(fracs)), "median": float(np.median(fracs)), "n_nes": len(fracs),
                              "uniform_expectation": float(np.mean(expected))}
    print(json.dumps(out, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()

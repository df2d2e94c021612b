#!/usr/bin/env python3
"""How far can the Φ-residue F1 (strict) go with one Φ set per candidate?

For every region of overlapping annotated NES spans in ``<data>/nes_spans.tsv`` (NESdb lists
several alternative Φ sets for some NES), three 20-residue windows are placed on the region's
hydrophobic core (centred, and shifted by ±4 residues, as a candidate may sit). For each window:

* ``rule`` — nesscan's Φ choice (:func:`nesscan.scoring.annotate_phi`);
* ``oracle`` — the best single Φ set among the Kosugi consensus matches the window holds
  (strict and A/T-tolerant, with and without Φ0), chosen with the truth: the ceiling of any
  selector that reports one Φ set from the consensus matches;
* ``learned`` — a linear selector over the matches (strict/tolerant, class, fifth Φ, residue
  types at Φ, Φ core fully inside, distance from the window centre), fitted by pairwise logistic
  regression (best match vs each other match) and scored out of fold, 5-fold grouped by mmseqs2
  cluster.

All three are scored with ``nesscan evaluate``'s strict formula (each annotated span its own
truth; Φ of the other overlapping annotations not counted as false), micro-averaged.

    python scripts/phi_ceiling.py [--data ../shared/data] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from nesscan import scoring
from nesscan.data import load_dataset
from nesscan.motifs import PHI, kosugi_matches

CLASSES = ["1a", "1b", "1c", "1d", "2", "3", "1aR", "1bR", "1cR", "1dR", "2R", "3R"]
PHI_TYPES = "LIVFMAT"
W = 20


def options(seq: str, s: int, e: int) -> list[tuple[tuple[int, ...], np.ndarray]]:
    lo, hi = s - 1, e - 1
    sub_from = max(0, lo - 8)
    sub = seq[sub_from : min(len(seq), hi + 9)]
    out, centre = [], (lo + hi) / 2
    for tol in (False, True):
        for m in kosugi_matches(sub, at_tolerant=tol):
            phi = [p + sub_from for p in m.phi]
            core = phi[-4:]
            inside = sum(lo <= p <= hi for p in core)
            if inside < 3:
                continue
            base = m.motif_class.split("+")[0]
            variants = [core] + ([phi] if len(phi) > 4 else [])
            if base.endswith("R") and core[-1] + 3 < len(seq) and seq[core[-1] + 3] in PHI:
                variants.append(core + [core[-1] + 3])
            for v in variants:
                f = ([1.0 - tol] + [float(base == c) for c in CLASSES] + [float(len(v) > 4)]
                     + [float(sum(seq[p] == a for p in v)) for a in PHI_TYPES]
                     + [float(inside == 4), abs((core[0] + core[-1]) / 2 - centre) / W])
                out.append((tuple(p + 1 for p in v), np.array(f)))
    return out


def stats(pred, sp, spans) -> np.ndarray:
    truth = set(sp.phi)
    other = set().union(*[set(o.phi) for o in spans if o is not sp]) - truth
    p = set(pred) - other
    return np.array([len(p & truth), len(p - truth), len(truth - p)])


def f1(t) -> float:
    return float(2 * t[0] / (2 * t[0] + t[1] + t[2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    items = []
    for r in load_dataset(args.data):
        if r.group != "nes_annotated":
            continue
        L, spans = len(r.sequence), [s for s in r.spans if s.phi]
        regions: list[list] = []
        for s in sorted(spans, key=lambda s: s.start):
            if regions and s.start <= max(q.end for q in regions[-1]):
                regions[-1].append(s)
            else:
                regions.append([s])
        for reg in regions:
            mid = (min(min(s.phi) for s in reg) + max(max(s.phi) for s in reg)) // 2
            for shift in (-4, 0, 4):
                s0 = max(1, min(mid + shift - 9, L - W + 1))
                opts = options(r.sequence, s0, s0 + W - 1)
                value = [sum(stats(o, sp, spans) for sp in reg) for o, _ in opts]
                items.append({"cluster": r.cluster, "reg": reg, "spans": spans, "opts": opts, "seq": r.sequence,
                              "s": s0, "value": np.array([2 * v[0] - v[1] - v[2] for v in value])})
    tot = {k: np.zeros(3) for k in ("rule", "oracle", "learned")}
    groups = [it["cluster"] for it in items]
    for tr, te in GroupKFold(5).split(items, groups=groups):
        X, y = [], []
        for i in tr:
            it = items[i]
            if not it["opts"]:
                continue
            b = int(np.argmax(it["value"]))
            for j, (_, fv) in enumerate(it["opts"]):
                if it["value"][j] < it["value"][b]:
                    d = it["opts"][b][1] - fv
                    X += [d, -d]
                    y += [1, 0]
        w = LogisticRegression(C=1.0, fit_intercept=False, max_iter=5000).fit(np.array(X), np.array(y)).coef_[0]
        for i in te:
            it = items[i]
            picks = {"rule": tuple(scoring.annotate_phi(it["seq"], it["s"], it["s"] + W - 1)[1]),
                     "oracle": it["opts"][int(np.argmax(it["value"]))][0] if it["opts"] else (),
                     "learned": max(it["opts"], key=lambda o: float(o[1] @ w))[0] if it["opts"] else ()}
            for k, p in picks.items():
                for sp in it["reg"]:
                    tot[k] += stats(p, sp, it["spans"])
    out = {"windows": len(items), **{f"phi_f1_strict_{k}": round(f1(v), 4) for k, v in tot.items()}}
    for k, v in out.items():
        print(f"{k}\t{v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()

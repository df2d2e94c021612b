#!/usr/bin/env python3
"""How much of ``nesscan predict``'s time is metapredict's, measured in one run.

The speed target of the trustworthy-calls issue (20,000 proteins, ~11 M residues, ≤ 3 min on
2 cores with the disorder channels on) has a floor: metapredict's two networks (disorder and
predicted pLDDT, bidirectional LSTMs) must see every residue. This script times, on the same
FASTA and in the same session,

1. metapredict alone (``nesscan.disorder.DisorderTracks.predict`` over all sequences, in
   batches of 256 sequences sorted by length, torch on every core), and
2. ``nesscan predict`` end to end (a subprocess: start-up, imports, embedding with the disorder
   channels, window scoring, fusion, E-values, all outputs),

and prints residues per second of each, the share of the whole run that metapredict's work
would take at its standalone rate, and both rates projected to the 11 M-residue proteome (a
linear projection: ``predict`` streams, so its time grows with the residues).

    python benchmarks/bench_disorder_floor.py --fasta /tmp/nesscan-bench/proteome_2000.fasta \
        [--residues-target 11000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fasta", required=True)
    ap.add_argument("--residues-target", type=int, default=11_000_000)
    ap.add_argument("--seconds-target", type=float, default=180.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from nesscan.disorder import DisorderTracks
    from nesscan.fasta import read_fasta

    seqs = [p.sequence for p in read_fasta(args.fasta)]
    n_res = sum(map(len, seqs))
    torch.set_num_threads(os.cpu_count() or 1)
    tracks = DisorderTracks()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    tracks.predict([seqs[order[0]]])  # warm-up (network loading)
    t0 = time.perf_counter()
    for i in range(0, len(order), 256):
        tracks.predict([seqs[j] for j in order[i : i + 256]])
    t_meta = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nesscan", "predict", "-i", args.fasta, "-o", os.path.join(tmp, "out"),
                        "--quiet"], check=True)
        t_predict = time.perf_counter() - t0

    scale = args.residues_target / n_res
    out = {
        "fasta": args.fasta, "proteins": len(seqs), "residues": n_res, "cores": os.cpu_count(),
        "metapredict_s": round(t_meta, 2), "predict_s": round(t_predict, 2),
        "metapredict_residues_per_s": round(n_res / t_meta), "predict_residues_per_s": round(n_res / t_predict),
        "metapredict_share_of_predict": round(t_meta / t_predict, 3),
        "projected_metapredict_s": round(t_meta * scale, 1), "projected_predict_s": round(t_predict * scale, 1),
        "target_s": args.seconds_target,
        "metapredict_alone_over_target": round(t_meta * scale / args.seconds_target, 2),
    }
    for k, v in out.items():
        print(f"{k}\t{v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()

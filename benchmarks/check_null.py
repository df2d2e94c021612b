#!/usr/bin/env python3
"""Do the E-values hold on sequences with no NES? Calls counted against what chance gives.

A candidate's E-value is the expected number of background-null candidates at least as good in
a protein of its length, so at cutoff E a protein without an NES gets E false calls on average,
whatever its length: N such proteins should get about E x N calls (what ``predict`` logs as
"chance alone gives about ..."). This script checks that on the synthetic proteome of
``make_proteome.py``, whose residues are drawn one by one from the data's average composition:

* the **plain** proteins (no planted peptide) hold no NES: their calls are false calls, to be
  compared with E x N (ratio observed / expected, with an exact Poisson 95 % interval);
* the proteins with a **planted** published NES peptide (PKIα, HIV-1 Rev, MEK1, p53; found by
  string search) give the share of planted NES that a call finds, and their calls elsewhere
  (false calls again, E x N expected), and how often the peptide is the protein's top candidate
  (called or not: localisation without the cutoff).

It reads a finished ``nesscan predict`` output (``--results``) or runs one (``--fasta``), and
prints one table (``--json`` writes it too). Nothing here is timed.

    python benchmarks/check_null.py --fasta /tmp/nesscan-bench/proteome_20000.fasta [--json null.json]
    python benchmarks/check_null.py --fasta ... --results DIR     # an existing predict output of that FASTA
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_proteome import NES_PEPTIDES  # noqa: E402  (the peptides the proteome plants)


def read_fasta(path: str) -> dict[str, str]:
    """ID -> sequence, read as ``nesscan predict`` reads it (the IDs its tables carry)."""
    from nesscan.fasta import read_fasta as read_proteins

    return {p.id: p.sequence for p in read_proteins(path)}


def planted_spans(seqs: dict[str, str]) -> dict[str, tuple[int, int, str]]:
    """1-based inclusive span of the planted peptide, and the peptide, per protein that has one."""
    out = {}
    for pid, s in seqs.items():
        for pep in NES_PEPTIDES:
            i = s.find(pep)
            if i >= 0:
                out[pid] = (i + 1, i + len(pep), pep)
                break
    return out


def _median(values: list[float]) -> float | None:
    """Median (inf counts: a peptide with no candidate on it); None for no values (JSON-safe)."""
    if not values:
        return None
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def poisson_ci(k: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean from a count ``k``."""
    from scipy.stats import chi2

    a = 1 - level
    lo = 0.0 if k == 0 else chi2.ppf(a / 2, 2 * k) / 2
    hi = chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return float(lo), float(hi)


def summarise(seqs: dict[str, str], results: str, max_evalue: float) -> dict:
    planted = planted_spans(seqs)
    calls: dict[str, list[tuple[int, int]]] = {}
    top: dict[str, tuple[int, int]] = {}  # the rank-1 candidate, called or not
    cands: dict[str, list[tuple[int, int, float]]] = {}  # candidates of the planted proteins
    with open(os.path.join(results, "candidates.tsv"), newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            span = (int(row["start"]), int(row["end"]))
            if row["rank"] == "1":
                top[row["id"]] = span
            if row["id"] in planted:
                cands.setdefault(row["id"], []).append((*span, float(row["evalue"]) if row["evalue"] else math.inf))
            if row["evalue"] and float(row["evalue"]) <= max_evalue:
                calls.setdefault(row["id"], []).append(span)
    plain = [p for p in seqs if p not in planted]
    false_plain = sum(len(calls.get(p, [])) for p in plain)
    found, ranked_first, false_planted = 0, 0, 0
    per_peptide = {pep: [0, 0, 0] for pep in NES_PEPTIDES}  # found, top candidate, planted
    best_e: dict[str, list[float]] = {pep: [] for pep in NES_PEPTIDES}  # the peptide's best E-value
    for pid, (a, b, pep) in planted.items():
        best_e[pep].append(min([e for s_, e_, e in cands.get(pid, []) if s_ <= b and e_ >= a], default=math.inf))
        on = [c for c in calls.get(pid, []) if c[0] <= b and c[1] >= a]
        first = pid in top and top[pid][0] <= b and top[pid][1] >= a
        found += bool(on)
        ranked_first += first
        per_peptide[pep][0] += bool(on)
        per_peptide[pep][1] += first
        per_peptide[pep][2] += 1
        false_planted += len(calls.get(pid, [])) - len(on)

    def row(n, k):
        exp = max_evalue * n
        lo, hi = poisson_ci(k)
        return {"proteins": n, "false_calls": k, "expected_by_chance": exp, "ratio": k / exp if exp else math.nan,
                "ratio_95ci": [lo / exp, hi / exp] if exp else [math.nan, math.nan]}

    return {
        "max_evalue": max_evalue,
        "plain_random_proteins": {**row(len(plain), false_plain),
                                  "share_with_a_call": sum(bool(calls.get(p)) for p in plain) / max(1, len(plain))},
        "planted_proteins_outside_the_peptide": row(len(planted), false_planted),
        "planted_peptides_found": {"proteins": len(planted), "found": found,
                                   "share": found / len(planted) if planted else math.nan,
                                   "top_candidate": ranked_first,
                                   "per_peptide": {pep: {"found": f, "top_candidate": t, "planted": n,
                                                         "median_evalue": _median(best_e[pep])}
                                                   for pep, (f, t, n) in per_peptide.items()}},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fasta", required=True, help="a make_proteome.py FASTA")
    ap.add_argument("--results", default=None, help="an existing `nesscan predict` output folder of that FASTA")
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--max-evalue", type=float, default=None, help="cutoff (default: the model card's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from nesscan.registry import card_max_evalue

    cutoff = args.max_evalue if args.max_evalue is not None else card_max_evalue(args.model)
    seqs = read_fasta(args.fasta)
    with tempfile.TemporaryDirectory() as tmp:
        results = args.results
        if results is None:
            results = os.path.join(tmp, "out")
            cmd = [sys.executable, "-m", "nesscan", "predict", "-i", args.fasta, "-o", results, "--quiet"]
            subprocess.run(cmd + (["-m", args.model] if args.model else []), check=True)
        out = summarise(seqs, results, cutoff)
    out["fasta"] = os.path.basename(args.fasta)
    print(f"cutoff E <= {cutoff:g}")
    print("group\tproteins\tfalse calls\texpected (E x N)\tratio [95% CI]")
    for key in ("plain_random_proteins", "planted_proteins_outside_the_peptide"):
        r = out[key]
        print(f"{key}\t{r['proteins']}\t{r['false_calls']}\t{r['expected_by_chance']:.1f}\t"
              f"{r['ratio']:.2f} [{r['ratio_95ci'][0]:.2f}, {r['ratio_95ci'][1]:.2f}]")
    p = out["plain_random_proteins"]
    print(f"plain proteins with >= 1 call: {100 * p['share_with_a_call']:.1f} %")
    f = out["planted_peptides_found"]
    print(f"planted NES peptides found by a call: {f['found']} / {f['proteins']} ({100 * f['share']:.1f} %); "
          f"the protein's top candidate: {f['top_candidate']}")
    for pep, v in f["per_peptide"].items():
        print(f"  {pep}: called {v['found']} / {v['planted']}, top candidate {v['top_candidate']} / {v['planted']}, "
              f"median E-value {v['median_evalue'] if v['median_evalue'] is not None else float('nan'):.3g}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate a synthetic, human-proteome-sized FASTA for the benchmarks (seeded, reproducible).

* ``proteome_20000.fasta`` — 20,000 proteins, about 11 million residues (the human reference
  proteome has ~20,400 proteins and ~11.4 M residues; median length ~415, mean ~560);
* ``proteome_2000.fasta`` — its first 2,000 proteins (same length distribution).

Lengths are drawn from the empirical length distribution of ``../shared/data/proteins.fasta``
(its human-like groups: the bacterial PDB controls are left out), jittered (x lognormal,
sigma 0.1) and rescaled so the total is ``--residues``. Residues are drawn i.i.d. from the
amino-acid frequencies of the same proteins. Only lengths and the 20 residue frequencies are
read from the data — no sequence, no ID, no row is copied. Without the data directory
(``--data ''`` or missing) a log-normal length model (median 415, sigma 0.75) and average
UniProtKB/Swiss-Prot frequencies are used instead.

About 10 % of the proteins carry one published NES peptide (PKIα, HIV-1 Rev, MEK1, p53 — the
same ones as ``examples/``) at a random position, so that downstream ranking and writing see
a realistic number of strong candidates.

    python benchmarks/make_proteome.py [--outdir /tmp/nesscan-bench] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys

import numpy as np

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
# average UniProtKB/Swiss-Prot composition (%), fallback without ../shared/data
SWISSPROT = dict(A=8.25, R=5.53, N=4.06, D=5.45, C=1.37, Q=3.93, E=6.75, G=7.07, H=2.27, I=5.96, L=9.66,
                 K=5.84, M=2.42, F=3.86, P=4.70, S=6.56, T=5.34, W=1.08, Y=2.92, V=6.87)
NES_PEPTIDES = ["NSNELALKLAGLDINK", "DLQLPPLERLTLDC", "SALQKKLEELELDE", "EMFRELNEALELKD"]
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
DEFAULT_OUT = os.environ.get("NESSCAN_BENCH_DIR", "/tmp/nesscan-bench")


def data_statistics(data_dir: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths, residue frequencies) of the non-bacterial proteins in ``data_dir``, or None."""
    fasta = os.path.join(data_dir, "proteins.fasta")
    table = os.path.join(data_dir, "proteins.tsv")
    if not data_dir or not os.path.exists(fasta):
        return None
    skip = set()
    if os.path.exists(table):
        with open(table, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("group") == "bacterial_control":
                    skip.add(row["accession"])
    lengths, counts = [], np.zeros(256, dtype=np.int64)
    pid, parts = None, []

    def flush():
        if pid is not None and pid not in skip and parts:
            s = "".join(parts).upper().encode("ascii", "replace")
            lengths.append(len(s))
            counts[:] += np.bincount(np.frombuffer(s, dtype=np.uint8), minlength=256)

    with open(fasta) as fh:
        for line in fh:
            if line.startswith(">"):
                flush()
                pid, parts = line[1:].split()[0], []
            else:
                parts.append(line.strip())
        flush()
    freq = np.array([counts[ord(a)] for a in STANDARD], dtype=np.float64)
    return np.array(lengths), freq / freq.sum()


def make_lengths(rng: np.random.Generator, n: int, residues: int, empirical: np.ndarray | None) -> np.ndarray:
    if empirical is not None and len(empirical):
        raw = rng.choice(empirical, size=n).astype(np.float64) * rng.lognormal(0.0, 0.1, size=n)
    else:
        raw = rng.lognormal(np.log(415.0), 0.75, size=n)
    raw = np.clip(raw, 30, 40_000)
    lengths = np.maximum(30, np.round(raw * residues / raw.sum())).astype(np.int64)
    lengths[np.argmax(lengths)] += residues - int(lengths.sum())  # exact total
    return lengths


def write_fasta(path: str, records) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        for pid, seq in records:
            chunk = [f">{pid} synthetic nesscan benchmark protein\n".encode()]
            chunk += [seq[i : i + 60] + b"\n" for i in range(0, len(seq), 60)]
            data = b"".join(chunk)
            h.update(data)
            fh.write(data)
    return h.hexdigest()


def generate(outdir: str, n: int = 20_000, residues: int = 11_000_000, subset: int = 2_000, seed: int = 0,
             data_dir: str | None = DEFAULT_DATA, nes_fraction: float = 0.10) -> dict:
    rng = np.random.default_rng(seed)
    stats = data_statistics(data_dir) if data_dir else None
    if stats is None:
        source = "log-normal lengths, Swiss-Prot frequencies"
        empirical = None
        freq = np.array([SWISSPROT[a] for a in STANDARD]) / sum(SWISSPROT.values())
    else:
        source = f"lengths and frequencies of {len(stats[0])} proteins in {data_dir}"
        empirical, freq = stats
    lengths = make_lengths(rng, n, residues, empirical)
    letters = np.frombuffer(STANDARD.encode(), dtype=np.uint8)
    records = []
    for i, L in enumerate(lengths):
        seq = letters[rng.choice(20, size=int(L), p=freq)].tobytes()
        if rng.random() < nes_fraction:
            nes = NES_PEPTIDES[int(rng.integers(len(NES_PEPTIDES)))].encode()
            if L > len(nes) + 10:
                pos = int(rng.integers(5, L - len(nes) - 5))
                seq = seq[:pos] + nes + seq[pos + len(nes):]
        records.append((f"bench{i + 1:05d}", seq))
    os.makedirs(outdir, exist_ok=True)
    out = {"source": source, "seed": seed, "files": {}}
    for count in (n, subset):
        if count <= 0 or count > n:
            continue
        path = os.path.join(outdir, f"proteome_{count}.fasta")
        digest = write_fasta(path, records[:count])
        ls = lengths[:count]
        out["files"][count] = {"path": path, "proteins": count, "residues": int(ls.sum()), "median": float(np.median(ls)),
                               "mean": float(ls.mean()), "max": int(ls.max()), "sha256": digest}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}, or $NESSCAN_BENCH_DIR)")
    ap.add_argument("--n", type=int, default=20_000, help="proteins in the full proteome (default 20000)")
    ap.add_argument("--residues", type=int, default=11_000_000, help="total residues (default 11000000)")
    ap.add_argument("--subset", type=int, default=2_000, help="size of the subset file: the first N proteins (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=DEFAULT_DATA, help="data folder to sample lengths/frequencies from ('' = none)")
    a = ap.parse_args(argv)
    info = generate(a.outdir, a.n, a.residues, a.subset, a.seed, a.data or None)
    print(f"# {info['source']}, seed {info['seed']}")
    print("file\tproteins\tresidues\tmedian\tmean\tmax\tsha256")
    for f in info["files"].values():
        print(f"{f['path']}\t{f['proteins']}\t{f['residues']}\t{f['median']:.0f}\t{f['mean']:.0f}\t{f['max']}\t{f['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

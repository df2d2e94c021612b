#!/usr/bin/env python3
"""Regenerate examples/example.fasta (seeded, synthetic: no database sequences).

Background residues are drawn from average UniProtKB/Swiss-Prot amino-acid frequencies;
four proteins carry a published NES peptide planted at a known position (listed in
examples/example_nes.tsv), four carry none. Planted NES: PKIα (Wen et al. 1995), HIV-1 Rev
(Fischer et al. 1995), MAPKK/MEK1 (Fukuda et al. 1996), p53 (Stommel et al. 1999).
"""
import random

FREQ = dict(A=8.25, R=5.53, N=4.06, D=5.45, C=1.37, Q=3.93, E=6.75, G=7.07, H=2.27, I=5.96, L=9.66,
            K=5.84, M=2.42, F=3.86, P=4.70, S=6.56, T=5.34, W=1.08, Y=2.92, V=6.87)
PLANTED = [
    ("demo_PKIa_NES", 180, 37, "NSNELALKLAGLDINK"),
    ("demo_Rev_NES", 240, 70, "DLQLPPLERLTLDC"),
    ("demo_MEK1_NES", 300, 120, "SALQKKLEELELDE"),
    ("demo_p53_NES", 393, 336, "EMFRELNEALELKD"),
]
PLAIN = [("demo_plain_1", 250), ("demo_plain_2", 420), ("demo_plain_3", 160), ("demo_short", 15)]


def background(rng, n):
    return "".join(rng.choices(list(FREQ), weights=list(FREQ.values()), k=n))


def main():
    rng = random.Random(20261125)
    out, truth = [], ["id\tstart\tend\tnes_sequence\tsource"]
    for pid, length, pos, nes in PLANTED:
        seq = background(rng, pos - 1) + nes + background(rng, length - pos + 1 - len(nes))
        out.append((pid, seq))
        truth.append(f"{pid}\t{pos}\t{pos + len(nes) - 1}\t{nes}\tplanted")
    for pid, length in PLAIN:
        out.append((pid, background(rng, length)))
    with open("examples/example.fasta", "w") as fh:
        for pid, seq in out:
            fh.write(f">{pid} synthetic nesscan example\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    with open("examples/example_nes.tsv", "w") as fh:
        fh.write("\n".join(truth) + "\n")


if __name__ == "__main__":
    main()

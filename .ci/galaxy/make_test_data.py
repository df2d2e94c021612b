#!/usr/bin/env python3
"""Regenerate galaxy_tools/test-data (all synthetic: no real sequences, no downloaded weights).

Run from the repository root with the nesscan development environment active:

    python .ci/galaxy/make_test_data.py

Writes, under galaxy_tools/test-data/:

* ``example.fasta`` — a copy of examples/example.fasta (eight synthetic proteins);
* ``esm2_t2_test.pt`` — a tiny ESM-2 (2 layers, 32 dims, random weights, seed 0) laid out like
  fair-esm's release checkpoints, so the ESM-2 code path runs without the real weights;
* ``nesscan_test_esm2/`` — a classifier trained (2 epochs, no CV) on that tiny ESM-2's embeddings
  of a synthetic training set generated here;
* ``example.builtin.h5`` / ``example.esm2_t2_test.h5`` — ``nesscan embed`` outputs;
* ``example.esm2_t2_test.windows.tsv.gz`` — ``nesscan window-score`` with the test classifier;
* ``invalid.fasta`` — a digit inside a sequence (the tools' failure tests);
* ``demo_short.fasta`` + ``demo_short.pdb`` — a 15-residue protein and an idealised helix model of
  it (synthetic coordinates, B-factors standing in for pLDDT) for the ``--structures`` option;
* ``example.esm2_t2_test.proteins.tsv`` / ``.candidates.tsv`` — ``nesscan fuse`` outputs (inputs
  of the evaluate tests), ``example.builtin.proteins.tsv`` / ``.candidates.tsv`` — ``nesscan
  predict`` with the shipped model (candidates with E-values: evaluate's calls at --max-evalue), ``example_labels.tsv`` (the four proteins with a planted NES are 1) and
  ``example_nes.tsv`` (a copy of examples/example_nes.tsv, the planted spans);
* ``example_enrichment.tsv`` — a made-up CRM1 binding enrichment per example protein (evaluate's
  Spearman correlation);
* ``hostile_id.fasta`` — one protein whose ID and title are shell code (explain's test: IDs are
  data, never commands);
* ``esm2_weights.loc`` / ``nesscan_models.loc`` — test data-table entries (``${__HERE__}``).

The outputs of the tiny model are meaningless biologically; the tests only check structure and
that the code paths run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TD = os.path.join(ROOT, "galaxy_tools", "test-data")
ESM_NAME = "esm2_t2_test"


def nesscan(*args: str) -> None:
    cmd = [sys.executable, "-m", "nesscan", *args, "-q"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "NESSCAN_OFFLINE": "1"})


def write_tiny_esm2(path: str, layers: int = 2, dim: int = 32, heads: int = 2, seed: int = 0) -> None:
    import esm
    import torch
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                 alphabet=esm.data.Alphabet.from_architecture("ESM-1b"))
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("contact_head.regression"):
            continue  # like the released files: no contact-regression weights
        prefix = "encoder." if key.startswith("lm_head") else "encoder.sentence_encoder."
        state[prefix + key] = value.clone()
    cfg = argparse.Namespace(arch="esm2", encoder_layers=layers, encoder_embed_dim=dim,
                             encoder_ffn_embed_dim=4 * dim, encoder_attention_heads=heads,
                             token_dropout=True, max_positions=1024, dropout=0.0)
    torch.save({"model": state, "cfg": {"model": cfg}}, path)


def write_training_data(d: str, n: int = 48, seed: int = 11) -> None:
    """A synthetic data directory in the layout `nesscan train` reads (random sequences, some
    with planted leucine-rich peptides)."""
    rng = random.Random(seed)
    background = "DEKRSTNQGPACLV"
    peptides = ["LALKLAGLDI", "LQLPPLERLTL", "ALQKKLEELEL", "MFRELNEALEL"]
    groups = ["nes_annotated", "crm1_nonbinder", "crm1_cargo", "bacterial_control"]
    fasta, rows, spans = [], [], []
    for i in range(n):
        group = groups[i % 4]
        pid = f"T{i:03d}"
        seq = "".join(rng.choice(background) for _ in range(rng.randint(50, 110)))
        if group == "nes_annotated":
            pep = rng.choice(peptides)
            pos = rng.randint(5, len(seq) - len(pep) - 5)
            seq = seq[:pos] + pep + seq[pos + len(pep):]
            phi = [pos + 1 + k for k, c in enumerate(pep) if c in "LIVFM"][:5]
            spans.append(f"{pid}\tsynthetic\tsynthetic\t{pos + 1}\t{pos + len(pep)}\t{pep}\t1a\t"
                         f"{';'.join(map(str, phi))}\t\t\tsynthetic")
        fasta.append(f">{pid}\n{seq}\n")
        label = 1 if group in ("nes_annotated", "crm1_cargo") else 0
        rows.append(f"{pid}\tC{i // 2:03d}\t{group}\t{label}.0\t\t{len(seq)}")
    with open(os.path.join(d, "proteins.fasta"), "w") as fh:
        fh.write("".join(fasta))
    with open(os.path.join(d, "proteins.tsv"), "w") as fh:
        fh.write("accession\tcluster\tgroup\tlabel\tkirli_category\tlength\n" + "\n".join(rows) + "\n")
    with open(os.path.join(d, "nes_spans.tsv"), "w") as fh:
        fh.write("accession\tname\tspecies\tstart\tend\tnes_sequence\tmotif_class\thydrophobic_positions\t"
                 "secondary_structure\tdisorder_context\tsource\n" + "\n".join(spans) + "\n")


# made-up CRM1 binding enrichment (enrichment_from_input) of the example proteins
ENRICHMENT = {"demo_PKIa_NES": 12.5, "demo_Rev_NES": 20.3, "demo_MEK1_NES": 8.1, "demo_p53_NES": 5.4,
              "demo_plain_1": 0.0, "demo_plain_2": 0.3, "demo_plain_3": 0.0, "demo_short": 0.1}

# a sequence ID and title that are shell code (no blanks in the ID: a FASTA ID is one word)
HOSTILE_ID = "x';$(touch${IFS}/tmp/nesscan_injected)`touch${IFS}/tmp/nesscan_injected`|<b>"
HOSTILE_TITLE = "; rm -rf /tmp/nesscan_canary_dir; echo $(id)"
HOSTILE_SEQ = ("MSEQNNTEMTFQIQRIYTKDISFEAPNAPHVFQKDWLEVNLSELALKLAGLDINKTEAEKLPAQMKSVSGDGNKLAAAIRESEQ"
               "NRIDLLVESLRAQLEEKLGKE")


def write_small_inputs() -> None:
    """The small hand-written inputs (no nesscan run needed)."""
    with open(os.path.join(TD, "example_enrichment.tsv"), "w") as fh:
        fh.write("accession\tenrichment_from_input\n" + "".join(f"{k}\t{v}\n" for k, v in ENRICHMENT.items()))
    with open(os.path.join(TD, "hostile_id.fasta"), "w") as fh:
        fh.write(f">{HOSTILE_ID} {HOSTILE_TITLE}\n{HOSTILE_SEQ}\n")


THREE = {"A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
         "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
         "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL"}


def write_helix_pdb(path: str, seq: str) -> None:
    """An idealised alpha-helix backbone (+CB) for `seq`; B-factors ramp like a pLDDT track."""
    lines, serial = [], 1
    for i, aa in enumerate(seq):
        resn, num = THREE[aa], i + 1
        bfac = 50.0 + 45.0 * math.sin(math.pi * i / max(1, len(seq) - 1))
        atoms = [("N", 1.55, -0.55), ("CA", 2.30, 0.0), ("C", 1.70, 0.60), ("O", 1.20, 1.00)]
        if aa != "G":
            atoms.append(("CB", 3.70, 0.10))
        for name, radius, dz in atoms:
            theta = math.radians(100.0 * i) + (0.35 if name in ("C", "O") else 0.0)
            x, y, z = radius * math.cos(theta), radius * math.sin(theta), 1.5 * i + dz
            lines.append(f"ATOM  {serial:5d}  {name:<3s} {resn} A{num:4d}    {x:8.3f}{y:8.3f}{z:8.3f}"
                         f"  1.00{bfac:6.2f}           {name[0]}")
            serial += 1
    lines += [f"TER   {serial:5d}      {THREE[seq[-1]]} A{len(seq):4d}", "END"]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def read_fasta(path: str) -> list[tuple[str, str]]:
    out, pid, seq = [], None, []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                if pid is not None:
                    out.append((pid, "".join(seq)))
                pid, seq = line[1:].split()[0], []
            elif line:
                seq.append(line)
    if pid is not None:
        out.append((pid, "".join(seq)))
    return out


def main() -> None:
    os.makedirs(TD, exist_ok=True)
    fasta = os.path.join(TD, "example.fasta")
    shutil.copyfile(os.path.join(ROOT, "examples", "example.fasta"), fasta)
    ckpt = os.path.join(TD, f"{ESM_NAME}.pt")
    write_tiny_esm2(ckpt)

    model = os.path.join(TD, "nesscan_test_esm2")
    with tempfile.TemporaryDirectory() as tmp:
        write_training_data(tmp)
        shutil.rmtree(model, ignore_errors=True)
        nesscan("train", "--data", tmp, "--outdir", model, "--embedder", ESM_NAME, "--weights", ckpt,
                "--folds", "0", "--epochs", "2", "--seed", "0", "--threads", "1", "--device", "cpu", "--arch", "cnn",
                "--context", "none")

    nesscan("embed", "-i", fasta, "-o", os.path.join(TD, "example.builtin.h5"), "--overwrite")
    esm_h5 = os.path.join(TD, f"example.{ESM_NAME}.h5")
    nesscan("embed", "-i", fasta, "-o", esm_h5, "-e", ESM_NAME, "--weights", ckpt, "--device", "cpu", "--overwrite",
            "--context", "none")
    windows = os.path.join(TD, f"example.{ESM_NAME}.windows.tsv.gz")
    nesscan("window-score", "-e", esm_h5, "-m", model, "-o", windows, "-s", os.path.join(tempfile.gettempdir(), "nesscan_td_summary.tsv"))

    with tempfile.TemporaryDirectory() as tmp:
        nesscan("fuse", "-w", windows, "-e", esm_h5, "-m", model, "-o", tmp)
        for name in ("proteins", "candidates"):
            shutil.copyfile(os.path.join(tmp, f"{name}.tsv"), os.path.join(TD, f"example.{ESM_NAME}.{name}.tsv"))
    with tempfile.TemporaryDirectory() as tmp:  # the shipped model: candidates with E-values (evaluate's calls)
        nesscan("predict", "-i", fasta, "-o", os.path.join(tmp, "out"))
        for name in ("proteins", "candidates"):
            shutil.copyfile(os.path.join(tmp, "out", f"{name}.tsv"), os.path.join(TD, f"example.builtin.{name}.tsv"))
    shutil.copyfile(os.path.join(ROOT, "examples", "example_nes.tsv"), os.path.join(TD, "example_nes.tsv"))
    with open(os.path.join(TD, "example_labels.tsv"), "w") as fh:
        fh.write("id\tlabel\n" + "".join(f"{pid}\t{1 if pid.endswith('_NES') else 0}\n" for pid, _ in read_fasta(fasta)))
    write_small_inputs()
    with open(os.path.join(TD, "invalid.fasta"), "w") as fh:
        fh.write(">bad1 a digit inside a protein sequence\nMKTAYIAKQRQISFVKSHFSRQ1234\n")

    short = [r for r in read_fasta(fasta) if r[0] == "demo_short"][0]
    with open(os.path.join(TD, "demo_short.fasta"), "w") as fh:
        fh.write(f">{short[0]} synthetic 15-residue protein\n{short[1]}\n")
    write_helix_pdb(os.path.join(TD, "demo_short.pdb"), short[1])

    with open(os.path.join(TD, "esm2_weights.loc"), "w") as fh:
        fh.write("#value\tname\tmodel\tpath\n"
                 f"{ESM_NAME}\tTiny random ESM-2 (tests only)\t{ESM_NAME}\t${{__HERE__}}/{ESM_NAME}.pt\n")
    with open(os.path.join(TD, "nesscan_models.loc"), "w") as fh:
        fh.write("#value\tname\tembedder\tpath\n"
                 f"nesscan_test_esm2\tTest classifier on the tiny ESM-2 (tests only)\t{ESM_NAME}\t${{__HERE__}}/nesscan_test_esm2\n")
    for dirpath, _, files in os.walk(TD):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    print("test data written to", TD)


if __name__ == "__main__":
    main()

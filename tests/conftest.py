import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
EXAMPLE = os.path.join(ROOT, "examples", "example.fasta")
AA = "ACDEFGHIKLMNPQRSTVWY"
NES_PEPTIDES = ["LALKLAGLDI", "LQLPPLERLTL", "ALQKKLEELEL", "MFRELNEALEL", "LPPLERLTL"]


def run_cli(*args, cwd=None, env=None):
    """Run the real console entry point in a subprocess."""
    return subprocess.run([sys.executable, "-m", "nesscan", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})})


def random_protein(rng: random.Random, n: int, alphabet: str = AA) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def write_fasta(path, records):
    with open(path, "w") as fh:
        for pid, seq in records:
            fh.write(f">{pid}\n{seq}\n")
    return str(path)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A synthetic data directory in the ../shared/data layout (no real sequences)."""
    d = tmp_path_factory.mktemp("tinydata")
    rng = random.Random(7)
    polar = "DEKRSTNQGP"
    fasta, rows, spans = [], [], []
    for i in range(60):
        group = ["nes_annotated", "crm1_nonbinder", "crm1_cargo", "bacterial_control"][i % 4]
        pid = f"P{i:03d}"
        seq = random_protein(rng, rng.randint(60, 140), polar + "ACLV")
        if group == "nes_annotated":
            nes = rng.choice(NES_PEPTIDES)
            pos = rng.randint(5, len(seq) - len(nes) - 5)
            seq = seq[:pos] + nes + seq[pos + len(nes):]
            phi = [pos + 1 + k for k, c in enumerate(nes) if c in "LIVFM"][:5]
            spans.append(f"{pid}\tX\tsynthetic\t{pos + 1}\t{pos + len(nes)}\t{nes}\tc1a-4\t{';'.join(map(str, phi))}\t\t\tsynthetic")
        fasta.append((pid, seq))
        label = 1 if group in ("nes_annotated", "crm1_cargo") else 0
        rows.append(f"{pid}\tC{i // 2:03d}\t{group}\t{label}.0\t\t{len(seq)}")
    write_fasta(d / "proteins.fasta", fasta)
    (d / "proteins.tsv").write_text("accession\tcluster\tgroup\tlabel\tkirli_category\tlength\n" + "\n".join(rows) + "\n")
    (d / "nes_spans.tsv").write_text(
        "accession\tname\tspecies\tstart\tend\tnes_sequence\tmotif_class\thydrophobic_positions\tsecondary_structure\tdisorder_context\tsource\n"
        + "\n".join(spans) + "\n")
    return str(d)


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """A quickly trained builtin-embedder model (2 epochs, no CV)."""
    from nesscan.embedders import BuiltinEmbedder
    from nesscan.train import TrainConfig, run_train

    out = tmp_path_factory.mktemp("tinymodel")
    run_train(tiny_data, str(out), BuiltinEmbedder(), TrainConfig(epochs=2, folds=2, seed=0), cv=False, progress=False)
    return str(out)

"""Proteome FASTAs as they come (issue 15): gzip/BGZF, byte-order mark, CRLF; skip and report
invalid records; text that is not UTF-8 is still refused with one line. Real CLI runs."""

import csv
import gzip
import random

import pytest

from conftest import run_cli, write_fasta
from nesscan.errors import NesscanError
from nesscan.fasta import read_fasta, validate_fasta

TABLES = ("proteins.tsv", "candidates.tsv", "candidates.gff3")
GOOD_PROTEINS = [
    ("pkia", "MTDVETTYADFIASGRTGRRNAIHDILVSSASGNSNELALKLAGLDINKTEGEEDAQRSSTEQSGEAQGEAAKSES"),
    ("p2", "MSKGEELFTGVVPILVELDGDVNGHKFSVSGEGEGDATYGKLTLKFICTTGKLPVPWPTLVTTFSYGVQCFSRYPDHMKQHDFFKSAMPEGYVQERTIFF"),
    ("p3|x/y", "MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTEDPGP"),
    ("short", "MKLVLLA"),
]


def fasta_text(records, newline="\n") -> str:
    return "".join(f">{pid} some description{newline}{seq[:60]}{newline}{seq[60:]}{newline}" for pid, seq in records)


def one_error_line(r, command):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nesscan {command}: error:"), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The reference: predict on the plain FASTA."""
    d = tmp_path_factory.mktemp("plain")
    fasta = d / "prot.fasta"
    fasta.write_text(fasta_text(GOOD_PROTEINS))
    r = run_cli("predict", "-i", fasta, "-o", d / "out")
    assert r.returncode == 0, r.stderr
    return {t: (d / "out" / t).read_bytes() for t in TABLES}


def _gz(path, text):
    with gzip.open(path, "wt") as fh:
        fh.write(text)


def _bgzip(path, text):
    from Bio import bgzf

    with bgzf.BgzfWriter(str(path), "wb") as fh:
        fh.write(text.encode())


VARIANTS = {
    "gzip": ("prot.fa.gz", lambda p: _gz(p, fasta_text(GOOD_PROTEINS))),
    "bgzip": ("prot.fa.bgz", lambda p: _bgzip(p, fasta_text(GOOD_PROTEINS))),
    "gzip_without_gz_name": ("prot.fasta", lambda p: _gz(p, fasta_text(GOOD_PROTEINS))),
    "bom": ("prot.fasta", lambda p: p.write_bytes(b"\xef\xbb\xbf" + fasta_text(GOOD_PROTEINS).encode())),
    "crlf": ("prot.fasta", lambda p: p.write_bytes(fasta_text(GOOD_PROTEINS, "\r\n").encode())),
    "bom_crlf_gzip": ("prot.fa.gz", lambda p: p.write_bytes(gzip.compress(
        b"\xef\xbb\xbf" + fasta_text(GOOD_PROTEINS, "\r\n").encode()))),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_predict_reads_compressed_bom_crlf_input_like_plain(tmp_path, plain, variant):
    name, make = VARIANTS[variant]
    fasta = tmp_path / name
    make(fasta)
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    for t in TABLES:
        assert (tmp_path / "out" / t).read_bytes() == plain[t], t
    assert [p.id for p in read_fasta(fasta)] == [pid for pid, _ in GOOD_PROTEINS]


def test_embed_and_explain_read_gzip(tmp_path):
    fasta = tmp_path / "prot.fa.gz"
    _gz(fasta, fasta_text(GOOD_PROTEINS[:2]))
    r = run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5")
    assert r.returncode == 0, r.stderr
    import h5py

    with h5py.File(tmp_path / "e.h5") as f:
        assert len(f["proteins"]) == 2
    r = run_cli("explain", "-i", fasta, "-o", tmp_path / "x", "--plots", "1", "--steps", "4")
    assert r.returncode == 0, r.stderr
    ids = {row["id"] for row in csv.DictReader(open(tmp_path / "x" / "attributions.tsv"), delimiter="\t")}
    assert ids <= {pid for pid, _ in GOOD_PROTEINS[:2]} and ids


REFUSED = {
    "windows_1252": (lambda p: p.write_bytes(b">p1 caf\xe9 prot\xe9ine\nMKLVLLA\n"), "not a text FASTA file (not UTF-8)"),
    "binary": (lambda p: p.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(4096))), "error:"),
    "gzip_of_binary": (lambda p: p.write_bytes(gzip.compress(b">p1\n\xff\xfe\x81\n")), "not UTF-8"),
    "truncated_gzip": (lambda p: p.write_bytes(gzip.compress(fasta_text(GOOD_PROTEINS).encode())[:60]), "truncated gzip"),
    "bzip2": (lambda p: p.write_bytes(__import__("bz2").compress(b">p1\nMKLV\n")), "bzip2-compressed"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_not_utf8_or_damaged_input_is_refused_with_one_line(tmp_path, case):
    make, expected = REFUSED[case]
    fasta = tmp_path / "in.fa"
    make(fasta)
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "out", "--skip-invalid")
    assert r.returncode == 2
    assert expected in one_error_line(r, "predict")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def proteome_with_rna(tmp_path, n=694, n_rna=10):
    """The case from the issue: a 694-record proteome with 10 RNA records among the proteins."""
    rng = random.Random(15)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    records, rna_ids = [], []
    rna_at = set(rng.sample(range(n), n_rna))
    for i in range(n):
        if i in rna_at:
            pid = f"rna{i}"
            rna_ids.append(pid)
            records.append((pid, "".join(rng.choice("ACGU") for _ in range(rng.randint(30, 90)))))
        else:
            records.append((f"prot{i}", "".join(rng.choice(aa) for _ in range(rng.randint(25, 120)))))
    fasta = write_fasta(tmp_path / "proteome.fa", records)
    return fasta, records, rna_ids


def test_skip_invalid_reports_rna_records_and_keeps_every_protein(tmp_path):
    fasta, records, rna_ids = proteome_with_rna(tmp_path)
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "all")
    assert r.returncode == 2
    line = one_error_line(r, "predict")
    assert f"record '{rna_ids[0]}' looks like a nucleotide sequence" in line and "--skip-invalid" in line
    assert not (tmp_path / "all").exists()

    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "skip", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert "skipped 10 invalid records" in r.stderr
    skipped = list(csv.DictReader(open(tmp_path / "skip" / "skipped.tsv"), delimiter="\t"))
    assert [s["id"] for s in skipped] == rna_ids
    header_lines = {pid: 1 + 2 * i for i, (pid, _) in enumerate(records)}  # write_fasta: header + one sequence line
    assert [int(s["line"]) for s in skipped] == [header_lines[i] for i in rna_ids]
    assert all("nucleotide" in s["reason"] for s in skipped)
    # the valid records' results are complete and equal a run on the valid records alone
    proteins = [(pid, seq) for pid, seq in records if pid not in rna_ids]
    clean = write_fasta(tmp_path / "clean.fa", proteins)
    r = run_cli("predict", "-i", clean, "-o", tmp_path / "clean")
    assert r.returncode == 0, r.stderr
    for t in TABLES:
        assert (tmp_path / "skip" / t).read_bytes() == (tmp_path / "clean" / t).read_bytes(), t
    assert not (tmp_path / "skip" / ".nesscan.lock").exists()


def test_skip_invalid_every_record_class(tmp_path):
    text = (">ok1\nMKLVLLAGLDI\n>\nMKLV\n>empty\n>gap\nMKL-VV\n>ok1\nMKV\n>dna\n" + "ACGT" * 10 + "\n"
            ">long\n" + "L" * 300 + "\n>nul\x00x\nMKLV\n>ok2\nmklvq*\n")
    fasta = tmp_path / "in.fa"
    fasta.write_text(text)
    s = validate_fasta(fasta, max_length=200, skip_invalid=True)
    assert s.n == 2
    got = [(k.id, k.line) for k in s.skipped]
    assert got == [("", 3), ("empty", 5), ("gap", 6), ("ok1", 8), ("dna", 10), ("long", 12), ("nul\x00x", 14)]
    reasons = " | ".join(k.reason for k in s.skipped)
    for word in ("empty ID", "empty sequence", "position 4: '-'", "duplicate sequence ID 'ok1'", "nucleotide",
                 "more than the limit of 200", "non-printable character U+0000"):
        assert word in reasons
    with pytest.raises(NesscanError, match=r"empty ID .*\(record at line 3\); use --skip-invalid"):
        validate_fasta(fasta, max_length=200, skip_invalid=False)


def test_embed_skip_invalid_writes_its_list_beside_the_output(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nMKLVLLAGLDI\n>b\nMKL1\n>c\nMSNELALK\n")
    r = run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5")
    assert r.returncode == 2 and "--skip-invalid" in one_error_line(r, "embed")
    assert not (tmp_path / "e.h5").exists()
    r = run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "e.skipped.tsv"), delimiter="\t"))
    assert [(x["id"], x["line"]) for x in rows] == [("b", "3")]
    import h5py

    with h5py.File(tmp_path / "e.h5") as f:
        assert sorted(f["proteins"][k].attrs["id"] for k in f["proteins"]) == ["a", "c"]


def test_all_invalid_is_an_error_even_when_skipping(tmp_path):
    fasta = write_fasta(tmp_path / "in.fa", [("r1", "ACGU" * 10), ("r2", "ACGT" * 10)])
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "out", "--skip-invalid")
    assert r.returncode == 2
    assert "all 2 records are invalid" in one_error_line(r, "predict")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []

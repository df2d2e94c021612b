"""Every class of bad input: one-line error naming the problem, exit 2, no output left behind."""

import os

import pytest

from conftest import run_cli, write_fasta
from nesscan.errors import NesscanError
from nesscan.fasta import read_fasta

GOOD = "MSNELALKLAGLDINKTEQKRLLEESLK"

BAD_INPUTS = {
    "empty": ("", "is empty"),
    "blank_lines": ("\n\n  \n", "is empty"),
    "not_fasta": ("ID\tsequence\nP1\tMKLV\n", "not FASTA"),
    "empty_sequence": (">p1\n>p2\nMKLVV\n", "'p1' has an empty sequence"),
    "empty_id": (">\nMKLVLLA\n", "empty ID"),
    "duplicate_id": (f">p1\n{GOOD}\n>p2\nMKV\n>p1 again\nMKKL\n", "duplicate sequence ID 'p1'"),
    "bad_letter": (f">p1\n{GOOD}\n>p2\nMKL1VV\n", "'p2' has a character outside the protein alphabet at position 4: '1'"),
    "gap": (">p1\nMKL-VV\n", "position 4: '-'"),
    "inner_stop": (">p1\nMKL*VV\n", "position 4: '*'"),
    "nucleotides": (">dna\nATGGCGTACGTTAGCCTAGGCTAACGTAGCTAGCT\n", "looks like a nucleotide sequence"),
    "binary": (None, "not a text FASTA"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("command", ["predict", "embed"])
def test_bad_input_one_line_exit2_no_output(tmp_path, case, command):
    text, expected = BAD_INPUTS[case]
    fasta = tmp_path / "in.fasta"
    if text is None:
        fasta.write_bytes(b">p1\n\xff\xfe\x00\x81garbage\n")
    else:
        fasta.write_text(text)
    out = tmp_path / "out"
    if command == "predict":
        r = run_cli("predict", "-i", fasta, "-o", out)
    else:
        out.mkdir()
        r = run_cli("embed", "-i", fasta, "-o", out / "e.h5")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith(f"nesscan {command}: error:"), r.stderr
    assert expected in lines[0]
    assert "Traceback" not in r.stderr
    leftovers = [p for p in out.rglob("*")] if out.exists() else []
    assert leftovers == [], leftovers


def test_missing_file(tmp_path):
    r = run_cli("predict", "-i", tmp_path / "nope.fasta", "-o", tmp_path / "o")
    assert r.returncode == 2 and "input file not found" in r.stderr
    assert not (tmp_path / "o" / "proteins.tsv").exists()


def test_huge_sequence_refused(tmp_path):
    fasta = write_fasta(tmp_path / "big.fasta", [("big", "L" * 5000)])
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "o", "--max-length", "1000")
    assert r.returncode == 2 and "'big' has 5000 residues, more than the limit of 1000" in r.stderr
    assert not (tmp_path / "o" / "proteins.tsv").exists()


def test_bad_record_at_the_end_leaves_nothing(tmp_path):
    """Validation happens before any output: a bad last record must not leave partial tables."""
    recs = [(f"p{i}", GOOD) for i in range(50)] + [("bad", "MKL#")]
    fasta = write_fasta(tmp_path / "in.fasta", recs)
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "o")
    assert r.returncode == 2 and "'bad'" in r.stderr
    assert list((tmp_path / "o").glob("*")) == []


def test_lenient_letters(tmp_path):
    fasta = tmp_path / "ok.fasta"
    fasta.write_text(">a desc\nmsnelalk\nlaglXBZUO*\n>b|x/y\nMKLV\n")
    prots = read_fasta(fasta)
    assert [p.id for p in prots] == ["a", "b|x/y"]
    assert prots[0].sequence == "MSNELALKLAGLXBZUO"  # lowercase accepted, trailing * stripped


def test_error_is_one_line():
    e = NesscanError("a\nb   c")
    assert str(e) == "a b c"


def test_unknown_embedder_and_model(tmp_path):
    fasta = write_fasta(tmp_path / "in.fasta", [("p", GOOD)])
    r = run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "-e", "prot_bert")
    assert r.returncode == 2 and "unknown embedder 'prot_bert'" in r.stderr
    r = run_cli("predict", "-i", fasta, "-o", tmp_path / "o", "-m", tmp_path / "nomodel")
    assert r.returncode == 2 and "not found" in r.stderr
    assert not os.path.exists(tmp_path / "e.h5")

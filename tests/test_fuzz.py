"""Property-based fuzzing (Hypothesis) of the FASTA reader and of ``nesscan predict`` (issue 15).

Inputs: generated FASTA (headers empty, huge, with NUL or any Unicode; sequences in mixed case,
with foreign letters, very long lines, 1 to 100,000 residues; blank lines, ``>`` alone, CRLF, a
byte-order mark) and its mutations (truncated, random bytes inserted, NUL bytes, gzip-wrapped or
a damaged gzip stream), plus plain random bytes.

Invariants:
* reader: ``validate_fasta`` returns a summary or raises ``NesscanError`` with a one-line
  message, never anything else; on success ``iter_fasta`` yields exactly the counted, cleaned
  proteins (unique printable IDs, protein letters only); with ``skip_invalid`` every header line
  is either a protein or a skipped record, and strict mode succeeds exactly when nothing is
  skipped;
* ``nesscan predict`` (the real CLI, in-process through ``main`` for most cases and as a
  subprocess for some): exit 0 with complete tables (one row per valid record, in input order),
  or exit 2 with one line on stderr and no output file; never a traceback.

Profiles (``NESSCAN_FUZZ_PROFILE``): ``ci`` (default, about a minute) and ``long`` (>= 10,000
cases: scripts/fuzz_long.sh). Cases are derandomized (CI) or seeded (``--hypothesis-seed``).
``NESSCAN_FUZZ_REPORT=FILE`` appends the number of cases each test ran to FILE (JSON lines).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from nesscan.errors import NesscanError
from nesscan.fasta import ALLOWED, iter_fasta, validate_fasta

PROFILE = os.environ.get("NESSCAN_FUZZ_PROFILE", "ci")
COUNTS = {"ci": {"reader": 600, "predict_inproc": 20, "predict_subprocess": 3},
          "long": {"reader": 10_000, "predict_inproc": 150, "predict_subprocess": 10}}[PROFILE]
COMMON = dict(deadline=None, database=None, derandomize=PROFILE == "ci",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])

LETTERS = "ACDEFGHIKLMNPQRSTVWYXBZUOacdefghiklmnpqrstvwyxbzuo"
_ran: dict[str, int] = {}
_bars: dict = {}


def _count(name: str) -> None:
    _ran[name] = _ran.get(name, 0) + 1
    if os.environ.get("NESSCAN_FUZZ_PROGRESS") == "1":  # scripts/fuzz_long.sh: a tqdm bar per test
        from tqdm import tqdm

        if name not in _bars:
            _bars[name] = tqdm(total=COUNTS[name.replace("_tracebacks", "")], desc=name, unit="case")
        _bars[name].update()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("NESSCAN_FUZZ_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"profile": PROFILE, **_ran}) + "\n")


def mostly(common, *rare, weight: int = 8):
    """``common`` in ``weight`` of ``weight + 2`` draws, else one of ``rare``: enough valid
    records for the reader to get past the first one, enough odd ones to hit every error."""
    return st.integers(0, weight + 1).flatmap(lambda k: common if k < weight else st.one_of(*rare))


headers = mostly(
    st.from_regex(r"[A-Za-z0-9_|.:-]{1,20}( [ -~]{0,40})?", fullmatch=True),
    st.text(max_size=30),  # any Unicode, controls and NUL included
    st.sampled_from(["", " ", "dup", "dup"]),
    st.integers(1_000, 200_000).map(lambda n: "H" * n + " huge"),
)
seq_lines = mostly(
    st.text(alphabet=LETTERS, min_size=1, max_size=80),
    st.text(alphabet=LETTERS + "*-. 0123456789\t\x00", max_size=40),
    st.sampled_from(["M", "*", "m*", "", "   ", "ACGTACGTACGTACGTACGTACGT", "acguacguacguacguacguacgu"]),
    st.integers(1_000, 100_000).map(lambda n: "L" * n),  # one very long line
    st.text(max_size=10),
)
records = st.tuples(headers, mostly(st.lists(seq_lines, min_size=1, max_size=4), st.just([])), st.booleans())


@st.composite
def fasta_bytes(draw):
    """Generated FASTA, then mutated; or random bytes."""
    kind = draw(st.sampled_from(["fasta"] * 10 + ["random", "gt_random"]))
    if kind == "random":
        return draw(st.binary(max_size=3000))
    if kind == "gt_random":
        return b">" + draw(st.binary(max_size=3000))
    nl = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    parts = []
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["", nl, nl + nl, "  " + nl])))
    for head, lines, blank_after in draw(st.lists(records, min_size=0, max_size=8)):
        parts.append(">" + head + nl)
        parts.extend(line + nl for line in lines)
        if blank_after:
            parts.append(nl)
    data = "".join(parts).encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    mutation = draw(st.sampled_from(["none"] * 12 + ["truncate", "insert", "nul", "latin1"]))
    if data and mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:]
    elif mutation == "nul":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" * draw(st.integers(1, 4)) + data[at:]
    elif mutation == "latin1":
        data = data + b">caf\xe9\nMKLV\n"
    packing = draw(st.sampled_from(["plain"] * 8 + ["gzip", "gzip", "gzip_damaged"]))
    if packing == "gzip":
        data = gzip.compress(data, mtime=0)
    elif packing == "gzip_damaged":
        z = gzip.compress(data, mtime=0)
        data = z[: draw(st.integers(2, max(2, len(z) - 1)))]
    return data


def _decoded_headers(data: bytes) -> int | None:
    """Header lines counted independently of the reader (None when the bytes are not UTF-8 text)."""
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("utf-8-sig")
    except Exception:
        return None
    return sum(line.startswith(">") for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def check_reader(data: bytes, tmpdir: str) -> None:
    path = os.path.join(tmpdir, "in.fa")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        strict = validate_fasta(path, skip_invalid=False)
    except NesscanError as e:
        strict = None
        assert "\n" not in str(e) and str(e)
    try:
        lenient = validate_fasta(path, skip_invalid=True)
    except NesscanError as e:
        lenient = None
        assert "\n" not in str(e) and str(e)
    event(f"reader: strict {'ok' if strict else 'error'}, skip-invalid {'ok' if lenient else 'error'}"
          + (f", {min(len(lenient.skipped), 3)}{'+' if len(lenient.skipped) > 3 else ''} skipped" if lenient else ""))
    if strict is not None:
        assert lenient is not None and lenient.skipped == () and (lenient.n, lenient.residues) == (strict.n, strict.residues)
    if lenient is not None:
        assert strict is not None or lenient.skipped  # strict fails only because of a skippable record
        prots = list(iter_fasta(path, skip_invalid=True))
        assert len(prots) == lenient.n >= 1
        assert sum(map(len, prots)) == lenient.residues
        ids = [p.id for p in prots]
        assert len(set(ids)) == len(ids) and all(i and i.isprintable() and not any(c.isspace() for c in i) for i in ids)
        assert all(p.sequence and set(p.sequence) <= ALLOWED for p in prots)
        n_headers = _decoded_headers(data)
        assert n_headers == lenient.n + len(lenient.skipped)
        assert all(s.line >= 1 for s in lenient.skipped)


@settings(max_examples=COUNTS["reader"], **COMMON)
@given(fasta_bytes())
@example(b"")
@example(b">")
@example(b">\n")
@example(b"\xef\xbb\xbf>p1\r\nMKLV\r\n")
@example(b">p1\nM\n")
@example(b">p1\n" + b"L" * 100_000 + b"\n")
@example(b">p1\n" + b"L" * 100_001 + b"\n")
@example(b">p\x00\nMKLV\n")
@example(gzip.compress(b">p1\nMKLV\n", mtime=0)[:-3])
def test_reader_fuzz(data):
    _count("reader")
    with tempfile.TemporaryDirectory() as d:
        check_reader(data, d)


def check_predict_outputs(data: bytes, d: str, rc: int, stderr: str) -> None:
    path, out = os.path.join(d, "in.fa"), os.path.join(d, "out")
    assert "Traceback" not in stderr
    event(f"predict: exit {rc}")
    if rc == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nesscan predict: error:"), stderr
        assert not os.path.exists(out) or os.listdir(out) == []
        with pytest.raises(NesscanError):
            validate_fasta(path, skip_invalid=True)
        return
    assert rc == 0, stderr
    expected = [p.id for p in iter_fasta(path, skip_invalid=True)]
    with open(os.path.join(out, "proteins.tsv"), newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["id"] for r in rows] == expected
    with open(os.path.join(out, "candidates.tsv"), newline="") as fh:
        cands = list(csv.DictReader(fh, delimiter="\t"))
    assert {c["id"] for c in cands} == set(expected)
    gff = open(os.path.join(out, "candidates.gff3")).read()
    assert gff.startswith("##gff-version 3\n") and gff.count("\tnuclear_export_signal\t") == len(cands)
    skipped = list(csv.DictReader(open(os.path.join(out, "skipped.tsv"), newline=""), delimiter="\t"))
    assert len(skipped) == len(validate_fasta(path, skip_invalid=True).skipped)
    assert not [f for f in os.listdir(out) if f.endswith((".partial", ".lock"))]


small_fasta = fasta_bytes().filter(lambda b: len(b) < 300_000)


@settings(max_examples=COUNTS["predict_inproc"], **COMMON)
@given(small_fasta)
@example(b">one\nM\n")
@example(b">big\n" + b"MKLVLLAGLDI" * 9090 + b"\n")  # 99,990 residues
def test_predict_fuzz_in_process(data):
    """The real ``nesscan`` entry point (``cli.main``), called in this process."""
    from nesscan.cli import main

    _count("predict_inproc")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "in.fa"), "wb") as fh:
            fh.write(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["predict", "-i", os.path.join(d, "in.fa"), "-o", os.path.join(d, "out"), "-q", "--skip-invalid"])
        check_predict_outputs(data, d, rc, err.getvalue())


@settings(max_examples=COUNTS["predict_subprocess"], **COMMON)
@given(small_fasta)
def test_predict_fuzz_subprocess(data):
    """``nesscan predict`` as a user runs it: a new process, its real stderr and exit status."""
    _count("predict_subprocess")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "in.fa"), "wb") as fh:
            fh.write(data)
        r = subprocess.run([sys.executable, "-m", "nesscan", "predict", "-i", os.path.join(d, "in.fa"), "-o",
                            os.path.join(d, "out"), "-q", "--skip-invalid"], capture_output=True, text=True)
        check_predict_outputs(data, d, r.returncode, r.stderr)

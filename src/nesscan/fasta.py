"""FASTA reading and validation.

Parsing uses Biopython's ``SimpleFastaParser``; the checks around it turn every malformed
input into a one-line :class:`~nesscan.errors.NesscanError` that names the record and, for bad
letters, the position. The file is validated completely (one streaming pass that keeps only
the IDs) before any output is written, so a bad record at the end of a proteome never leaves
a half-written result behind.

Letters:
* the 20 standard amino acids, upper or lower case;
* ``X`` (unknown), ``B`` (Asx: D/N), ``Z`` (Glx: E/Q), ``U`` (selenocysteine), ``O``
  (pyrrolysine) are accepted and kept; each embedder handles them explicitly (ESM-2 has tokens
  for all five; the built-in embedder maps B and Z to the mean of their two residues, U to C,
  O to K and X to the mean of all twenty);
* one trailing ``*`` (stop) is stripped; ``-`` gaps, digits, ``*`` inside the sequence and any
  other character are errors;
* a record made only of A/C/G/T/U/N (at least 20 letters) is refused as nucleotides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

from Bio.SeqIO.FastaIO import SimpleFastaParser

from .errors import NesscanError

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
EXTENDED = "XBZUO"
ALLOWED = frozenset(STANDARD + EXTENDED)
NUCLEOTIDE = frozenset("ACGTUN")
DEFAULT_MAX_LENGTH = 100_000  # titin, the longest human protein, has 35,991 residues


@dataclass(frozen=True)
class Protein:
    id: str
    sequence: str

    def __len__(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class FastaSummary:
    n: int
    residues: int
    max_length: int


def _clean(pid: str, raw: str, max_length: int) -> str:
    seq = "".join(raw.split()).upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise NesscanError(f"record '{pid}' has an empty sequence")
    for i, ch in enumerate(seq):
        if ch not in ALLOWED:
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise NesscanError(
                f"record '{pid}' has a character outside the protein alphabet at position {i + 1}: {shown}"
            )
    if len(seq) >= 20 and set(seq) <= NUCLEOTIDE:
        raise NesscanError(
            f"record '{pid}' looks like a nucleotide sequence (only A/C/G/T/U/N); nesscan needs protein sequences"
        )
    if len(seq) > max_length:
        raise NesscanError(
            f"record '{pid}' has {len(seq)} residues, more than the limit of {max_length} (--max-length)"
        )
    return seq


def _records(path: str | os.PathLike, max_length: int) -> Iterator[Protein]:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NesscanError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise NesscanError(f"input is a directory, not a FASTA file: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            first = ""
            for line in handle:
                if line.strip():
                    first = line
                    break
            if not first:
                raise NesscanError(f"input file is empty: {path}")
            if not first.startswith(">"):
                raise NesscanError(
                    f"input is not FASTA: the first line of {path} does not start with '>'"
                )
            handle.seek(0)
            for title, raw in SimpleFastaParser(handle):
                words = title.split()
                if not words:
                    raise NesscanError(f"{path}: a record has an empty ID (a '>' line with no name)")
                pid = words[0]
                yield Protein(pid, _clean(pid, raw, max_length))
    except UnicodeDecodeError:
        raise NesscanError(f"input is not a text FASTA file (not UTF-8): {path}") from None


def validate_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH) -> FastaSummary:
    """Check the whole file (streaming, keeps only the IDs) and return counts."""
    seen: set[str] = set()
    n = residues = longest = 0
    for p in _records(path, max_length):
        if p.id in seen:
            raise NesscanError(f"duplicate sequence ID '{p.id}' in {os.fspath(path)}")
        seen.add(p.id)
        n += 1
        residues += len(p)
        longest = max(longest, len(p))
    if n == 0:
        raise NesscanError(f"no FASTA records in {os.fspath(path)}")
    return FastaSummary(n, residues, longest)


def iter_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH) -> Iterator[Protein]:
    """Yield cleaned proteins. Call :func:`validate_fasta` first to catch duplicates."""
    yield from _records(path, max_length)


def read_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH) -> list[Protein]:
    """Validate and load a whole FASTA file."""
    validate_fasta(path, max_length)
    return list(iter_fasta(path, max_length))

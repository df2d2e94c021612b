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

Files as they come: gzip (and BGZF, which is gzip) compressed input is recognised by its magic
bytes, whatever the name; a UTF-8 byte-order mark and CRLF line ends are accepted. Text that is
not UTF-8 (Windows-1252, binary data), a damaged gzip stream and bzip2/xz/zstd/zip archives are
refused with one line.

Skip and report: with ``skip_invalid=True`` a record that fails a check (empty ID or sequence,
non-printable ID, duplicate ID, letters outside the alphabet, nucleotides, too long) is left
out and reported as a :class:`Skipped` (ID, line of its header, reason) instead of stopping the
run; file-level problems (not found, not text, not FASTA, no valid record at all) still stop it.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from typing import Iterator

from .errors import NesscanError

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
EXTENDED = "XBZUO"
ALLOWED = frozenset(STANDARD + EXTENDED)
NUCLEOTIDE = frozenset("ACGTUN")
DEFAULT_MAX_LENGTH = 100_000  # titin, the longest human protein, has 35,991 residues
SKIP_HINT = "use --skip-invalid to skip invalid records and list them in skipped.tsv"

_OTHER_COMPRESSION = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}


@dataclass(frozen=True)
class Protein:
    id: str
    sequence: str

    def __len__(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class Skipped:
    """A record left out under ``skip_invalid``: its ID ('' when it has none), the line of its
    header (1-based) and why."""

    id: str
    line: int
    reason: str


@dataclass(frozen=True)
class FastaSummary:
    n: int
    residues: int
    max_length: int
    skipped: tuple[Skipped, ...] = field(default=())


class _RecordError(NesscanError):
    pass


def _clean(pid: str, raw: str, max_length: int) -> str:
    seq = "".join(raw.split()).upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise _RecordError(f"record '{pid}' has an empty sequence")
    for i, ch in enumerate(seq):
        if ch not in ALLOWED:
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise _RecordError(
                f"record '{pid}' has a character outside the protein alphabet at position {i + 1}: {shown}"
            )
    if len(seq) >= 20 and set(seq) <= NUCLEOTIDE:
        raise _RecordError(
            f"record '{pid}' looks like a nucleotide sequence (only A/C/G/T/U/N); nesscan needs protein sequences"
        )
    if len(seq) > max_length:
        raise _RecordError(
            f"record '{pid}' has {len(seq)} residues, more than the limit of {max_length} (--max-length)"
        )
    return seq


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str | os.PathLike):
    """The file as text: gunzipped when it starts with the gzip magic bytes (gzip or BGZF),
    UTF-8 with an optional byte-order mark, universal newlines (CRLF and CR read as LF)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, name in _OTHER_COMPRESSION.items():
        if head.startswith(magic):
            raise NesscanError(f"input is {name}-compressed, which nesscan does not read (gzip or plain text only): {path}")
    if head[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline=None)
    return open(path, encoding="utf-8-sig", newline=None)


def _parse(handle, path: str) -> Iterator[tuple[str, str, int]]:
    """(title, raw sequence, header line) per record; the first non-blank line must be a header."""
    title, start, chunks = None, 0, []
    lineno = 0
    for lineno, line in enumerate(handle, 1):
        if line.startswith(">"):
            if title is not None:
                yield title, "".join(chunks), start
            title, start, chunks = line[1:].rstrip(), lineno, []
        elif title is not None:
            chunks.append(line)
        elif line.strip():
            raise NesscanError(f"input is not FASTA: the first line of {path} does not start with '>'")
    if title is None:
        raise NesscanError(f"input file is empty: {path}")
    yield title, "".join(chunks), start


def _records(path: str | os.PathLike, max_length: int, skipped: list | None = None,
             hint: bool = False) -> Iterator[Protein]:
    """Valid proteins in file order. ``skipped``: a list to collect invalid records in
    (skip and report) instead of raising; ``hint``: name ``--skip-invalid`` in the error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NesscanError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise NesscanError(f"input is a directory, not a FASTA file: {path}")
    seen: set[str] = set()
    gz = False
    try:
        gz = is_gzip(path)
        with open_text(path) as handle:
            for title, raw, line in _parse(handle, path):
                words = title.split()
                pid = words[0] if words else ""
                try:
                    if not pid:
                        raise _RecordError(f"{path}: a record has an empty ID (a '>' line with no name)")
                    if not pid.isprintable():
                        bad = next(c for c in pid if not c.isprintable())
                        raise _RecordError(f"record ID {pid!r} has a non-printable character U+{ord(bad):04X}")
                    if pid in seen:
                        raise _RecordError(f"duplicate sequence ID '{pid}' in {path}")
                    seq = _clean(pid, raw, max_length)
                except _RecordError as e:
                    if skipped is None:
                        raise NesscanError(f"{e} (record at line {line})" + (f"; {SKIP_HINT}" if hint else "")) from None
                    skipped.append(Skipped(pid, line, str(e)))
                    continue
                seen.add(pid)
                yield Protein(pid, seq)
    except UnicodeDecodeError:
        what = "gzip-compressed file holds no text FASTA" if gz else "input is not a text FASTA file"
        raise NesscanError(f"{what} (not UTF-8): {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise NesscanError(f"input is a damaged or truncated gzip file ({e}): {path}") from None
    except NesscanError:
        raise
    except OSError as e:
        raise NesscanError(f"cannot read {path}: {e.strerror or e}") from None


def validate_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH,
                   skip_invalid: bool | None = None) -> FastaSummary:
    """Check the whole file (streaming, keeps only the IDs) and return counts.

    ``skip_invalid``: True skips invalid records (listed in ``summary.skipped``); False stops
    at the first with an error that names ``--skip-invalid``; None (commands without the flag)
    stops without naming it."""
    skipped: list[Skipped] | None = [] if skip_invalid else None
    n = residues = longest = 0
    for p in _records(path, max_length, skipped, hint=skip_invalid is False):
        n += 1
        residues += len(p)
        longest = max(longest, len(p))
    if n == 0:
        if skipped:
            s = skipped[0]
            raise NesscanError(f"no valid FASTA record in {os.fspath(path)}: all {len(skipped)} records are invalid "
                               f"(first, line {s.line}: {s.reason})")
        raise NesscanError(f"no FASTA records in {os.fspath(path)}")
    return FastaSummary(n, residues, longest, tuple(skipped or ()))


def iter_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH,
               skip_invalid: bool = False) -> Iterator[Protein]:
    """Yield cleaned proteins (duplicates are errors, or skipped with ``skip_invalid``). Call
    :func:`validate_fasta` first so that a bad record stops the run before any output."""
    yield from _records(path, max_length, [] if skip_invalid else None)


def read_fasta(path: str | os.PathLike, max_length: int = DEFAULT_MAX_LENGTH,
               skip_invalid: bool | None = None) -> list[Protein]:
    """Validate and load a whole FASTA file."""
    validate_fasta(path, max_length, skip_invalid)
    return list(iter_fasta(path, max_length, bool(skip_invalid)))

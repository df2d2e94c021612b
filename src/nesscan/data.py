"""Training/validation data in the ``../shared/data`` layout.

A data directory holds ``proteins.fasta``, ``proteins.tsv`` (accession, cluster, group,
label, ...) and ``nes_spans.tsv`` (accession, start, end, hydrophobic_positions, motif_class,
...). Any directory with those three files in that format works.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass, field

from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH, _clean

log = logging.getLogger("nesscan.data")

GROUPS = ("nes_annotated", "crm1_cargo", "crm1_nonbinder", "bacterial_control")


@dataclass
class Span:
    start: int  # 1-based inclusive
    end: int
    phi: tuple[int, ...]  # 1-based protein positions of the hydrophobic residues
    motif_class: str = ""


@dataclass
class Record:
    id: str
    sequence: str
    cluster: str
    group: str
    label: int
    spans: list[Span] = field(default_factory=list)


def _read_tsv(path: str) -> list[dict]:
    if not os.path.exists(path):
        raise NesscanError(f"data file not found: {path}")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def data_checksum(data_dir: str) -> str:
    h = hashlib.sha256()
    for name in ("proteins.fasta", "proteins.tsv", "nes_spans.tsv"):
        with open(os.path.join(data_dir, name), "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _read_training_fasta(path: str) -> dict[str, str]:
    """Like :func:`nesscan.fasta.read_fasta`, but a record that is not a valid protein is skipped
    with a warning instead of stopping training (``../shared/data`` holds 33 RNA chains among its
    PDB 'bacterial controls')."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    if not os.path.exists(path):
        raise NesscanError(f"data file not found: {path}")
    seqs: dict[str, str] = {}
    skipped: list[str] = []
    with open(path) as fh:
        for title, raw in SimpleFastaParser(fh):
            pid = title.split()[0] if title.split() else ""
            try:
                seqs[pid] = _clean(pid, raw, DEFAULT_MAX_LENGTH)
            except NesscanError as e:
                skipped.append(str(e))
    if skipped:
        log.warning("skipped %d records of %s that are not valid proteins, e.g. %s", len(skipped), path, skipped[0])
    return seqs


def load_dataset(data_dir: str) -> list[Record]:
    """Proteins of the known groups with their NES spans; other rows are skipped."""
    seqs = _read_training_fasta(os.path.join(data_dir, "proteins.fasta"))
    spans: dict[str, list[Span]] = {}
    for row in _read_tsv(os.path.join(data_dir, "nes_spans.tsv")):
        phi = tuple(int(x) for x in row.get("hydrophobic_positions", "").replace(",", ";").split(";") if x.strip())
        spans.setdefault(row["accession"], []).append(
            Span(int(row["start"]), int(row["end"]), phi, row.get("motif_class", ""))
        )
    records = []
    for row in _read_tsv(os.path.join(data_dir, "proteins.tsv")):
        acc, group = row["accession"], row["group"]
        if group not in GROUPS or acc not in seqs:
            continue
        seq = seqs[acc]
        sp = [s for s in spans.get(acc, []) if 1 <= s.start <= s.end <= len(seq)]
        records.append(Record(acc, seq, row["cluster"], group, int(float(row["label"] or 0)), sp))
    if not records:
        raise NesscanError(f"no usable proteins in {data_dir}")
    return records

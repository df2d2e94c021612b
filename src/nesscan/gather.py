"""``nesscan gather``: concatenate per-chunk result tables (scatter/gather runs).

Takes the ``proteins.tsv``, ``candidates.tsv`` and ``candidates.gff3`` of each chunk, in the
order given, checks that the headers agree and that no protein ID occurs in two chunks, and
writes one set of tables (plus the MultiQC content of :mod:`nesscan.mqc`) atomically. The
``qvalue`` column is recomputed over the whole run (Benjamini–Hochberg over every candidate of
every chunk, from their E-values): a chunk's own q-values only know that chunk.
"""

from __future__ import annotations

import csv
import logging
import math
import os

from .calibrate import chance_summary
from .errors import NesscanError

log = logging.getLogger("nesscan.gather")


def _read_header(path: str) -> list[str]:
    if not os.path.exists(path):
        raise NesscanError(f"table not found: {path}")
    with open(path, newline="") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    return header


def run_gather(proteins: list[str], candidates: list[str], gff3: list[str], outdir: str, sample: str | None = None,
               max_evalue: float | None = None) -> dict:
    if not (len(proteins) == len(candidates) == len(gff3)) or not proteins:
        raise NesscanError(
            f"gather needs the same number of proteins, candidates and gff3 files (got {len(proteins)}, {len(candidates)}, {len(gff3)})")
    for group in (proteins, candidates):
        first = _read_header(group[0])
        for p in group[1:]:
            if _read_header(p) != first:
                raise NesscanError(f"{p} has other columns than {group[0]}")
    for p in gff3:
        if not os.path.exists(p):
            raise NesscanError(f"table not found: {p}")
        with open(p) as fh:
            if fh.readline().strip() != "##gff-version 3":
                raise NesscanError(f"{p} is not GFF3 (no '##gff-version 3' line)")
    from .mqc import _flt, write_predict_mqc_from_tables

    seen: dict[str, str] = {}
    calls = 0
    with_evalues = False  # a model without a background null writes no E-values: no chance figure then
    for p in proteins:
        with open(p, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["id"] in seen:
                    raise NesscanError(f"protein '{row['id']}' is in both {seen[row['id']]} and {p}")
                seen[row["id"]] = p
                try:
                    calls += int(row.get("n_high_confidence") or 0)
                except ValueError:
                    raise NesscanError(f"{p}: n_high_confidence of '{row['id']}' is not a whole number: "
                                       f"{row['n_high_confidence']!r}") from None
                with_evalues = with_evalues or math.isfinite(_flt(row.get("min_evalue")))

    os.makedirs(outdir, exist_ok=True)
    out = {k: os.path.join(outdir, n) for k, n in (("proteins", "proteins.tsv"), ("candidates", "candidates.tsv"),
                                                    ("gff3", "candidates.gff3"))}
    tmp = {k: v + ".partial" for k, v in out.items()}
    try:
        for key, files in (("proteins", proteins), ("candidates", candidates)):
            with open(tmp[key], "w") as fo:
                for i, p in enumerate(files):
                    with open(p) as fi:
                        header = fi.readline()
                        if i == 0:
                            fo.write(header)
                        for line in fi:
                            fo.write(line)
        with open(tmp["gff3"], "w") as fo:
            fo.write("##gff-version 3\n")
            for p in gff3:
                with open(p) as fi:
                    fi.readline()
                    for line in fi:
                        fo.write(line)
        from .report import fill_qvalues

        fill_qvalues(tmp["candidates"])
        for k in out:
            os.replace(tmp[k], out[k])
    finally:
        for t in tmp.values():
            if os.path.exists(t):
                os.remove(t)
    write_predict_mqc_from_tables(outdir, out["proteins"], out["candidates"], sample=sample, max_evalue=max_evalue)
    log.info("gathered %d chunks, %d proteins -> %s: %s", len(proteins), len(seen), outdir,
             chance_summary(calls, len(seen), max_evalue if with_evalues else None))
    return {"chunks": len(proteins), "proteins": len(seen), **out}

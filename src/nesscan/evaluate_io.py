"""Reading and checking the inputs of ``nesscan evaluate``: predictions (``proteins.tsv``,
``candidates.tsv``), labels, known NES spans, CRM1 enrichment, sequences and window scores.

Every reader raises :class:`~nesscan.errors.NesscanError` with a one-line message on bad input;
:func:`load_inputs` reads and checks everything before ``nesscan evaluate`` writes anything."""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import NesscanError

# ----------------------------------------------------------------------------- reading inputs


def _require_file(path: str | None, what: str) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise NesscanError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise NesscanError(f"{what} is a directory, expected a file: {path}")


def _open_text(path: str):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8-sig")


def read_table(path: str, what: str, required: list[str], alternatives: dict[str, tuple[str, ...]] | None = None
               ) -> tuple[list[dict], list[str]]:
    """Rows of a tab-separated table as dicts. ``alternatives`` maps a canonical column to the
    names it may carry (e.g. ``id`` <- ``accession``); missing required columns are an error."""
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            cols = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = cols
            rename = {}
            for canon, names in (alternatives or {}).items():
                if canon not in cols:
                    for n in names:
                        if n in cols:
                            rename[n] = canon
                            break
            have = set(cols) | set(rename.values())
            missing = [c for c in required if c not in have]
            if not cols:
                raise NesscanError(f"{what} file {path} is empty")
            if missing:
                raise NesscanError(f"{what} file {path} lacks column(s) {', '.join(missing)} (has: {', '.join(cols)})")
            rows = []
            for r in reader:
                if None in r:  # more fields than the header
                    raise NesscanError(f"{what} file {path}: line {reader.line_num} has more fields than the header")
                rows.append({rename.get(k, k): (v.strip() if isinstance(v, str) else v) for k, v in r.items()})
            return rows, [rename.get(c, c) for c in cols]
    except UnicodeDecodeError:
        raise NesscanError(f"{what} file {path} is not UTF-8 text") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise NesscanError(f"cannot read {what} file {path}: {e}") from None
    except csv.Error as e:
        raise NesscanError(f"{what} file {path} is not a valid TSV: {e}") from None


def _float(v, what: str, path: str, row_id: str, col: str, allow_empty: bool = True) -> float:
    if v is None or v == "" or v.lower() in ("na", "nan", "none"):
        if allow_empty:
            return math.nan
        raise NesscanError(f"{what} file {path}: empty {col} for '{row_id}'")
    try:
        return float(v)
    except ValueError:
        raise NesscanError(f"{what} file {path}: {col} of '{row_id}' is not a number: {v!r}") from None


def _int(v, what: str, path: str, row_id: str, col: str) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        raise NesscanError(f"{what} file {path}: {col} of '{row_id}' is not an integer: {v!r}") from None


def _positions(v: str | None) -> list[int]:
    if not v:
        return []
    out = []
    for p in str(v).replace(",", ";").split(";"):
        p = p.strip()
        if p:
            try:
                out.append(int(float(p)))
            except ValueError:
                continue
    return out


def motif_family(cls: str | None) -> str:
    """Family of a Kosugi class, as written in nes_spans.tsv (``c1a-AT-4`` → ``c1a``,
    ``c2-rev`` → ``c2R``, ``c1aR-5`` → ``c1aR``) or by ``nesscan fuse`` (``1c-AT+phi0`` → ``c1c``)."""
    if not cls or cls.strip().lower() in ("none", "na", "-", ""):
        return "unknown"
    s = cls.strip().split("+")[0]
    parts = s.split("-")
    base, rev = parts[0], False
    for p in parts[1:]:
        if p.lower() in ("rev", "r"):
            rev = True
    if not base.lower().startswith("c"):
        base = "c" + base
    base = "c" + base[1:]
    if base.endswith("R"):
        base, rev = base[:-1], True
    return base + ("R" if rev else "")


@dataclass
class SpanRec:
    start: int
    end: int
    phi: list[int]
    family: str
    motif_class: str


@dataclass
class Inputs:
    proteins: dict[str, dict] = field(default_factory=dict)  # id -> {score, nes_score, length}
    score_columns: list[str] = field(default_factory=list)
    labels: dict[str, dict] = field(default_factory=dict)  # id -> {label, group, cluster}
    has_group: bool = False
    has_cluster: bool = False
    candidates: dict[str, list[dict]] | None = None  # id -> rows sorted by rank
    has_phi: bool = False
    spans: dict[str, list[SpanRec]] | None = None
    enrichment: dict[str, float] | None = None
    sequences: dict[str, str] | None = None
    windows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    n_labels_unlabelled: int = 0
    has_evalue: bool = False  # candidates carry an ``evalue`` column
    has_min_evalue: bool = False  # proteins carry a ``min_evalue`` column


def _evalue(v, what: str, path: str, row_id: str, col: str, allow_empty: bool = False) -> float:
    """An E-value: a number >= 0 (inf allowed); empty only where ``allow_empty`` (read as inf)."""
    x = _float(v, what, path, row_id, col, allow_empty=allow_empty)
    if math.isnan(x):
        return math.inf
    if x < 0:
        raise NesscanError(f"{what} file {path}: {col} of '{row_id}' must be >= 0, got {v!r}")
    return x


def read_proteins(path: str) -> tuple[dict[str, dict], list[str]]:
    rows, cols = read_table(path, "proteins", ["id", "score"], {"id": ("accession",)})
    scores = [c for c in ("score", "nes_score") if c in cols]
    out: dict[str, dict] = {}
    for r in rows:
        pid = r["id"]
        if not pid:
            raise NesscanError(f"proteins file {path}: a row has an empty id")
        if pid in out:
            raise NesscanError(f"proteins file {path}: duplicate id '{pid}'")
        out[pid] = {c: _float(r.get(c), "proteins", path, pid, c) for c in scores}
        out[pid]["length"] = r.get("length")
        if "min_evalue" in cols:  # the best candidate's E-value; empty: no candidate
            out[pid]["min_evalue"] = _evalue(r.get("min_evalue"), "proteins", path, pid, "min_evalue", True)
    if not out:
        raise NesscanError(f"proteins file {path} has no rows")
    return out, scores


def read_labels(path: str) -> tuple[dict[str, dict], bool, bool, int]:
    rows, cols = read_table(path, "labels", ["id", "label"], {"id": ("accession",)})
    has_group, has_cluster = "group" in cols, "cluster" in cols
    out: dict[str, dict] = {}
    unlabelled = 0
    for r in rows:
        pid = r["id"]
        if not pid:
            raise NesscanError(f"labels file {path}: a row has an empty id")
        if pid in out:
            raise NesscanError(f"labels file {path}: duplicate id '{pid}'")
        lab = _float(r.get("label"), "labels", path, pid, "label")
        if math.isnan(lab):
            unlabelled += 1
            continue
        if lab not in (0.0, 1.0):
            raise NesscanError(f"labels file {path}: label of '{pid}' must be 0 or 1, got {r.get('label')!r}")
        out[pid] = {"label": int(lab), "group": r.get("group") or "", "cluster": r.get("cluster") or pid}
    if not out:
        raise NesscanError(f"labels file {path} has no labelled rows")
    if not {v["label"] for v in out.values()} >= {0, 1}:
        raise NesscanError(f"labels file {path} needs both labels 0 and 1")
    return out, has_group, has_cluster, unlabelled


def read_candidates(path: str) -> tuple[dict[str, list[dict]], bool, bool]:
    """Candidates per protein sorted by rank; whether they carry Φ positions and E-values."""
    rows, cols = read_table(path, "candidates", ["id", "rank", "start", "end", "score"])
    has_phi, has_evalue = "phi_positions" in cols, "evalue" in cols
    out: dict[str, list[dict]] = {}
    for r in rows:
        pid = r["id"]
        c = {"rank": _int(r["rank"], "candidates", path, pid, "rank"),
             "start": _int(r["start"], "candidates", path, pid, "start"),
             "end": _int(r["end"], "candidates", path, pid, "end"),
             "score": _float(r["score"], "candidates", path, pid, "score"),
             "phi": _positions(r.get("phi_positions")) if has_phi else [],
             "motif_class": r.get("motif_class", "")}
        if has_evalue:
            c["evalue"] = _evalue(r.get("evalue"), "candidates", path, pid, "evalue")
        if c["end"] < c["start"]:
            raise NesscanError(f"candidates file {path}: '{pid}' rank {c['rank']} ends before it starts")
        out.setdefault(pid, []).append(c)
    for v in out.values():
        v.sort(key=lambda c: c["rank"])
    return out, has_phi, has_evalue


def read_spans(path: str) -> dict[str, list[SpanRec]]:
    rows, cols = read_table(path, "spans", ["id", "start", "end"], {"id": ("accession",)})
    out: dict[str, list[SpanRec]] = {}
    for r in rows:
        pid = r["id"]
        s, e = _int(r["start"], "spans", path, pid, "start"), _int(r["end"], "spans", path, pid, "end")
        if e < s:
            raise NesscanError(f"spans file {path}: span {s}-{e} of '{pid}' ends before it starts")
        cls = r.get("motif_class", "") or ""
        out.setdefault(pid, []).append(SpanRec(s, e, _positions(r.get("hydrophobic_positions")), motif_family(cls), cls))
    if not out:
        raise NesscanError(f"spans file {path} has no rows")
    return out


def read_enrichment(path: str) -> dict[str, float]:
    rows, _ = read_table(path, "enrichment", ["id", "enrichment_from_input"], {"id": ("accession",)})
    out = {}
    for r in rows:
        v = _float(r["enrichment_from_input"], "enrichment", path, r["id"], "enrichment_from_input")
        if not math.isnan(v):
            out[r["id"]] = v
    return out


def read_sequences(path: str) -> dict[str, str]:
    """Lenient FASTA reading: only the composition and the length are used."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for title, seq in SimpleFastaParser(fh):
                pid = title.split(None, 1)[0] if title.strip() else ""
                if pid:
                    out.setdefault(pid, "".join(seq.split()).upper().rstrip("*"))
    except UnicodeDecodeError:
        raise NesscanError(f"FASTA file {path} is not text") from None
    if not out:
        raise NesscanError(f"FASTA file {path} holds no records")
    return out


def read_windows(path: str, keep: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``id, start, end, score`` rows (plain or gzip) of the proteins in ``keep``."""
    tmp: dict[str, list] = {}
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if not header:
                raise NesscanError(f"windows file {path} is empty")
            header = [h.strip() for h in header]
            try:
                i_id, i_s, i_e, i_sc = (header.index(c) for c in ("id", "start", "end", "score"))
            except ValueError:
                raise NesscanError(f"windows file {path} lacks column(s) id, start, end, score (has: {', '.join(header)})") from None
            for row in reader:
                if not row or row[i_id] not in keep:
                    continue
                try:
                    tmp.setdefault(row[i_id], []).append((int(row[i_s]), int(row[i_e]), float(row[i_sc])))
                except (ValueError, IndexError):
                    raise NesscanError(f"windows file {path}: line {reader.line_num} is not 'id start end score'") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise NesscanError(f"cannot read windows file {path}: {e}") from None
    except UnicodeDecodeError:
        raise NesscanError(f"windows file {path} is not text") from None
    out = {}
    for pid, rows in tmp.items():
        a = np.array(rows, dtype=np.float64)
        out[pid] = (a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2])
    return out


# ----------------------------------------------------------------------------- all inputs


def load_inputs(proteins: str, labels: str, candidates: str | None = None, spans: str | None = None,
                enrichment: str | None = None, fasta: str | None = None, windows: str | None = None,
                embeddings: str | None = None) -> Inputs:
    for path, what in ((proteins, "proteins"), (labels, "labels"), (candidates, "candidates"), (spans, "spans"),
                       (enrichment, "enrichment"), (fasta, "FASTA"), (windows, "windows"), (embeddings, "embeddings")):
        _require_file(path, what)
    if embeddings and not windows:
        raise NesscanError("--embeddings (t-SNE of window embeddings) needs --windows")
    inp = Inputs()
    inp.proteins, inp.score_columns = read_proteins(proteins)
    inp.has_min_evalue = any("min_evalue" in v for v in inp.proteins.values())
    inp.labels, inp.has_group, inp.has_cluster, inp.n_labels_unlabelled = read_labels(labels)
    if candidates:
        inp.candidates, inp.has_phi, inp.has_evalue = read_candidates(candidates)
    if spans:
        inp.spans = read_spans(spans)
    if enrichment:
        inp.enrichment = read_enrichment(enrichment)
    if fasta:
        inp.sequences = read_sequences(fasta)
    if windows:
        keep = set(inp.spans or {})
        if embeddings:
            keep |= {pid for pid, v in inp.labels.items() if v["label"] == 0}
        inp.windows = read_windows(windows, keep)
    if embeddings:
        from .store import read_meta

        read_meta(embeddings)  # a one-line error now rather than after the metrics
    if not set(inp.proteins) & set(inp.labels):
        raise NesscanError(f"no protein of {proteins} has a label in {labels} (ids must match the labels' accession/id)")
    return inp


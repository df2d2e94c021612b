"""``nesscan evaluate``: honest metrics and plots for a set of predictions.

Protein-level scores are **confounded**: on CRM1 data, amino-acid composition and length alone
separate cargo from non-binders well (ROC AUC about 0.85). So every protein-level figure here
sits beside a composition+length baseline (HistGradientBoosting on the 20 amino-acid fractions
and log length, out-of-fold, cluster-grouped when the labels carry a ``cluster`` column), and NES
detection is judged where composition cannot help — *inside* proteins with known NES:

* **hit@1 / hit@5**: the top candidate / any of the top five overlaps a known NES span;
* **residue-level AUC**: residues inside known spans versus the other residues of the same
  proteins (each residue scored by the best window covering it), pooled and per protein;
* **window-level AUC**: windows holding a known NES versus windows of the same proteins that
  touch none (windows overlapping a span only partly are left out);
* **Φ-residue precision / recall / F1**: the ``phi_positions`` of candidates that overlap a
  known span versus that span's ``hydrophobic_positions`` (``phi_f1``, strict: each of several
  overlapping annotations of one NES is its own truth, and a prediction cannot match two
  different Φ sets), and per NES region against the best-matching of its overlapping
  annotations (``phi_region_f1``: every Φ of every candidate overlapping the region counts);

overall and per Kosugi motif-class family of the span (``c1a-AT-4`` → ``c1a``, ``c2-rev`` →
``c2R``).

Inputs are read and checked completely before anything is written; the outputs (``metrics.json``,
plots as PNG and SVG, MultiQC custom content ``*_mqc.*``) are written to a hidden temporary
folder inside ``outdir`` and moved into place only when all of them are complete.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .errors import NesscanError

log = logging.getLogger("nesscan.evaluate")

AA20 = "ACDEFGHIKLMNPQRSTVWY"
BASELINE = "baseline_composition_length"
THRESHOLDS = (0.5, 0.9)
# (key, positive groups, negative groups, description)
TASKS = [
    ("T1", ("nes_annotated",), ("bacterial_control",), "nes_annotated vs bacterial_control"),
    ("T2", ("nes_annotated",), ("crm1_nonbinder",), "nes_annotated vs crm1_nonbinder"),
    ("T3", ("crm1_cargo",), ("crm1_nonbinder",), "crm1_cargo vs crm1_nonbinder"),
]
SCORE_LABELS = {"score": "score", "nes_score": "nes_score", BASELINE: "baseline (composition+length)"}
WINDOW_CLASSES = ("known NES window", "other window, annotated protein", "window of a non-binder (label 0)")


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


def read_candidates(path: str) -> tuple[dict[str, list[dict]], bool]:
    rows, cols = read_table(path, "candidates", ["id", "rank", "start", "end", "score"])
    has_phi = "phi_positions" in cols
    out: dict[str, list[dict]] = {}
    for r in rows:
        pid = r["id"]
        c = {"rank": _int(r["rank"], "candidates", path, pid, "rank"),
             "start": _int(r["start"], "candidates", path, pid, "start"),
             "end": _int(r["end"], "candidates", path, pid, "end"),
             "score": _float(r["score"], "candidates", path, pid, "score"),
             "phi": _positions(r.get("phi_positions")) if has_phi else [],
             "motif_class": r.get("motif_class", "")}
        if c["end"] < c["start"]:
            raise NesscanError(f"candidates file {path}: '{pid}' rank {c['rank']} ends before it starts")
        out.setdefault(pid, []).append(c)
    for v in out.values():
        v.sort(key=lambda c: c["rank"])
    return out, has_phi


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


# ----------------------------------------------------------------------------- protein-level metrics


def _nan_to_none(x):
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def mcc_optimal_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The score threshold t (predict positive when ``s >= t``) with the highest MCC; among
    equal MCCs the highest threshold. Vectorised over all distinct scores."""
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]  # last index of each distinct score
    tp = np.cumsum(yy)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    P, N = float(yy.sum()), float(len(yy) - yy.sum())
    fn, tn = P - tp, N - fp
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
    return float(ss[last[int(np.argmax(mcc))]])


def threshold_metrics(y: np.ndarray, s: np.ndarray, t: float) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, precision_score, recall_score

    pred = (s >= t).astype(int)
    return {"threshold": float(t),
            "f1": float(f1_score(y, pred, zero_division=0)),
            "mcc": float(matthews_corrcoef(y, pred)),
            "accuracy": float(accuracy_score(y, pred)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "n_predicted_positive": int(pred.sum())}


def score_metrics(y: np.ndarray, s: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}
    out["at_mcc_optimal"] = threshold_metrics(y, s, mcc_optimal_threshold(y, s))
    for t in THRESHOLDS:
        out[f"at_{t:g}"] = threshold_metrics(y, s, t)
    return out


def composition_length_features(seqs: list[str]) -> np.ndarray:
    X = np.zeros((len(seqs), 21))
    idx = {a: i for i, a in enumerate(AA20)}
    for r, seq in enumerate(seqs):
        counts = np.zeros(20)
        for ch in seq:
            j = idx.get(ch)
            if j is not None:
                counts[j] += 1
        tot = counts.sum()
        if tot:
            X[r, :20] = counts / tot
        X[r, 20] = math.log(max(len(seq), 1))
    return X


def baseline_oof(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int = 0, folds: int = 5
                 ) -> tuple[np.ndarray | None, str]:
    """Out-of-fold probabilities of HistGradientBoosting on composition + log length."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None:
        n_min = min(len(set(groups[y == c])) for c in (0, 1))
    else:
        n_min = int(min((y == 0).sum(), (y == 1).sum()))
    k = min(folds, n_min)
    if k < 2:
        return None, "too few examples of one class for cross-validation"
    if groups is not None:
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y, groups)
        desc = f"cluster-grouped stratified {k}-fold"
    else:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y)
        desc = f"stratified {k}-fold"
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small data: OpenMP threads only cost time (and crawl on a busy machine)
        oof = _fit_folds(X, y, splits, seed)
    return oof, desc


def _fit_folds(X, y, splits, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier

    oof = np.full(len(y), np.nan)
    for tr, te in splits:
        if len(set(y[tr])) < 2:
            oof[te] = float(y[tr].mean())
            continue
        clf = HistGradientBoostingClassifier(random_state=seed)
        clf.fit(X[tr], y[tr])
        oof[te] = clf.predict_proba(X[te])[:, 1]
    return oof


# ----------------------------------------------------------------------------- localisation


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0) + 1)


def window_classes(starts: np.ndarray, ends: np.ndarray, spans: list[SpanRec]) -> np.ndarray:
    """1 = the window holds a known NES (overlaps a span by at least half of the shorter of the
    two), 0 = touches no span, -1 = partial overlap only (left out)."""
    cls = np.zeros(len(starts), dtype=np.int64)
    touched = np.zeros(len(starts), dtype=bool)
    for sp in spans:
        ov = np.clip(np.minimum(ends, sp.end) - np.maximum(starts, sp.start) + 1, 0, None)
        need = np.ceil(np.minimum(ends - starts + 1, sp.end - sp.start + 1) / 2.0)
        touched |= ov > 0
        cls[ov >= need] = 1
    cls[(cls == 0) & touched] = -1
    return cls


def residue_scores(length: int, starts: np.ndarray, ends: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each residue's best score over the windows covering it (0 where none covers it)."""
    res = np.zeros(length)
    lens = (np.minimum(ends, length) - starts + 1).clip(min=0)
    if lens.sum() == 0:
        return res
    idx = np.concatenate([np.arange(s - 1, s - 1 + n) for s, n in zip(starts, lens) if n > 0])
    vals = np.repeat(scores[lens > 0], lens[lens > 0])
    np.maximum.at(res, idx, vals)
    return res


def _auc(y, s) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, s))


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else math.nan
    r = tp / (tp + fn) if tp + fn else math.nan
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def _span_regions(spans: list) -> list[list]:
    """Groups of spans that overlap (transitively): alternative annotations of one NES."""
    out: list[list] = []
    for sp in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and sp.start <= max(s.end for s in out[-1]):
            out[-1].append(sp)
        else:
            out.append([sp])
    return out


def localisation(inp: Inputs, min_overlap: int = 1) -> dict:
    """Localisation metrics inside proteins with known spans, overall and per motif-class family."""
    spans = inp.spans or {}
    cands = inp.candidates or {}
    evaluated = [pid for pid in spans if pid in inp.proteins]
    families = sorted({sp.family for pid in evaluated for sp in spans[pid]})
    buckets = ["all"] + families
    acc = {b: {"proteins": 0, "spans": 0, "hit1": 0, "hit5": 0, "res_y": [], "res_s": [], "res_auc": [],
               "win_y": [], "win_s": [], "win_auc": [], "tp": 0, "fp": 0, "fn": 0, "phi_spans": 0,
               "phi_tp_all": 0, "phi_fn_all": 0, "phi_fp_all": 0, "class_ok": 0, "class_n": 0,
               "reg_n": 0, "reg_tp": 0, "reg_fp": 0, "reg_fn": 0} for b in buckets}
    source = "windows" if inp.windows is not None else "candidates"
    n_missing_windows = 0
    for pid in evaluated:
        sps = spans[pid]
        cs = cands.get(pid, [])
        length = None
        if inp.sequences and pid in inp.sequences:
            length = len(inp.sequences[pid])
        elif inp.proteins[pid].get("length"):
            try:
                length = int(float(inp.proteins[pid]["length"]))
            except ValueError:
                length = None
        if length is None:
            length = max([sp.end for sp in sps] + [c["end"] for c in cs] + [1])
        if inp.windows is not None:
            if pid not in inp.windows:
                n_missing_windows += 1
                w = None
            else:
                w = inp.windows[pid]
        else:
            w = (np.array([c["start"] for c in cs], dtype=np.int64), np.array([c["end"] for c in cs], dtype=np.int64),
                 np.array([c["score"] for c in cs], dtype=np.float64)) if cs else None
        in_span_all = np.zeros(length, dtype=bool)
        for sp in sps:
            in_span_all[max(sp.start - 1, 0):min(sp.end, length)] = True
        res = residue_scores(length, *w) if w is not None else None
        wcls_all = window_classes(w[0], w[1], sps) if w is not None else None
        for b in buckets:
            bsp = sps if b == "all" else [sp for sp in sps if sp.family == b]
            if not bsp:
                continue
            a = acc[b]
            a["proteins"] += 1
            a["spans"] += len(bsp)

            def hits(c, bsp=bsp):
                return any(_overlap(c["start"], c["end"], sp.start, sp.end) >= min_overlap for sp in bsp)

            a["hit1"] += int(bool(cs) and hits(cs[0]))
            a["hit5"] += int(any(hits(c) for c in cs[:5]))
            if res is not None:
                pos = np.zeros(length, dtype=bool)
                for sp in bsp:
                    pos[max(sp.start - 1, 0):min(sp.end, length)] = True
                keep = pos | ~in_span_all  # residues of other-class spans are left out
                a["res_y"].append(pos[keep].astype(int))
                a["res_s"].append(res[keep])
                a["res_auc"].append(_auc(pos[keep].astype(int), res[keep]))
                wc = wcls_all if b == "all" else window_classes(w[0], w[1], bsp)
                if b != "all":  # windows touching spans of other classes are left out
                    wc = np.where((wcls_all != 0) & (wc == 0), -1, wc)
                m = wc >= 0
                a["win_y"].append(wc[m])
                a["win_s"].append(w[2][m])
                a["win_auc"].append(_auc(wc[m], w[2][m]))
            # Φ residues: per span, the Φ of overlapping candidates (not counting other spans' Φ)
            for sp in bsp:
                ov = [c for c in cs if _overlap(c["start"], c["end"], sp.start, sp.end) >= min_overlap]
                truth = set(sp.phi)
                other = set().union(*[set(o.phi) for o in sps if o is not sp]) - truth
                pred = set().union(*[set(c["phi"]) for c in ov]) - other if ov else set()
                if ov and inp.has_phi and truth:
                    a["phi_spans"] += 1
                    a["tp"] += len(pred & truth)
                    a["fp"] += len(pred - truth)
                    a["fn"] += len(truth - pred)
                if inp.has_phi and truth:
                    a["phi_tp_all"] += len(pred & truth)
                    a["phi_fp_all"] += len(pred - truth)
                    a["phi_fn_all"] += len(truth - pred)
            # Φ residues per NES region: overlapping spans are alternative annotations of one NES
            # (NESdb lists several for some); score the candidates' Φ against the best-matching one
            for reg in _span_regions([sp for sp in bsp if sp.phi]) if inp.has_phi else []:
                lo, hi = min(sp.start for sp in reg), max(sp.end for sp in reg)
                ov = [c for c in cs if _overlap(c["start"], c["end"], lo, hi) >= min_overlap]
                if not ov:
                    continue
                pred = set().union(*[set(c["phi"]) for c in ov])
                best = max((set(sp.phi) for sp in reg), key=lambda t: (2 * len(pred & t) - len(pred ^ t), -len(t)))
                a["reg_n"] += 1
                a["reg_tp"] += len(pred & best)
                a["reg_fp"] += len(pred - best)
                a["reg_fn"] += len(best - pred)
                if ov and ov[0].get("motif_class") not in (None, ""):
                    a["class_n"] += 1
                    a["class_ok"] += int(motif_family(ov[0]["motif_class"]) == sp.family)
    out: dict = {}
    for b in buckets:
        a = acc[b]
        n = a["proteins"]
        m = {"n_proteins": n, "n_spans": a["spans"],
             "hit@1": a["hit1"] / n if n else math.nan, "hit@5": a["hit5"] / n if n else math.nan}
        if a["res_y"]:
            m["residue_auc_pooled"] = _auc(np.concatenate(a["res_y"]), np.concatenate(a["res_s"]))
            per = [x for x in a["res_auc"] if np.isfinite(x)]
            m["residue_auc_mean_per_protein"] = float(np.mean(per)) if per else math.nan
            m["window_auc_pooled"] = _auc(np.concatenate(a["win_y"]), np.concatenate(a["win_s"]))
            per = [x for x in a["win_auc"] if np.isfinite(x)]
            m["window_auc_mean_per_protein"] = float(np.mean(per)) if per else math.nan
            m["window_auc_n_proteins"] = len(per)
        if inp.has_phi:
            prf = _prf(a["tp"], a["fp"], a["fn"])
            m.update({"phi_precision": prf["precision"], "phi_recall": prf["recall"], "phi_f1": prf["f1"],
                      "phi_tp": a["tp"], "phi_fp": a["fp"], "phi_fn": a["fn"], "phi_n_spans": a["phi_spans"]})
            e2e = _prf(a["phi_tp_all"], a["phi_fp_all"], a["phi_fn_all"])
            m.update({"phi_f1_all_spans": e2e["f1"], "phi_recall_all_spans": e2e["recall"]})
            reg = _prf(a["reg_tp"], a["reg_fp"], a["reg_fn"])
            m.update({"phi_region_precision": reg["precision"], "phi_region_recall": reg["recall"],
                      "phi_region_f1": reg["f1"], "phi_n_regions": a["reg_n"]})
        if a["class_n"]:
            m["motif_class_agreement"] = a["class_ok"] / a["class_n"]
            m["motif_class_agreement_n"] = a["class_n"]
        out[b] = m
    overall = out.pop("all")
    meta = {"source": source, "min_overlap": min_overlap, "n_proteins_with_spans": len(spans),
            "n_proteins_with_spans_predicted": len(evaluated)}
    if inp.windows is not None:
        meta["n_proteins_without_windows"] = n_missing_windows
    return {**meta, "overall": overall, "by_motif_class": out}


# ----------------------------------------------------------------------------- plots


def _save(fig, outdir: str, stem: str) -> list[str]:
    paths = []
    for ext in ("png", "svg"):
        p = os.path.join(outdir, f"{stem}.{ext}")
        fig.savefig(p, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight",
                    metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def plot_curves(curves: dict, outdir: str, kind: str) -> list[str]:
    """ROC (kind="roc") or PR (kind="pr") curves, one panel per task."""
    tasks = list(curves)
    fig = _figure(4.2 * len(tasks), 4.2)
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        c = curves[task]
        for name, d in c["scores"].items():
            if kind == "roc":
                ax.plot(d["fpr"], d["tpr"], lw=1.6, label=f"{SCORE_LABELS.get(name, name)} (AUC {d['roc_auc']:.3f})",
                        ls=":" if name == BASELINE else "-")
            else:
                ax.plot(d["recall"], d["precision"], lw=1.6, drawstyle="steps-post",
                        label=f"{SCORE_LABELS.get(name, name)} (AP {d['pr_auc']:.3f})", ls=":" if name == BASELINE else "-")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
        else:
            ax.axhline(c["prevalence"], ls="--", color="grey", lw=1, label=f"chance ({c['prevalence']:.2f})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{task}: {c['description']}\n(n = {c['n_pos']} + {c['n_neg']})", fontsize=9)
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    fig.tight_layout()
    return _save(fig, outdir, "roc_curves" if kind == "roc" else "pr_curves")


def plot_distributions(dist: dict, outdir: str) -> list[str]:
    """Histogram and box plot of the protein scores per group (screened set vs negative control)."""
    names = list(dist["scores"])
    groups = dist["groups"]
    fig = _figure(4.5 * len(names), 3.8)
    bins = np.linspace(0, 1, 21)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for g in groups:
            v = dist["scores"][name][g]
            if len(v):
                lo, hi = min(0.0, float(np.min(v))), max(1.0, float(np.max(v)))
                b = bins if (lo, hi) == (0.0, 1.0) else np.linspace(lo, hi, 21)
                ax.hist(v, bins=b, histtype="step", lw=1.5, density=True, label=f"{g} (n = {len(v)})")
        ax.set_xlabel(SCORE_LABELS.get(name, name))
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths = _save(fig, outdir, "score_histogram")
    fig = _figure(4.5 * len(names), 3.8)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        data = [dist["scores"][name][g] for g in groups]
        ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(groups) + 1), [f"{g}\n(n = {len(d)})" for g, d in zip(groups, data)], fontsize=7,
                      rotation=20)
        ax.set_ylabel(SCORE_LABELS.get(name, name))
    fig.tight_layout()
    return paths + _save(fig, outdir, "score_boxplot")


def plot_enrichment(enr: dict, outdir: str) -> list[str]:
    names = list(enr["scores"])
    fig = _figure(4.2 * len(names), 3.8)
    x = np.asarray(enr["enrichment"])
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        ax.scatter(np.log10(x + 1.0), enr["scores"][name], s=6, alpha=0.5)
        rho = enr["rho"][name]
        ax.set_title(f"Spearman ρ = {rho:.3f} (n = {len(x)})" if np.isfinite(rho) else f"n = {len(x)}", fontsize=9)
        ax.set_xlabel("log10(CRM1 enrichment from input + 1)")
        ax.set_ylabel(SCORE_LABELS.get(name, name))
    fig.tight_layout()
    return _save(fig, outdir, "score_vs_enrichment")


def plot_tsne(xy: np.ndarray, cls: np.ndarray, outdir: str) -> list[str]:
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    colours = ["#d62728", "#7f7f7f", "#1f77b4"]
    for k in (2, 1, 0):  # known NES windows on top
        m = cls == k
        if m.any():
            ax.scatter(xy[m, 0], xy[m, 1], s=5 if k else 8, alpha=0.6 if k else 0.9, c=colours[k],
                       label=f"{WINDOW_CLASSES[k]} (n = {int(m.sum())})")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title("window embeddings (mean-pooled)", fontsize=9)
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    return _save(fig, outdir, "tsne_windows")


# ----------------------------------------------------------------------------- t-SNE


def tsne_windows(inp: Inputs, embeddings: str, max_windows: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Sample up to ``max_windows`` windows (a third per class where available), mean-pool each
    window's residue embeddings and embed them in 2-D with t-SNE (fixed seed)."""
    import h5py
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from .store import EmbeddingReader, key_for

    with h5py.File(embeddings, "r") as f:
        stored = set(f["proteins"].keys())
    rng = np.random.default_rng(seed)
    pools: list[list[tuple[str, int, int]]] = [[], [], []]
    spans = inp.spans or {}
    for pid, (st, en, _) in sorted((inp.windows or {}).items()):
        if key_for(pid) not in stored:
            continue
        if pid in spans:
            wc = window_classes(st, en, spans[pid])
            for s, e, c in zip(st, en, wc):
                if c == 1:
                    pools[0].append((pid, int(s), int(e)))
                elif c == 0:
                    pools[1].append((pid, int(s), int(e)))
        elif inp.labels.get(pid, {}).get("label") == 0:
            pools[2].extend((pid, int(s), int(e)) for s, e in zip(st, en))
    per = max_windows // 3
    chosen: list[tuple[str, int, int, int]] = []
    # windows left over by a small class go to the others
    sizes = [len(p) for p in pools]
    quota = [min(per, n) for n in sizes]
    spare = max_windows - sum(quota)
    for k in np.argsort(sizes)[::-1]:
        extra = min(spare, sizes[k] - quota[k])
        quota[k] += extra
        spare -= extra
    for k, pool in enumerate(pools):
        if quota[k]:
            for j in sorted(rng.choice(len(pool), size=quota[k], replace=False)):
                chosen.append((*pool[j], k))
    if len(chosen) < 10:
        log.warning("t-SNE skipped: only %d windows to show", len(chosen))
        return None
    reader = EmbeddingReader(embeddings)
    by_pid: dict[str, list[int]] = {}
    for i, (pid, *_rest) in enumerate(chosen):
        by_pid.setdefault(pid, []).append(i)
    X = np.zeros((len(chosen), reader.meta["dimension"]), dtype=np.float32)
    ok = np.zeros(len(chosen), dtype=bool)
    with h5py.File(reader.path, "r") as f:
        g = f["proteins"]
        for pid, idxs in by_pid.items():
            key = key_for(pid)
            if key not in g:
                continue
            emb = g[key][()].astype(np.float32)
            for i in idxs:
                _, s, e, _k = chosen[i]
                seg = emb[max(s - 1, 0):min(e, len(emb))]
                if len(seg):
                    X[i] = seg.mean(0)
                    ok[i] = True
    if ok.sum() < 10:
        log.warning("t-SNE skipped: the embeddings file holds too few of the windows' proteins")
        return None
    X, cls = X[ok], np.array([c[3] for c in chosen])[ok]
    if X.shape[1] > 50:
        X = PCA(n_components=50, random_state=seed).fit_transform(X)
    perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3.0)))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # deterministic, and no OpenMP spinning on a busy machine
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                  random_state=seed).fit_transform(X)
    return xy, cls


# ----------------------------------------------------------------------------- the command


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
    inp.labels, inp.has_group, inp.has_cluster, inp.n_labels_unlabelled = read_labels(labels)
    if candidates:
        inp.candidates, inp.has_phi = read_candidates(candidates)
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


def _tasks(inp: Inputs, ids: list[str]) -> list[tuple[str, np.ndarray, np.ndarray, str, str, str]]:
    """(key, index into ids, y, description, positive, negative) of each task with both classes."""
    lab = np.array([inp.labels[i]["label"] for i in ids])
    out = [("all", np.arange(len(ids)), lab, "label 1 vs label 0", "label 1", "label 0")]
    if inp.has_group:
        grp = np.array([inp.labels[i]["group"] for i in ids])
        for key, pos, neg, desc in TASKS:
            idx = np.nonzero(np.isin(grp, pos + neg))[0]
            y = np.isin(grp[idx], pos).astype(int)
            if y.sum() >= 2 and (1 - y).sum() >= 2:
                out.append((key, idx, y, desc, "+".join(pos), "+".join(neg)))
    return out


def _curve_grid(y, s) -> dict:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    prec, rec, _ = precision_recall_curve(y, s)
    order = np.argsort(rec, kind="mergesort")
    return {"fpr": fpr, "tpr": tpr, "precision": prec[order], "recall": rec[order],
            "roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}


def evaluate(inp: Inputs, min_overlap: int = 1, seed: int = 0, folds: int = 5) -> tuple[dict, dict]:
    """All metrics (JSON-ready after :func:`_nan_to_none`) and the data behind the plots."""
    ids = [pid for pid in inp.proteins if pid in inp.labels]
    counts = {"proteins_predicted": len(inp.proteins), "proteins_labelled": len(inp.labels),
              "labels_without_prediction": len(set(inp.labels) - set(inp.proteins)),
              "predictions_without_label": len(set(inp.proteins) - set(inp.labels)),
              "label_rows_without_label": inp.n_labels_unlabelled}
    scores = {c: np.array([inp.proteins[i][c] for i in ids]) for c in inp.score_columns}
    finite = np.all([np.isfinite(v) for v in scores.values()], axis=0)
    if not finite.all():
        counts["predictions_with_missing_score"] = int((~finite).sum())
    baseline_info: dict = {"model": "HistGradientBoostingClassifier (scikit-learn, default settings)",
                           "features": "fractions of the 20 standard amino acids + log(length)",
                           "seed": seed}
    if inp.sequences is not None:
        has_seq = np.array([i in inp.sequences for i in ids])
        if not has_seq.all():
            log.warning("%d evaluated proteins have no sequence in the FASTA: left out of every protein-level figure",
                        int((~has_seq).sum()))
            counts["evaluated_without_sequence"] = int((~has_seq).sum())
        finite &= has_seq
    else:
        log.warning("no --fasta: protein-level AUCs are reported WITHOUT the composition+length baseline "
                    "(composition and length alone reach ROC AUC ~0.85 on CRM1 data)")
        baseline_info = {"available": False, "reason": "no --fasta given: pass the sequences to get the "
                         "composition+length baseline every protein-level figure should be read against"}
    ids = [i for i, ok in zip(ids, finite) if ok]
    scores = {c: v[finite] for c, v in scores.items()}
    counts["proteins_evaluated"] = len(ids)
    y_all = np.array([inp.labels[i]["label"] for i in ids])
    counts["positives"], counts["negatives"] = int(y_all.sum()), int(len(y_all) - y_all.sum())
    if inp.has_group:
        g = [inp.labels[i]["group"] for i in ids]
        counts["groups"] = {k: g.count(k) for k in sorted(set(g))}
    if len(set(y_all)) < 2:
        raise NesscanError("the predicted proteins that have labels are all of one class: nothing to evaluate")
    X = groups = None
    if inp.sequences is not None:
        X = composition_length_features([inp.sequences[i] for i in ids])
        if inp.has_cluster:
            groups = np.array([inp.labels[i]["cluster"] for i in ids])

    protein_level: dict = {}
    curves: dict = {}
    baseline_by_task: dict[str, np.ndarray] = {}
    for key, idx, y, desc, pos, neg in _tasks(inp, ids):
        t = {"description": desc, "positive": pos, "negative": neg, "n_positive": int(y.sum()),
             "n_negative": int(len(y) - y.sum()), "scores": {}}
        curves[key] = {"description": desc, "n_pos": int(y.sum()), "n_neg": int(len(y) - y.sum()),
                       "prevalence": float(y.mean()), "scores": {}}
        task_scores = {c: v[idx] for c, v in scores.items()}
        if X is not None:
            oof, cv = baseline_oof(X[idx], y, groups[idx] if groups is not None else None, seed=seed, folds=folds)
            t["baseline_cv"] = cv
            if oof is not None:
                task_scores[BASELINE] = oof
                baseline_by_task[key] = (idx, oof)
        for c, s in task_scores.items():
            t["scores"][c] = score_metrics(y, s)
            curves[key]["scores"][c] = _curve_grid(y, s)
        if BASELINE in t["scores"]:
            b = t["scores"][BASELINE]["roc_auc"]
            t["roc_auc_minus_baseline"] = {c: t["scores"][c]["roc_auc"] - b for c in scores}
        protein_level[key] = t
    if X is not None:
        baseline_info["cv"] = ("cluster-grouped (labels' cluster column), stratified, per task"
                               if groups is not None else "stratified, per task (no cluster column: "
                               "homologues may straddle folds and inflate the baseline)")
        baseline_info["folds"] = folds

    dist_groups: dict[str, list[int]] = {}
    for n, pid in enumerate(ids):
        gname = inp.labels[pid]["group"] if inp.has_group and inp.labels[pid]["group"] else f"label {inp.labels[pid]['label']}"
        dist_groups.setdefault(gname, []).append(n)
    order = sorted(dist_groups, key=lambda gname: (-np.mean(y_all[dist_groups[gname]]), gname))
    dist = {"groups": order, "scores": {c: {gname: scores[c][dist_groups[gname]] for gname in order} for c in scores}}
    if "all" in baseline_by_task:
        idx, oof = baseline_by_task["all"]
        full = np.full(len(ids), np.nan)
        full[idx] = oof
        dist["scores"][BASELINE] = {gname: full[dist_groups[gname]] for gname in order}
    summary = {gname: {c: {"n": len(v), "median": float(np.median(v)) if len(v) else math.nan,
                           "mean": float(np.mean(v)) if len(v) else math.nan}
                       for c, vals in dist["scores"].items() for v in [vals[gname]]} for gname in order}

    metrics: dict = {"nesscan_version": __version__, "command": "evaluate", "counts": counts,
                     "baseline": baseline_info, "protein_level": protein_level,
                     "score_distribution": summary,
                     "definitions": {
                         "threshold": "a protein is called positive when its score >= threshold",
                         "at_mcc_optimal": "threshold chosen on this same data (optimistic); "
                                           "the highest threshold reaching the maximum MCC",
                         "pr_auc": "average precision (scikit-learn average_precision_score)",
                         "tasks": {k: d for k, _, _, d in TASKS} | {"all": "label 1 vs label 0"},
                         "hit@k": "fraction of proteins with known spans where the top candidate (k=1) / any "
                                  "of the top 5 candidates (k=5) overlaps a known span by >= min_overlap residues",
                         "residue_auc": "residues inside known spans vs other residues of the same proteins; "
                                        "a residue's score = best window (or candidate) covering it, 0 if none",
                         "window_auc": "windows overlapping a known span by >= half of the shorter of the two "
                                       "vs windows of the same proteins touching no span (partial overlaps left out)",
                         "phi": "per span: Φ positions of candidates overlapping it (minus other spans' Φ) vs "
                                "its hydrophobic_positions, micro-averaged over spans hit by a candidate; "
                                "*_all_spans also counts the Φ of missed spans as false negatives; "
                                "phi_region_*: per group of overlapping spans (alternative annotations of one "
                                "NES), all Φ of the candidates overlapping it vs the best-matching span's",
                         "motif_class": "family of the span's Kosugi class (c1a-AT-4 -> c1a, c2-rev -> c2R)"}}
    plot_data: dict = {"curves": curves, "distribution": dist}

    if inp.spans is not None:
        if inp.candidates is None and inp.windows is None:
            raise NesscanError("--spans needs --candidates (hit@k, Φ residues) and/or --windows (residue-level AUC)")
        loc = localisation(inp, min_overlap)
        if inp.candidates is None:
            for m in [loc["overall"], *loc["by_motif_class"].values()]:
                m.pop("hit@1", None)
                m.pop("hit@5", None)
        metrics["localisation"] = loc
    if inp.enrichment is not None:
        from scipy.stats import spearmanr

        eids = [n for n, pid in enumerate(ids) if pid in inp.enrichment]
        x = np.array([inp.enrichment[ids[n]] for n in eids])
        enr_scores = {c: scores[c][eids] for c in scores}
        if "all" in baseline_by_task:
            enr_scores[BASELINE] = full[eids]
        res: dict = {"n": len(eids), "spearman": {}, "spearman_binders_only": {}}
        rho_map = {}
        for c, s in enr_scores.items():
            ok = np.isfinite(s)
            for key, mask in (("spearman", ok), ("spearman_binders_only", ok & (x > 0))):
                # undefined on a constant input (scipy would warn and return nan): nan, quietly
                if mask.sum() >= 3 and np.ptp(s[mask]) > 0 and np.ptp(x[mask]) > 0:
                    r = spearmanr(s[mask], x[mask])
                    res[key][c] = {"rho": float(r.statistic), "p_value": float(r.pvalue), "n": int(mask.sum())}
                else:
                    res[key][c] = {"rho": math.nan, "p_value": math.nan, "n": int(mask.sum())}
            rho_map[c] = res["spearman"][c]["rho"]
        metrics["enrichment"] = res
        plot_data["enrichment"] = {"enrichment": x, "scores": enr_scores, "rho": rho_map}
    return metrics, plot_data


def _default_name(proteins: str) -> str:
    return os.path.basename(os.path.dirname(os.path.abspath(proteins))) or "nesscan"


def run_evaluate(proteins: str, labels: str, outdir: str, candidates: str | None = None, spans: str | None = None,
                 enrichment: str | None = None, fasta: str | None = None, windows: str | None = None,
                 embeddings: str | None = None, name: str | None = None, min_overlap: int = 1,
                 tsne_max: int = 3000, seed: int = 0, folds: int = 5, plots: bool = True) -> dict:
    """Read, check, evaluate; write ``metrics.json``, plots (PNG + SVG) and MultiQC content into
    ``outdir`` all at once. Returns the metrics."""
    from . import mqc

    if min_overlap < 1:
        raise NesscanError(f"--min-overlap must be >= 1, got {min_overlap}")
    if folds < 2:
        raise NesscanError(f"--folds must be >= 2, got {folds}")
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise NesscanError(f"output path exists and is not a directory: {outdir}")
    inp = load_inputs(proteins, labels, candidates, spans, enrichment, fasta, windows, embeddings)
    metrics, pdata = evaluate(inp, min_overlap=min_overlap, seed=seed, folds=folds)
    metrics["inputs"] = {k: os.path.abspath(v) for k, v in (("proteins", proteins), ("labels", labels),
                         ("candidates", candidates), ("spans", spans), ("enrichment", enrichment), ("fasta", fasta),
                         ("windows", windows), ("embeddings", embeddings)) if v}
    name = name or _default_name(proteins)

    created = not os.path.isdir(outdir)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise NesscanError(f"cannot create output directory {outdir}: {e}") from None
    tmp = tempfile.mkdtemp(prefix=".nesscan-evaluate-", dir=outdir)
    try:
        files: list[str] = []
        tsne_png = None
        if plots:
            files += plot_curves(pdata["curves"], tmp, "roc")
            files += plot_curves(pdata["curves"], tmp, "pr")
            files += plot_distributions(pdata["distribution"], tmp)
            if "enrichment" in pdata and len(pdata["enrichment"]["enrichment"]):
                files += plot_enrichment(pdata["enrichment"], tmp)
            if embeddings:
                t = tsne_windows(inp, embeddings, tsne_max, seed)
                if t is not None:
                    tf = plot_tsne(*t, tmp)
                    files += tf
                    tsne_png = tf[0]
                    metrics["tsne"] = {"n_windows": int(len(t[1])), "seed": seed,
                                       "by_class": {WINDOW_CLASSES[k]: int((t[1] == k).sum()) for k in range(3)}}
        files += mqc.write_evaluate_mqc(tmp, metrics, pdata, name, tsne_png=tsne_png)
        metrics["outputs"] = sorted(os.path.basename(p) for p in files) + ["metrics.json"]
        with open(os.path.join(tmp, "metrics.json"), "w") as fh:
            json.dump(_nan_to_none(metrics), fh, indent=2, allow_nan=False)
            fh.write("\n")
        for fn in os.listdir(tmp):
            os.replace(os.path.join(tmp, fn), os.path.join(outdir, fn))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return _nan_to_none(metrics)


__all__ = ["run_evaluate", "evaluate", "load_inputs", "mcc_optimal_threshold", "score_metrics", "motif_family",
           "localisation", "residue_scores", "window_classes", "baseline_oof", "composition_length_features"]

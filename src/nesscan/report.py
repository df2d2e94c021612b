"""Ranking candidates from window scores and writing the result tables (shared by ``predict``
and ``fuse``).

Files, all written under temporary names and renamed when complete:

``proteins.tsv``
    ``id, length, score, nes_score, min_evalue, best_start, best_end, best_sequence,
    n_high_confidence``
``candidates.tsv``
    ``id, rank, start, end, sequence, score, evalue, qvalue, high_confidence, nn_score,
    motif_score, similarity_score, fused_score, motif_class, phi_positions, window_start,
    window_end, accessibility, plddt`` — ``start..end`` is the scored window extended, where
    needed, to every Φ residue of its consensus match (``window_start..window_end`` is the
    window itself); ``evalue``/``qvalue`` from :mod:`nesscan.calibrate` (``qvalue``:
    Benjamini–Hochberg over every candidate of the run, filled in when the table is complete);
    ``high_confidence`` = ``evalue <= max_evalue``.
``nesscan_predict_*_mqc.yaml``
    MultiQC custom content (general statistics, score histogram, top candidates), see
    :func:`nesscan.mqc.write_predict_mqc`.
``candidates.gff3``
    GFF3 on protein coordinates: one ``nuclear_export_signal`` (SO:0001531) feature per
    candidate (column 6: its E-value), its Φ residues as child ``binding_site`` (SO:0000409)
    features (``Parent``), always inside their parent, each named after its CRM1 pocket
    (:func:`phi_pockets`).
"""

from __future__ import annotations

import array
import csv
import logging
import os
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from . import calibrate, protein_model, scoring
from .motifs import is_reverse
from .registry import card_cutoff
from .window_score import pick_candidates

PROTEIN_COLUMNS = ["id", "length", "score", "nes_score", "min_evalue", "best_start", "best_end", "best_sequence",
                   "n_high_confidence"]
CANDIDATE_COLUMNS = ["id", "rank", "start", "end", "sequence", "score", "evalue", "qvalue", "high_confidence",
                     "nn_score", "motif_score", "similarity_score", "fused_score", "motif_class", "phi_positions",
                     "window_start", "window_end", "accessibility", "plddt"]
QVALUE_COLUMN = CANDIDATE_COLUMNS.index("qvalue")
log = logging.getLogger("nesscan.report")
SO_NES = "SO:0001531"
SO_SITE = "SO:0000409"


def _f(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"


def _e(x) -> str:
    """E-/q-values: 3 significant digits, scientific when small."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    return f"{x:.3g}"


def _gff_escape(text: str, seqid: bool = False) -> str:
    """Percent-encode what GFF3 reserves (seqid: all but [a-zA-Z0-9.:^*$@!+_?-|]; attribute
    values: tab, newline, ';', '=', '&', ',' and '%')."""
    return quote(text, safe=".:^*$@!+_?-|" if seqid else " .:^*$@!+_?-|/()'[]{}#<>\"~")


@dataclass
class Ranked:
    protein_row: list
    candidate_rows: list[list]
    gff_rows: list[str]
    n_high: int
    pvalues: list[float]


def rank_protein(pid: str, seq: str, window: int, comps: dict, protein_scorer, top_k: int,
                 calibration: dict | None, max_evalue: float, rsa: np.ndarray | None = None,
                 plddt: np.ndarray | None = None, tracks: np.ndarray | None = None) -> Ranked:
    """Candidates from the fused window score (or the classifier score when the model has no
    fusion), with E-values, components, Φ residues, class and optional structure context.
    ``tracks``: the protein's disorder and pLDDT channels, for a protein model that reads them.

    ``calibration``: the model's background null (:mod:`nesscan.calibrate`); without one (models
    from before nesscan 0.2) E-values are empty and nothing is called high-confidence."""
    score = comps.get("fused_score", comps["nn_score"])
    L = len(seq)
    cands = pick_candidates(score, L, window, top_k=top_k)
    if calibration:
        evals = calibrate.evalue(calibration, [c.score for c in cands], L)
        cut = calibrate.score_at(calibration, max_evalue, L)
        n_high = len(pick_candidates(score, L, window, top_k=len(score), min_score=cut)) if cut < 1.0 else 0
    else:
        evals, n_high = np.full(len(cands), np.nan), 0
    best = cands[0]
    feats = protein_model.feature_vector(seq, score, [c.score for c in cands], tracks)
    prob = float(protein_scorer(feats)[0]) if protein_scorer is not None else best.score
    prow = [pid, L, _f(prob), _f(best.score), _e(float(evals[0])), best.start, best.end,
            seq[best.start - 1 : best.end], n_high]
    crows, gff, pvals = [], [], []
    seqid = _gff_escape(pid, seqid=True)
    for c, ev in zip(cands, evals):
        i = c.start - 1  # window index
        cls, phi = scoring.annotate_phi(seq, c.start, c.end)
        start, end = min([c.start, *phi]), max([c.end, *phi])  # every Φ inside the reported candidate
        acc = pl = None
        if rsa is not None:
            seg = rsa[start - 1 : end]
            acc = float(np.nanmean(seg)) if np.isfinite(seg).any() else None
            segb = plddt[start - 1 : end]
            pl = float(np.nanmean(segb)) if np.isfinite(segb).any() else None
        ev = float(ev)
        hi = bool(np.isfinite(ev) and ev <= max_evalue)
        # q-values from the E-value as written (3 significant digits): gather, which recomputes them
        # from the tables, then gives exactly the same q-values, whatever the batching
        pvals.append(float(calibrate.pvalue(float(_e(ev)))) if np.isfinite(ev) else np.nan)
        crows.append([pid, c.rank, start, end, seq[start - 1 : end], _f(c.score), _e(ev), "", "yes" if hi else "no",
                      _f(float(comps["nn_score"][i])), _f(_get(comps, "motif_score", i)), _f(_get(comps, "similarity_score", i)),
                      _f(_get(comps, "fused_score", i)), cls, ";".join(map(str, phi)), c.start, c.end, _f(acc), _f(pl)])
        fid = f"{seqid}.nes{c.rank}"
        attrs = [f"ID={fid}", f"Name=NES candidate {c.rank}", f"Ontology_term={SO_NES}", f"motif_class={_gff_escape(cls)}",
                 f"high_confidence={'yes' if hi else 'no'}", f"fused_score={c.score:.4f}",
                 f"window={c.start}-{c.end}", f"sequence={seq[start - 1 : end]}"]
        if acc is not None:
            attrs.append(f"relative_accessibility={acc:.3f}")
        gff.append("\t".join([seqid, "nesscan", "nuclear_export_signal", str(start), str(end),
                              _e(ev) if np.isfinite(ev) else ".", ".", ".", ";".join(attrs)]))
        for p, k in zip(phi, phi_pockets(cls, len(phi))):
            gff.append("\t".join([seqid, "nesscan", "binding_site", str(p), str(p), ".", ".", ".",
                                  f"ID={fid}.phi{k}.{p};Parent={fid};Name=P{k};Ontology_term={SO_SITE};"
                                  f"Note=hydrophobic residue {seq[p - 1]}{p} (Φ{k}) in CRM1 pocket P{k}"]))
    return Ranked(prow, crows, gff, n_high, pvals)


def phi_pockets(motif_class: str, n: int) -> list[int]:
    """The CRM1 pocket (Φk sits in Pk) of each of ``n`` Φ residues listed in sequence order.
    Forward classes: Φ0–Φ4 (5 listed) or Φ1–Φ4 (4). Reverse classes (``1aR``, ``2R-AT+phi0``, …)
    bind the groove in the minus orientation (Fung et al. 2015), N- to C-terminal Φ4 … Φ1, and
    their fifth residue, after the core, is Φ0."""
    first = 0 if n == 5 else 1
    pockets = list(range(first, first + n))
    return pockets[::-1] if is_reverse(motif_class) else pockets


def _get(comps, key, i):
    a = comps.get(key)
    return None if a is None else float(a[i])


def default_max_evalue(m, max_evalue: float | None) -> float:
    """The E-value cutoff of a run: the user's, else the model card's (chosen by cross-validation),
    else 0.01 for a model without one."""
    if max_evalue is not None:
        return float(max_evalue)
    if not m.raw.get("calibration"):
        log.warning("model %s has no background null (calibration): no E-values, no high-confidence calls", m.path)
    return card_cutoff(m.raw)


def score_and_rank(m, pid: str, seq: str, emb, nn, top_k: int, max_evalue: float,
                   structure_dir: str | None = None):
    """Fuse the classifier's window scores with motifs and similarity, then rank candidates
    and give each its E-value against the model's background null."""
    params = m.raw.get("fusion")
    if params and m.references is not None:
        comps = scoring.fuse_protein(seq, emb, nn, m.window, params, m.references)
    else:
        comps = {"nn_score": nn}
    rsa = plddt = None
    if structure_dir:
        path = scoring.find_structure(structure_dir, pid)
        if path:
            rsa, plddt = scoring.structure_tracks(path, seq)
        else:
            log.warning("no structure for %s in %s", pid, structure_dir)
    pmodel = m.raw.get("protein_model")
    tracks = np.asarray(emb[:, -2:]) if protein_model.uses_context(pmodel) else None
    return rank_protein(pid, seq, m.window, comps, protein_model.scorer(pmodel, m.protein_booster),
                        top_k, m.raw.get("calibration"), max_evalue, rsa, plddt, tracks)


class ResultWriter:
    """Writes the three result files atomically; use as a context manager."""

    def __init__(self, outdir: str, max_evalue: float, sample: str | None = None, multiqc: bool = True):
        os.makedirs(outdir, exist_ok=True)
        self.outdir, self.sample, self.multiqc = outdir, sample, multiqc
        self.paths = {"proteins": os.path.join(outdir, "proteins.tsv"),
                      "candidates": os.path.join(outdir, "candidates.tsv"),
                      "gff3": os.path.join(outdir, "candidates.gff3")}
        self.tmp = {k: p + ".partial" for k, p in self.paths.items()}
        self.max_evalue = max_evalue
        # one per candidate row, for the run-wide q-values (Benjamini-Hochberg needs them all):
        # 8 bytes per candidate, ~0.8 MB for a 20,000-protein proteome
        self.pvalues = array.array("d")
        self.n_high = 0
        self.n_proteins = 0

    def __enter__(self):
        self._fh = {k: open(p, "w", newline="") for k, p in self.tmp.items()}
        self._wp = csv.writer(self._fh["proteins"], delimiter="\t", lineterminator="\n")
        self._wc = csv.writer(self._fh["candidates"], delimiter="\t", lineterminator="\n")
        self._wp.writerow(PROTEIN_COLUMNS)
        self._wc.writerow(CANDIDATE_COLUMNS)
        self._fh["gff3"].write("##gff-version 3\n")
        return self

    def add(self, ranked: Ranked, length: int) -> None:
        self._wp.writerow(ranked.protein_row)
        self._wc.writerows(ranked.candidate_rows)
        self.pvalues.extend(ranked.pvalues)
        seqid = ranked.gff_rows[0].split("\t", 1)[0] if ranked.gff_rows else None
        if seqid:
            self._fh["gff3"].write(f"##sequence-region {seqid} 1 {length}\n")
            self._fh["gff3"].write("\n".join(ranked.gff_rows) + "\n")
        self.n_high += ranked.n_high
        self.n_proteins += 1

    def summary(self) -> str:
        """The run's calls beside what chance gives (:func:`nesscan.calibrate.chance_summary`); the
        calls alone when no candidate has an E-value (a model without a background null), as
        :func:`nesscan.mqc.write_predict_mqc` leaves the chance columns out then."""
        with_evalues = any(not np.isnan(p) for p in self.pvalues)
        return calibrate.chance_summary(self.n_high, self.n_proteins, self.max_evalue if with_evalues else None)

    def __exit__(self, exc_type, exc, tb):
        close_error = None
        for fh in self._fh.values():  # closing flushes: on a full disk it fails too
            try:
                fh.close()
            except OSError as e:
                close_error = close_error or e
        try:
            if exc_type is None and close_error is None:
                fill_qvalues(self.tmp["candidates"], self.pvalues)
                for k in self.paths:
                    os.replace(self.tmp[k], self.paths[k])
        finally:
            for t in self.tmp.values():
                if os.path.exists(t):
                    os.remove(t)
        if close_error is not None and exc_type is None:
            raise close_error
        if exc_type is None and self.multiqc:
            from .mqc import write_predict_mqc_from_tables

            self.mqc_paths = write_predict_mqc_from_tables(self.outdir, self.paths["proteins"], self.paths["candidates"],
                                                           sample=self.sample, max_evalue=self.max_evalue)
        return False


def fill_qvalues(path: str, pvalues: list[float] | None = None) -> None:
    """Rewrite the ``qvalue`` column of a candidates table in place (through a temporary file),
    Benjamini–Hochberg over all its rows; ``pvalues`` default to those of its ``evalue`` column.
    Streams: only one float per candidate is held."""
    with open(path, newline="") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if "qvalue" not in header:
            return
        qi, ei = header.index("qvalue"), header.index("evalue")
        if pvalues is None:
            pvalues = []
            for line in fh:
                v = line.rstrip("\n").split("\t")[ei]
                pvalues.append(float(calibrate.pvalue(float(v))) if v else np.nan)
    p = np.asarray(pvalues, dtype=np.float64)
    ok = np.isfinite(p)
    q = np.full(len(p), np.nan)
    q[ok] = calibrate.bh_qvalues(p[ok])
    tmp = path + ".q"
    try:
        with open(path, newline="") as fi, open(tmp, "w", newline="") as fo:
            fo.write(fi.readline())
            for k, line in enumerate(fi):
                cols = line.rstrip("\n").split("\t")
                cols[qi] = _e(float(q[k]))
                fo.write("\t".join(cols) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

"""Ranking candidates from window scores and writing the result tables (shared by ``predict``
and ``fuse``).

Files, all written under temporary names and renamed when complete:

``proteins.tsv``
    ``id, length, score, nes_score, best_start, best_end, best_sequence, n_candidates_ge_0.9``
``candidates.tsv``
    ``id, rank, start, end, sequence, score, high_confidence, nn_score, motif_score,
    similarity_score, fused_score, motif_class, phi_positions, accessibility, plddt``
``nesscan_predict_*_mqc.yaml``
    MultiQC custom content (general statistics, score histogram, top candidates), see
    :func:`nesscan.mqc.write_predict_mqc`.
``candidates.gff3``
    GFF3 on protein coordinates: one ``nuclear_export_signal`` (SO:0001531) feature per
    candidate, its Φ residues as child ``binding_site`` (SO:0000409) features (``Parent``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from . import fuse, protein_model
from .window_score import pick_candidates

PROTEIN_COLUMNS = ["id", "length", "score", "nes_score", "best_start", "best_end", "best_sequence"]
CANDIDATE_COLUMNS = ["id", "rank", "start", "end", "sequence", "score", "high_confidence", "nn_score", "motif_score",
                     "similarity_score", "fused_score", "motif_class", "phi_positions", "accessibility", "plddt"]
SO_NES = "SO:0001531"
SO_SITE = "SO:0000409"


def _f(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"


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


def rank_protein(pid: str, seq: str, window: int, comps: dict, params: dict | None, top_k: int, threshold: float,
                 rsa: np.ndarray | None = None, plddt: np.ndarray | None = None) -> Ranked:
    """Candidates from the fused window score (or the classifier score when the model has no
    fusion), with components, Φ residues, class and optional structure context."""
    score = comps.get("fused_score", comps["nn_score"])
    cands = pick_candidates(score, len(seq), window, top_k=top_k)
    n_high = len(pick_candidates(score, len(seq), window, top_k=len(score), min_score=threshold))
    best = cands[0]
    feats = protein_model.feature_vector(seq, score, [c.score for c in cands])
    prob = float(protein_model.predict(params, feats)[0]) if params else best.score
    prow = [pid, len(seq), _f(prob), _f(best.score), best.start, best.end, seq[best.start - 1 : best.end], n_high]
    crows, gff = [], []
    seqid = _gff_escape(pid, seqid=True)
    for c in cands:
        i = c.start - 1  # window index
        cls, phi = fuse.annotate_phi(seq, c.start, c.end)
        acc = pl = None
        if rsa is not None:
            seg = rsa[c.start - 1 : c.end]
            acc = float(np.nanmean(seg)) if np.isfinite(seg).any() else None
            segb = plddt[c.start - 1 : c.end]
            pl = float(np.nanmean(segb)) if np.isfinite(segb).any() else None
        hi = c.score >= threshold
        crows.append([pid, c.rank, c.start, c.end, seq[c.start - 1 : c.end], _f(c.score), "yes" if hi else "no",
                      _f(float(comps["nn_score"][i])), _f(_get(comps, "motif_score", i)), _f(_get(comps, "similarity_score", i)),
                      _f(_get(comps, "fused_score", i)), cls, ";".join(map(str, phi)), _f(acc), _f(pl)])
        fid = f"{seqid}.nes{c.rank}"
        attrs = [f"ID={fid}", f"Name=NES candidate {c.rank}", f"Ontology_term={SO_NES}", f"motif_class={_gff_escape(cls)}",
                 f"high_confidence={'yes' if hi else 'no'}", f"sequence={seq[c.start - 1 : c.end]}"]
        if acc is not None:
            attrs.append(f"relative_accessibility={acc:.3f}")
        gff.append("\t".join([seqid, "nesscan", "nuclear_export_signal", str(c.start), str(c.end), f"{c.score:.4f}", ".", ".",
                              ";".join(attrs)]))
        for k, p in enumerate(phi):
            pocket = f"P{k if len(phi) == 5 else k + 1}"
            gff.append("\t".join([seqid, "nesscan", "binding_site", str(p), str(p), ".", ".", ".",
                                  f"ID={fid}.phi{k}.{p};Parent={fid};Name={pocket};Ontology_term={SO_SITE};"
                                  f"Note=hydrophobic residue {seq[p - 1]}{p} in CRM1 pocket {pocket}"]))
    return Ranked(prow, crows, gff, sum(c.score >= threshold for c in cands))


def _get(comps, key, i):
    a = comps.get(key)
    return None if a is None else float(a[i])


class ResultWriter:
    """Writes the three result files atomically; use as a context manager."""

    def __init__(self, outdir: str, threshold: float, sample: str | None = None, multiqc: bool = True):
        os.makedirs(outdir, exist_ok=True)
        self.outdir, self.sample, self.multiqc = outdir, sample, multiqc
        self.paths = {"proteins": os.path.join(outdir, "proteins.tsv"),
                      "candidates": os.path.join(outdir, "candidates.tsv"),
                      "gff3": os.path.join(outdir, "candidates.gff3")}
        self.tmp = {k: p + ".partial" for k, p in self.paths.items()}
        self.threshold = threshold
        self.n_high = 0
        self.n_proteins = 0

    def __enter__(self):
        self._fh = {k: open(p, "w", newline="") for k, p in self.tmp.items()}
        self._wp = csv.writer(self._fh["proteins"], delimiter="\t", lineterminator="\n")
        self._wc = csv.writer(self._fh["candidates"], delimiter="\t", lineterminator="\n")
        self._wp.writerow(PROTEIN_COLUMNS + [f"n_candidates_ge_{self.threshold:g}"])
        self._wc.writerow(CANDIDATE_COLUMNS)
        self._fh["gff3"].write("##gff-version 3\n")
        return self

    def add(self, ranked: Ranked, length: int) -> None:
        self._wp.writerow(ranked.protein_row)
        self._wc.writerows(ranked.candidate_rows)
        seqid = ranked.gff_rows[0].split("\t", 1)[0] if ranked.gff_rows else None
        if seqid:
            self._fh["gff3"].write(f"##sequence-region {seqid} 1 {length}\n")
            self._fh["gff3"].write("\n".join(ranked.gff_rows) + "\n")
        self.n_high += ranked.n_high
        self.n_proteins += 1

    def __exit__(self, exc_type, exc, tb):
        close_error = None
        for fh in self._fh.values():  # closing flushes: on a full disk it fails too
            try:
                fh.close()
            except OSError as e:
                close_error = close_error or e
        try:
            if exc_type is None and close_error is None:
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
                                                           sample=self.sample, threshold=self.threshold)
        return False

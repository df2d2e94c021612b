"""``nesscan predict``: FASTA -> ranked NES candidates and protein scores, in one streaming pass.

Outputs (TSV, written under temporary names and renamed when complete):

``proteins.tsv``
    ``id, length, score, nes_score, best_start, best_end, best_sequence, n_candidates_ge_0.9``
    — ``score`` is the protein-level probability of carrying a CRM1 NES (NES evidence plus
    composition and length, see :mod:`nesscan.protein_model`); ``nes_score`` is the NES
    evidence alone (the best window score); ``best_*`` is the best window (1-based, inclusive).
``candidates.tsv``
    ``id, rank, start, end, sequence, score, high_confidence`` — non-overlapping windows ranked
    per protein (greedy on window score), at most ``top_k`` per protein; ``high_confidence`` is
    ``yes`` when ``score >= 0.9``.
"""

from __future__ import annotations

import csv
import logging
import os
import sys

import numpy as np
from tqdm import tqdm

from . import protein_model
from .embedders import get_embedder
from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH, iter_fasta, validate_fasta
from .model import LoadedModel, check_compatible, load
from .window_score import pick_candidates, score_many

log = logging.getLogger("nesscan.predict")

DEFAULT_MODEL = "nesscan-builtin-v1"
PROTEIN_COLUMNS = ["id", "length", "score", "nes_score", "best_start", "best_end", "best_sequence", "n_candidates_ge_0.9"]
CANDIDATE_COLUMNS = ["id", "rank", "start", "end", "sequence", "score", "high_confidence"]


def model_dirs() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("NESSCAN_MODELS"):
        dirs.append(os.environ["NESSCAN_MODELS"])
    dirs.append(os.path.normpath(os.path.join(here, "..", "..", "models")))  # source checkout / editable install
    dirs.append(os.path.join(sys.prefix, "share", "nesscan", "models"))  # wheel install (data-files)
    return dirs


def resolve_model(name_or_path: str | None) -> str:
    """A model directory from a path, or a name looked up in the shipped model folders."""
    name_or_path = name_or_path or DEFAULT_MODEL
    if os.path.exists(name_or_path):
        return name_or_path
    tried = []
    for d in model_dirs():
        p = os.path.join(d, name_or_path)
        tried.append(p)
        if os.path.exists(os.path.join(p, "model.json")):
            return p
    raise NesscanError(f"model '{name_or_path}' not found (tried the path itself and {', '.join(tried)})")


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def run_predict(input_fasta: str, outdir: str, model: str | None = None, weights: str | None = None,
                device: str = "auto", top_k: int = 5, threshold: float = 0.9,
                max_length: int = DEFAULT_MAX_LENGTH, progress: bool = True) -> dict:
    summary = validate_fasta(input_fasta, max_length)
    m: LoadedModel = load(resolve_model(model))
    card = m.card
    embedder = get_embedder(card.embedder, weights=weights, layer=card.layer or None, device=device)
    check_compatible(m, embedder.meta(), f"embedder {embedder.name}")
    params = m.raw.get("protein_model")
    os.makedirs(outdir, exist_ok=True)
    paths = {k: os.path.join(outdir, f"{k}.tsv") for k in ("proteins", "candidates")}
    tmp = {k: p + ".partial" for k, p in paths.items()}
    log.info("%d proteins, %d residues; model %s (%s, window %d)", summary.n, summary.residues, m.path, card.embedder, card.window)
    n_flagged = 0
    try:
        with open(tmp["proteins"], "w", newline="") as fp, open(tmp["candidates"], "w", newline="") as fc:
            wp = csv.writer(fp, delimiter="\t", lineterminator="\n")
            wc = csv.writer(fc, delimiter="\t", lineterminator="\n")
            wp.writerow(PROTEIN_COLUMNS[:-1] + [f"n_candidates_ge_{threshold:g}"])
            wc.writerow(CANDIDATE_COLUMNS)
            bar = tqdm(total=summary.residues, unit="res", desc="predict", disable=not progress)
            # keep input order in the tables: batches are formed over consecutive proteins
            for batch in _consecutive_batches(iter_fasta(input_fasta, max_length), embedder.max_batch_tokens):
                embs = embedder.embed_batch([p.sequence for p in batch])
                scores = score_many(m, embs)
                for p, sc in zip(batch, scores):
                    cands = pick_candidates(sc, len(p), card.window, top_k=top_k)
                    best = cands[0]
                    feats = protein_model.feature_vector(p.sequence, sc, [c.score for c in cands])
                    prob = float(protein_model.predict(params, feats)[0]) if params else best.score
                    n_hi = len(pick_candidates(sc, len(p), card.window, top_k=len(sc), min_score=threshold))
                    wp.writerow([p.id, len(p), _fmt(prob), _fmt(best.score), best.start, best.end,
                                 p.sequence[best.start - 1 : best.end], n_hi])
                    for c in cands:
                        hi = c.score >= threshold
                        n_flagged += hi
                        wc.writerow([p.id, c.rank, c.start, c.end, p.sequence[c.start - 1 : c.end], _fmt(c.score),
                                     "yes" if hi else "no"])
                bar.update(sum(len(p) for p in batch))
            bar.close()
        for k in paths:
            os.replace(tmp[k], paths[k])
    finally:
        for t in tmp.values():
            if os.path.exists(t):
                os.remove(t)
    log.info("wrote %s and %s (%d candidates >= %.2f)", paths["proteins"], paths["candidates"], n_flagged, threshold)
    return {"proteins": summary.n, "high_confidence_candidates": n_flagged, **paths}


def _consecutive_batches(proteins, max_tokens: int):
    batch, longest = [], 0
    for p in proteins:
        longest_new = max(longest, min(len(p), 1022) + 2)
        if batch and longest_new * (len(batch) + 1) > max_tokens:
            yield batch
            batch, longest_new = [], min(len(p), 1022) + 2
        batch.append(p)
        longest = longest_new
    if batch:
        yield batch

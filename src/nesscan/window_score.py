"""``nesscan window-score``: every window of every protein, scored in vectorised batches.

Windows have the model card's size ``W`` and stride 1: a protein of length ``L >= W`` has
``L - W + 1`` windows (1-based ``start = 1 .. L - W + 1``, ``end = start + W - 1``); a protein
shorter than ``W`` gets one window covering it, padded and masked. All windows of a protein
are cut from its ``L x D`` embedding with ``Tensor.unfold`` (a view, no copy) and go through
the classifier in batches — no Python loop over windows.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from .errors import NesscanError
from .model import LoadedModel, check_compatible, load
from .segment import segment, segment_scores
from .store import EmbeddingReader

log = logging.getLogger("nesscan.window_score")


def window_tensor(emb: np.ndarray | torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_windows, W', D) windows and their (n_windows, W') validity mask."""
    x = torch.as_tensor(emb, dtype=torch.float32)
    L = x.shape[0]
    if L >= window:
        wins = x.unfold(0, window, 1).transpose(1, 2)  # (L-W+1, W, D) view
        mask = torch.ones(wins.shape[:2], dtype=torch.bool)
    else:
        wins = x.unsqueeze(0)
        mask = torch.ones((1, L), dtype=torch.bool)
    return wins, mask


@torch.inference_mode()
def score_windows(model: LoadedModel, emb: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Probabilities for all windows of one protein (length ``max(L - W + 1, 1)``)."""
    wins, mask = window_tensor(emb, model.window)
    out = []
    for i in range(0, wins.shape[0], batch):
        out.append(torch.sigmoid(model.net(wins[i : i + batch], mask[i : i + batch])))
    return torch.cat(out).numpy().astype(np.float64)


@torch.inference_mode()
def score_many(model: LoadedModel, embs: list[np.ndarray], batch: int = 8192) -> list[np.ndarray]:
    """Score several proteins at once: their windows are concatenated into shared batches."""
    parts = [window_tensor(e, model.window) for e in embs]
    full = [p for p in parts if p[0].shape[1] == model.window]
    results: dict[int, np.ndarray] = {}
    if full:
        wins = torch.cat([p[0] for p in full])
        mask = torch.ones(wins.shape[:2], dtype=torch.bool)
        scores = []
        for i in range(0, wins.shape[0], batch):
            scores.append(torch.sigmoid(model.net(wins[i : i + batch], mask[i : i + batch])))
        flat = torch.cat(scores).numpy().astype(np.float64)
        offset = 0
        for idx, p in enumerate(parts):
            if p[0].shape[1] == model.window:
                n = p[0].shape[0]
                results[idx] = flat[offset : offset + n]
                offset += n
    for idx, (w, m) in enumerate(parts):
        if idx not in results:
            results[idx] = torch.sigmoid(model.net(w, m)).numpy().astype(np.float64)
    return [results[i] for i in range(len(parts))]


def window_bounds(length: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based inclusive (start, end) of every window."""
    if length < window:
        return np.array([1]), np.array([length])
    starts = np.arange(1, length - window + 2)
    return starts, starts + window - 1


@dataclass
class Candidate:
    rank: int
    start: int
    end: int
    score: float


def pick_candidates(scores: np.ndarray, length: int, window: int, top_k: int = 5,
                    min_score: float = 0.0) -> list[Candidate]:
    """Greedy non-overlapping candidates: the best window, then the best window that overlaps
    none already taken, and so on, up to ``top_k`` (and at least ``min_score``)."""
    starts, ends = window_bounds(length, window)
    order = np.argsort(-scores, kind="stable")
    taken = np.zeros(length + 2, dtype=bool)
    out: list[Candidate] = []
    for i in order:
        if len(out) >= top_k or scores[i] < min_score:
            break
        s, e = int(starts[i]), int(ends[i])
        if taken[s : e + 1].any():
            continue
        taken[s : e + 1] = True
        out.append(Candidate(len(out) + 1, s, e, float(scores[i])))
    return out


def _open_text(path: str, mode: str, gz: bool):
    if gz:
        return io.TextIOWrapper(gzip.open(path, mode + "b", compresslevel=3), newline="")
    return open(path, mode, newline="")


def run_window_score(embeddings: str, model_path: str, output: str, summary: str | None = None,
                     candidates: str = "windows", progress: bool = True) -> dict:
    """Score every window of every protein in an embeddings file.

    With ``candidates="segments"`` the rows are the zero-shot segments of
    :mod:`nesscan.segment` (each scored by the window centred on it) instead of all windows.

    Writes ``output`` (TSV, gzip if it ends in ``.gz``; columns ``id, start, end, score``) and
    ``summary`` (one row per protein: ``id, length, max_score, best_start, best_end,
    best_sequence``). Both are written to temporary names and renamed at the end.
    """
    model = load(model_path)
    reader = EmbeddingReader(embeddings)
    check_compatible(model, reader.meta, embeddings)
    if not reader.meta["complete"]:
        log.warning("%s is from an interrupted embed run; scoring the %d proteins it holds", embeddings, reader.meta["n"])
    if summary is None:
        base = output[:-3] if output.endswith(".gz") else output
        base = base[:-4] if base.endswith(".tsv") else base
        summary = base + ".summary.tsv"
    tmp_out, tmp_sum = output + ".partial", summary + ".partial"
    n = 0
    try:
        with _open_text(tmp_out, "w", output.endswith(".gz")) as fo, open(tmp_sum, "w", newline="") as fs:
            wo, ws = csv.writer(fo, delimiter="\t", lineterminator="\n"), csv.writer(fs, delimiter="\t", lineterminator="\n")
            wo.writerow(["id", "start", "end", "score"])
            ws.writerow(["id", "length", "max_score", "best_start", "best_end", "best_sequence"])
            for pid, seq, emb in tqdm(reader, total=reader.meta["n"], desc="window-score", unit="prot", disable=not progress):
                scores = score_windows(model, emb)
                starts, ends = window_bounds(len(seq), model.window)
                if candidates == "segments":
                    segs = segment(emb)
                    scores = segment_scores(scores, segs, len(seq), model.window)
                    starts = np.array([a + 1 for a, _ in segs])
                    ends = np.array([b for _, b in segs])
                for s, e, v in zip(starts, ends, scores):
                    wo.writerow([pid, int(s), int(e), f"{v:.6f}"])
                b = int(np.argmax(scores))
                ws.writerow([pid, len(seq), f"{scores[b]:.6f}", int(starts[b]), int(ends[b]), seq[starts[b] - 1 : ends[b]]])
                n += 1
        os.replace(tmp_out, output)
        os.replace(tmp_sum, summary)
    finally:
        for t in (tmp_out, tmp_sum):
            if os.path.exists(t):
                os.remove(t)
    log.info("scored %d proteins -> %s, %s", n, output, summary)
    return {"proteins": n, "output": output, "summary": summary}

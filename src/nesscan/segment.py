"""Zero-shot segmentation of per-residue embeddings into NES-sized segments.

The idea (Sangster et al. 2025, as used by one source project): a protein's per-residue
embeddings change character at domain and motif boundaries, so change-point segmentation
proposes candidate regions without a sliding window.

Method: optimal partition of the sequence into contiguous segments whose lengths all lie in
``[min_len, max_len]`` (default 8–25, the length range of known NES), minimising the total
within-segment sum of squared deviations from the segment mean (on standardised embeddings)
plus a constant ``penalty`` per segment. Dynamic programming over segment ends is exact:
``best[j] = min_{l in [min_len, max_len]} best[j - l] + SSE(j - l, j) + penalty``, with
``SSE`` from cumulative sums in O(D) per candidate segment, so O(L · (max_len - min_len) · D)
per protein. Why this choice: it is exact (no greedy splitting), needs no training, has one
interpretable knob, and the length constraint builds in what is known about NES size.

Each segment is then scored by the window classifier on the ``W``-residue window centred on
the segment (clipped to the protein), so segments and windows share one scorer and differ only
in how candidate regions are proposed.
"""

from __future__ import annotations

import numpy as np


def segment(emb: np.ndarray, min_len: int = 8, max_len: int = 25, penalty: float | None = None) -> list[tuple[int, int]]:
    """0-based half-open ``(start, end)`` segments covering the protein."""
    L = emb.shape[0]
    if L <= min_len:
        return [(0, L)]
    x = emb.astype(np.float64)
    sd = x.std(0)
    sd[sd < 1e-8] = 1.0
    x = (x - x.mean(0)) / sd
    c1 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    c2 = np.concatenate([[0.0], np.cumsum((x * x).sum(1))])
    if penalty is None:
        penalty = float(x.shape[1])  # about one residue's worth of variance per extra segment
    best = np.full(L + 1, np.inf)
    back = np.zeros(L + 1, dtype=np.int64)
    best[0] = 0.0
    lengths = np.arange(min_len, max_len + 1)
    for j in range(min_len, L + 1):
        ls = lengths[lengths <= j]
        i = j - ls
        prev = best[i]
        ok = np.isfinite(prev)
        if not ok.any():
            continue
        i, ls, prev = i[ok], ls[ok], prev[ok]
        s = c1[j] - c1[i]
        sse = (c2[j] - c2[i]) - (s * s).sum(1) / ls
        total = prev + sse + penalty
        k = int(np.argmin(total))
        best[j], back[j] = total[k], i[k]
    if not np.isfinite(best[L]):  # L not reachable (cannot happen for L > min_len with max_len >= 2*min_len - 1)
        return [(0, L)]
    out, j = [], L
    while j > 0:
        out.append((int(back[j]), j))
        j = int(back[j])
    return out[::-1]


def segment_scores(window_scores: np.ndarray, segments: list[tuple[int, int]], L: int, W: int) -> np.ndarray:
    """Score of each segment: the window of size ``W`` centred on it (clipped to the protein)."""
    n = len(window_scores)
    out = np.empty(len(segments))
    for k, (a, b) in enumerate(segments):
        centre = (a + b - 1) / 2
        start = int(round(centre - (W - 1) / 2))
        out[k] = window_scores[min(max(start, 0), n - 1)]
    return out

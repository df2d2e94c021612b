"""Per-residue embedders.

Every embedder turns a protein sequence into an ``L x D`` float32 matrix. Two families:

* ``builtin`` — needs no downloaded weights; the offline default and the embedder the shipped
  model is trained on. Per residue it concatenates
  one-hot identity (20 + X), the residue's BLOSUM62 row (Biopython's matrix, /4),
  six physico-chemical scales (Kyte-Doolittle hydropathy, charge at pH 7, side-chain volume,
  Chou-Fasman helix propensity, TOP-IDP disorder propensity, Φ-type residue L/I/V/F/M),
  eight local-context features (centred running means of hydropathy, charge, disorder, helix
  propensity, proline and Φ-type content over 9 and 31 residues) and three consensus-motif
  tracks (:func:`nesscan.motifs.residue_motif_tracks`: how many strict and A/T-tolerant
  Kosugi-class matches use the residue as a Φ position, and Wregex coverage). Context never reaches beyond
  ±15 residues and no protein-level quantity (length, global composition) enters, so window
  scores carry local NES evidence, not protein-level confounders.
* ``esm2_*`` — fair-esm's ESM-2 models (see :mod:`nesscan.esm2`).

Non-standard letters in the built-in embedder: B = mean(D, N), Z = mean(E, Q), U -> C,
O -> K, X = mean of the 20 standard residues (plus its own one-hot channel).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from .embedder_base import BUILTIN_NAME, EMBEDDERS, ESM2_MODELS, NO_CONTEXT, Embedder
from .errors import NesscanError
from .fasta import STANDARD
from .motifs import residue_motif_tracks

__all__ = ["BUILTIN_NAME", "EMBEDDERS", "ESM2_MODELS", "Embedder", "BuiltinEmbedder", "ContextEmbedder", "get_embedder"]

_SCALES = {
    #        KD    charge volume  helix  TOP-IDP
    "A": (1.8, 0.0, 88.6, 1.42, 0.06),
    "R": (-4.5, 1.0, 173.4, 0.98, 0.180),
    "N": (-3.5, 0.0, 114.1, 0.67, 0.007),
    "D": (-3.5, -1.0, 111.1, 1.01, 0.192),
    "C": (2.5, 0.0, 108.5, 0.70, 0.02),
    "Q": (-3.5, 0.0, 143.8, 1.11, 0.318),
    "E": (-3.5, -1.0, 138.4, 1.51, 0.736),
    "G": (-0.4, 0.0, 60.1, 0.57, 0.166),
    "H": (-3.2, 0.1, 153.2, 1.00, 0.303),
    "I": (4.5, 0.0, 166.7, 1.08, -0.486),
    "L": (3.8, 0.0, 166.7, 1.21, -0.326),
    "K": (-3.9, 1.0, 168.6, 1.16, 0.586),
    "M": (1.9, 0.0, 162.9, 1.45, -0.397),
    "F": (2.8, 0.0, 189.9, 1.13, -0.697),
    "P": (-1.6, 0.0, 112.7, 0.57, 0.987),
    "S": (-0.8, 0.0, 89.0, 0.77, 0.341),
    "T": (-0.7, 0.0, 116.1, 0.83, 0.059),
    "W": (-0.9, 0.0, 227.8, 1.08, -0.884),
    "Y": (-1.3, 0.0, 193.6, 0.69, -0.510),
    "V": (4.2, 0.0, 140.0, 1.06, -0.121),
}
_PHI = set("LIVFM")
KD_COLUMN = 21 + 20  # Kyte-Doolittle / 4.5 in the built-in embedding (after one-hot 21 and BLOSUM62 20)
_CONTEXT = ((0, 9), (0, 31), (1, 9), (1, 31), (4, 31), (3, 9), ("P", 9), ("PHI", 9))


def _builtin_table() -> np.ndarray:
    """Rows for A..Z (26 letters); columns are the per-residue (non-context) features."""
    from Bio.Align import substitution_matrices

    blosum = substitution_matrices.load("BLOSUM62")
    std = list(STANDARD)
    rows = {}
    for aa in std:
        onehot = np.zeros(21, dtype=np.float64)
        onehot[std.index(aa)] = 1.0
        bl = np.array([blosum[aa][b] for b in std], dtype=np.float64) / 4.0
        kd, ch, vol, hel, dis = _SCALES[aa]
        scales = np.array([kd / 4.5, ch, (vol - 140.0) / 50.0, hel - 1.0, dis, float(aa in _PHI)])
        rows[aa] = np.concatenate([onehot, bl, scales])
    mean = np.mean([rows[a] for a in std], axis=0)
    x = mean.copy()
    x[:21] = 0.0
    x[20] = 1.0
    rows["X"] = x
    rows["B"] = (rows["D"] + rows["N"]) / 2
    rows["Z"] = (rows["E"] + rows["Q"]) / 2
    rows["U"] = rows["C"]
    rows["O"] = rows["K"]
    table = np.zeros((26, len(mean)), dtype=np.float64)
    for letter, row in rows.items():
        table[ord(letter) - 65] = row
    return table


class BuiltinEmbedder(Embedder):
    """Weight-free per-residue features; see the module docstring."""

    def __init__(self, motif_tracks: bool = True) -> None:
        self.name = BUILTIN_NAME
        self.layer = 0
        self._table = _builtin_table()
        self.motif_tracks = motif_tracks
        self.dim = self._table.shape[1] + len(_CONTEXT) + (3 if motif_tracks else 0)
        spec = json.dumps({"table": self._table.round(6).tolist(), "context": [list(map(str, c)) for c in _CONTEXT],
                           "motif_tracks": ["kosugi_strict", "kosugi_at", "wregex"] if motif_tracks else []})
        self.weights_sha256 = hashlib.sha256(spec.encode()).hexdigest()
        self.max_batch_tokens = 1 << 20

    def embed(self, sequence: str) -> np.ndarray:
        idx = np.frombuffer(sequence.encode("ascii"), dtype=np.uint8).astype(np.int64) - 65
        base = self._table[idx]  # L x 47
        n_std = 21 + 20
        scales = base[:, n_std : n_std + 6]
        L, nb = base.shape
        out = np.empty((L, self.dim), dtype=np.float32)
        out[:, :nb] = base
        # the context tracks: all columns of one width share one cumulative sum
        cols = np.empty((L, len(_CONTEXT)), dtype=np.float64)
        for k, (key, _width) in enumerate(_CONTEXT):
            if key == "P":
                cols[:, k] = idx == ord("P") - 65
            elif key == "PHI":
                cols[:, k] = scales[:, 5]
            else:
                cols[:, k] = scales[:, key]
        for width in sorted({w for _, w in _CONTEXT}):
            ks = [k for k, (_, w) in enumerate(_CONTEXT) if w == width]
            out[:, nb + np.array(ks)] = _running_mean(cols[:, ks], width)
        if self.motif_tracks:
            out[:, nb + len(_CONTEXT) :] = residue_motif_tracks(sequence)
        return out

    def embed_batch(self, sequences: Sequence[str]) -> list[np.ndarray]:
        return [self.embed(s) for s in sequences]


def _running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred mean over ``width`` residues, truncated (not zero-padded) at the termini
    (of each column when ``values`` is ``L x k``)."""
    half = width // 2
    n = len(values)
    c = np.empty((n + 1,) + values.shape[1:], dtype=np.float64)
    c[0] = 0.0
    np.cumsum(values, axis=0, out=c[1:])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    span = (hi - lo) if values.ndim == 1 else (hi - lo)[:, None]
    return (c[hi] - c[lo]) / span


class ContextEmbedder(Embedder):
    """Another embedder's output with the two disorder-context channels of
    :mod:`nesscan.disorder` (metapredict disorder and predicted pLDDT / 100) appended to every
    residue: ``dim`` = the base's + 2. ``name``, ``layer`` and ``weights_sha256`` are the base
    embedder's; ``context`` names the channels' specification, and models refuse embeddings
    whose ``context`` differs from theirs."""

    def __init__(self, base: Embedder, device: str = "cpu") -> None:
        from .disorder import CHANNELS, DisorderTracks

        self.base = base
        dev = getattr(base, "device", None)
        self.tracks = DisorderTracks(device=str(dev) if dev is not None else device)
        self.name, self.layer, self.weights_sha256 = base.name, base.layer, base.weights_sha256
        self.dim = base.dim + len(CHANNELS)
        self.context = self.tracks.id
        self.max_batch_tokens = base.max_batch_tokens

    def __getattr__(self, item):  # device, alphabet, ... of the base embedder
        if item == "base":
            raise AttributeError(item)
        return getattr(self.base, item)

    def token_length(self, p) -> int:
        return self.base.token_length(p)

    def embed_batch(self, sequences: Sequence[str], tracks: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """The base embeddings with the two channels appended; ``tracks``: the channels of
        these sequences when already predicted (:meth:`DisorderTracks.predict`, which is
        faster over many proteins at once: ``predict`` predicts them group by group, ahead)."""
        from .disorder import append

        embs = self.base.embed_batch(sequences)
        if tracks is None:
            tracks = self.tracks.predict(list(sequences))
        elif len(tracks) != len(sequences) or any(t.shape[0] != len(s) for t, s in zip(tracks, sequences)):
            raise ValueError("disorder tracks do not match the sequences")
        return append([np.asarray(e) if not hasattr(e, "cpu") else e.cpu().numpy() for e in embs], tracks)


def with_tracks(batches, embedder):
    """``(batch, disorder tracks or None)`` for each batch, in order. With the disorder channels
    (:class:`~nesscan.embedders.ContextEmbedder`), the tracks are predicted for a group of
    consecutive batches at once (``disorder.GROUP_RESIDUES`` residues; metapredict is ~2x
    faster over ~500 proteins than batch by batch), one group ahead, in a thread of their own
    (metapredict's networks run in torch, which releases the GIL), so they overlap the work on
    the group before (embedding and writing in ``embed``; scoring and ranking in ``predict``).
    At most two groups of tracks (2 floats per residue) are held. Without the channels:
    ``(batch, None)``. Pass the tracks on with :func:`embed_tracked`."""
    if not isinstance(embedder, ContextEmbedder):
        for batch in batches:
            yield batch, None
        return
    tracker = embedder.tracks
    from concurrent.futures import ThreadPoolExecutor

    from . import disorder

    def groups():
        group, residues, limit = [], 0, disorder.FIRST_GROUP_RESIDUES
        for batch in batches:
            group.append(batch)
            residues += sum(len(p) for p in batch)
            if residues >= limit:
                yield group
                group, residues, limit = [], 0, disorder.GROUP_RESIDUES
        if group:
            yield group

    def predict(group):
        return group, tracker.predict([p.sequence for batch in group for p in batch])

    ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nesscan-disorder")
    try:
        pending = None
        for group in groups():
            nxt = ex.submit(predict, group)
            if pending is not None:
                yield from _split_tracks(*pending.result())
            pending = nxt
        if pending is not None:
            yield from _split_tracks(*pending.result())
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def embed_tracked(embedder, sequences: Sequence[str], tracks: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """``embedder.embed_batch(sequences)``, with the disorder tracks :func:`with_tracks` gave
    for them when there are any."""
    return embedder.embed_batch(sequences) if tracks is None else embedder.embed_batch(sequences, tracks=tracks)


def _split_tracks(group, tracks):
    i = 0
    for batch in group:
        yield batch, tracks[i : i + len(batch)]
        i += len(batch)


def get_embedder(
    name: str,
    weights: str | None = None,
    layer: int | None = None,
    device: str = "auto",
    max_batch_tokens: int | None = None,
    context: str = NO_CONTEXT,
) -> Embedder:
    """Build an embedder by name (``builtin`` or an ``esm2_*`` model). ``context``: ``"none"``,
    or ``"disorder"`` / a disorder specification id (``metapredict-…``, as a model card records
    it) to append the disorder channels (:class:`ContextEmbedder`)."""
    base = _base_embedder(name, weights, layer, device, max_batch_tokens)
    if context in (None, "", NO_CONTEXT):
        return base
    from .disorder import spec_id

    if context != "disorder" and context != spec_id():
        raise NesscanError(f"context channels '{context}' are not available here (this nesscan provides "
                           f"'{spec_id()}' from metapredict); install the metapredict version the model was trained with")
    return ContextEmbedder(base, device=_context_device(device))


def _context_device(device: str | None) -> str:
    """metapredict's device: CUDA when asked for (``cuda``) or available (``auto``), else the CPU."""
    if device in ("auto", None, "cuda"):
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu" if device in ("auto", None, "cuda") else str(device)


def _base_embedder(name, weights, layer, device, max_batch_tokens) -> Embedder:
    if name == BUILTIN_NAME:
        if weights:
            raise NesscanError("the builtin embedder takes no --weights")
        if layer not in (None, 0, -1):
            raise NesscanError("the builtin embedder has no layers; drop --layer")
        return BuiltinEmbedder()
    if name in ESM2_MODELS or name.startswith("esm2_"):
        from .esm2 import ESM2Embedder

        emb = ESM2Embedder(name, weights=weights, layer=layer, device=device)
        if max_batch_tokens:
            emb.max_batch_tokens = max_batch_tokens
        return emb
    raise NesscanError(
        f"unknown embedder '{name}'; choose one of: {', '.join(EMBEDDERS)} (or esm2_<custom> with --weights)"
    )

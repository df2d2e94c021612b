"""Per-residue disorder context: metapredict's disorder and predicted pLDDT.

NES mostly lie in disordered regions or at their boundaries (LocNES uses DISOPRED, NESsential
predicted disorder); in the training data, windows holding an NES are more disordered than the
other top-scoring windows. :class:`DisorderTracks` adds two channels to every residue of every
embedder (built-in and ESM-2):

* ``disorder`` — metapredict's consensus-trained disorder score (0 ordered … 1 disordered);
* ``plddt`` — metapredict's predicted AlphaFold2 pLDDT, divided by 100 (0 … 1).

Both networks ship inside the ``metapredict`` package (no download) and run in batches on the
CPU or a GPU. The network versions are part of the channels' specification, which is recorded
in the embeddings' metadata and in the model card, so a model trained with one version refuses
embeddings made with another.

metapredict accepts the 20 standard residues only. Other letters are mapped before prediction,
one residue for one (lengths and positions are kept): B -> D, Z -> E, U -> C, O -> K, and X -> G
(glycine: neither hydrophobic nor charged, the closest to "unknown" among the 20).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import warnings
from typing import Sequence

import numpy as np

from .errors import NesscanError

log = logging.getLogger("nesscan.disorder")

DISORDER_VERSION = "V2"  # metapredict's disorder network (V2: 2x faster than V3 on the CPU)
PLDDT_VERSION = "V2"
CHANNELS = ("disorder", "plddt")
_MAP = str.maketrans({"B": "D", "Z": "E", "U": "C", "O": "K", "X": "G"})


def spec() -> dict:
    """What the two channels are: recorded with the embeddings and in the model card."""
    try:
        from importlib.metadata import version

        mp = version("metapredict")
    except Exception:  # not installed: the spec still names what is needed
        mp = "missing"
    return {"tool": "metapredict", "metapredict": mp, "disorder_network": DISORDER_VERSION,
            "plddt_network": PLDDT_VERSION, "channels": list(CHANNELS), "plddt_scale": 0.01,
            "nonstandard": "B->D Z->E U->C O->K X->G"}


def spec_id(s: dict | None = None) -> str:
    """A short stable name of the channels' specification (network versions, not the package
    patch version, so a metapredict bug-fix release does not invalidate models)."""
    s = dict(s or spec())
    s.pop("metapredict", None)
    return "metapredict-" + hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:12]


def clean(seq: str) -> str:
    return seq.upper().translate(_MAP)


# metapredict's LSTMs step over every position of the longest sequence in a batch, so the cost of
# a batch is about (its longest length) x (a per-step overhead + its width): sequences are sorted
# by length and cut into batches of at most CHUNK_TOKENS padded positions and CHUNK_SEQUENCES
# sequences (also the bound on the networks' activations, ~50 MB at 2^16 positions; 2^17 is no
# faster since the window trees stopped copying windows, and 30 MB more at the peak). Over
# ~500 proteins at once this is ~2x faster than one metapredict call per 64 consecutive
# proteins (benchmarks/RESULTS.md); predict and embed therefore ask for the tracks of many
# proteins at a time (:func:`nesscan.embedders.with_tracks`: groups of ``GROUP_RESIDUES``
# residues, the first one ``FIRST_GROUP_RESIDUES`` so that the pipeline starts sooner).
CHUNK_TOKENS = 1 << 16
CHUNK_SEQUENCES = 128  # a power of two: metapredict's batch_size
GROUP_RESIDUES = 1 << 18
FIRST_GROUP_RESIDUES = 1 << 15


def length_chunks(lengths: Sequence[int], max_tokens: int | None = None,
                  max_sequences: int | None = None) -> list[list[int]]:
    """Indices of the sequences, longest first (ties in input order), cut into chunks with
    ``len(chunk) * longest <= max_tokens`` (a longer sequence is a chunk of its own) and at most
    ``max_sequences`` sequences (defaults: ``CHUNK_TOKENS``, ``CHUNK_SEQUENCES``)."""
    max_tokens = max_tokens or CHUNK_TOKENS
    max_sequences = max_sequences or CHUNK_SEQUENCES
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    chunks: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and ((len(cur) + 1) * lengths[cur[0]] > max_tokens or len(cur) >= max_sequences):
            chunks.append(cur)
            cur = []
        cur.append(i)
    if cur:
        chunks.append(cur)
    return chunks


class DisorderTracks:
    """Batched metapredict disorder + pLDDT (L x 2 float32 per sequence)."""

    def __init__(self, device: str = "cpu", batch_size: int | None = None) -> None:
        try:
            import metapredict  # noqa: F401
        except ImportError:
            raise NesscanError("the disorder channels need metapredict (pip install metapredict==3.1.1)") from None
        self.device = "cpu" if device in ("auto", None) else str(device)
        self.batch_size = batch_size  # sequences per metapredict batch (None: CHUNK_SEQUENCES)
        self.spec = spec()
        self.id = spec_id(self.spec)

    def predict(self, sequences: Sequence[str]) -> list[np.ndarray]:
        """The two channels of each sequence, in input order. Sequences are predicted in
        length-sorted chunks (:func:`length_chunks`); which sequences share a metapredict batch
        moves the values by ~1e-7 (metapredict's note), so a protein's tracks can differ in the
        last float32 digits between inputs, never between runs on the same input."""
        if not sequences:
            return []
        n_seq = self.batch_size or CHUNK_SEQUENCES
        out: list[np.ndarray | None] = [None] * len(sequences)
        for chunk in length_chunks([len(s) for s in sequences], max_sequences=n_seq):
            for i, tracks in zip(chunk, self._predict_chunk([sequences[i] for i in chunk], n_seq)):
                out[i] = tracks
        return out  # type: ignore[return-value]

    def _predict_chunk(self, sequences: list[str], batch_size: int) -> list[np.ndarray]:
        import metapredict as meta

        seqs = {str(i): clean(s) for i, s in enumerate(sequences)}
        dev = self.device if self.device.startswith("cuda") else "cpu"
        with _quiet():
            d = meta.predict(seqs, version=DISORDER_VERSION, use_device=dev, round_values=False,
                             show_progress_bar=False, batch_size=batch_size)
            p = meta.predict_pLDDT(seqs, pLDDT_version=PLDDT_VERSION, device=dev, round_values=False,
                                   show_progress_bar=False, batch_size=batch_size)
        out = []
        for i, s in enumerate(sequences):
            dis = np.asarray(_values(d[str(i)]), dtype=np.float32)
            pl = np.asarray(_values(p[str(i)]), dtype=np.float32) / 100.0
            if dis.shape[0] != len(s) or pl.shape[0] != len(s):
                raise NesscanError(f"metapredict returned {dis.shape[0]} values for a sequence of {len(s)} residues")
            out.append(np.stack([dis, pl], 1))
        return out


def _values(v):
    # metapredict returns [sequence, scores] per key (dict input)
    return v[1] if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], str) else v


@contextlib.contextmanager
def _quiet():
    """metapredict prints and warns about devices and batch modes: keep the logs readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


def append(embs: list[np.ndarray], tracks: list[np.ndarray]) -> list[np.ndarray]:
    """Each embedding with its two disorder channels appended (float32)."""
    return [np.concatenate([e, t.astype(e.dtype, copy=False)], 1) for e, t in zip(embs, tracks)]


__all__ = ["DisorderTracks", "spec", "spec_id", "clean", "append", "length_chunks", "CHANNELS", "GROUP_RESIDUES",
           "FIRST_GROUP_RESIDUES"]

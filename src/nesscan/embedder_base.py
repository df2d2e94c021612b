"""The embedder interface, shared by the built-in embedder (:mod:`nesscan.embedders`) and ESM-2
(:mod:`nesscan.esm2`); both import it from here, and nothing here imports either of them."""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from .fasta import Protein

BUILTIN_NAME = "builtin"
ESM2_MODELS = {
    # name: (layers, embed_dim, heads)
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
    "esm2_t36_3B_UR50D": (36, 2560, 40),
    "esm2_t48_15B_UR50D": (48, 5120, 40),
}
EMBEDDERS = (BUILTIN_NAME, *ESM2_MODELS)

NO_CONTEXT = "none"


class Embedder:
    """Interface: ``name``, ``dim``, ``layer``, ``weights_sha256`` and :meth:`embed_batch`."""

    name: str
    dim: int
    layer: int
    weights_sha256: str
    max_batch_tokens: int = 16384

    def embed_batch(self, sequences: Sequence[str]) -> list[np.ndarray]:
        raise NotImplementedError

    context: str = NO_CONTEXT  # extra per-residue channels appended to the embedding (nesscan.disorder)

    def meta(self) -> dict:
        return {
            "embedder": self.name,
            "layer": int(self.layer),
            "dimension": int(self.dim),
            "weights_sha256": self.weights_sha256,
            "context": self.context,
        }

    def batches(self, proteins: Iterable[Protein], buffer: int = 2048) -> Iterator[list[Protein]]:
        """Token-budget batches: proteins are sorted by length inside a bounded buffer and packed
        while ``n * (longest + 2) <= max_batch_tokens`` (padding included). Memory stays bounded
        by the buffer, whatever the size of the proteome."""
        pending: list[Protein] = []
        for p in proteins:
            pending.append(p)
            if len(pending) >= buffer:
                yield from self._pack(pending)
                pending = []
        if pending:
            yield from self._pack(pending)

    def _pack(self, proteins: list[Protein]) -> Iterator[list[Protein]]:
        batch: list[Protein] = []
        longest = 0
        for p in sorted(proteins, key=len):
            cost = max(longest, self.token_length(p)) * (len(batch) + 1)
            if batch and cost > self.max_batch_tokens:
                yield batch
                batch, longest = [], 0
            batch.append(p)
            longest = max(longest, self.token_length(p))
        if batch:
            yield batch

    def token_length(self, p: Protein) -> int:
        return len(p) + 2

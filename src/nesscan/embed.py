"""``nesscan embed``: FASTA -> HDF5 per-residue embeddings, streaming, resumable."""

from __future__ import annotations

import logging

from tqdm import tqdm

from .embedders import Embedder
from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH, iter_fasta, validate_fasta
from .store import EmbeddingWriter, sigterm_as_interrupt

log = logging.getLogger("nesscan.embed")


def run_embed(
    input_fasta: str,
    output: str,
    embedder: Embedder,
    overwrite: bool = False,
    max_length: int = DEFAULT_MAX_LENGTH,
    dtype: str = "float32",
    progress: bool = True,
) -> dict:
    """Embed every protein of ``input_fasta`` into ``output``; returns counts."""
    summary = validate_fasta(input_fasta, max_length)
    log.info("%d proteins, %d residues (longest %d) in %s", summary.n, summary.residues, summary.max_length, input_fasta)
    writer = EmbeddingWriter(output, embedder.meta(), overwrite=overwrite, dtype=dtype)
    skipped = written = 0
    complete = False
    try:
        with sigterm_as_interrupt():
            todo = []
            order: dict[str, int] = {}
            for i, p in enumerate(iter_fasta(input_fasta, max_length)):
                order[p.id] = i
                if writer.has(p.id, p.sequence):
                    skipped += 1
                else:
                    todo.append(p)
            if skipped:
                log.info("resume: %d proteins already embedded with the same checksums, %d to do", skipped, len(todo))
            bar = tqdm(total=sum(len(p) for p in todo), unit="res", desc=f"embed[{embedder.name}]", disable=not progress)
            for batch in embedder.batches(todo):
                arrays = embedder.embed_batch([p.sequence for p in batch])
                for p, a in zip(batch, arrays):
                    writer.write(p.id, p.sequence, a, index=order[p.id])
                    written += 1
                writer.flush()
                bar.update(sum(len(p) for p in batch))
            bar.close()
            complete = True
    except KeyboardInterrupt:
        writer.close(complete=False)
        raise NesscanError(
            f"interrupted after {written} new proteins; {output} is valid and a re-run resumes from it"
        ) from None
    except BaseException:
        writer.close(complete=False) if written or skipped else writer.abort()
        raise
    writer.close(complete=complete)
    log.info("wrote %s: %d embedded, %d reused", output, written, skipped)
    return {"proteins": summary.n, "embedded": written, "reused": skipped}

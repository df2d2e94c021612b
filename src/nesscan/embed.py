"""``nesscan embed``: FASTA -> HDF5 per-residue embeddings, streaming, resumable.

HDF5 writes (gzip compression included) run in one background thread fed by a bounded queue,
so the next batch is embedded while the previous one is written; at most
:data:`WRITE_QUEUE_BATCHES` embedded batches wait for it, so memory stays bounded. Proteins
are written in the order, with the indices, of the synchronous loop (``async_write=False``),
and the file is the same.
"""

from __future__ import annotations

import os
import logging
import queue
import threading

from tqdm import tqdm

from .embedders import Embedder, embed_tracked, with_tracks
from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH, iter_fasta, validate_fasta
from .guard import output_lock, write_skipped
from .memory import page_out_cuda_libraries, uses_cuda
from .store import EmbeddingWriter, sigterm_as_interrupt

log = logging.getLogger("nesscan.embed")

WRITE_QUEUE_BATCHES = 1  # embedded batches waiting for the writer thread (plus the one it is writing)


class _SyncWrites:
    """Writes each batch in the caller's thread (``async_write=False``)."""

    def __init__(self, writer: EmbeddingWriter, order: dict[str, int]):
        self.writer, self.order, self.written = writer, order, 0

    def put(self, batch, arrays) -> None:
        for p, a in zip(batch, arrays):
            self.writer.write(p.id, p.sequence, a, index=self.order[p.id])
            self.written += 1
        self.writer.flush()

    def finish(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _BackgroundWrites(_SyncWrites):
    """Writes each batch, then flushes, in one background thread, in submission order.

    ``put`` blocks while ``WRITE_QUEUE_BATCHES`` batches already wait. An exception raised by
    the writer is kept; the thread then discards what is still queued, and the next ``put``
    (or ``finish``) raises it in the caller's thread. ``finish`` waits until everything queued
    is written; ``stop`` does the same without raising (used while another exception is being
    handled), so the caller can close the file afterwards: the writer is never used from two
    threads at once."""

    def __init__(self, writer: EmbeddingWriter, order: dict[str, int], max_queued: int = WRITE_QUEUE_BATCHES):
        super().__init__(writer, order)
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, max_queued))
        self.thread = threading.Thread(target=self._loop, name="nesscan-hdf5-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # a write failed: drop the rest, keep draining so put() never blocks for ever
            try:
                super().put(*item)
            except BaseException as e:  # noqa: BLE001 (handed to the caller's thread)
                self.error = e

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, batch, arrays) -> None:
        self._raise()
        self.queue.put((batch, arrays))

    def stop(self) -> None:
        sent = False
        while self.thread.is_alive():
            try:  # a second Ctrl-C while waiting: the file must still be closed cleanly
                if not sent:
                    self.queue.put(None)
                    sent = True
                self.thread.join()
            except KeyboardInterrupt:
                continue

    def finish(self) -> None:
        self.stop()
        self._raise()


def run_embed(input_fasta: str, output: str, embedder: Embedder, overwrite: bool = False,
              max_length: int = DEFAULT_MAX_LENGTH, dtype: str = "float32", progress: bool = True,
              async_write: bool = True, skip_invalid: bool = False) -> dict:
    """Embed every protein of ``input_fasta`` into ``output`` (see :func:`_run_embed`), holding
    ``<output>.lock`` so that a second run on the same output stops instead of interleaving.
    ``skip_invalid``: leave invalid records out and list them in :func:`skipped_path`."""
    output = os.fspath(output)
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise NesscanError(f"output directory does not exist: {parent}")
    with output_lock(output + ".lock", output):
        result = _run_embed(input_fasta, output, embedder, overwrite, max_length, dtype, progress, async_write,
                            skip_invalid)
        if skip_invalid:
            write_skipped(skipped_path(output), result["skipped_records"])
    return result


def skipped_path(output: str) -> str:
    """Where ``embed --skip-invalid`` lists skipped records: ``emb.h5`` -> ``emb.skipped.tsv``."""
    stem, ext = os.path.splitext(output)
    return (stem if ext.lower() in (".h5", ".hdf5") else output) + ".skipped.tsv"


def _run_embed(
    input_fasta: str,
    output: str,
    embedder: Embedder,
    overwrite: bool = False,
    max_length: int = DEFAULT_MAX_LENGTH,
    dtype: str = "float32",
    progress: bool = True,
    async_write: bool = True,
    skip_invalid: bool = False,
) -> dict:
    """Embed every protein of ``input_fasta`` into ``output``; returns counts.

    ``async_write``: write to HDF5 in a background thread while the next batch is embedded
    (default), or in this thread after each batch. Either way every batch is flushed after it
    is written; an interrupt (Ctrl-C, SIGTERM) or an error first lets the writer finish the
    batches already embedded, then closes the file as the synchronous loop would (valid and
    resumable, or removed when nothing was stored); an error in the writer stops the run and is
    raised here."""
    summary = validate_fasta(input_fasta, max_length, skip_invalid)
    log.info("%d proteins, %d residues (longest %d) in %s", summary.n, summary.residues, summary.max_length, input_fasta)
    if not uses_cuda(embedder):
        page_out_cuda_libraries()
    writer = EmbeddingWriter(output, embedder.meta(), overwrite=overwrite, dtype=dtype)
    skipped = 0
    complete = False
    order: dict[str, int] = {}
    writes: _SyncWrites | None = None
    try:
        with sigterm_as_interrupt():
            todo = []
            for i, p in enumerate(iter_fasta(input_fasta, max_length, skip_invalid)):
                order[p.id] = i
                if writer.has(p.id, p.sequence):
                    skipped += 1
                else:
                    todo.append(p)
            if skipped:
                log.info("resume: %d proteins already embedded with the same checksums, %d to do", skipped, len(todo))
            writes = _BackgroundWrites(writer, order) if async_write else _SyncWrites(writer, order)
            bar = tqdm(total=sum(len(p) for p in todo), unit="res", desc=f"embed[{embedder.name}]", disable=not progress)
            for batch, tracks in with_tracks(embedder.batches(todo), embedder):
                arrays = embed_tracked(embedder, [p.sequence for p in batch], tracks)
                writes.put(batch, arrays)
                del arrays
                bar.update(sum(len(p) for p in batch))
            writes.finish()
            bar.close()
            complete = True
    except KeyboardInterrupt:
        if writes is not None:
            writes.stop()
        written = writes.written if writes is not None else 0
        writer.close(complete=False)
        raise NesscanError(
            f"interrupted after {written} new proteins; {output} is valid and a re-run resumes from it"
        ) from None
    except BaseException:
        if writes is not None:
            writes.stop()
        written = writes.written if writes is not None else 0
        writer.close(complete=False) if written or skipped else writer.abort()
        raise
    writer.close(complete=complete)
    log.info("wrote %s: %d embedded, %d reused", output, writes.written, skipped)
    return {"proteins": summary.n, "embedded": writes.written, "reused": skipped, "skipped_records": summary.skipped}

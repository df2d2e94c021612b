"""``nesscan predict``: FASTA -> ranked NES candidates and protein scores, in one streaming pass.

embed (the model card's embedder) -> window-score -> fuse (classifier + consensus motifs +
embedding similarity, weights from the model card) -> greedy non-overlapping candidates with
Φ residues -> ``proteins.tsv``, ``candidates.tsv``, ``candidates.gff3`` (columns in
:mod:`nesscan.report`). Proteins stream through in token-budget batches in input order; only
one batch is in memory at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os

from tqdm import tqdm

from .embedders import embed_tracked, get_embedder, with_tracks
from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH, iter_fasta, validate_fasta
from .guard import outdir_lock
from .memory import page_out_cuda_libraries, release_free_memory, uses_cuda
from .model import LoadedModel, check_compatible, load
from .registry import DEFAULT_MODEL, model_dirs, resolve_model  # noqa: F401  (re-exported)
from .report import ResultWriter, default_max_evalue, score_and_rank  # noqa: F401  (re-exported)
from .window_score import score_many

log = logging.getLogger("nesscan.predict")


def run_predict(input_fasta: str, outdir: str, model: str | None = None, weights: str | None = None,
                device: str = "auto", top_k: int = 5, max_evalue: float | None = None,
                max_length: int = DEFAULT_MAX_LENGTH, structure_dir: str | None = None,
                progress: bool = True, skip_invalid: bool = False) -> dict:
    summary = validate_fasta(input_fasta, max_length, skip_invalid)
    if structure_dir and not os.path.isdir(structure_dir):
        raise NesscanError(f"structure directory not found: {structure_dir}")
    m: LoadedModel = load(resolve_model(model))
    card = m.card
    embedder = get_embedder(card.embedder, weights=weights, layer=card.layer, device=device, context=card.context)
    check_compatible(m, embedder.meta(), f"embedder {embedder.name}")
    log.info("%d proteins, %d residues; model %s (%s, window %d)", summary.n, summary.residues, m.path, card.embedder, card.window)
    sample = fasta_sample_name(input_fasta)
    skipped = summary.skipped if skip_invalid else None  # -> OUTDIR/skipped.tsv
    max_evalue = default_max_evalue(m, max_evalue)
    scored_on = scoring_device(embedder)
    if scored_on is None and not uses_cuda(embedder):
        page_out_cuda_libraries()  # a CPU-only run: CUDA libraries loaded by torch's import are dead weight
    with outdir_lock(outdir, skipped), _torch_threads(pipeline_torch_threads(embedder)), ResultWriter(outdir, max_evalue, sample=sample) as out:
        bar = tqdm(total=summary.residues, unit="res", desc="predict", disable=not progress)
        # batches over consecutive proteins keep the input order in the tables
        batches = _consecutive_batches(iter_fasta(input_fasta, max_length, skip_invalid), stream_batch_tokens(embedder))
        builtin = embedder.name == "builtin"  # cheap per-protein numpy embedding: in this thread
        if scored_on is not None:
            log.info("window classifier on %s, with the embedder", scored_on)
        for batch, embs, scores in _embedded_and_scored(with_tracks(batches, embedder), embedder, m,
                                                        embed_in_caller=builtin, device=scored_on):
            for p, emb, nn in zip(batch, embs, scores):
                out.add(score_and_rank(m, p.id, p.sequence, emb, nn, top_k, max_evalue, structure_dir), len(p))
            bar.update(sum(len(p) for p in batch))
            del embs, scores
            release_free_memory()
        bar.close()
    log.info("wrote %s: %s", ", ".join(out.paths.values()), out.summary())
    return {"proteins": summary.n, "high_confidence_candidates": out.n_high, "skipped": len(summary.skipped), **out.paths}


def fasta_sample_name(path: str) -> str:
    """The sample name of an input file: its name without .gz/.bgz and the FASTA extension."""
    name = os.path.basename(path)
    for ext in (".gz", ".bgz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return os.path.splitext(name)[0]


def scoring_device(embedder) -> str | None:
    """Where ``predict`` runs the window classifier: the embedder's CUDA device when ESM-2
    runs on one (the classifier then scores each batch on the GPU in the same pass, right
    after its embedding), else ``None``, the CPU (the built-in embedder, and ESM-2 on CPU)."""
    if getattr(embedder, "name", None) == "builtin":
        return None
    dev = getattr(embedder, "device", None)
    if dev is None:
        return None
    import torch

    return str(dev) if torch.device(dev).type == "cuda" else None


def _embed_and_score(embedder, m: LoadedModel, batch, embs=None, device=None, tracks=None, tree_pool=None):
    if embs is None:
        embs = embed_tracked(embedder, [p.sequence for p in batch], tracks)
    return batch, embs, score_many(m, embs, device=device, tree_pool=tree_pool)


def _embedded_and_scored(items, embedder, m: LoadedModel, embed_in_caller: bool = False, device=None):
    """``(batch, embeddings, window scores)`` in input order, computed one batch ahead in a
    worker thread: window scoring (and, unless ``embed_in_caller``, embedding) of batch k+1,
    mostly in torch, which releases the GIL, overlaps fusion, ranking and writing of batch k in
    the caller's thread. ``items``: ``(batch, disorder tracks or None)`` (:func:`~nesscan.embedders.with_tracks`).
    ``embed_in_caller`` embeds in the caller's thread instead (the built-in embedder: many small
    numpy calls that hold the GIL, which would stall the worker's scoring). ``device``: where the
    window classifier runs (:func:`score_many`; ``None``: the CPU). At most two batches are in
    memory; results are those of the plain sequential loop."""
    from concurrent.futures import ThreadPoolExecutor

    ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nesscan-embed")
    trees = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nesscan-trees")
    try:
        pending = None
        for batch, tracks in items:
            embs = embed_tracked(embedder, [p.sequence for p in batch], tracks) if embed_in_caller else None
            nxt = ex.submit(_embed_and_score, embedder, m, batch, embs, device, tracks, trees)
            if pending is not None:
                yield pending.result()
            pending = nxt
        if pending is not None:
            yield pending.result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        trees.shutdown(wait=True, cancel_futures=True)


def pipeline_torch_threads(embedder) -> int | None:
    """Torch intra-op threads while ``predict`` runs: 1 for the built-in embedder, whose two
    pipeline threads (window scoring, and embedding + fusion + writing) already keep two cores
    busy with small matrix products; more OpenMP threads on top only oversubscribe the cores,
    and on a busy machine their hand-offs stall (10x slower end to end measured on 2 shared
    cores, benchmarks/RESULTS.md). ``None`` (torch's choice) for ESM-2, whose large matrix
    products do use several threads."""
    return 1 if getattr(embedder, "name", None) == "builtin" else None


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` for the block (threads started inside it inherit ``n``),
    then the previous setting again."""
    import torch

    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# predict batch sizes (tokens, padding counted as in ``_consecutive_batches``)
BUILTIN_STREAM_TOKENS = 1 << 15  # the builtin embedder works per protein: a modest batch bounds memory
ESM2_POOL_BATCHES = 4  # ESM-2 sorts a predict batch by length and packs it into its own token batches


def stream_batch_tokens(embedder) -> int:
    """Token budget of one predict batch. Built-in embedder: ``BUILTIN_STREAM_TOKENS`` (memory
    stays flat whatever the proteome size; window scoring has its own batches). ESM-2: a pool
    of ``ESM2_POOL_BATCHES`` of its own token batches, which ``embed_batch`` sorts by length
    and packs tightly, so little padding reaches the GPU."""
    if getattr(embedder, "name", None) == "builtin":
        return min(embedder.max_batch_tokens, BUILTIN_STREAM_TOKENS)
    return embedder.max_batch_tokens * ESM2_POOL_BATCHES


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

"""``nesscan fuse``: window scores + embeddings -> ranked candidates with E-values and Φ residues.

The command layer: the scoring itself (classifier + consensus motifs + embedding similarity,
Φ annotation, structure context) is :mod:`nesscan.scoring`, re-exported here; ranking,
E-values and the tables are :mod:`nesscan.report`. Imports go one way:
``fuse -> report -> scoring / calibrate -> window_score``.
"""

from __future__ import annotations

import numpy as np

from .scoring import *  # noqa: F401,F403  (the scoring functions, under their historical names)
from .scoring import CLASSES, PHI, MOTIF_FEATURES, annotate_phi, component_scores, find_structure, fit_centroids  # noqa: F401
from .scoring import fit_fusion, fit_fusion_grid, fuse_protein, n_windows, pooled_windows, similarity_raw  # noqa: F401
from .scoring import structure_tracks, window_motif_features  # noqa: F401


# ----------------------------------------------------------------------------- the command


def _read_window_scores(path: str):
    """Yield (id, scores) from a ``window-score`` table, one protein at a time (rows of a
    protein are consecutive and in start order, as ``window-score`` writes them)."""
    import csv
    import gzip
    import io
    import os

    from .errors import NesscanError

    if not os.path.exists(path):
        raise NesscanError(f"window scores file not found: {path}")
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    fh = io.TextIOWrapper(gzip.open(path, "rb"), newline="") if gz else open(path, newline="")
    with fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or header[:4] != ["id", "start", "end", "score"]:
            raise NesscanError(f"{path} is not a window-score table (expected columns id, start, end, score)")
        cur, vals, last = None, [], 0
        seen = set()
        for row in reader:
            if row[0] != cur:
                if cur is not None:
                    yield cur, np.array(vals)
                if row[0] in seen:
                    raise NesscanError(f"{path}: rows of '{row[0]}' are not consecutive")
                seen.add(row[0])
                cur, vals, last = row[0], [], 0
            start = int(row[1])
            if start != last + 1:
                raise NesscanError(f"{path}: windows of '{cur}' are not consecutive from start 1 (start {start})")
            last = start
            vals.append(float(row[3]))
        if cur is not None:
            yield cur, np.array(vals)


def run_fuse(windows: str, embeddings: str, model_path: str, outdir: str, top_k: int = 5, max_evalue: float | None = None,
             structure_dir: str | None = None, progress: bool = True) -> dict:
    """Window scores + embeddings -> ranked candidates (``proteins.tsv``, ``candidates.tsv``,
    ``candidates.gff3``), exactly as ``predict`` ranks them."""
    import logging
    import os

    import h5py
    from tqdm import tqdm

    from .errors import NesscanError
    from .model import check_compatible, load
    from .report import default_max_evalue, score_and_rank
    from .report import ResultWriter
    from .store import EmbeddingReader, key_for

    log = logging.getLogger("nesscan.fuse")
    if structure_dir and not os.path.isdir(structure_dir):
        raise NesscanError(f"structure directory not found: {structure_dir}")
    m = load(model_path)
    reader = EmbeddingReader(embeddings)
    check_compatible(m, reader.meta, embeddings)
    if not m.raw.get("fusion") or m.references is None:
        log.warning("model %s has no fusion weights or reference windows: ranking on the classifier score alone", m.path)
    # check the whole table against the embeddings before writing anything
    with h5py.File(embeddings, "r") as f:
        group = f["proteins"]
        for pid, sc in _read_window_scores(windows):
            if key_for(pid) not in group:
                raise NesscanError(f"protein '{pid}' of {windows} is not in {embeddings}")
            L = int(group[key_for(pid)].attrs["length"])
            if len(sc) != n_windows(L, m.window):
                raise NesscanError(f"'{pid}' has {len(sc)} window scores in {windows}; window {m.window} on {L} residues gives {n_windows(L, m.window)}")
        max_evalue = default_max_evalue(m, max_evalue)
        with ResultWriter(outdir, max_evalue) as out:
            for pid, sc in tqdm(_read_window_scores(windows), total=reader.meta["n"], desc="fuse", unit="prot", disable=not progress):
                ds = group[key_for(pid)]
                seq = ds.attrs["sequence"]
                seq = seq.decode() if isinstance(seq, bytes) else seq
                out.add(score_and_rank(m, pid, seq, ds[()].astype(np.float32), sc, top_k, max_evalue, structure_dir), len(seq))
    log.info("fused %d proteins -> %s: %s", out.n_proteins, outdir, out.summary())
    return {"proteins": out.n_proteins, "high_confidence_candidates": out.n_high, **out.paths}

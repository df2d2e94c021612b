"""HDF5 embedding files.

Layout (h5py)::

    /                      attrs: format="nesscan-embeddings/1", embedder, layer, dimension,
                                  weights_sha256, context (extra per-residue channels:
                                  "none" or the disorder channels' id, nesscan.disorder),
                                  complete (bool), nesscan_version
    /proteins/<key>        float16/float32 dataset, L x D; <key> is the ID percent-encoded
                           (HDF5 names cannot hold '/'), attrs: id, sequence, sequence_sha256,
                           length, embedder, layer, dimension, weights_sha256

Writes go to ``<output>.partial`` and are renamed onto ``<output>`` at the end, or when the
run is interrupted (Ctrl-C / SIGTERM), after the file is closed: ``<output>`` is therefore
always a valid HDF5 file. ``complete`` says whether the run finished. Re-running on the same
output skips every protein already stored with the same sequence and embedder checksums.
"""

from __future__ import annotations

import hashlib
import os
import signal
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote

import h5py
import numpy as np

from . import __version__
from .errors import NesscanError

FORMAT = "nesscan-embeddings/1"
META_KEYS = ("embedder", "layer", "dimension", "weights_sha256", "context")
NO_CONTEXT = "none"  # files written before the context channels existed have no attribute


def sequence_sha256(seq: str) -> str:
    return hashlib.sha256(seq.encode("ascii")).hexdigest()


def key_for(pid: str) -> str:
    return quote(pid, safe="")


def _attr(v):
    return v.decode() if isinstance(v, bytes) else v


def read_meta(path: str) -> dict:
    try:
        with h5py.File(path, "r") as f:
            if _attr(f.attrs.get("format", "")) != FORMAT:
                raise NesscanError(f"{path} is not a nesscan embeddings file")
            meta = {k: _attr(f.attrs.get(k, NO_CONTEXT if k == "context" else None)) for k in META_KEYS}
            if any(v is None for v in meta.values()):
                raise NesscanError(f"{path} lacks the embeddings metadata ({', '.join(k for k, v in meta.items() if v is None)})")
            meta["layer"] = int(meta["layer"])
            meta["dimension"] = int(meta["dimension"])
            meta["complete"] = bool(f.attrs.get("complete", False))
            meta["n"] = len(f["proteins"])
            return meta
    except FileNotFoundError:
        raise NesscanError(f"embeddings file not found: {path}") from None
    except OSError as e:
        raise NesscanError(f"cannot read embeddings file {path}: {e}") from None


class EmbeddingWriter:
    """Append-only writer with resume; use as a context manager."""

    def __init__(self, path: str, meta: dict, overwrite: bool = False, dtype: str = "float32"):
        self.path = os.fspath(path)
        self.partial = self.path + ".partial"
        self.meta = {k: meta.get(k, NO_CONTEXT) if k == "context" else meta[k] for k in META_KEYS}
        self.dtype = dtype
        self.done: dict[str, str] = {}
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise NesscanError(f"output directory does not exist: {parent}")
        start_from = None
        for candidate in (self.path, self.partial):
            if os.path.exists(candidate) and not overwrite:
                if self._compatible(candidate):
                    start_from = candidate
                    break
        if start_from == self.path:
            if os.path.exists(self.partial):
                os.remove(self.partial)
            os.replace(self.path, self.partial)
        elif start_from is None and os.path.exists(self.partial):
            os.remove(self.partial)
        self.f = h5py.File(self.partial, "a")
        self.f.attrs["format"] = FORMAT
        for k, v in self.meta.items():
            self.f.attrs[k] = v
        self.f.attrs["complete"] = False
        self.f.attrs["nesscan_version"] = __version__
        self.group = self.f.require_group("proteins")
        for key in self.group:
            ds = self.group[key]
            self.done[_attr(ds.attrs["id"])] = _attr(ds.attrs["sequence_sha256"])

    def _compatible(self, path: str) -> bool:
        try:
            with h5py.File(path, "r") as f:
                if _attr(f.attrs.get("format", "")) != FORMAT:
                    raise NesscanError(
                        f"output {path} exists and is not a nesscan embeddings file; remove it or pass --overwrite"
                    )
                old = {k: _attr(f.attrs.get(k, NO_CONTEXT if k == "context" else "")) for k in META_KEYS}
        except OSError:
            if path == self.partial:
                return False  # a partial file left by a killed run and not readable: start over
            raise NesscanError(f"output {path} exists and is not a readable HDF5 file; remove it or pass --overwrite") from None
        old["layer"], old["dimension"] = int(old["layer"]), int(old["dimension"])
        if old != self.meta:
            if path == self.partial:
                return False
            raise NesscanError(
                f"output {path} holds embeddings from {old['embedder']} layer {old['layer']} "
                f"(weights {old['weights_sha256'][:12]}); this run uses {self.meta['embedder']} layer "
                f"{self.meta['layer']} (weights {self.meta['weights_sha256'][:12]}): use another path or --overwrite"
            )
        return True

    def has(self, pid: str, seq: str) -> bool:
        return self.done.get(pid) == sequence_sha256(seq)

    def write(self, pid: str, seq: str, emb: np.ndarray, index: int | None = None) -> None:
        """Store one protein; ``index`` is its position in the input FASTA (readers return
        proteins in that order)."""
        if emb.shape != (len(seq), self.meta["dimension"]):
            raise NesscanError(
                f"internal error: embedding of '{pid}' has shape {emb.shape}, expected ({len(seq)}, {self.meta['dimension']})"
            )
        key = key_for(pid)
        if key in self.group:
            del self.group[key]
        ds = self.group.create_dataset(key, data=emb.astype(self.dtype), compression="gzip", compression_opts=1)
        ds.attrs["id"] = pid
        ds.attrs["sequence"] = seq
        ds.attrs["sequence_sha256"] = sequence_sha256(seq)
        ds.attrs["length"] = len(seq)
        if index is not None:
            ds.attrs["index"] = int(index)
        for k, v in self.meta.items():
            ds.attrs[k] = v
        self.done[pid] = sequence_sha256(seq)

    def flush(self) -> None:
        self.f.flush()

    def close(self, complete: bool) -> None:
        if self.f is None:
            return
        self.f.attrs["complete"] = bool(complete)
        self.f.close()
        self.f = None
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Drop the partial file (used when nothing valid should be left behind)."""
        if self.f is not None:
            self.f.close()
            self.f = None
        if os.path.exists(self.partial):
            os.remove(self.partial)


@contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM (what Nextflow and Galaxy send) into KeyboardInterrupt for a clean close."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class EmbeddingReader:
    """Reads proteins back in file order; checks the meta-data once."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self.meta = read_meta(self.path)

    def __iter__(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """Proteins in input-FASTA order (the ``index`` attribute), then by name."""
        with h5py.File(self.path, "r") as f:
            group = f["proteins"]
            keys = sorted(group, key=lambda k: (int(group[k].attrs.get("index", 1 << 62)), k))
            for key in keys:
                ds = group[key]
                yield _attr(ds.attrs["id"]), _attr(ds.attrs["sequence"]), ds[()].astype(np.float32)

    def get(self, pid: str) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return f["proteins"][key_for(pid)][()].astype(np.float32)

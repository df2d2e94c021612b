"""ESM-2 per-residue embeddings through fair-esm's own model code.

The model is built by :func:`esm.pretrained.load_model_and_alphabet_core` (fair-esm 2.0.0)
from a checkpoint that nesscan reads itself, safely:

* ``torch.load(..., weights_only=True)`` with only :class:`argparse.Namespace` allow-listed
  (ESM-2 checkpoints keep ``cfg["model"]`` as a Namespace). Nothing else is ever unpickled;
  a checkpoint that needs another Python class is refused with a one-line error.
* No contact-regression file is needed: nesscan only takes representations, and fair-esm's
  warning about the missing regression weights is silenced.

Where the weights come from, in this order:

1. ``weights=PATH`` (``--weights``): a fair-esm ``.pt`` checkpoint;
2. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<name>.pt`` (``$TORCH_HOME/hub``,
   default ``~/.cache/torch/hub``), which is where fair-esm itself downloads to; this also
   applies to custom ``esm2_*`` names, so a fine-tuned checkpoint can be dropped there;
3. for the six released models only: a download from
   ``https://dl.fbaipublicfiles.com/fair-esm/models/<name>.pt`` into that cache, unless
   ``download=False`` or ``NESSCAN_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from typing import Iterator, Sequence

import numpy as np
import torch

from .embedder_base import ESM2_MODELS, Embedder
from .errors import NesscanError
from .esm2_kernels import to_half, use_sdpa
from .fasta import Protein

log = logging.getLogger("nesscan.esm2")

DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
MAX_RESIDUES = 1022  # ESM-2 was trained on crops of 1024 tokens: BOS + 1022 residues + EOS
OVERLAP = 256
CPU_BATCH_TOKENS = 1024  # on CPU one sequence already fills the cores: larger batches were 1.4x slower
CUDA_BATCH_TOKENS = 16384
# a token batch closes before padding would exceed this fraction of its real tokens: padded
# positions cost full compute (and attention quadratically), and on CPU, where one sequence
# already fills the cores, a batch of mixed lengths was 1.7x slower than one sequence at a time
PAD_SLACK = 0.25
_CUSTOM_NAME = re.compile(r"^esm2_[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LETTERS = "ACDEFGHIKLMNPQRSTVWYXBZUO"  # all have their own token in ESM's alphabet


def offline() -> bool:
    """True when ``NESSCAN_OFFLINE`` forbids downloads (1/true/yes/on)."""
    return os.environ.get("NESSCAN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_checkpoint_path(name: str) -> str:
    """Where torch hub (and fair-esm) keeps ``<name>.pt``; honours ``TORCH_HOME``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", f"{name}.pt")


def sha256_file(path: str, block: int = 1 << 20) -> str:
    """SHA-256 of a file, read in blocks (checkpoints can be tens of GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def chunk_spans(length: int, max_residues: int = MAX_RESIDUES, overlap: int = OVERLAP) -> list[tuple[int, int, int, int]]:
    """How a protein of ``length`` residues is cut: ``(start, end, keep_start, keep_end)`` per chunk.

    Residues ``start:end`` are embedded together (with their own BOS/EOS), and the stitched
    result takes residues ``keep_start:keep_end`` from that chunk. Proteins of at most
    ``max_residues`` are one chunk. Longer ones are cut into ``n = ceil((L - overlap) /
    (max_residues - overlap))`` chunks of exactly ``max_residues`` residues whose starts are
    spread evenly from 0 to ``L - max_residues`` (``round(i * (L - max_residues) / (n - 1))``),
    so neighbours overlap by at least ``overlap`` residues. In each overlap ``[a, b)`` (``a`` the
    right chunk's start, ``b`` the left chunk's end) the midpoint is ``m = (a + b) // 2``:
    residues before ``m`` come from the left chunk, residues from ``m`` on from the right one.
    Every residue is thus taken from a chunk in which it lies at least about ``overlap / 2``
    residues from an artificial (non-terminal) chunk edge.
    """
    if max_residues < 1 or not 0 <= overlap < max_residues:
        raise NesscanError(
            f"ESM-2 chunking needs max_residues >= 1 and 0 <= overlap < max_residues (got {max_residues}, {overlap})"
        )
    if length <= max_residues:
        return [(0, length, 0, length)]
    n = math.ceil((length - overlap) / (max_residues - overlap))
    span = length - max_residues
    starts = [round(i * span / (n - 1)) for i in range(n)]
    ends = [s + max_residues for s in starts]
    cuts = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(n - 1)] + [length]
    return [(starts[i], ends[i], cuts[i], cuts[i + 1]) for i in range(n)]


def _pick_device(device: str | None) -> torch.device:
    d = (device or "auto").strip().lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", d):
        if not torch.cuda.is_available():
            log.warning("--device %s requested but torch sees no CUDA GPU; falling back to CPU", d)
            return torch.device("cpu")
        return torch.device(d)
    raise NesscanError(f"unknown device '{device}'; use auto, cpu or cuda")


def _describe_load_error(path: str, e: BaseException) -> str:
    text = " ".join(str(e).split())
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if m:
        return (
            f"ESM-2 weights at {path} hold a Python object of type {m.group(1)}, which nesscan does not "
            f"unpickle (only tensors and argparse.Namespace are allowed): not a fair-esm ESM-2 checkpoint"
        )
    m = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    if m:  # drop torch's advice to retry with weights_only=False
        text = m.group(1).strip()
    if len(text) > 200:
        text = text[:200] + "..."
    reason = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return f"cannot read ESM-2 weights at {path}: not a PyTorch checkpoint ({reason})"


def _torch_load(path: str):
    """Weights-only load; ``argparse.Namespace`` is the only allow-listed class. Zip-format
    checkpoints (every torch >= 1.6 file) are memory-mapped rather than read into RAM."""
    mmap = zipfile.is_zipfile(path)
    with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as e:
            raise NesscanError(_describe_load_error(path, e)) from None


def _esm2_config(path: str, data) -> tuple[dict, argparse.Namespace]:
    """Checks the fair-esm ESM-2 layout; returns (state_dict, cfg)."""
    not_esm = f"ESM-2 weights at {path} are not a fair-esm ESM-2 checkpoint"
    if not isinstance(data, Mapping) or "model" not in data or "cfg" not in data:
        keys = ", ".join(map(str, list(data)[:6])) if isinstance(data, Mapping) else type(data).__name__
        raise NesscanError(f"{not_esm}: expected a dict with 'model' and 'cfg' (found {keys or 'an empty dict'})")
    state, cfg = data["model"], data["cfg"]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NesscanError(f"{not_esm}: 'model' is not a state dict of tensors")
    cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    if isinstance(cfg, Mapping) and all(isinstance(k, str) for k in cfg):
        cfg = argparse.Namespace(**cfg)
    if not isinstance(cfg, argparse.Namespace):
        raise NesscanError(f"{not_esm}: no cfg['model'] with the model's hyper-parameters")
    values = {}
    for key in ("encoder_layers", "encoder_embed_dim", "encoder_attention_heads"):
        v = getattr(cfg, key, None)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise NesscanError(f"{not_esm}: cfg['model'].{key} is missing or not a positive integer")
        values[key] = int(v)
    # every released ESM-2 was trained with token dropout; fair-esm needs the flag
    values["token_dropout"] = bool(getattr(cfg, "token_dropout", True))
    if values["encoder_embed_dim"] % values["encoder_attention_heads"]:
        raise NesscanError(f"{not_esm}: embed dim {values['encoder_embed_dim']} is not divisible by "
                           f"{values['encoder_attention_heads']} attention heads")
    return dict(state), argparse.Namespace(**values)


def _summarise_state_error(e: BaseException) -> str:
    """fair-esm's / torch's state-dict error, shortened to one readable clause."""
    text = " ".join(str(e).split())
    parts = []
    for label, pattern in (("missing", r"Missing key\(s\) in state_dict: \{(.*?)\}"),
                           ("unexpected", r"Unexpected key\(s\) in state_dict: \{(.*?)\}")):
        m = re.search(pattern, text)
        if m:
            keys = sorted(k.strip(" '\"") for k in m.group(1).split(","))
            parts.append(f"{len(keys)} {label} tensors (e.g. {', '.join(keys[:3])})")
    m = re.search(r"size mismatch for ([\w.]+): (.*?)(?:\.(?: |$)|$)", text)
    if m:
        parts.append(f"wrong shape for {m.group(1)} ({m.group(2)})")
    if parts:
        return "; ".join(parts)
    return text[:300] + ("..." if len(text) > 300 else "")


class ESM2Embedder(Embedder):
    """fair-esm ESM-2 representations, one row per residue (BOS/EOS removed), float32.

    ``name``: one of :data:`nesscan.embedders.ESM2_MODELS` (the checkpoint's layers, width
    and heads must match the name) or any other ``esm2_<name>`` for a custom or fine-tuned
    ESM-2, whose architecture is read from the checkpoint (weights from ``weights`` or the
    hub cache; never downloaded). See the module docstring for where weights are found.

    ``layer``: which representation, 0 (token embeddings) .. ``num_layers`` (the default;
    fair-esm applies the final layer norm to it); negative values count from the end
    (-1 = last).

    Attention (``sdpa``, default True, all devices): each layer's self-attention runs through
    :func:`torch.nn.functional.scaled_dot_product_attention`
    (:func:`nesscan.esm2_kernels.use_sdpa`): fused kernels
    (FlashAttention or the memory-efficient kernel on CUDA, a flash-style kernel on CPU) with
    no ``len x len`` float32 attention weights materialised per layer, the same projections
    and rotary embedding as fair-esm, and the key-padding mask passed as a boolean mask.
    ``sdpa=False`` keeps fair-esm's explicit attention (``bmm`` + float32 softmax + ``bmm``).
    The choice is recorded as ``attention`` (``"sdpa"`` or ``"explicit"``) and logged.

    Precision: float32 on CPU. On CUDA the weights are cast to float16 (``model.half()``, as
    ESMFold runs ESM-2) with the rotary position tables computed in float32; attention softmax
    is accumulated in float32 (fair-esm's explicit softmax, or the SDPA kernels' online
    softmax) and torch's layer norm accumulates in float32. This float16 model is used instead
    of ``torch.autocast`` (bf16/fp16) as its documented equivalent for inference: autocast
    would keep the float32 weights in memory and cast them per operation on every call, and
    its one benefit, float32 where reduced precision hurts, is already covered here (the
    rotary tables by :func:`nesscan.esm2_kernels.to_half`, softmax and layer norm
    accumulating in float32). Outputs are always float32 numpy arrays. The model is in eval
    mode and runs under ``torch.inference_mode()``.

    Transfers on CUDA: the token batch goes through pinned host memory with a non-blocking
    copy, and the representations come back into a pinned buffer with a non-blocking copy
    followed by a stream synchronisation before numpy reads them. CPU runs copy nothing.

    Long proteins: ESM-2 was trained on at most 1022 residues. A protein longer than
    ``max_residues`` (1022) is cut into overlapping chunks of exactly ``max_residues`` residues
    (at least ``overlap`` = 256 residues shared by neighbours, starts spread evenly so that every
    chunk is full length); each chunk is embedded as its own sequence with its own BOS/EOS, and
    the pieces are stitched at the midpoints of the overlaps: positions before an overlap's
    midpoint come from the left chunk, positions from the midpoint on from the right chunk
    (:func:`chunk_spans`). Chunks are batched like any other sequence.

    Batching: :meth:`batches` packs proteins so that ``rows x longest row`` (a chunked protein
    counts one row of ``max_residues + 2`` tokens per chunk) stays within
    ``max_batch_tokens`` (1024 on CPU, 16384 on CUDA); :meth:`embed_batch` applies the same
    budget internally, so any list of proteins is safe to pass. It sorts the rows by length
    and also closes a batch before its padding would exceed :data:`PAD_SLACK` (25 %) of its
    real tokens. On CUDA out-of-memory the
    sub-batch is halved and retried (and the budget lowered for later batches).
    """

    def __init__(
        self,
        name: str,
        weights: str | None = None,
        layer: int | None = None,
        device: str = "auto",
        download: bool = True,
        max_residues: int = MAX_RESIDUES,
        overlap: int = OVERLAP,
        max_batch_tokens: int | None = None,
        sdpa: bool = True,
    ) -> None:
        import esm  # noqa: F401  (fair-esm; imported lazily so the builtin embedder needs no ESM)
        import esm.pretrained

        if not isinstance(name, str) or not (name in ESM2_MODELS or _CUSTOM_NAME.match(name)):
            raise NesscanError(
                f"'{name}' is not an ESM-2 model name: use one of {', '.join(ESM2_MODELS)} "
                f"or esm2_<name> (letters, digits, _ . -) with --weights"
            )
        chunk_spans(max_residues + 1, max_residues, overlap)  # validates the chunking parameters
        self.name = name
        self.max_residues = int(max_residues)
        self.overlap = int(overlap)
        self.weights_path = self._resolve_weights(name, weights, download)
        self.weights_sha256 = sha256_file(self.weights_path)

        state, cfg = _esm2_config(self.weights_path, _torch_load(self.weights_path))
        self.num_layers = cfg.encoder_layers
        self.dim = cfg.encoder_embed_dim
        self.heads = cfg.encoder_attention_heads
        if name in ESM2_MODELS:
            want_layers, want_dim, want_heads = ESM2_MODELS[name]
            if (self.num_layers, self.dim) != (want_layers, want_dim):
                raise NesscanError(
                    f"weights at {self.weights_path} are a {self.num_layers}-layer {self.dim}-dim ESM-2, "
                    f"not {name} ({want_layers} layers, {want_dim} dims); pass the matching --weights "
                    f"or name a custom model esm2_<name>"
                )
            if self.heads != want_heads:
                raise NesscanError(
                    f"weights at {self.weights_path} have {self.heads} attention heads, not {want_heads} as "
                    f"{name}; pass the matching --weights or name a custom model esm2_<name>"
                )
        self.layer = self._resolve_layer(layer)

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Regression weights not found")
            try:
                model, alphabet = esm.pretrained.load_model_and_alphabet_core(
                    name, {"model": state, "cfg": {"model": cfg}}, regression_data=None
                )
            except (RuntimeError, KeyError, ValueError) as e:
                raise NesscanError(
                    f"ESM-2 weights at {self.weights_path} do not fit a {self.num_layers}-layer {self.dim}-dim "
                    f"ESM-2: {_summarise_state_error(e)}"
                ) from None
        del state

        self._device = _pick_device(device)
        self.device = str(self._device)
        model.eval()
        if self._device.type == "cuda":
            to_half(model)
            self.precision = "float16"
        else:
            self.precision = "float32"
        self.attention = "sdpa" if sdpa and use_sdpa(model) else "explicit"
        self.model = model.to(self._device)
        self.alphabet = alphabet
        lookup = np.full(128, -1, dtype=np.int64)
        for ch in _LETTERS:
            lookup[ord(ch)] = lookup[ord(ch.lower())] = alphabet.get_idx(ch)
        self._lookup = lookup
        default_budget = CUDA_BATCH_TOKENS if self._device.type == "cuda" else CPU_BATCH_TOKENS
        self.max_batch_tokens = int(max_batch_tokens or default_budget)
        log.info(
            "%s: %d layers, %d dims, layer %d, %s on %s, %s attention (weights %s, sha256 %s)",
            name, self.num_layers, self.dim, self.layer, self.precision, self.device, self.attention,
            self.weights_path, self.weights_sha256[:12],
        )

    # ---- set-up helpers -------------------------------------------------------------------

    @staticmethod
    def _resolve_weights(name: str, weights: str | None, download: bool) -> str:
        if weights:
            path = os.path.expanduser(os.fspath(weights))
            if os.path.isdir(path):
                raise NesscanError(f"ESM-2 weights path is a directory, not a .pt file: {path}")
            if not os.path.isfile(path):
                raise NesscanError(f"ESM-2 weights file not found: {path}")
            if os.path.getsize(path) == 0:
                raise NesscanError(f"ESM-2 weights file is empty: {path}")
            return path
        cached = hub_checkpoint_path(name)
        if os.path.isfile(cached):
            return cached
        known = name in ESM2_MODELS
        if not known:
            raise NesscanError(
                f"custom ESM-2 model {name} needs its checkpoint: pass --weights PATH "
                f"(a fair-esm .pt file) or put it at {cached}"
            )
        if not download or offline():
            why = "downloads are off (NESSCAN_OFFLINE=1)" if offline() else "downloading is disabled"
            raise NesscanError(
                f"no weights for {name}: not in the torch hub cache ({cached}) and {why}; "
                f"pass --weights PATH (a fair-esm .pt file) or put the file at {cached}"
            )
        url = DOWNLOAD_URL.format(name=name)
        log.info("downloading %s weights from %s to %s", name, url, cached)
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            torch.hub.download_url_to_file(url, cached, progress=True)
        except Exception as e:  # network, HTTP, disk: all reported on one line
            raise NesscanError(
                f"no weights for {name}: not in the torch hub cache ({cached}) and the download from {url} "
                f"failed ({type(e).__name__}: {' '.join(str(e).split())[:160]}); pass --weights PATH "
                f"(a fair-esm .pt file) or put the file at {cached}"
            ) from None
        if not os.path.isfile(cached):
            raise NesscanError(f"download of {url} left no file at {cached}; pass --weights PATH")
        return cached

    def _resolve_layer(self, layer: int | None) -> int:
        n = self.num_layers
        if layer is None:
            return n
        try:
            value = int(layer)
        except (TypeError, ValueError):
            raise NesscanError(f"layer must be an integer, got {layer!r}") from None
        resolved = value + n + 1 if value < 0 else value
        if not 0 <= resolved <= n:
            raise NesscanError(
                f"layer {value} is out of range for {self.name} ({n} layers): use 0..{n} or -{n + 1}..-1"
            )
        return resolved

    # ---- batching -------------------------------------------------------------------------

    def _rows(self, length: int) -> tuple[int, int]:
        """(number of model rows, tokens per row) for a protein of ``length`` residues."""
        if length <= self.max_residues:
            return 1, length + 2
        return len(chunk_spans(length, self.max_residues, self.overlap)), self.max_residues + 2

    def token_length(self, p: Protein) -> int:
        """Tokens the protein costs, BOS/EOS of every chunk included."""
        rows, width = self._rows(len(p))
        return rows * width

    def _pack(self, proteins: list[Protein]) -> Iterator[list[Protein]]:
        """Like :meth:`Embedder._pack`, with a chunked protein counted as one row per chunk:
        ``total rows x longest row <= max_batch_tokens`` (a protein that alone exceeds it goes alone)."""
        batch: list[Protein] = []
        rows = longest = 0
        for p in sorted(proteins, key=len):
            r, w = self._rows(len(p))
            if batch and max(longest, w) * (rows + r) > self.max_batch_tokens:
                yield batch
                batch, rows, longest = [], 0, 0
            batch.append(p)
            rows += r
            longest = max(longest, w)
        if batch:
            yield batch

    # ---- embedding ------------------------------------------------------------------------

    def _encode(self, seq: str) -> np.ndarray:
        raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
        idx = self._lookup[np.minimum(raw, 127)]
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            i = int(bad[0])
            raise NesscanError(f"ESM-2 cannot embed character {seq[i]!r} at position {i + 1}")
        return idx

    def embed_batch(self, sequences: Sequence[str]) -> list[np.ndarray]:
        """One ``L x dim`` float32 array per sequence, in input order."""
        pieces = []  # (sequence index, chunk start, chunk end, keep start, keep end)
        encoded = []
        for k, seq in enumerate(sequences):
            encoded.append(self._encode(seq))
            for span in chunk_spans(len(seq), self.max_residues, self.overlap):
                pieces.append((k, *span))
        reps = self._run([encoded[k][s:e] for k, s, e, _, _ in pieces])
        out = [np.empty((len(s), self.dim), dtype=np.float32) for s in sequences]
        for (k, s, _e, a, b), rep in zip(pieces, reps):
            out[k][a:b] = rep[a - s : b - s]
        return out

    def _run(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Representations for token rows (no BOS/EOS yet), packed within the token budget."""
        results: list[np.ndarray | None] = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        groups, group, longest, real = [], [], 0, 0
        for i in order:
            w = len(rows[i]) + 2
            cost = max(longest, w) * (len(group) + 1)  # tokens the model sees, padding included
            if group and (cost > self.max_batch_tokens or cost > (1 + PAD_SLACK) * (real + w)):
                groups.append(group)
                group, longest, real = [], 0, 0
            group.append(i)
            longest = max(longest, w)
            real += w
        if group:
            groups.append(group)
        while groups:
            group = groups.pop(0)
            try:
                reps = self._forward([rows[i] for i in group])
            except torch.cuda.OutOfMemoryError:
                reps = None
            if reps is None:  # retried outside the except block, so the failed graph is freed
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                width = max(len(rows[i]) for i in group) + 2
                if len(group) == 1:
                    raise NesscanError(
                        f"out of GPU memory embedding one {width}-token sequence with {self.name}; "
                        f"use --device cpu or a smaller model"
                    )
                self.max_batch_tokens = max(width, min(self.max_batch_tokens, width * len(group)) // 2)
                log.warning("GPU out of memory on %d sequences of %d tokens; retrying in halves "
                            "(max_batch_tokens now %d)", len(group), width, self.max_batch_tokens)
                half = len(group) // 2
                groups[:0] = [group[:half], group[half:]]
                continue
            for i, rep in zip(group, reps):
                results[i] = rep
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _forward(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        alphabet = self.alphabet
        width = max(len(r) for r in rows) + 2
        tokens = np.full((len(rows), width), alphabet.padding_idx, dtype=np.int64)
        for i, r in enumerate(rows):
            tokens[i, 0] = alphabet.cls_idx
            tokens[i, 1 : len(r) + 1] = r
            tokens[i, len(r) + 1] = alphabet.eos_idx
        t = torch.from_numpy(tokens)
        cuda = self._device.type == "cuda"
        if cuda:  # pinned staging buffer: a direct DMA copy, queued without waiting
            t = t.pin_memory().to(self._device, non_blocking=True)
        else:
            t = t.to(self._device)
        rep = self.model(t, repr_layers=[self.layer])["representations"][self.layer]
        if cuda:
            rep = rep.float()
            host = torch.empty(rep.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(rep, non_blocking=True)
            torch.cuda.current_stream(self._device).synchronize()  # the copy has landed before numpy reads it
            rep = host.numpy()  # copied out below, so the pinned buffer goes back to torch's cache
            return [rep[i, 1 : len(r) + 1].copy() for i, r in enumerate(rows)]
        rep = rep.float().cpu().numpy()
        return [np.ascontiguousarray(rep[i, 1 : len(r) + 1]) for i, r in enumerate(rows)]

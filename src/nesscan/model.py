"""Window classifiers and their on-disk form (``model.safetensors`` + ``model.json``).

A classifier reads one window (``W`` residues x ``D`` embedding features) and returns a logit
for "this window holds a CRM1 nuclear export signal". Inputs are standardised with the
training set's per-feature mean and standard deviation, which are stored with the weights.

Architectures (``arch`` in the card):
* ``transformer`` — linear projection to ``d_model``, learned position embedding, a small
  pre-norm ``nn.TransformerEncoder``, masked mean pooling, linear head;
* ``cnn`` — two 1-D convolutions (kernel 5) and masked max pooling;
* ``mlp`` — the flattened window through two hidden layers;
* ``gbm`` — gradient-boosted trees (:mod:`nesscan.gbm`) on chosen per-residue channels of the
  window (one-hot identity, hydropathy, disorder, pLDDT), stored in ``trees.safetensors``;
* ``stack`` — a neural classifier (``net_arch``, the CNN by default) and the trees, combined by
  a logistic regression over their logits (``stack`` in the card), fitted on out-of-fold scores.

Weights are loaded with ``safetensors`` only; nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import NesscanError

CARD_FORMAT = "nesscan-model/1"


class _Standardise(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def forward(self, x):
        return (x - self.mean) / self.std


class WindowTransformer(nn.Module):
    def __init__(self, in_dim: int, window: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                 ff: int = 128, dropout: float = 0.1):
        super().__init__()
        self.norm_in = _Standardise(in_dim)
        self.proj = nn.Linear(in_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(window, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x, mask):
        h = self.proj(self.norm_in(x)) + self.pos[: x.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~mask)
        h = self.norm_out(h)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)


class WindowCNN(nn.Module):
    def __init__(self, in_dim: int, window: int, channels: int = 64, dropout: float = 0.1, **_):
        super().__init__()
        self.norm_in = _Standardise(in_dim)
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, channels, 5, padding=2), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 5, padding=2), nn.GELU(),
        )
        self.head = nn.Linear(channels, 1)

    def positions(self, x, mask):
        """Per-position features ``(B, W, channels)`` before the max pooling."""
        return self.net((self.norm_in(x) * mask.unsqueeze(-1)).transpose(1, 2)).transpose(1, 2)

    def forward(self, x, mask):
        h = self.positions(x, mask).masked_fill(~mask.unsqueeze(-1), -1e4)
        return self.head(h.max(1).values).squeeze(-1)


class WindowMLP(nn.Module):
    def __init__(self, in_dim: int, window: int, hidden: int = 128, dropout: float = 0.1, **_):
        super().__init__()
        self.norm_in = _Standardise(in_dim)
        self.window = window
        self.net = nn.Sequential(
            nn.Linear(in_dim * window, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, 1),
        )

    def forward(self, x, mask):
        h = self.norm_in(x) * mask.unsqueeze(-1)
        if h.shape[1] < self.window:
            h = nn.functional.pad(h, (0, 0, 0, self.window - h.shape[1]))
        return self.net(h.flatten(1)).squeeze(-1)


ARCHS = {"transformer": WindowTransformer, "cnn": WindowCNN, "mlp": WindowMLP}


@dataclass
class ModelCard:
    embedder: str
    dimension: int
    window: int
    layer: int
    arch: str
    hparams: dict
    weights_sha256: str = ""  # the embedder's weights checksum (builtin: its feature-table checksum)
    extra: dict = field(default_factory=dict)
    context: str = "none"  # extra per-residue channels the model reads (nesscan.disorder spec id, or "none")
    net_arch: str = ""  # the neural classifier of a "stack" (default: cnn)

    def to_json(self) -> dict:
        d = {
            "format": CARD_FORMAT,
            "embedder": self.embedder,
            "embedder_weights_sha256": self.weights_sha256,
            "context": self.context,
            "dimension": self.dimension,
            "window": self.window,
            "layer": self.layer,
            "arch": self.arch,
            "hparams": self.hparams,
        }
        if self.net_arch:
            d["net_arch"] = self.net_arch
        d.update(self.extra)
        return d


WINDOW_MODELS = (*ARCHS, "gbm", "stack")


def net_arch(card: ModelCard) -> str | None:
    """The neural classifier's architecture (``None`` for trees alone)."""
    if card.arch == "gbm":
        return None
    if card.arch == "stack":
        return card.net_arch or "cnn"
    return card.arch


def build(card: ModelCard) -> nn.Module | None:
    arch = net_arch(card)
    if card.arch not in WINDOW_MODELS or (arch is not None and arch not in ARCHS):
        raise NesscanError(f"unknown classifier architecture '{card.arch}' (known: {', '.join(WINDOW_MODELS)})")
    return None if arch is None else ARCHS[arch](card.dimension, card.window, **card.hparams)


def save(model: nn.Module | None, card: ModelCard, outdir: str, references: dict | None = None,
         trees: dict | None = None) -> None:
    """Write ``model.safetensors`` (the neural classifier; empty for trees alone), ``model.json``,
    ``trees.safetensors`` (gradient-boosted trees, :func:`nesscan.gbm.export`) and, for the
    similarity component, ``references.safetensors`` (reference NES / non-NES window centroids)."""
    os.makedirs(outdir, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()} if model is not None else {}
    if not tensors:
        tensors = {"_none": torch.zeros(1)}  # safetensors files hold at least one tensor
    if trees is not None:
        tmp_t = os.path.join(outdir, ".trees.safetensors.tmp")
        save_file({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in trees.items()}, tmp_t,
                  metadata={"format": CARD_FORMAT})
        os.replace(tmp_t, os.path.join(outdir, "trees.safetensors"))
    tmp_w = os.path.join(outdir, ".model.safetensors.tmp")
    tmp_j = os.path.join(outdir, ".model.json.tmp")
    save_file(tensors, tmp_w, metadata={"format": CARD_FORMAT})
    if references is not None:
        tmp_r = os.path.join(outdir, ".references.safetensors.tmp")
        save_file({k: torch.as_tensor(np.asarray(v, dtype=np.float32)).contiguous() for k, v in references.items()}, tmp_r)
        os.replace(tmp_r, os.path.join(outdir, "references.safetensors"))
    with open(tmp_j, "w") as fh:
        json.dump(card.to_json(), fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp_w, os.path.join(outdir, "model.safetensors"))
    os.replace(tmp_j, os.path.join(outdir, "model.json"))


@dataclass
class LoadedModel:
    net: nn.Module
    card: ModelCard
    raw: dict  # the whole model.json
    path: str
    references: dict | None = None  # similarity centroids (numpy), when shipped
    booster: object | None = None  # gradient-boosted trees (nesscan.gbm.Booster) of gbm / stack models
    protein_booster: object | None = None  # the protein model's trees, when it is gradient boosting

    @property
    def window(self) -> int:
        return self.card.window


def load(path: str) -> LoadedModel:
    """Load a model directory (or its ``model.json``)."""
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith(".json"):
        path = os.path.dirname(path) or "."
    card_path = os.path.join(path, "model.json")
    weights_path = os.path.join(path, "model.safetensors")
    for p in (card_path, weights_path):
        if not os.path.exists(p):
            raise NesscanError(f"model file not found: {p}")
    try:
        with open(card_path) as fh:
            raw = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NesscanError(f"model card {card_path} is not valid JSON: {e}") from None
    if raw.get("format") != CARD_FORMAT:
        raise NesscanError(f"{card_path} is not a nesscan model card (format {raw.get('format')!r})")
    card = ModelCard(
        embedder=raw["embedder"], dimension=int(raw["dimension"]), window=int(raw["window"]),
        layer=int(raw["layer"]), arch=raw["arch"], hparams=dict(raw.get("hparams", {})),
        weights_sha256=raw.get("embedder_weights_sha256", ""), context=raw.get("context", "none"),
        net_arch=raw.get("net_arch", ""),
    )
    net = build(card)
    try:
        state = load_file(weights_path)
        if net is not None:
            net.load_state_dict(state)
    except Exception as e:  # safetensors header errors, shape mismatches
        raise NesscanError(f"cannot load classifier weights {weights_path}: {str(e).splitlines()[0]}") from None
    if net is not None:
        net.eval()
    booster = protein_booster = None
    trees_path = os.path.join(path, "trees.safetensors")
    needs_protein = (raw.get("protein_model") or {}).get("type") == "gradient_boosting"
    if card.arch in ("gbm", "stack") or needs_protein:
        if not os.path.exists(trees_path):
            raise NesscanError(f"model file not found: {trees_path}")
        try:
            from .gbm import Booster

            arrays = {k: v.numpy() for k, v in load_file(trees_path).items()}
            if card.arch in ("gbm", "stack"):
                booster = Booster(arrays)
            if needs_protein:
                protein_booster = Booster(arrays, prefix="protein.")
        except Exception as e:
            raise NesscanError(f"cannot load the trees {trees_path}: {str(e).splitlines()[0]}") from None
    refs = None
    ref_path = os.path.join(path, "references.safetensors")
    if os.path.exists(ref_path):
        try:
            refs = {k: v.numpy().astype(np.float64) for k, v in load_file(ref_path).items()}
        except Exception as e:
            raise NesscanError(f"cannot load reference windows {ref_path}: {str(e).splitlines()[0]}") from None
    return LoadedModel(net, card, raw, path, refs, booster, protein_booster)


def check_compatible(model: LoadedModel, meta: dict, source: str) -> None:
    """Refuse embeddings that were not made by the embedder the model was trained on."""
    card = model.card
    problems = []
    if meta["embedder"] != card.embedder:
        problems.append(f"embedder {meta['embedder']} != {card.embedder}")
    if int(meta["dimension"]) != card.dimension:
        problems.append(f"dimension {meta['dimension']} != {card.dimension}")
    if int(meta["layer"]) != card.layer:
        problems.append(f"layer {meta['layer']} != {card.layer}")
    if card.weights_sha256 and meta.get("weights_sha256") and meta["weights_sha256"] != card.weights_sha256:
        problems.append("embedder weights checksum differs")
    got = meta.get("context") or "none"
    if got != card.context:
        problems.append(f"context channels {got} != {card.context}")
    if problems:
        raise NesscanError(
            f"{source} does not match model {model.path}: {'; '.join(problems)} — embed with --embedder {card.embedder}"
            + (f" --layer {card.layer}" if card.layer else "")
            + (" --context disorder" if card.context != "none" else " --context none")
        )


def logit_to_prob(x):
    return 1.0 / (1.0 + math.exp(-x))

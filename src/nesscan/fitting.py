"""Fitting the window models (used by ``nesscan train`` and its cross-validation).

The layer under :mod:`nesscan.crossval` and :mod:`nesscan.train`; it imports neither.

Examples (window size ``W``, default 20):
* positives — every window that contains a known NES's hydrophobic core (first to last Φ
  residue of ``hydrophobic_positions``; the span itself where none are listed);
* negatives — random windows of CRM1 non-binders and bacterial controls, and windows of the
  NES-annotated proteins that overlap none of their annotated NES ("other windows of the same
  proteins": they teach ranking inside a protein, not protein composition);
* hard negatives (``--phi-mutants``, seed idea) — the positive windows re-embedded after every
  Φ residue is mutated to alanine;
* shuffled hard negatives (``--neg-per-shuffled N``) — in a composition-preserving shuffle of
  each training protein (a seed apart from the background null's), up to N windows that hold a
  Kosugi consensus match: chance motifs with the protein's own composition, the null that the
  E-values are measured against. They are drawn from the training fold's proteins only.

Splits are by ``cluster`` (mmseqs2 40 % identity) everywhere: the outer k-fold CV uses
``StratifiedGroupKFold`` (stratified on the group), and early stopping uses a validation set
of held-out clusters inside each training fold. Early stopping watches validation window
ROC AUC. Seeds fix numpy, torch and the fold assignment; torch runs deterministic kernels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from . import scoring
from .data import Record
from .embedders import Embedder
from .errors import NesscanError
from .model import ModelCard, WindowCNN, build

log = logging.getLogger("nesscan.train")


@dataclass
class TrainConfig:
    window: int = 20
    arch: str = "stack"
    net_arch: str = "cnn"  # the network of a stack
    hparams: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 5
    seed: int = 0
    folds: int = 5
    neg_per_nonbinder: int = 30
    neg_per_bacterial: int = 5
    neg_per_annotated: int = 20
    phi_mutants: bool = True
    val_fraction: float = 0.15
    tree_iterations: int = 200
    tree_learning_rate: float = 0.1
    tree_max_leaf_nodes: int = 31
    tree_channels: list | None = None  # set from the embedder (tree_channels)
    null_shuffles: int = 1  # composition-preserving shuffles per training protein for the background null
    neg_per_shuffled: int = 0  # consensus-motif windows per shuffled training protein, as negatives
    listwise: float = 0.0  # weight of the within-protein listwise loss next to BCE (0: BCE only)
    phi_head: float = 0.0  # weight of the per-residue Φ head's loss (multitask, CNN only; 0: none)


HARD_SHUFFLE_SALT = 1000  # seed offset of the training shuffles (the background null uses seed + k)
HARD_GROUP = "shuffled_hard"


def hard_shuffle_records(records: list[Record], cfg: TrainConfig) -> list[Record]:
    """A composition-preserving shuffle of every record (``<id>|hard``, same cluster, group
    ``shuffled_hard``); deterministic in ``cfg.seed`` and the id, and never the null's shuffle."""
    from . import calibrate

    return [Record(f"{r.id}|hard", calibrate.shuffle_sequence(r.sequence, cfg.seed + HARD_SHUFFLE_SALT, r.id),
                   r.cluster, HARD_GROUP, 0) for r in records if r.group != HARD_GROUP]


def with_hard_negatives(records: list[Record], embs: dict, cfg: TrainConfig) -> list[Record]:
    """``records`` plus the shuffles of exactly these records (so a fold trains only on shuffles
    of its own proteins) when ``cfg.neg_per_shuffled``; their embeddings must be in ``embs``."""
    if not cfg.neg_per_shuffled:
        return records
    hard = hard_shuffle_records(records, cfg)
    missing = [h.id for h in hard if h.id not in embs]
    if missing:
        raise NesscanError(f"{len(missing)} shuffled hard negatives were not embedded (e.g. {missing[0]})")
    return records + hard


def set_seed(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- examples


def _core(span) -> tuple[int, int]:
    if span.phi:
        return min(span.phi), max(span.phi)
    return span.start, span.end


def _mutant(seq: str, records_spans) -> str:
    s = list(seq)
    for sp in records_spans:
        for p in sp.phi:
            if 1 <= p <= len(s):
                s[p - 1] = "A"
    return "".join(s)


@dataclass
class Examples:
    X: torch.Tensor  # (N, W, D)
    y: torch.Tensor  # (N,)
    protein: list[str]
    start0: list[int]
    mutant: np.ndarray  # bool
    phi: torch.Tensor | None = None  # (N, W): 1 at the window's annotated Φ residues (multitask head)


def example_windows(records: list[Record], cfg: TrainConfig, rng: np.random.Generator,
                    mutants: bool) -> list[tuple[str, int, float, bool]]:
    """(protein id, 0-based window start, label, from the Φ->A mutant) for every example."""
    W = cfg.window
    out = []
    for r in records:
        L = len(r.sequence)
        if L < W:
            continue
        if r.group == "nes_annotated" and r.spans:
            pos_starts = set()
            for sp in r.spans:
                lo, hi = _core(sp)
                pos_starts.update(range(max(1, hi - W + 1), min(lo, L - W + 1) + 1))
            for s in sorted(pos_starts):
                out.append((r.id, s - 1, 1.0, False))
                if mutants:
                    out.append((r.id, s - 1, 0.0, True))
            covered = np.zeros(L + 2, dtype=bool)
            for sp in r.spans:
                covered[max(1, sp.start - 3) : min(L, sp.end + 3) + 1] = True
            free = [s for s in range(1, L - W + 2) if not covered[s : s + W].any()]
            if free:
                pick = rng.choice(free, size=min(cfg.neg_per_annotated, len(free)), replace=False)
                out.extend((r.id, int(s) - 1, 0.0, False) for s in sorted(pick))
        elif r.group == HARD_GROUP:
            # windows centred on a consensus match (Φ1..Φ4), at most one per window start
            from .motifs import kosugi_matches

            starts = sorted({s0 for m in kosugi_matches(r.sequence, phi0=False)
                             for s0 in [min(max(0, (m.phi[0] + m.phi[-1]) // 2 - W // 2), L - W)]})
            if starts:
                pick = rng.choice(starts, size=min(cfg.neg_per_shuffled, len(starts)), replace=False)
                out.extend((r.id, int(s0), 0.0, False) for s0 in sorted(pick))
        elif r.group in ("crm1_nonbinder", "bacterial_control"):
            n = cfg.neg_per_nonbinder if r.group == "crm1_nonbinder" else cfg.neg_per_bacterial
            starts = rng.choice(L - W + 1, size=min(n, L - W + 1), replace=False)
            out.extend((r.id, int(s0), 0.0, False) for s0 in sorted(starts))
    return out


def build_examples(records: list[Record], embs: dict[str, np.ndarray], mutant_embs: dict[str, np.ndarray],
                   cfg: TrainConfig, rng: np.random.Generator) -> Examples:
    ex = example_windows(records, cfg, rng, mutants=cfg.phi_mutants)
    ex = [e for e in ex if not e[3] or e[0] in mutant_embs]
    W = cfg.window
    xs = [(mutant_embs if m else embs)[pid][s0 : s0 + W] for pid, s0, _, m in ex]
    X = torch.as_tensor(np.stack(xs)) if xs else torch.zeros((0, W, 1))
    return Examples(X, torch.tensor([e[2] for e in ex], dtype=torch.float32), [e[0] for e in ex], [e[1] for e in ex],
                    np.array([e[3] for e in ex], dtype=bool), phi_labels(records, ex, W))


def phi_labels(records: list[Record], ex, W: int) -> torch.Tensor:
    """(N, W) float: 1 where a window's residue is an annotated Φ (``hydrophobic_positions`` of
    any of the protein's spans), 0 elsewhere and in Φ->A mutants (their Φ are alanines)."""
    phi = {r.id: {p - 1 for sp in r.spans for p in sp.phi} for r in records if r.spans}
    out = np.zeros((len(ex), W), dtype=np.float32)
    for n, (pid, s0, _, m) in enumerate(ex):
        if not m and pid in phi:
            for k in range(W):
                if s0 + k in phi[pid]:
                    out[n, k] = 1.0
    return torch.as_tensor(out)


# ----------------------------------------------------------------------------- training


def _auc(y, s) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


@torch.inference_mode()
def _predict(net, X: torch.Tensor, batch: int = 4096) -> np.ndarray:
    net.eval()
    mask = torch.ones(X.shape[:2], dtype=torch.bool)
    out = [torch.sigmoid(net(X[i : i + batch], mask[i : i + batch])) for i in range(0, len(X), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def fit_classifier(train: Examples, val: Examples | None, dim: int, cfg: TrainConfig, epochs: int | None = None,
                   progress: bool = False):
    """Train one classifier; early-stops on ``val`` window AUC, or runs ``epochs`` epochs."""
    set_seed(cfg.seed)
    card = ModelCard("?", dim, cfg.window, 0, cfg.arch, dict(cfg.hparams))
    net = build(card)
    flat = train.X.reshape(-1, train.X.shape[-1])
    net.norm_in.mean.copy_(flat.mean(0))
    net.norm_in.std.copy_(flat.std(0).clamp(min=1e-4))
    n_pos = float(train.y.sum())
    pos_weight = torch.tensor((len(train.y) - n_pos) / max(n_pos, 1.0))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    gen = torch.Generator().manual_seed(cfg.seed)
    mask_full = torch.ones((cfg.batch_size, cfg.window), dtype=torch.bool)
    lists = _protein_lists(train) if cfg.listwise > 0 else []
    phi_head = _PhiHead(net, train, cfg) if cfg.phi_head > 0 else None
    params = list(net.parameters()) + (list(phi_head.parameters()) if phi_head is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    list_gen = torch.Generator().manual_seed(cfg.seed + 1)
    list_order: list[int] = []
    best_auc, best_state, best_epoch, stale = -1.0, None, 0, 0
    history = []
    n_epochs = epochs or cfg.epochs
    for epoch in range(1, n_epochs + 1):
        net.train()
        perm = torch.randperm(len(train.y), generator=gen)
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if phi_head is not None:
                logits, aux = phi_head(train.X[idx])
                loss = loss_fn(logits, train.y[idx]) + cfg.phi_head * phi_head.loss(aux, idx)
            else:
                logits = net(train.X[idx], mask_full[: len(idx)])
                loss = loss_fn(logits, train.y[idx])
            if lists:
                if not list_order:
                    list_order = torch.randperm(len(lists), generator=list_gen).tolist()
                chunk = [lists[list_order.pop()] for _ in range(min(LIST_CHUNK, len(list_order)))]
                loss = loss + cfg.listwise * _listwise_loss(net, train, chunk)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        rec = {"epoch": epoch, "loss": total / len(perm)}
        if val is not None and epochs is None:
            auc = _auc(val.y.numpy(), _predict(net, val.X))
            rec["val_auc"] = auc
            if phi_head is not None:
                rec["val_phi_auc"] = phi_head.residue_auc(val)
            if auc > best_auc + 1e-4:
                best_auc, best_epoch, stale = auc, epoch, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        history.append(rec)
        if progress:
            log.info("epoch %d %s", epoch, json.dumps(rec))
        if val is not None and epochs is None and stale >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        best_epoch = n_epochs
    net.eval()
    return net, {"best_epoch": best_epoch, "best_val_auc": best_auc if best_state is not None else None,
                 "history": history}


class _PhiHead(torch.nn.Module):
    """Multitask Φ head for the window CNN (training only): a linear layer on the CNN's
    per-position features predicts which of the window's residues are annotated Φ (the CRM1
    pocket residues), next to the window's own BCE. It shapes the shared convolutions and is
    dropped after training: the saved network and its inference are unchanged."""

    def __init__(self, net, train: Examples, cfg: TrainConfig) -> None:
        super().__init__()
        if not isinstance(net, WindowCNN):
            raise NesscanError("--phi-head needs the CNN window network (--arch cnn or stack)")
        self.cnn = [net]  # not a submodule: its parameters are the network's own
        self.lin = torch.nn.Linear(net.head.in_features, 1)
        self.labels = train.phi
        n_pos = float(self.labels.sum())
        self.pos_weight = torch.tensor((self.labels.numel() - n_pos) / max(n_pos, 1.0))

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, W, C); training windows are full
        return self.cnn[0].positions(x, torch.ones(x.shape[:2], dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.cnn[0].head(h.max(1).values).squeeze(-1), self.lin(h).squeeze(-1)

    def loss(self, aux: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(aux, self.labels[idx], pos_weight=self.pos_weight)

    @torch.no_grad()
    def residue_auc(self, ex: Examples) -> float:
        """ROC AUC of the head's per-residue scores for annotated Φ, over the positive windows."""
        keep = ex.y == 1
        if ex.phi is None or not bool(keep.any()):
            return float("nan")
        self.cnn[0].eval()  # the training loop sets train() again at the next epoch
        z = torch.cat([self.lin(self.features(ex.X[keep][i : i + 4096])).squeeze(-1)
                       for i in range(0, int(keep.sum()), 4096)])
        return _auc(ex.phi[keep].reshape(-1).numpy(), z.reshape(-1).numpy())


LIST_CHUNK = 8  # proteins in the listwise term of each BCE batch


def _protein_lists(ex: Examples) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per NES protein with positive and negative windows (Φ->A mutants left out: they never
    compete with real windows at prediction time): (example indices, positive mask)."""
    by: dict[str, list[int]] = {}
    for i, (pid, m) in enumerate(zip(ex.protein, ex.mutant)):
        if not m:
            by.setdefault(pid, []).append(i)
    out = []
    y = ex.y.numpy()
    for pid in sorted(by):
        idx = np.array(by[pid])
        pos = y[idx] == 1
        if pos.any() and (~pos).any():
            out.append((torch.as_tensor(idx), torch.as_tensor(pos)))
    return out


def _listwise_loss(net, ex: Examples, chunk) -> torch.Tensor:
    """Mean over proteins of ``-log`` (softmax mass of the protein's positive windows among
    all its windows): ranks a protein's NES windows above its other windows, whatever the
    protein's overall level (ListNet-style, several relevant items)."""
    idx = torch.cat([c[0] for c in chunk])
    z = net(ex.X[idx], torch.ones((len(idx), ex.X.shape[1]), dtype=torch.bool))
    losses, a = [], 0
    for i, pos in chunk:
        zi = z[a : a + len(i)]
        a += len(i)
        losses.append(torch.logsumexp(zi, 0) - torch.logsumexp(zi[pos], 0))
    return torch.stack(losses).mean()


# ----------------------------------------------------------------------------- evaluation


class _NetModel:
    """Duck-typed LoadedModel for scoring with an in-memory network."""

    def __init__(self, net, window):
        self.net, self.window = net, window


@dataclass
class WindowModel:
    """A fitted window model: the network and/or the trees, and the similarity references."""

    arch: str
    window: int
    net: torch.nn.Module | None
    booster: object | None
    trees: dict | None  # exported arrays (nesscan.gbm.export)
    channels: list[int] | None
    refs: dict
    info: dict
    profile: dict | None = None  # the NES profile of the training spans (nesscan.nes_profile)


def tree_channels(embedder_name: str, dim: int, context: bool) -> list[int]:
    """Per-residue channels the trees read: one-hot identity (20) and Kyte-Doolittle hydropathy of
    the built-in embedder, plus the disorder channels (the last two) when present."""
    if embedder_name != "builtin":
        raise NesscanError("the gbm and stack window models read the built-in embedder's channels; "
                           "use --arch cnn (or transformer, mlp) with ESM-2")
    from .embedders import KD_COLUMN

    chans = list(range(20)) + [KD_COLUMN]
    return chans + ([dim - 2, dim - 1] if context else [])


def fit_trees(records, embs, mut, cfg: TrainConfig, channels: list[int]):
    """Gradient-boosted trees on the window examples (Φ->A mutants included as negatives)."""
    from . import gbm
    from .window_score import tree_features

    rng = np.random.default_rng(cfg.seed)
    ex = example_windows(records, cfg, rng, mutants=cfg.phi_mutants)
    ex = [e for e in ex if not e[3] or e[0] in mut]
    feats: dict[tuple[str, bool], np.ndarray] = {}
    X = np.empty((len(ex), cfg.window * len(channels)))
    for n, (pid, s0, _, m) in enumerate(ex):
        key = (pid, m)
        if key not in feats:
            feats[key] = tree_features((mut if m else embs)[pid], channels, cfg.window)
        X[n] = feats[key][s0]
    y = np.array([e[2] for e in ex])
    clf = gbm.fit(X, y, seed=cfg.seed, max_iter=cfg.tree_iterations, learning_rate=cfg.tree_learning_rate,
                  max_leaf_nodes=cfg.tree_max_leaf_nodes)
    arrays = gbm.export(clf)
    return gbm.Booster(arrays), arrays


def fit_window_model(records, embs, mut, dim, cfg: TrainConfig, progress=False) -> WindowModel:
    from dataclasses import replace

    from .model import net_arch
    from .nes_profile import fit_profile

    arch = net_arch(ModelCard("?", dim, cfg.window, 0, cfg.arch, {}, net_arch=cfg.net_arch))
    profile = fit_profile(records)
    records = with_hard_negatives(records, embs, cfg)
    net, info, refs = None, {}, None
    if arch is not None:
        net, info, refs = train_one(records, embs, mut, dim, replace(cfg, arch=arch), progress=progress)
    booster = arrays = None
    if cfg.arch in ("gbm", "stack"):
        booster, arrays = fit_trees(records, embs, mut, cfg, cfg.tree_channels)
        if refs is None:
            refs = similarity_references(records, embs, mut, cfg)
    return WindowModel(cfg.arch, cfg.window, net, booster, arrays, cfg.tree_channels, refs, info, profile)


def similarity_references(records, embs, mut, cfg: TrainConfig) -> dict:
    """Reference windows for the similarity component: training positives vs real negatives
    (Φ mutants excluded: they are near-copies of the positives)."""
    tr, _ = _split_val(records, cfg.val_fraction, cfg.seed)
    ex = build_examples(tr, embs, mut, cfg, np.random.default_rng(cfg.seed))
    pooled = ex.X.numpy().mean(1).astype(np.float64)
    ypos = ex.y.numpy() == 1
    return scoring.fit_centroids(pooled[ypos], pooled[~ypos & ~ex.mutant], seed=cfg.seed)


def raw_outputs(wm: WindowModel, records, embs, window: int) -> dict[str, dict]:
    """Per record: the network's window probabilities and/or the trees' logits, motif features,
    raw similarity and the NES-profile score of each window."""
    from .nes_profile import window_profile
    from .window_score import net_scores, tree_raw

    out = {}
    for i in range(0, len(records), 64):
        chunk = records[i : i + 64]
        nets = net_scores(_NetModel(wm.net, window), [embs[r.id] for r in chunk]) if wm.net is not None else [None] * len(chunk)
        for r, nn in zip(chunk, nets):
            e = embs[r.id]
            out[r.id] = {
                "net": nn,
                "tree": tree_raw(wm.booster, [e], wm.channels, window) if wm.booster is not None else None,
                "mf": scoring.window_motif_features(r.sequence, window),
                "sr": scoring.similarity_raw(scoring.pooled_windows(e, window), wm.refs),
                "pf": window_profile(r.sequence, wm.profile, window) if wm.profile is not None else None,
            }
    return out


def embed_records(records: list[Record], embedder: Embedder, progress: bool = True, mutants: bool = True):
    """Embeddings of the records and (``mutants``) of their Φ->A mutants, in batches of 64
    sequences sorted by length."""
    embs, mut = {}, {}
    seqs = {r.id: r.sequence for r in records}
    muts = {r.id: _mutant(r.sequence, r.spans) for r in records
            if mutants and r.group == "nes_annotated" and r.spans}
    jobs = [(k, s, embs) for k, s in seqs.items()] + [(k, s, mut) for k, s in muts.items()]
    jobs.sort(key=lambda j: len(j[1]))
    bar = tqdm(total=len(jobs), desc=f"embed[{embedder.name}]", unit="prot", disable=not progress)
    step = 64
    for i in range(0, len(jobs), step):
        chunk = jobs[i : i + step]
        for (k, _, target), a in zip(chunk, embedder.embed_batch([j[1] for j in chunk])):
            target[k] = a
        bar.update(len(chunk))
    bar.close()
    return embs, mut


def _split_val(records: list[Record], frac: float, seed: int):
    rng = np.random.default_rng(seed + 7)
    clusters = sorted({r.cluster for r in records})
    rng.shuffle(clusters)
    n_val = max(1, int(round(frac * len(clusters))))
    val_c = set(clusters[:n_val])
    return [r for r in records if r.cluster not in val_c], [r for r in records if r.cluster in val_c]


def train_one(records, embs, mut, dim, cfg: TrainConfig, progress=False):
    """Classifier (early-stopped on held-out clusters) and similarity references."""
    rng = np.random.default_rng(cfg.seed)
    tr, va = _split_val(records, cfg.val_fraction, cfg.seed)
    ex_tr = build_examples(tr, embs, mut, cfg, rng)
    ex_va = build_examples(va, embs, mut, cfg, rng)
    net, info = fit_classifier(ex_tr, ex_va, dim, cfg, progress=progress)
    info.update({"n_train_windows": len(ex_tr.y), "n_train_positive": int(ex_tr.y.sum()),
                 "n_val_windows": len(ex_va.y)})
    # reference windows for the similarity component: training positives vs real negatives
    # (Φ mutants excluded: they are near-copies of the positives)
    pooled = ex_tr.X.numpy().mean(1).astype(np.float64)
    ypos = ex_tr.y.numpy() == 1
    refs = scoring.fit_centroids(pooled[ypos], pooled[~ypos & ~ex_tr.mutant], seed=cfg.seed)
    return net, info, refs

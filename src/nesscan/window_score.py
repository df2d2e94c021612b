"""``nesscan window-score``: every window of every protein, scored in vectorised batches.

Windows have the model card's size ``W`` and stride 1: a protein of length ``L >= W`` has
``L - W + 1`` windows (1-based ``start = 1 .. L - W + 1``, ``end = start + W - 1``); a protein
shorter than ``W`` gets one window covering it, padded and masked. All windows of a protein
are cut from its ``L x D`` embedding with ``Tensor.unfold`` (a view, no copy) and go through
the classifier in batches — no Python loop over windows.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from .memory import page_out_cuda_libraries
from .model import LoadedModel, check_compatible, load
from .segment import segment, segment_scores
from .store import EmbeddingReader

log = logging.getLogger("nesscan.window_score")


def window_tensor(emb: np.ndarray | torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_windows, W', D) windows and their (n_windows, W') validity mask."""
    x = torch.as_tensor(emb, dtype=torch.float32)
    L = x.shape[0]
    if L >= window:
        wins = x.unfold(0, window, 1).transpose(1, 2)  # (L-W+1, W, D) view
        mask = torch.ones(wins.shape[:2], dtype=torch.bool, device=x.device)
    else:
        wins = x.unsqueeze(0)
        mask = torch.ones((1, L), dtype=torch.bool, device=x.device)
    return wins, mask


@torch.inference_mode()
def score_windows(model: LoadedModel, emb: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Probabilities for all windows of one protein (length ``max(L - W + 1, 1)``): the window
    model of the card (for ``gbm`` / ``stack``, :func:`score_many`)."""
    if getattr(getattr(model, "card", None), "arch", None) in ("gbm", "stack"):
        return score_many(model, [emb], batch)[0]
    wins, mask = window_tensor(emb, model.window)
    out = []
    for i in range(0, wins.shape[0], batch):
        out.append(torch.sigmoid(model.net(wins[i : i + batch], mask[i : i + batch])))
    return torch.cat(out).numpy().astype(np.float64)


# residues per CNN evaluation group: its per-residue intermediates (a few 2048 x 64 float32
# arrays per first-layer variant) then stay in the CPU caches; 8192 was ~25 % slower on 2 cores
CNN_RESIDUES = 2048


def tree_features(emb, channels: list[int], window: int) -> np.ndarray:
    """(n_windows, window x len(channels)) float64: the window's residues' chosen embedding
    channels, position-major (residue 1's channels, residue 2's, ...), for the gradient-boosted
    trees. A protein shorter than the window is zero-padded to one window."""
    x = _residues(emb, channels, window)
    wins = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (nW, C, W) view
    return np.ascontiguousarray(wins.transpose(0, 2, 1)).reshape(wins.shape[0], -1)


TREE_ROWS = 16384  # windows per tree evaluation (one residue table of ~TREE_ROWS x 61 bytes)


def _residues(emb, channels: list[int], window: int) -> np.ndarray:
    x = np.asarray(emb.cpu().numpy() if hasattr(emb, "cpu") else emb, dtype=np.float64)[:, channels]
    if x.shape[0] < window:
        x = np.concatenate([x, np.zeros((window - x.shape[0], x.shape[1]))])
    return x


def tree_raw(booster, embs: list, channels: list[int], window: int) -> np.ndarray:
    """The trees' raw scores (logits) of every window of the proteins, concatenated. When the
    trees allow (uint8 bins, :meth:`nesscan.gbm.Booster.window_trees`) the proteins' residues are
    binned once, back to back, and the windows are rows of one overlapping view of that table:
    the same values bit for bit (tested) without building the window matrix; the windows that
    straddle two proteins are scored too and dropped. Otherwise over the float64 features."""
    wt = booster.window_trees(window, len(channels))
    if wt is None:
        return booster.raw(np.concatenate([tree_features(e, channels, window) for e in embs]))
    xs = [_residues(e, channels, window) for e in embs]
    z = wt.raw(wt.table(np.concatenate(xs) if len(xs) > 1 else xs[0]))
    if len(xs) == 1:
        return z
    lengths = np.array([x.shape[0] for x in xs])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = lengths - window + 1
    keep = np.repeat(offsets - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))
    return z[keep]


def tree_logits(model, emb) -> np.ndarray:
    """Raw scores (logits) of the model's gradient-boosted trees for every window of a protein."""
    spec = model.raw["trees"]
    W = model.window
    L = emb.shape[0]
    n = max(L - W + 1, 1)
    if n <= TREE_ROWS:
        return tree_raw(model.booster, [emb], spec["channels"], W)
    out = np.empty(n)
    for a in range(0, n, TREE_ROWS):
        b = min(n, a + TREE_ROWS)
        out[a:b] = tree_raw(model.booster, [emb[a : b + W - 1]], spec["channels"], W)
    return out


def _tree_logits_many(model, embs: list) -> list[np.ndarray]:
    """:func:`tree_logits` of several proteins, their windows evaluated together in groups of
    about ``TREE_ROWS`` (one call per tree per group instead of per protein)."""
    spec, W = model.raw["trees"], model.window
    out: list[np.ndarray | None] = [None] * len(embs)
    group, rows = [], 0
    for i, e in enumerate(embs):
        n = max(e.shape[0] - W + 1, 1)
        if n > TREE_ROWS:
            out[i] = tree_logits(model, e)
            continue
        group.append((i, n))
        rows += n
        if rows >= TREE_ROWS:
            _flush_trees(model, embs, group, spec, W, out)
            group, rows = [], 0
    if group:
        _flush_trees(model, embs, group, spec, W, out)
    return out  # type: ignore[return-value]


def _flush_trees(model, embs, group, spec, W, out) -> None:
    z = tree_raw(model.booster, [embs[i] for i, _ in group], spec["channels"], W)
    offset = 0
    for i, n in group:
        out[i] = z[offset : offset + n]
        offset += n


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def score_many(model: LoadedModel, embs: list, batch: int = 8192,
               device: str | torch.device | None = None, tree_pool=None) -> list[np.ndarray]:
    """Window probabilities of several proteins (one array per protein, ``max(L - W + 1, 1)``).

    The window model is the card's ``arch``: a neural classifier (:func:`net_scores`),
    gradient-boosted trees (``gbm``: :func:`tree_logits`), or both stacked (``stack``: a logistic
    regression over the network's and the trees' logits, weights in the card's ``stack``).
    ``tree_pool``: an executor in which the stack's trees run while the network runs here (both
    release the GIL); the values are the same."""
    arch = getattr(getattr(model, "card", None), "arch", None)
    if arch not in ("gbm", "stack"):
        return net_scores(model, embs, batch, device)
    if arch == "gbm":
        return [1.0 / (1.0 + np.exp(-t)) for t in _tree_logits_many(model, embs)]
    st = model.raw["stack"]
    if tree_pool is not None:
        pending = tree_pool.submit(_tree_logits_many, model, embs)
        try:
            nets = net_scores(model, embs, batch, device)
        finally:
            trees = pending.result()
    else:
        trees = _tree_logits_many(model, embs)
        nets = net_scores(model, embs, batch, device)
    return [1.0 / (1.0 + np.exp(-(st["coef"][0] * _logit(n) + st["coef"][1] * t + st["intercept"])))
            for n, t in zip(nets, trees)]


@torch.inference_mode()
def net_scores(model: LoadedModel, embs: list, batch: int = 8192,
               device: str | torch.device | None = None) -> list[np.ndarray]:
    """Score several proteins at once with the neural classifier: their windows go through the classifier in shared
    batches of ``batch`` windows.

    Streaming: only one batch of windows is materialised at a time (windows are cut from the
    proteins' embeddings as views and copied into the batch), so memory does not grow with the
    number of proteins or residues passed in. Batch boundaries are those of the concatenation of
    all full-length windows in input order, every ``batch`` windows. For the transformer the
    input standardisation and projection, which act on each residue independently, are computed
    once per residue instead of once per window position (``W`` times less work; same values up
    to float rounding, checked in the tests). The CNN is evaluated per residue too, see
    :func:`_cnn_logits`, in groups of at most ``min(batch, CNN_RESIDUES)`` residues.

    ``device``: where the classifier runs (``None``: the CPU, as ``"cpu"``). On another device
    (``"cuda"``, ``"cuda:1"``) a copy of the classifier is moved there once per model and device
    and cached on ``model`` (:func:`device_net`); the embeddings (numpy arrays or tensors on any
    device) are copied to it, and the scores come back as float64 numpy arrays in one transfer
    at the end, as on the CPU. On the CPU nothing is copied and the classifier is ``model.net``.
    """
    dev = torch.device(device) if device is not None else _CPU
    host = _on_host(dev)
    W = model.window
    net = model.net if host else device_net(model, dev)
    results: list[np.ndarray | None] = [None] * len(embs)
    tensors: list[torch.Tensor | None] = [None] * len(embs)
    pending: list[tuple[int, torch.Tensor]] = []  # (protein, probabilities) still on the device

    def done(idx: int, logits: torch.Tensor) -> None:
        if host:
            results[idx] = torch.sigmoid(logits).numpy().astype(np.float64)
        else:
            pending.append((idx, torch.sigmoid(logits)))

    full: list[int] = []
    for idx, e in enumerate(embs):
        x = torch.as_tensor(e, dtype=torch.float32, device=dev)  # CPU float32 numpy: shared, not copied
        if x.shape[0] >= W:
            tensors[idx] = x
            full.append(idx)
        else:  # shorter than the window: one padded/masked window, on its own
            w, m = window_tensor(x, W)
            done(idx, net(w, m))
    cnn = _cnn_plan(net, W) if full else None
    if cnn is not None:
        for idx, logits in _cnn_logits(cnn, full, tensors, W, max(min(batch, CNN_RESIDUES), 4 * W)):
            done(idx, logits)
            tensors[idx] = None
    elif full:
        stem = _stem_and_tail(net, W)
        parts: dict[int, list] = {i: [] for i in full}  # probabilities: numpy on the CPU, else tensors
        for owners, scores in _stream_window_batches(full, tensors, W, batch, stem):
            flat = torch.sigmoid(scores)
            if host:
                flat = flat.numpy().astype(np.float64)
            offset = 0
            for idx, n in owners:
                parts[idx].append(flat[offset : offset + n])
                offset += n
        for idx in full:
            got = parts.pop(idx)
            if host:
                results[idx] = got[0] if len(got) == 1 else np.concatenate(got)
            else:
                pending.append((idx, got[0] if len(got) == 1 else torch.cat(got)))
            tensors[idx] = None
    if pending:  # one device -> host transfer for all proteins
        flat = torch.cat([p for _, p in pending]).cpu().numpy().astype(np.float64)
        offset = 0
        for idx, p in pending:
            results[idx] = flat[offset : offset + p.shape[0]]
            offset += p.shape[0]
    return results  # type: ignore[return-value]


_CPU = torch.device("cpu")


def _on_host(device: torch.device) -> bool:
    """True when ``device`` is the CPU: the classifier is ``model.net`` itself, no copies."""
    return device.type == "cpu"


def device_net(model: LoadedModel, device: str | torch.device) -> torch.nn.Module:
    """A copy of ``model.net`` on ``device``, made once and cached on ``model``; a new copy is
    made if ``model.net`` has been replaced since (changes made to the weights of ``model.net``
    in place after the first call do not reach the copy)."""
    dev = torch.device(device)
    cache = model.__dict__.setdefault("_device_nets", {})
    hit = cache.get(str(dev))
    if hit is None or hit[0] is not model.net:
        import copy

        net = copy.deepcopy(model.net).to(dev)
        hit = cache[str(dev)] = (model.net, net)
    return hit[1]


def _stream_window_batches(full: list[int], tensors: list, W: int, batch: int, stem):
    """Yield ``([(protein index, windows in this batch), ...], logits)`` batch by batch."""
    net_fn, pre_fn = stem
    pending: list[torch.Tensor] = []
    owners: list[tuple[int, int]] = []
    room = batch
    for idx in full:
        x = tensors[idx]
        src = pre_fn(x) if pre_fn is not None else x  # per-residue stem (transformer) or raw features
        views = src.unfold(0, W, 1).transpose(1, 2)  # (L-W+1, W, D') view, no copy
        n_total, done = views.shape[0], 0
        while done < n_total:
            take = min(room, n_total - done)
            pending.append(views[done : done + take])
            owners.append((idx, take))
            done += take
            room -= take
            if room == 0:
                yield owners, net_fn(torch.cat(pending) if len(pending) > 1 else pending[0])
                pending, owners, room = [], [], batch
    if pending:
        yield owners, net_fn(torch.cat(pending) if len(pending) > 1 else pending[0])


def _stem_and_tail(net: torch.nn.Module, W: int):
    """``(batch_fn, per_residue_fn)``: ``batch_fn`` maps a (B, W, D') batch of full windows to
    logits; ``per_residue_fn`` (or None) is applied to a protein's (L, D) features first."""
    from .model import WindowTransformer

    if type(net) is WindowTransformer:  # exactly the forward reproduced below (subclasses go the generic way)
        def per_residue(x: torch.Tensor) -> torch.Tensor:
            return net.proj(net.norm_in(x))  # (L, d_model): identical for every window position

        pos = net.pos[:W]

        def tail(h: torch.Tensor) -> torch.Tensor:
            # WindowTransformer.forward after its projection, for full (unmasked) windows
            mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
            h = net.encoder(h + pos, src_key_padding_mask=~mask)
            h = net.norm_out(h)
            pooled = h.sum(1) / float(W)
            return net.head(pooled).squeeze(-1)

        return tail, per_residue

    def generic(w: torch.Tensor) -> torch.Tensor:
        return net(w, torch.ones(w.shape[:2], dtype=torch.bool, device=w.device))

    return generic, None


class _CNNPlan:
    """What :func:`_cnn_logits` needs from a :class:`~nesscan.model.WindowCNN` (eval mode)."""

    def __init__(self, net, conv1, act1, conv2, act2):
        self.net, self.act1, self.act2 = net, act1, act2
        self.k1, self.k2 = conv1.kernel_size[0], conv2.kernel_size[0]
        self.p1, self.p2 = self.k1 // 2, self.k2 // 2
        self.c1, self.c2 = conv1.out_channels, conv2.out_channels
        # taps side by side: column block k holds the weights of tap offset k - p
        self.w1 = conv1.weight.permute(1, 2, 0).reshape(conv1.in_channels, self.k1 * self.c1)
        self.w2 = conv2.weight.permute(1, 2, 0).reshape(conv2.in_channels, self.k2 * self.c2)
        self.b1 = conv1.bias if conv1.bias is not None else torch.zeros(self.c1, device=conv1.weight.device)
        self.b2 = conv2.bias if conv2.bias is not None else torch.zeros(self.c2, device=conv2.weight.device)


def _cnn_plan(net: torch.nn.Module, W: int) -> _CNNPlan | None:
    """A plan for the per-residue CNN evaluation, or None when ``net`` is not exactly the
    :class:`~nesscan.model.WindowCNN` layout it was written for (then windows go the generic way)."""
    from torch import nn

    from .model import WindowCNN

    if type(net) is not WindowCNN or net.training or not isinstance(net.net, nn.Sequential) or len(net.net) != 5:
        return None
    conv1, act1, drop, conv2, act2 = net.net
    for c in (conv1, conv2):
        if (type(c) is not nn.Conv1d or c.kernel_size[0] % 2 == 0 or c.padding != (c.kernel_size[0] // 2,)
                or c.stride != (1,) or c.dilation != (1,) or c.groups != 1 or c.padding_mode != "zeros"):
            return None
    if not (type(act1) is nn.GELU and type(act2) is nn.GELU and type(drop) is nn.Dropout):
        return None
    if W < 2 * (conv1.kernel_size[0] // 2 + conv2.kernel_size[0] // 2) + 1:
        return None
    return _CNNPlan(net, conv1, act1, conv2, act2)


def _segments(full: list[int], tensors: list, W: int, budget: int):
    """Groups of ``(protein index, first residue, end residue)`` segments of at most ``budget``
    residues in all; a protein longer than ``budget`` is cut into segments overlapping by
    ``W - 1`` residues, so that each of its windows lies wholly inside exactly one segment."""
    group, used = [], 0
    for idx in full:
        L = tensors[idx].shape[0]
        a = 0
        while True:
            b = min(L, a + budget)
            if group and used + (b - a) > budget:
                yield group
                group, used = [], 0
            group.append((idx, a, b))
            used += b - a
            if b == L:
                break
            a = b - (W - 1)
    if group:
        yield group


def _cnn_logits(plan: _CNNPlan, full: list[int], tensors: list, W: int, budget: int):
    """Yield ``(protein index, logits of all its windows)`` for a WindowCNN, exactly as
    ``WindowCNN.forward`` computes them on full windows (up to float rounding), without cutting
    windows.

    A window is zero-padded at its own edges, so at window position ``p`` the first convolution
    sees the taps ``o`` with ``0 <= p + o < W``: in the interior all taps (the convolution of the
    whole protein), near the edges a truncated kernel. Either way the value depends only on the
    residue ``s + p`` and on which taps are kept, so it is computed once per residue for each
    kind of truncation. The same holds for the second convolution, whose input at each window
    position is one of those per-residue variants; positions whose taps all fall on interior
    values share one per-residue array, whose max over the window is a sliding max. Per
    residue this costs ``k1 + (number of kept second-layer taps)`` small matrix products instead
    of ``W * (k1 + k2)`` per window. Proteins are concatenated (up to ``budget`` residues) for
    large matrix products; windows that would straddle two proteins are computed and dropped.
    """
    p1, p2, c1, c2 = plan.p1, plan.p2, plan.c1, plan.c2
    norm_in = plan.net.norm_in
    head = plan.net.head

    def taps1(p):  # first-layer taps kept at window position p
        return max(-p1, -p), min(p1, W - 1 - p)

    # first-layer variants (by kept taps) and the window positions that use each
    pos_of: dict[tuple[int, int], list[int]] = {}
    for p in range(W):
        pos_of.setdefault(taps1(p), []).append(p)
    interior1 = (-p1, p1)
    # second layer: positions j whose inputs are all interior variants with all taps share D2
    lo_int, hi_int = p1 + p2, W - 1 - p1 - p2
    edge_js = [j for j in range(W) if not lo_int <= j <= hi_int]

    def taps2(j):
        return max(-p2, -j), min(p2, W - 1 - j)

    # which second-layer taps each first-layer variant feeds
    need: dict[tuple[int, int], set[int]] = {key: set() for key in pos_of}
    need[interior1].update(range(-p2, p2 + 1))  # D2
    for j in edge_js:
        lo, hi = taps2(j)
        for o in range(lo, hi + 1):
            need[taps1(j + o)].add(o)

    parts: dict[int, list[torch.Tensor]] = {}
    for group in _segments(full, tensors, W, budget):
        x = torch.cat([tensors[idx][a:b] for idx, a, b in group])
        N = x.shape[0]
        nS = N - W + 1  # window starts in the concatenation (some straddle two segments)
        z = norm_in(x)
        A = z @ plan.w1  # (N, k1 * c1): tap products of every residue

        def a_tap(o, r0, n):  # A_o[r + o] for r = r0 .. r0 + n - 1
            k = o + p1
            return A[r0 + o : r0 + o + n, k * c1 : (k + 1) * c1]

        # first-layer outputs per variant, over the residues where that variant is read
        h1: dict[tuple[int, int], tuple[int, torch.Tensor]] = {}
        for key, ps in pos_of.items():
            r0, n = min(ps), max(ps) - min(ps) + nS
            lo, hi = key
            acc = plan.b1 + a_tap(lo, r0, n)
            for o in range(lo + 1, hi + 1):
                acc += a_tap(o, r0, n)
            h1[key] = (r0, plan.act1(acc))
        # second-layer tap products of each variant (only the taps it feeds)
        b2: dict[tuple[int, int], tuple[int, dict[int, torch.Tensor]]] = {}
        for key, (r0, h) in h1.items():
            taps = sorted(need[key])
            if not taps:
                continue
            w = torch.cat([plan.w2[:, (o + p2) * c2 : (o + p2 + 1) * c2] for o in taps], 1)
            prod = h @ w
            b2[key] = (r0, {o: prod[:, i * c2 : (i + 1) * c2] for i, o in enumerate(taps)})

        def b_tap(key, o, r, n):  # B[key]_o[r + o] for rows r .. r + n - 1 (r absolute)
            r0, d = b2[key]
            return d[o][r + o - r0 : r + o - r0 + n]

        # interior second-layer output D2 over r = lo_int .. hi_int + nS - 1, then its sliding max
        n_int = hi_int - lo_int + nS
        acc = plan.b2 + b_tap(interior1, -p2, lo_int, n_int)
        for o in range(-p2 + 1, p2 + 1):
            acc += b_tap(interior1, o, lo_int, n_int)
        g = plan.act2(acc)
        best = g.unfold(0, hi_int - lo_int + 1, 1).amax(-1)  # (nS, c2): max over interior positions
        for j in edge_js:
            lo, hi = taps2(j)
            acc = plan.b2 + b_tap(taps1(j + lo), lo, j, nS)
            for o in range(lo + 1, hi + 1):
                acc += b_tap(taps1(j + o), o, j, nS)
            torch.maximum(best, plan.act2(acc), out=best)
        logits = head(best).squeeze(-1)  # (nS,)
        off = 0
        for idx, a, b in group:
            parts.setdefault(idx, []).append(logits[off : off + (b - a) - W + 1])
            off += b - a
            if b == tensors[idx].shape[0]:
                got = parts.pop(idx)
                yield idx, got[0] if len(got) == 1 else torch.cat(got)


def window_bounds(length: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based inclusive (start, end) of every window."""
    if length < window:
        return np.array([1]), np.array([length])
    starts = np.arange(1, length - window + 2)
    return starts, starts + window - 1


@dataclass
class Candidate:
    rank: int
    start: int
    end: int
    score: float


def pick_candidates(scores: np.ndarray, length: int, window: int, top_k: int = 5,
                    min_score: float = 0.0) -> list[Candidate]:
    """Greedy non-overlapping candidates: the best window, then the best window that overlaps
    none already taken, and so on, up to ``top_k`` (and at least ``min_score``)."""
    starts, ends = window_bounds(length, window)
    order = np.argsort(-scores, kind="stable")
    taken = np.zeros(length + 2, dtype=bool)
    out: list[Candidate] = []
    for i in order:
        if len(out) >= top_k or scores[i] < min_score:
            break
        s, e = int(starts[i]), int(ends[i])
        if taken[s : e + 1].any():
            continue
        taken[s : e + 1] = True
        out.append(Candidate(len(out) + 1, s, e, float(scores[i])))
    return out


class _GzipWriter(gzip.GzipFile):
    """A gzip stream into a file it owns: no name and time stamp 0 in the header, so the same
    rows give the same bytes whatever the file is called and whenever it is written (the
    ``.partial`` name it is written under and the clock do not leak into the output)."""

    def __init__(self, path: str) -> None:
        self._raw = open(path, "wb")
        try:
            super().__init__(filename="", mode="wb", fileobj=self._raw, compresslevel=3, mtime=0)
        except BaseException:
            self._raw.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _open_text(path: str, mode: str, gz: bool):
    if gz:
        if mode != "w":
            raise ValueError("gzip output only")
        return io.TextIOWrapper(_GzipWriter(path), newline="")
    return open(path, mode, newline="")


def run_window_score(embeddings: str, model_path: str, output: str, summary: str | None = None,
                     candidates: str = "windows", progress: bool = True) -> dict:
    """Score every window of every protein in an embeddings file.

    With ``candidates="segments"`` the rows are the zero-shot segments of
    :mod:`nesscan.segment` (each scored by the window centred on it) instead of all windows.

    Writes ``output`` (TSV, gzip if it ends in ``.gz``; columns ``id, start, end, score``) and
    ``summary`` (one row per protein: ``id, length, max_score, best_start, best_end,
    best_sequence``). Both are written to temporary names and renamed at the end.
    """
    model = load(model_path)
    reader = EmbeddingReader(embeddings)
    check_compatible(model, reader.meta, embeddings)
    if not torch.cuda.is_initialized():
        page_out_cuda_libraries()  # window-score computes on the CPU
    if not reader.meta["complete"]:
        log.warning("%s is from an interrupted embed run; scoring the %d proteins it holds", embeddings, reader.meta["n"])
    if summary is None:
        base = output[:-3] if output.endswith(".gz") else output
        base = base[:-4] if base.endswith(".tsv") else base
        summary = base + ".summary.tsv"
    tmp_out, tmp_sum = output + ".partial", summary + ".partial"
    n = 0
    try:
        with _open_text(tmp_out, "w", output.endswith(".gz")) as fo, open(tmp_sum, "w", newline="") as fs:
            wo, ws = csv.writer(fo, delimiter="\t", lineterminator="\n"), csv.writer(fs, delimiter="\t", lineterminator="\n")
            wo.writerow(["id", "start", "end", "score"])
            ws.writerow(["id", "length", "max_score", "best_start", "best_end", "best_sequence"])
            for pid, seq, emb in tqdm(reader, total=reader.meta["n"], desc="window-score", unit="prot", disable=not progress):
                scores = score_windows(model, emb)
                starts, ends = window_bounds(len(seq), model.window)
                if candidates == "segments":
                    segs = segment(emb)
                    scores = segment_scores(scores, segs, len(seq), model.window)
                    starts = np.array([a + 1 for a, _ in segs])
                    ends = np.array([b for _, b in segs])
                for s, e, v in zip(starts, ends, scores):
                    wo.writerow([pid, int(s), int(e), f"{v:.6f}"])
                b = int(np.argmax(scores))
                ws.writerow([pid, len(seq), f"{scores[b]:.6f}", int(starts[b]), int(ends[b]), seq[starts[b] - 1 : ends[b]]])
                n += 1
        os.replace(tmp_out, output)
        os.replace(tmp_sum, summary)
    finally:
        for t in (tmp_out, tmp_sum):
            if os.path.exists(t):
                os.remove(t)
    log.info("scored %d proteins -> %s, %s", n, output, summary)
    return {"proteins": n, "output": output, "summary": summary}

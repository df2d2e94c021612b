"""Gradient-boosted trees stored as plain arrays (safetensors), never pickled.

scikit-learn's ``HistGradientBoostingClassifier`` fits the trees; :func:`export` turns the fitted
trees into flat arrays (one row per node, every tree's nodes concatenated, with per-tree offsets)
that go into a safetensors file, and :class:`Booster` rebuilds the predictors from those arrays
and evaluates them with scikit-learn's own compiled tree walker (``TreePredictor``, OpenMP), so
a loaded model gives exactly the raw scores of the fitted one (tested). :meth:`Booster.raw_binned`
walks the same trees over uint8 bins of the features (scikit-learn's ``predict_binned``; the bins
are derived from the nodes' own thresholds, so the values are the same bit for bit, tested):
~2x faster on window matrices, whose float64 rows no longer fit the CPU cache.
:class:`WindowTrees` walks them over every window of a per-residue bin table without building the
window matrix (one overlapping strided view; the same values bit for bit, tested).

Only numerical splits are used (no categorical features), so the categorical bitsets are empty.
"""

from __future__ import annotations

import numpy as np

ROW_BLOCK = 512  # rows evaluated by all trees before the next rows (Booster.raw)
BINNED_BLOCK = 2048  # the same for uint8 rows (Booster.raw_binned: 8x smaller rows, fewer calls)
WINDOW_BLOCK = 16384  # the same for overlapping window rows (WindowTrees.raw: ~width bytes per row)
MISSING_BIN = 255  # the bin of NaN in Booster.bin_column; real values use bins 0..254
PYTHON_ROWS = 4  # up to this many rows, Booster.raw walks the trees in Python (no per-tree call overhead)
# the node record fields kept (scikit-learn's PREDICTOR_RECORD_DTYPE); the rest are rebuilt
_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


def fit(X: np.ndarray, y: np.ndarray, seed: int = 0, max_iter: int = 300, learning_rate: float = 0.1,
        max_leaf_nodes: int = 31, l2: float = 0.0, sample_weight: np.ndarray | None = None,
        class_weight: str | None = "balanced"):
    """Fit a binary HistGradientBoostingClassifier (fixed iterations, no early stopping, so the
    fit depends on the seed and the data only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from threadpoolctl import threadpool_limits

    clf = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                                         l2_regularization=l2, early_stopping=False, random_state=seed,
                                         class_weight=class_weight)
    # one OpenMP thread: the per-split parallel loops are short, and on a busy machine their
    # barriers stall (measured 30x slower on 2 shared cores); the fit is the same
    with threadpool_limits(limits=fit_threads(), user_api="openmp"):
        clf.fit(X, y, sample_weight=sample_weight)
    return clf


def fit_threads() -> int:
    """OpenMP threads for fitting: ``NESSCAN_TREE_THREADS`` (default 1)."""
    import os

    try:
        return max(1, int(os.environ.get("NESSCAN_TREE_THREADS", "1")))
    except ValueError:
        return 1


def export(clf, prefix: str = "gbm.") -> dict[str, np.ndarray]:
    """Flat arrays of a fitted binary classifier (``prefix`` + field name)."""
    if clf.n_trees_per_iteration_ != 1:
        raise ValueError("only binary classifiers are exported")
    trees = [p[0] for p in clf._predictors]
    nodes = np.concatenate([t.nodes for t in trees])
    sizes = np.array([len(t.nodes) for t in trees], dtype=np.int64)
    out = {prefix + f: np.ascontiguousarray(nodes[f]) for f in _FIELDS}
    out[prefix + "tree_sizes"] = sizes
    out[prefix + "baseline"] = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1)
    out[prefix + "n_features"] = np.array([clf.n_features_in_], dtype=np.int64)
    return out


class Booster:
    """Raw scores (logits) of an exported classifier."""

    def __init__(self, arrays: dict[str, np.ndarray], prefix: str = "gbm.") -> None:
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        sizes = np.asarray(arrays[prefix + "tree_sizes"], dtype=np.int64)
        total = int(sizes.sum())
        nodes = np.zeros(total, dtype=PREDICTOR_RECORD_DTYPE)
        for f in _FIELDS:
            col = np.asarray(arrays[prefix + f])
            if col.shape[0] != total:
                raise ValueError(f"tree array {prefix + f} has {col.shape[0]} rows, expected {total}")
            nodes[f] = col
        self.n_features = int(np.asarray(arrays[prefix + "n_features"]).reshape(-1)[0])
        if total and (nodes["feature_idx"][~nodes["is_leaf"].astype(bool)] >= self.n_features).any():
            raise ValueError("tree arrays refer to features beyond n_features")
        self.baseline = float(np.asarray(arrays[prefix + "baseline"]).reshape(-1)[0])
        empty = np.zeros((0, 8), dtype=np.uint32)
        self._trees = []
        offset = 0
        for n in sizes:
            self._trees.append(TreePredictor(nodes[offset : offset + n].copy(), empty, empty))
            offset += n
        self._known = np.zeros((0, 8), dtype=np.uint32)
        self._fmap = np.zeros(self.n_features, dtype=np.uint32)
        # the same trees as plain Python lists, for a few rows at a time (a protein model's one
        # row per protein: 200 compiled calls cost ~1.6 ms, the walk in Python ~0.2 ms)
        self._py = None
        self._windowed: dict[tuple[int, int], WindowTrees | None] = {}
        self._binned_setup(nodes, sizes, empty)

    def _binned_setup(self, nodes, sizes, empty) -> None:
        """The same trees over uint8 bins (scikit-learn's ``predict_binned``), exactly.

        For feature ``f`` let ``T_f`` be the sorted distinct thresholds of the nodes that split
        on it, and ``bin_f(x)`` the number of them below ``x`` (``MISSING_BIN`` for NaN). Then
        ``x <= T_f[k]`` if and only if ``bin_f(x) <= k``: with ``k`` as the node's bin threshold
        every node takes the branch it takes on ``x`` itself, NaN included (sklearn sends the
        missing bin where ``missing_go_to_left`` says), so the leaves and their float64 sums are
        identical. Needs at most 254 thresholds per feature (scikit-learn's trees have at most
        254: 255 bins); otherwise ``binned`` is False and :meth:`raw` is the only path."""
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        inner = ~nodes["is_leaf"].astype(bool)
        feat = nodes["feature_idx"][inner]
        thr = nodes["num_threshold"][inner]
        self.thresholds = [np.zeros(0)] * self.n_features
        for f in np.unique(feat):
            self.thresholds[int(f)] = np.unique(thr[feat == f])
        self.binned = all(len(t) < MISSING_BIN for t in self.thresholds)
        self._btrees = []
        if not self.binned:
            return
        offset = 0
        for n in sizes:
            nd = nodes[offset : offset + n].copy()
            idx = np.nonzero(~nd["is_leaf"].astype(bool))[0]
            for i in idx:
                nd["bin_threshold"][i] = np.searchsorted(self.thresholds[nd["feature_idx"][i]], nd["num_threshold"][i])
            self._btrees.append(TreePredictor(nd, empty.copy(), empty))
            offset += n

    def bin_column(self, f: int, values: np.ndarray) -> np.ndarray:
        """uint8 bins of feature ``f``'s values (see :meth:`_binned_setup`)."""
        v = np.asarray(values, dtype=np.float64)
        t = self.thresholds[f]
        b = np.searchsorted(t, v, side="left").astype(np.uint8) if len(t) else np.zeros(v.shape, dtype=np.uint8)
        nan = np.isnan(v)
        if nan.any():
            b[nan] = MISSING_BIN
        return b

    def bin(self, X: np.ndarray) -> np.ndarray:
        """uint8 bins of a feature matrix, column by column (:meth:`raw_binned` of the result
        equals :meth:`raw` of ``X``)."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty(X.shape, dtype=np.uint8)
        for f in range(X.shape[1]):
            out[:, f] = self.bin_column(f, X[:, f])
        return out

    def window_trees(self, window: int, channels: int) -> "WindowTrees | None":
        """The trees over per-residue bins for features in the window layout (feature
        ``p * channels + c``: channel ``c`` of the window's residue ``p``); ``None`` when the trees
        are not :attr:`binned` or the features are not that layout. Built once per layout."""
        key = (window, channels)
        if key not in self._windowed:
            ok = self.binned and window * channels == self.n_features
            self._windowed[key] = WindowTrees(self, window, channels) if ok else None
        return self._windowed[key]

    def raw_binned(self, Xb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """:meth:`raw` of the rows whose bins are ``Xb`` (uint8): the same values, bit for bit
        (the same leaves, summed from the baseline in the same tree order)."""
        if not self.binned:
            raise ValueError("these trees have more thresholds per feature than uint8 bins hold")
        Xb = np.ascontiguousarray(Xb, dtype=np.uint8)
        if Xb.ndim != 2 or Xb.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) binned features, got {Xb.shape}")
        out = np.full(Xb.shape[0], self.baseline, dtype=np.float64)
        for start in range(0, Xb.shape[0], BINNED_BLOCK):
            xb = Xb[start : start + BINNED_BLOCK]
            acc = out[start : start + BINNED_BLOCK]
            for t in self._btrees:
                acc += t.predict_binned(xb, MISSING_BIN, n_threads)
        return out

    def _python_trees(self):
        if self._py is None:
            fields = ("feature_idx", "num_threshold", "left", "right", "is_leaf", "missing_go_to_left", "value")
            self._py = [tuple(t.nodes[f].tolist() for f in fields) for t in self._trees]
        return self._py

    def _raw_python(self, X: np.ndarray) -> np.ndarray:
        """Exactly what the compiled walker computes (``x <= threshold`` goes left, NaN follows
        ``missing_go_to_left``; float64 sums from the baseline, tree after tree)."""
        trees = self._python_trees()
        out = np.empty(X.shape[0], dtype=np.float64)
        for i, row in enumerate(X.tolist()):
            acc = self.baseline
            for feat, thr, left, right, leaf, miss, value in trees:
                k = 0
                while not leaf[k]:
                    x = row[feat[k]]
                    if x != x:
                        k = left[k] if miss[k] else right[k]
                    elif x <= thr[k]:
                        k = left[k]
                    else:
                        k = right[k]
                acc += value[k]
            out[i] = acc
        return out

    def raw(self, X: np.ndarray, n_threads: int = 1) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64) if X.dtype != np.float64 else np.ascontiguousarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {X.shape}")
        if X.shape[0] <= PYTHON_ROWS:
            return self._raw_python(X)
        out = np.full(X.shape[0], self.baseline, dtype=np.float64)
        # every tree over a block of rows that stays in the CPU cache, block after block: tree
        # after tree over all rows re-reads the whole feature matrix from memory once per tree
        # (2.5-3.6x slower measured, 200 trees, 460 features); the sums are the same, in the
        # same order
        for start in range(0, X.shape[0], ROW_BLOCK):
            xb = X[start : start + ROW_BLOCK]
            acc = out[start : start + ROW_BLOCK]
            for t in self._trees:
                acc += t.predict(xb, self._known, self._fmap, n_threads)
        return out

    def proba(self, X: np.ndarray, n_threads: int = 1) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.raw(X, n_threads)))


class WindowTrees:
    """A booster's trees walked over every window of a residue table without building the window
    matrix.

    The window features are position-major (feature ``p * C + c``: channel ``c`` of the window's
    ``p``-th residue), so windows overlap in all but one residue. Each residue gets one row of
    uint8 bins: a channel whose thresholds, over all ``W`` positions together, number fewer than
    ``MISSING_BIN`` gets one column binned against that union (one-hot identity, hydropathy);
    any other channel (disorder, pLDDT: hundreds of thresholds) gets one column per window
    position, binned against that position's own thresholds. Window ``w`` is then row ``w`` of
    one strided, overlapping view of the table (``rows x W * width``, row stride ``width``
    bytes): every node reads the column of its feature's channel and position, remapped once in
    a copy of the trees. ``x <= T[k]`` if and only if ``bin(x) <= k`` for the sorted thresholds
    ``T`` a column is binned against (the node's own threshold is one of them), so every node
    takes the branch it takes on the float value and the sums are those of :meth:`Booster.raw`,
    bit for bit. Compared with materialising the ``n x W * C`` window bins this saves the copy
    and keeps a block of windows in a few kilobytes of cache (``width`` bytes per window).
    """

    def __init__(self, booster: Booster, window: int, channels: int, shared_limit: int = MISSING_BIN) -> None:
        """``shared_limit``: a channel is binned once for all positions when the union of its
        thresholds has fewer values (tests lower it to check the per-position columns)."""
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        W, C = window, channels
        self.window, self.channels, self.baseline = W, C, booster.baseline
        self.columns: list[tuple[int, int | None, np.ndarray]] = []  # (channel, position or None, thresholds)
        where: dict[tuple[int, int | None], int] = {}
        for c in range(C):
            union = np.unique(np.concatenate([booster.thresholds[p * C + c] for p in range(W)]))
            if len(union) < min(shared_limit, MISSING_BIN):
                where[(c, None)] = len(self.columns)
                self.columns.append((c, None, union))
            else:
                for p in range(W):
                    where[(c, p)] = len(self.columns)
                    self.columns.append((c, p, booster.thresholds[p * C + c]))
        self.width = len(self.columns)
        # per-position columns are binned through one search against their channel's union of
        # thresholds, then a lookup per column: v in (union[k-1], union[k]] has as its bin the
        # number of that position's thresholds below v
        self._unions = {c: np.unique(np.concatenate([e for cc, _, e in self.columns if cc == c]))
                        for c, p, _ in self.columns if p is not None}
        self._luts: list[np.ndarray | None] = []
        for c, p, e in self.columns:
            lut = None
            if p is not None:
                lut = np.empty(len(self._unions[c]) + 1, dtype=np.uint8)
                lut[0] = 0
                lut[1:] = np.searchsorted(e, self._unions[c], side="right")
            self._luts.append(lut)
        column = np.empty(W * C, dtype=np.int64)  # feature -> offset of its byte in a window's row of the view
        edges = []
        for p in range(W):
            for c in range(C):
                j = where.get((c, None), where.get((c, p)))
                column[p * C + c] = p * self.width + j
                edges.append(self.columns[j][2])
        empty = np.zeros((0, 8), dtype=np.uint32)
        self._trees = []
        for t in booster._btrees:
            nd = t.nodes.copy()
            for i in np.flatnonzero(~nd["is_leaf"].astype(bool)):
                f = int(nd["feature_idx"][i])
                nd["feature_idx"][i] = column[f]
                nd["bin_threshold"][i] = np.searchsorted(edges[f], nd["num_threshold"][i])
            self._trees.append(TreePredictor(nd, empty.copy(), empty))

    def table(self, residues: np.ndarray) -> np.ndarray:
        """``(N, width)`` uint8 bins of an ``(N, C)`` float residue matrix (NaN: ``MISSING_BIN``)."""
        x = np.asarray(residues, dtype=np.float64)
        out = np.empty((x.shape[0], self.width), dtype=np.uint8)
        ub = {c: np.searchsorted(u, x[:, c], side="left") for c, u in self._unions.items()}
        for j, ((c, _, edges), lut) in enumerate(zip(self.columns, self._luts)):
            v = x[:, c]
            out[:, j] = np.searchsorted(edges, v, side="left") if lut is None else lut[ub[c]]
            nan = np.isnan(v)
            if nan.any():
                out[nan, j] = MISSING_BIN
        return out

    def raw(self, table: np.ndarray) -> np.ndarray:
        """Raw scores of windows ``0 .. N - W`` of a residue table (:meth:`table`)."""
        T = np.ascontiguousarray(table, dtype=np.uint8)
        if T.ndim != 2 or T.shape[1] != self.width:
            raise ValueError(f"expected an (n, {self.width}) residue table, got {T.shape}")
        n = T.shape[0] - self.window + 1
        if n <= 0:
            return np.zeros(0)
        view = np.lib.stride_tricks.as_strided(T.reshape(-1), shape=(n, self.window * self.width),
                                               strides=(self.width, 1), writeable=False)
        out = np.full(n, self.baseline, dtype=np.float64)
        for start in range(0, n, WINDOW_BLOCK):
            xb = view[start : start + WINDOW_BLOCK]
            acc = out[start : start + WINDOW_BLOCK]
            for t in self._trees:
                acc += t.predict_binned(xb, MISSING_BIN, 1)
        return out

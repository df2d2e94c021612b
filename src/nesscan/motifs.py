"""Consensus NES motifs: Kosugi et al. 2008 classes and Wregex's published regex.

Φ positions are given as offsets from Φ1 (Kosugi 2008; Φ = L, I, V, F, M)::

    1a  Φ-x3-Φ-x2-Φ-x-Φ     1b  Φ-x2-Φ-x2-Φ-x-Φ     1c  Φ-x3-Φ-x3-Φ-x-Φ
    1d  Φ-x2-Φ-x3-Φ-x-Φ     2   Φ-x-Φ-x2-Φ-x-Φ      3   Φ-x2-Φ-x3-Φ-x2-Φ

Reverse classes (suffix ``R``) mirror the spacing. A match may be extended with a Φ0 two or
three residues before Φ1 (PKI- and Rev-type NES); ``at_tolerant=True`` also accepts A or T at
Φ1 and Φ2 (the ``-AT`` classes of NESdb/ValidNES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

PHI = frozenset("LIVFM")
PHI_AT = PHI | {"A", "T"}

_FORWARD = {
    "1a": (0, 4, 7, 9),
    "1b": (0, 3, 6, 8),
    "1c": (0, 4, 8, 10),
    "1d": (0, 3, 7, 9),
    "2": (0, 2, 5, 7),
    "3": (0, 3, 7, 10),
}


def _reverse(offsets: tuple[int, ...]) -> tuple[int, ...]:
    last = offsets[-1]
    return tuple(sorted(last - o for o in offsets))


CLASSES: dict[str, tuple[int, ...]] = dict(_FORWARD)
CLASSES.update({f"{k}R": _reverse(v) for k, v in _FORWARD.items()})

# Wregex (Prieto et al. 2014), as published
WREGEX = re.compile(r"(?=(([DEQS].{0,1})([LIMA])(.{2,3})([LIVMF])([^P]{2,3})([LMVF])([^P])([LMIV])(.{0,3}[DEQ])))")


@dataclass(frozen=True)
class MotifMatch:
    motif_class: str  # e.g. "1a", "2R"; "+phi0" appended when a Φ0 was found
    phi: tuple[int, ...]  # 0-based sequence positions of Φ0 (if any) and Φ1..Φ4
    at_tolerant: bool

    @property
    def start(self) -> int:
        return self.phi[0]

    @property
    def end(self) -> int:
        return self.phi[-1]


def is_reverse(motif_class: str | None) -> bool:
    """Whether a class as nesscan writes it (``1aR``, ``2R-AT+phi0``) is a reverse class, bound
    in the minus orientation (Φ4 … Φ1 in sequence order; Fung et al. 2015)."""
    return (motif_class or "").split("+")[0].split("-")[0].endswith("R")


_PHI_LUT = np.zeros(256, dtype=bool)
_PHI_LUT[[ord(c) for c in PHI]] = True
_AT_LUT = _PHI_LUT.copy()
_AT_LUT[[ord(c) for c in PHI_AT]] = True
# all classes at once: column k of a length-(_SPAN + 1) window is the residue k after Φ1
_NAMES = list(CLASSES)
_OFFS = np.array([CLASSES[k] for k in _NAMES])  # (classes, 4)
_SPAN = int(_OFFS.max())
_PHI0_CLASS = [not is_reverse(k) for k in _NAMES]


def _masks(seq: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)
    return _PHI_LUT[arr], _AT_LUT[arr]


def _all_class_hits(isphi: np.ndarray, isat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(strict, tolerant)`` Φ1 hits of every class at once, each ``(L, classes)`` boolean;
    ``tolerant`` holds the matches that need A/T at Φ1 or Φ2 but are not strict ones."""
    L = len(isphi)
    pad = np.zeros(L + _SPAN, dtype=bool)  # positions past the end never match
    pad[:L] = isphi
    win = as_strided(pad, shape=(L, _SPAN + 1), strides=(1, 1), writeable=False)  # row i: pad[i : i + _SPAN + 1]
    phi = win[:, _OFFS]  # (L, classes, 4): copies, so pad can be refilled below
    strict = phi.all(-1)
    pad[:L] = isat
    at = win[:, _OFFS[:, :2]]
    return strict, at.all(-1) & phi[:, :, 2] & phi[:, :, 3] & ~strict


@lru_cache(maxsize=16)
def _scan(seq: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(isphi, strict hits, tolerant hits)`` of a sequence (hits None when it is too short for
    any class), read-only and cached: the strict and the A/T-tolerant scan of a sequence, and
    the Φ annotation of a protein's candidates, share one scan."""
    isphi, isat = _masks(seq)
    if len(isphi) <= _OFFS[:, -1].min():
        strict = tolerant = None
    else:
        strict, tolerant = _all_class_hits(isphi, isat)
        strict.flags.writeable = tolerant.flags.writeable = False
    isphi.flags.writeable = False
    return isphi, strict, tolerant


def kosugi_matches(seq: str, at_tolerant: bool = False, phi0: bool = True) -> list[MotifMatch]:
    """All Kosugi-class matches (overlapping, every class). With ``at_tolerant`` only the
    matches that need A/T at Φ1 or Φ2 are returned (strict ones come from the strict scan).
    Ordered by class (the order of :data:`CLASSES`), then by position."""
    isphi, strict, tolerant = _scan(seq)
    if strict is None:
        return []
    hits = tolerant if at_tolerant else strict
    out = []
    for c, i in zip(*(a.tolist() for a in np.nonzero(hits.T))):
        offs = CLASSES[_NAMES[c]]
        pos = [i + o for o in offs]
        cls = _NAMES[c]
        if phi0 and _PHI0_CLASS[c]:
            for back in (3, 4):  # Φ0-x2-Φ1 or Φ0-x3-Φ1
                p0 = i - back
                if p0 >= 0 and isphi[p0]:
                    pos = [p0] + pos
                    cls = cls + "+phi0"
                    break
        out.append(MotifMatch(cls, tuple(pos), at_tolerant))
    return out


def wregex_matches(seq: str) -> list[tuple[int, int]]:
    """0-based inclusive (start, end) of every Wregex match (overlapping matches included)."""
    return [(m.start(1), m.start(1) + len(m.group(1)) - 1) for m in WREGEX.finditer(seq.upper())]


# _USES[c, d] = 1 when class c has a Φ at offset d after Φ1
_USES = np.zeros((len(_NAMES), _SPAN + 1))
for _c, _offs in enumerate(_OFFS):
    _USES[_c, _offs] = 1.0


def _spread(hits: np.ndarray, L: int) -> np.ndarray:
    """Per residue, the number of matches (``hits``: ``(L, classes)`` Φ1 positions) using it as
    a Φ. All values are small integers, exact in float64 whatever the order of the sums."""
    per_offset = hits.astype(np.float64) @ _USES  # (L, offsets): matches at i with a Φ at i + d
    track = np.zeros(L + _SPAN)
    for d in range(_SPAN + 1):
        track[d : d + L] += per_offset[:, d]
    return track[:L]


def residue_motif_tracks(seq: str) -> np.ndarray:
    """Per-residue motif evidence, L x 3 (vectorised over the sequence): the number of strict
    Kosugi matches (all classes) that use the residue as a Φ position (log1p), the same for
    A/T-tolerant matches, and whether the residue lies inside a Wregex match."""
    isphi, isat = _masks(seq)
    L = len(isphi)
    if L > _OFFS[:, -1].min():
        strict, tol = (_spread(h, L) for h in _all_class_hits(isphi, isat))
    else:
        strict, tol = np.zeros(L), np.zeros(L)
    wr = np.zeros(L)
    for a, b in wregex_matches(seq):
        wr[a : b + 1] = 1.0
    return np.stack([np.log1p(strict), np.log1p(tol), wr], axis=1)

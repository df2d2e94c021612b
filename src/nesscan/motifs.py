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


_PHI_LUT = np.zeros(256, dtype=bool)
_PHI_LUT[[ord(c) for c in PHI]] = True
_AT_LUT = _PHI_LUT.copy()
_AT_LUT[[ord(c) for c in PHI_AT]] = True
# all classes at once: column k of a length-(_SPAN + 1) window is the residue k after Φ1
_NAMES = list(CLASSES)
_OFFS = np.array([CLASSES[k] for k in _NAMES])  # (classes, 4)
_SPAN = int(_OFFS.max())
_PHI0_CLASS = [not k.endswith("R") for k in _NAMES]


def _masks(seq: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)
    return _PHI_LUT[arr], _AT_LUT[arr]


def _class_hits(isphi: np.ndarray, isat: np.ndarray, offs: tuple[int, ...], at_tolerant: bool) -> np.ndarray:
    """0-based Φ1 positions where the class matches (vectorised over the sequence)."""
    n = len(isphi) - offs[-1]
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    w = [slice(o, o + n) for o in offs]
    strict = isphi[w[0]] & isphi[w[1]] & isphi[w[2]] & isphi[w[3]]
    if not at_tolerant:
        return np.flatnonzero(strict)
    return np.flatnonzero(isat[w[0]] & isat[w[1]] & isphi[w[2]] & isphi[w[3]] & ~strict)


def kosugi_matches(seq: str, at_tolerant: bool = False, phi0: bool = True) -> list[MotifMatch]:
    """All Kosugi-class matches (overlapping, every class). With ``at_tolerant`` only the
    matches that need A/T at Φ1 or Φ2 are returned (strict ones come from the strict scan).
    Ordered by class (the order of :data:`CLASSES`), then by position."""
    isphi, isat = _masks(seq)
    L = len(isphi)
    if L <= _OFFS[:, -1].min():
        return []
    pad = np.zeros(L + _SPAN, dtype=bool)  # positions past the end never match
    pad[:L] = isphi
    win = as_strided(pad, shape=(L, _SPAN + 1), strides=(1, 1), writeable=False)  # row i: pad[i : i + _SPAN + 1]
    phi = win[:, _OFFS]  # (L, classes, 4): copies, so pad can be refilled below
    strict = phi.all(-1)
    if at_tolerant:
        pad[:L] = isat
        at = win[:, _OFFS[:, :2]]
        hits = at.all(-1) & phi[:, :, 2] & phi[:, :, 3] & ~strict
    else:
        hits = strict
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


def residue_motif_tracks(seq: str) -> np.ndarray:
    """Per-residue motif evidence, L x 3 (vectorised over the sequence): the number of strict
    Kosugi matches (all classes) that use the residue as a Φ position (log1p), the same for
    A/T-tolerant matches, and whether the residue lies inside a Wregex match."""
    isphi, isat = _masks(seq)
    L = len(isphi)
    strict = np.zeros(L)
    tol = np.zeros(L)
    for offs in CLASSES.values():
        for track, tolerant in ((strict, False), (tol, True)):
            hits = _class_hits(isphi, isat, offs, tolerant)
            for o in offs:
                np.add.at(track, hits + o, 1.0)
    wr = np.zeros(L)
    for a, b in wregex_matches(seq):
        wr[a : b + 1] = 1.0
    return np.stack([np.log1p(strict), np.log1p(tol), wr], axis=1)

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


def kosugi_matches(seq: str, at_tolerant: bool = False, phi0: bool = True) -> list[MotifMatch]:
    """All Kosugi-class matches (overlapping, every class)."""
    s = seq.upper()
    n = len(s)
    out = []
    for name, offs in CLASSES.items():
        span = offs[-1]
        for i in range(n - span):
            pos = [i + o for o in offs]
            letters = [s[p] for p in pos]
            if at_tolerant:
                ok = letters[0] in PHI_AT and letters[1] in PHI_AT and letters[2] in PHI and letters[3] in PHI
                if ok and all(c in PHI for c in letters):
                    ok = False  # strict matches are reported by the strict scan
            else:
                ok = all(c in PHI for c in letters)
            if not ok:
                continue
            cls = name
            if phi0 and not name.endswith("R"):
                for back in (3, 4):  # Φ0-x2-Φ1 or Φ0-x3-Φ1
                    p0 = i - back
                    if p0 >= 0 and s[p0] in PHI:
                        pos = [p0] + pos
                        cls = name + "+phi0"
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
    arr = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)
    L = len(arr)
    isphi = np.isin(arr, np.frombuffer("".join(sorted(PHI)).encode(), dtype=np.uint8))
    isat = np.isin(arr, np.frombuffer("".join(sorted(PHI_AT)).encode(), dtype=np.uint8))
    strict = np.zeros(L)
    tol = np.zeros(L)
    for offs in CLASSES.values():
        n = L - offs[-1]
        if n <= 0:
            continue
        win = [slice(o, o + n) for o in offs]
        m = isphi[win[0]] & isphi[win[1]] & isphi[win[2]] & isphi[win[3]]
        t = isat[win[0]] & isat[win[1]] & isphi[win[2]] & isphi[win[3]] & ~m
        for w in win:
            strict[w] += m
            tol[w] += t
    wr = np.zeros(L)
    for a, b in wregex_matches(seq):
        wr[a : b + 1] = 1.0
    return np.stack([np.log1p(strict), np.log1p(tol), wr], axis=1)

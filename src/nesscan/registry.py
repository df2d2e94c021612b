"""Where models live: the shipped model's name, the folders searched for a model by name, and a
model card's E-value cutoff read without loading the model (no torch import)."""

from __future__ import annotations

import json
import os
import sys

from .errors import NesscanError

DEFAULT_MODEL = "nesscan-builtin-v2"
FALLBACK_MAX_EVALUE = 0.01  # a model card without a background null (no calibration section)


def model_dirs() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("NESSCAN_MODELS"):
        dirs.append(os.environ["NESSCAN_MODELS"])
    dirs.append(os.path.normpath(os.path.join(here, "..", "..", "models")))  # source checkout / editable install
    dirs.append(os.path.join(sys.prefix, "share", "nesscan", "models"))  # wheel install (data-files)
    return dirs


def resolve_model(name_or_path: str | None) -> str:
    """A model directory from a path, or a name looked up in the shipped model folders."""
    name_or_path = name_or_path or DEFAULT_MODEL
    if os.path.exists(name_or_path):
        return name_or_path
    tried = []
    for d in model_dirs():
        p = os.path.join(d, name_or_path)
        tried.append(p)
        if os.path.exists(os.path.join(p, "model.json")):
            return p
    raise NesscanError(f"model '{name_or_path}' not found (tried the path itself and {', '.join(tried)})")


def card_max_evalue(name_or_path: str | None = None) -> float:
    """The default E-value cutoff of a model (its card's ``calibration.max_evalue``, chosen by
    cross-validation); 0.01 for a card without a background null."""
    path = resolve_model(name_or_path)
    card = os.path.join(path, "model.json") if os.path.isdir(path) else path
    try:
        with open(card, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as e:
        raise NesscanError(f"model card {card} cannot be read: {e}") from None
    return card_cutoff(raw if isinstance(raw, dict) else {})


def card_cutoff(raw: dict) -> float:
    """The E-value cutoff stored in a parsed model card (``calibration.max_evalue``), else
    ``FALLBACK_MAX_EVALUE`` for a card without a background null."""
    return float((raw.get("calibration") or {}).get("max_evalue", FALLBACK_MAX_EVALUE))


__all__ = ["DEFAULT_MODEL", "model_dirs", "resolve_model", "card_max_evalue", "card_cutoff"]

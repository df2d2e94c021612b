"""nesscan: find and rank nuclear export signals (NES) in protein sequences."""

__version__ = "0.1.0"

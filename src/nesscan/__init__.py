"""nesscan: find and rank nuclear export signals (NES) in protein sequences."""

import csv
import sys

__version__ = "0.1.0"

# FASTA IDs may be arbitrarily long (a header of 200k characters is valid input), and every table
# nesscan writes it also reads back (gather, fuse, evaluate, MultiQC): lift the csv module's
# 128 kB field limit once for the whole package.
csv.field_size_limit(sys.maxsize)

"""Output safety shared by the commands that write results: one run per output (a lock), and
the skip-and-report table of invalid input records.

The lock is ``fcntl.flock`` on a lock file: the kernel releases it when the process ends, however
it ends (``kill -9`` included), so a stale lock file never blocks a rerun; a second run that
finds it held stops at once with a one-line error instead of interleaving its writes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import logging
import os
from typing import Iterable

from .errors import NesscanError
from .fasta import Skipped

log = logging.getLogger("nesscan")

LOCK_NAME = ".nesscan.lock"
SKIPPED_COLUMNS = ["id", "line", "reason"]


@contextlib.contextmanager
def output_lock(lock_path: str, what: str):
    """Hold an exclusive lock on ``lock_path`` (created, and removed at the end) for the block.
    ``what`` names the output in the error when another run holds it."""
    lock_path = os.fspath(lock_path)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NesscanError(
                f"another nesscan run is writing to {what} (it holds {lock_path}); wait for it to end or choose "
                f"another output"
            ) from None
        # the holder before us may have removed the file between our open and our lock: the
        # lock is then on a deleted file, so take it again on the file now at that path
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


@contextlib.contextmanager
def outdir_lock(outdir: str, skipped: Iterable[Skipped] | None = None):
    """:func:`output_lock` on ``OUTDIR/.nesscan.lock`` (creates ``outdir``). With ``skipped``
    (a run under ``--skip-invalid``), ``OUTDIR/skipped.tsv`` is written when the block ends
    without an error, still under the lock."""
    os.makedirs(outdir, exist_ok=True)
    with output_lock(os.path.join(outdir, LOCK_NAME), outdir):
        yield
        if skipped is not None:
            write_skipped(os.path.join(outdir, "skipped.tsv"), skipped)


def write_skipped(path: str, skipped: Iterable[Skipped]) -> int:
    """``id, line, reason`` of every skipped record (a header only when none), written under a
    temporary name and renamed when complete; logs and returns the count."""
    skipped = list(skipped)
    tmp = path + ".partial"
    try:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(SKIPPED_COLUMNS)
            for s in skipped:
                w.writerow([s.id, s.line, " ".join(s.reason.split())])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if skipped:
        log.warning("skipped %d invalid record%s (listed in %s)", len(skipped), "s" * (len(skipped) != 1), path)
    else:
        log.info("no invalid records skipped")
    return len(skipped)

"""Faults, injected for real (issue 15): ``kill -9`` of ``predict`` and ``embed`` at several
points and a rerun, a write failure (file size limit, as on a full disk), and two runs into one
output. Nothing is mocked: the real CLI runs in a subprocess and is really killed or limited."""

import os
import random
import resource
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import run_cli, write_fasta

TABLES = ("proteins.tsv", "candidates.tsv", "candidates.gff3")
AA = "ACDEFGHIKLMNPQRSTVWY"


def proteome(path, n=500, seed=15):
    rng = random.Random(seed)
    return write_fasta(path, [(f"P{i:05d}", "".join(rng.choice(AA) for _ in range(rng.randint(80, 400))))
                              for i in range(n)])


def start(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "nesscan", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for(cond, proc, timeout=300):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            return False
        if time.time() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.005)
    return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    fasta = proteome(d / "proteome.fa")
    r = run_cli("predict", "-i", fasta, "-o", d / "ref", "-q")
    assert r.returncode == 0, r.stderr
    return fasta, {t: (d / "ref" / t).read_bytes() for t in TABLES}


def _size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return -1


KILL_POINTS = {
    "starting": lambda out: lambda: True,  # at once: imports, validation
    "locked": lambda out: lambda: os.path.exists(out / ".nesscan.lock"),
    "first_rows": lambda out: lambda: _size(out / "candidates.tsv.partial") > 0,
    "mid_tables": lambda out: lambda: _size(out / "candidates.tsv.partial") > 64 * 1024,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill9_predict_then_rerun_equals_an_uninterrupted_run(tmp_path, reference, point):
    fasta, ref = reference
    out = tmp_path / "out"
    proc = start("predict", "-i", fasta, "-o", out, "-q")
    reached = wait_for(KILL_POINTS[point](out), proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert reached, "the run ended before the kill point"
    assert proc.returncode == -signal.SIGKILL
    for t in TABLES:  # a final-named table is never truncated: absent, or complete
        assert not (out / t).exists() or (out / t).read_bytes() == ref[t], t
    r = run_cli("predict", "-i", fasta, "-o", out, "-q")  # the stale lock file does not block
    assert r.returncode == 0, r.stderr
    for t in TABLES:
        assert (out / t).read_bytes() == ref[t], t
    assert sorted(p.name for p in out.iterdir() if p.name.endswith((".partial", ".lock"))) == []


def _h5_arrays(path):
    with h5py.File(path, "r") as f:
        return {f["proteins"][k].attrs["id"]: f["proteins"][k][()] for k in f["proteins"]}


@pytest.fixture(scope="module")
def embed_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("embedref")
    fasta = proteome(d / "proteome.fa", n=300, seed=16)
    r = run_cli("embed", "-i", fasta, "-o", d / "ref.h5", "-q")
    assert r.returncode == 0, r.stderr
    return fasta, _h5_arrays(d / "ref.h5")


@pytest.mark.parametrize("point", ["starting", "partial_exists", "partial_grown"])
def test_kill9_embed_then_rerun_equals_an_uninterrupted_run(tmp_path, embed_reference, point):
    fasta, ref = embed_reference
    h5 = tmp_path / "e.h5"
    partial = tmp_path / "e.h5.partial"
    cond = {"starting": lambda: True, "partial_exists": lambda: partial.exists(),
            "partial_grown": lambda: _size(partial) > 4 * 1024 * 1024}[point]
    proc = start("embed", "-i", fasta, "-o", h5, "-q")
    reached = wait_for(cond, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert reached, "the run ended before the kill point"
    r = run_cli("embed", "-i", fasta, "-o", h5, "-q")
    assert r.returncode == 0, r.stderr
    got = _h5_arrays(h5)
    assert list(got) == list(ref) or sorted(got) == sorted(ref)
    for pid, arr in ref.items():
        assert np.array_equal(got[pid], arr), pid
    with h5py.File(h5, "r") as f:
        assert bool(f.attrs["complete"])


def _limit_file_size(nbytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


@pytest.mark.parametrize("limit", [0, 50_000, 400_000])
def test_write_failure_gives_one_line_and_no_truncated_table(tmp_path, reference, limit):
    """RLIMIT_FSIZE makes every write past ``limit`` bytes fail with EFBIG, as a full disk fails
    them with ENOSPC (Python ignores SIGXFSZ, so the write itself reports the error)."""
    fasta, ref = reference
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "nesscan", "predict", "-i", str(fasta), "-o", str(out), "-q"],
                       capture_output=True, text=True, preexec_fn=_limit_file_size(limit),
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nesscan predict: error: cannot write"), r.stderr
    assert "File too large" in lines[0]
    for t in TABLES:
        assert not (out / t).exists() or (out / t).read_bytes() == ref[t], t
    assert [p.name for p in out.iterdir() if p.name.endswith((".partial", ".lock"))] == [] if out.exists() else True


def test_second_run_into_the_same_outdir_is_refused(tmp_path, reference):
    fasta, ref = reference
    out = tmp_path / "out"
    first = start("predict", "-i", fasta, "-o", out, "-q")
    assert wait_for(lambda: os.path.exists(out / ".nesscan.lock"), first)
    first.send_signal(signal.SIGSTOP)  # hold it there, lock taken, while the second run starts
    try:
        second = run_cli("predict", "-i", fasta, "-o", out, "-q")
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "another nesscan run is writing to" in lines[0], second.stderr
    assert first.returncode == 0, stderr
    for t in TABLES:
        assert (out / t).read_bytes() == ref[t], t
    assert not (out / ".nesscan.lock").exists()


def test_second_embed_into_the_same_output_is_refused(tmp_path, embed_reference):
    fasta, ref = embed_reference
    h5 = tmp_path / "e.h5"
    first = start("embed", "-i", fasta, "-o", h5, "-q")
    assert wait_for(lambda: os.path.exists(str(h5) + ".lock"), first)
    first.send_signal(signal.SIGSTOP)
    try:
        second = run_cli("embed", "-i", fasta, "-o", h5, "-q")
    finally:
        first.send_signal(signal.SIGCONT)
    first.communicate()
    assert second.returncode == 2 and "another nesscan run is writing to" in second.stderr, second.stderr
    assert first.returncode == 0
    got = _h5_arrays(h5)
    assert sorted(got) == sorted(ref)

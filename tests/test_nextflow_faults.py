"""The Nextflow pipeline under faults and with inputs as they come (issue 15), in real runs of
the pinned Nextflow with this environment's tools (``local_env``):

* a gzip-compressed proteome with RNA records among the proteins: skipped by default, listed
  per sample and counted in MultiQC's General Statistics;
* a task that the kernel's OOM killer ends (exit 137, in a memory cgroup sized from
  ``task.memory``, as a cluster does) is retried with more memory by ``conf/base.config``.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from test_nextflow import EXAMPLE, LAUNCHER, MAIN, fasta_ids, model_args, newest_trace, nf_env, read_tsv, require_multiqc, run_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed: Nextflow cannot run")

RNA = [("rna_one", "ACGUACGUAGCUAGCUAGCAUCGAUCGAUGC"), ("rna_two", "GGGCCCAUAUAUGCGCAUAUGCAUGCAUGCA")]


def example_records():
    recs, pid, seq = [], None, []
    for line in open(EXAMPLE):
        if line.startswith(">"):
            if pid:
                recs.append((pid, "".join(seq)))
            pid, seq = line[1:].split()[0], []
        else:
            seq.append(line.strip())
    recs.append((pid, "".join(seq)))
    return recs


def test_gzipped_proteome_with_rna_is_skipped_and_counted(tmp_path, request):
    require_multiqc()
    recs = example_records()
    mixed = recs[:3] + [RNA[0]] + recs[3:6] + [RNA[1]] + recs[6:]
    fasta = tmp_path / "mixed.fa.gz"
    fasta.write_bytes(gzip.compress("".join(f">{p} x\n{s}\n" for p, s in mixed).encode(), mtime=0))
    env = nf_env(tmp_path / "nxf_home")
    out = tmp_path / "results"
    extra = model_args(request)
    r = run_pipeline("-profile", "local_env", "-c", _limits(tmp_path), "--input", fasta, "--chunk_size", 4,
                     "--outdir", out, *extra, cwd=tmp_path, env=env, timeout=1500)
    assert r.returncode == 0, r.output[-6000:]
    proteins = read_tsv(out / "proteins.tsv")
    assert [row["id"] for row in proteins] == [p for p, _ in recs]
    skipped = glob.glob(str(out / "skipped" / "*.skipped.tsv"))
    assert skipped == [str(out / "skipped" / "mixed.skipped.tsv")], skipped  # one per sample, named after it
    rows = read_tsv(skipped[0])
    assert [row["id"] for row in rows] == ["rna_one", "rna_two"]
    assert all("nucleotide" in row["reason"] and row["chunk"].endswith(("chunk00001", "chunk00002")) for row in rows)
    stats = glob.glob(str(out / "multiqc" / "multiqc_data" / "multiqc_general_stats.txt"))
    assert stats, os.listdir(out / "multiqc")
    stats = {row["Sample"]: row for row in read_tsv(stats[0])}
    assert set(stats) == {"mixed"}, stats  # one row per sample, none for anything else
    assert [float(v) for k, v in stats["mixed"].items() if k.endswith("nesscan_skipped")] == [2.0], stats
    # the same input with --skip_invalid false stops with the tool's error naming the record
    r = run_pipeline("-profile", "local_env", "-c", _limits(tmp_path), "--input", fasta, "--chunk_size", 4,
                     "--skip_invalid", "false", "--outdir", tmp_path / "strict", *extra, cwd=tmp_path, env=env,
                     timeout=1500)
    assert r.returncode != 0
    # (the first chunk to fail names its record: rna_one or rna_two)
    assert re.search(r"nesscan embed: error: record 'rna_(one|two)' looks like a nucleotide sequence .*--skip-invalid",
                     r.output), r.output[-4000:]


def _limits(tmp_path, memory="6.GB"):
    p = tmp_path / "limits.config"
    p.write_text(f"process.resourceLimits = [cpus: 1, memory: '{memory}', time: '1.h']\n")
    return p


def predict_tables(fasta, outdir, extra, env):
    r = subprocess.run([sys.executable, "-m", "nesscan", "predict", "-i", fasta, "-o", outdir, "-q",
                        "--skip-invalid", *extra], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return {n: read_tsv(os.path.join(outdir, n)) for n in ("proteins.tsv", "candidates.tsv")}


def test_killed_run_resumes_to_the_clean_tables(tmp_path, request):
    """SIGKILL to Nextflow and every task it runs, once the first task has completed; then
    ``-resume`` reuses them and the tables equal ``nesscan predict`` on the whole file."""
    require_multiqc()
    env = nf_env(tmp_path / "nxf_home")
    out = tmp_path / "results"
    extra = model_args(request)
    args = [LAUNCHER, "run", MAIN, "-ansi-log", "false", "-profile", "local_env", "-c", _limits(tmp_path),
            "--input", EXAMPLE, "--chunk_size", 2, "--outdir", out, *extra]
    proc = subprocess.Popen(list(map(str, args)), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    log = tmp_path / ".nextflow.log"
    try:
        # kill once a WINDOW_SCORE task was submitted: its EMBED task was complete and recorded
        # in the cache then, and other tasks are running
        while True:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "Submitted process > NESSCAN:WINDOW_SCORE" in text or proc.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert "Submitted process > NESSCAN:WINDOW_SCORE" in text
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Nextflow, its JVM and the tasks: one process group
        proc.wait()
    assert not (out / "proteins.tsv").exists()
    r = run_pipeline("-profile", "local_env", "-c", _limits(tmp_path), "--input", EXAMPLE, "--chunk_size", 2,
                     "--outdir", out, *extra, "-resume", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.output[-6000:]
    trace = newest_trace(out)
    assert "CACHED" in {t["status"] for t in trace}, [(t["name"], t["status"]) for t in trace]
    ref = predict_tables(EXAMPLE, tmp_path / "predict", extra, env)
    for name, rows in ref.items():
        assert read_tsv(out / name) == rows, name
    assert [row["id"] for row in read_tsv(out / "proteins.tsv")] == fasta_ids(EXAMPLE)




def _memory_cgroup_writable() -> bool:
    probe = subprocess.run(["bash", "-c", f"source {ROOT}/tests/nf/memory_cgroup.sh 1000000000 && echo ok"],
                           capture_output=True, text=True)
    _remove_test_cgroups()
    return probe.returncode == 0 and "ok" in probe.stdout


def _remove_test_cgroups():
    for d in glob.glob("/sys/fs/cgroup/**/nesscan-oom-test-*", recursive=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def test_oom_killed_task_is_retried_with_more_memory(tmp_path, request):
    """MULTIQC (label process_single: 6 GB, 12 GB on the retry) runs in a memory cgroup of
    task.memory / 68 (90 MB, then 181 MB; MultiQC peaks at about 135 MB here): the kernel's OOM
    killer ends the first attempt (exit 137), base.config's errorStrategy retries it with twice
    the memory, and the run completes."""
    require_multiqc()
    if not _memory_cgroup_writable():
        if os.environ.get("CI"):
            pytest.fail("cannot create a memory cgroup: the OOM retry test needs one (root, cgroup v1 or v2)")
        pytest.skip("cannot create a memory cgroup here")
    env = nf_env(tmp_path / "nxf_home")
    out = tmp_path / "results"
    oom = tmp_path / "oom.config"
    oom.write_text(
        "process.resourceLimits = [cpus: 1, memory: '20.GB', time: '1.h']\n"
        "process { withName: '.*:MULTIQC' { beforeScript = { \"source " + ROOT + "/tests/nf/memory_cgroup.sh "
        "${(task.memory.toBytes() / 68) as long}\" } } }\n")
    try:
        r = run_pipeline("-profile", "local_env", "-c", oom, "--input", EXAMPLE, "--chunk_size", 8, "--outdir", out,
                         *model_args(request), cwd=tmp_path, env=env, timeout=1500)
    finally:
        _remove_test_cgroups()
    assert r.returncode == 0, r.output[-6000:]
    mqc = sorted((t for t in newest_trace(out) if t["process"].endswith(":MULTIQC")), key=lambda t: t["attempt"])
    assert [(t["attempt"], t["exit"], t["status"]) for t in mqc] == [("1", "137", "FAILED"), ("2", "0", "COMPLETED")], mqc
    assert [t["memory"] for t in mqc] == ["6 GB", "12 GB"]
    assert (out / "multiqc" / "multiqc_report.html").exists()
    assert [row["id"] for row in read_tsv(out / "proteins.tsv")] == fasta_ids(EXAMPLE)

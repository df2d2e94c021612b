"""UNVERIFIED, not collected by pytest (issue 15): a task ended by the kernel's OOM killer (exit 137, in a memory cgroup of task.memory / 68, tests/nf/memory_cgroup.sh) is retried with more memory by conf/base.config (the mechanism was checked by hand: MultiQC in a 90 MB cgroup -> exit 137, 180 MB -> exit 0).

Written but not yet passed once: the shared 2-core machine was too loaded for a Nextflow run to
finish before the deadline. Move into tests/test_nextflow_faults.py (it needs that file's imports:
glob, os, signal, subprocess, sys, time, pytest, LAUNCHER, MAIN, EXAMPLE, ... from test_nextflow) once
it has passed."""


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

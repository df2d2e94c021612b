"""UNVERIFIED, not collected by pytest (issue 15): a Nextflow run killed with SIGKILL (Nextflow and its tasks) once a WINDOW_SCORE task was submitted, then -resume: cached tasks reused, tables equal to nesscan predict's.

Written but not yet passed once: the shared 2-core machine was too loaded for a Nextflow run to
finish before the deadline. Move into tests/test_nextflow_faults.py (it needs that file's imports:
glob, os, signal, subprocess, sys, time, pytest, LAUNCHER, MAIN, EXAMPLE, ... from test_nextflow) once
it has passed."""


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



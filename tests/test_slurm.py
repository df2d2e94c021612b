"""The pipeline on a real SLURM: `-profile test,slurm,local_env` on a one-node cluster that
.ci/slurm/start.sh starts on this machine (Debian's slurm-wlm 22.05 + munge, root), stopped by
PID (.ci/slurm/stop.sh) when the module's tests are done.

Evidence that every task was a SLURM job: the trace's native_id of every task is a SLURM job ID,
each task's environment had that SLURM_JOB_ID (written by a beforeScript), the queue is the
partition asked for, and `scontrol` knows the jobs. Skipped without SLURM/root; fails under CI=true.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from test_nextflow import ROOT, model_args, newest_trace, nf_env, read_tsv, require_multiqc, run_pipeline

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
START = os.path.join(ROOT, ".ci", "slurm", "start.sh")
STOP = os.path.join(ROOT, ".ci", "slurm", "stop.sh")
PARTITION = "ci"  # the one partition .ci/slurm/start.sh defines

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed: Nextflow cannot run")


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        unavailable("the one-node SLURM of .ci/slurm/start.sh needs root")
    if not IN_CI and shutil.which("slurmctld") is None:
        unavailable("SLURM is not installed (apt-get install slurm-wlm munge, or run under CI=true)")
    state = tmp_path_factory.mktemp("slurm_state")
    env = {**os.environ, "NESSCAN_SLURM_DIR": str(state)}
    r = subprocess.run(["bash", START], env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        subprocess.run(["bash", STOP], env=env, capture_output=True, text=True, timeout=60)
        pytest.fail(f".ci/slurm/start.sh failed:\n{r.stdout}\n{r.stderr}", pytrace=False)
    pids = [int(p) for p in (state / "pids").read_text().split()]
    print(r.stdout.strip())
    yield {"env": env, "pids": pids}
    r = subprocess.run(["bash", STOP], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", \
            f"SLURM daemon {pid} still running"


@pytest.fixture(scope="module")
def slurm_run(slurm, request, tmp_path_factory):
    require_multiqc()
    base = tmp_path_factory.mktemp("nf_slurm")
    env = {**nf_env(base / "nxf_home"), "NESSCAN_SLURM_QUEUE": PARTITION}
    outdir = base / "results"
    # every task writes the SLURM job it runs in (its environment's SLURM_JOB_ID) to its work dir
    r = run_pipeline("-profile", "test,slurm,local_env", "--outdir", outdir, *model_args(request),
                     "-process.beforeScript", 'echo "${SLURM_JOB_ID:-none}" > .slurm_job_id',
                     cwd=base, env=env, timeout=1800)
    assert r.returncode == 0, r.output[-6000:]
    return {"base": base, "outdir": str(outdir), "result": r}


def test_every_task_ran_as_a_slurm_job(slurm_run):
    trace = newest_trace(slurm_run["outdir"])
    assert trace and all(t["status"] == "COMPLETED" for t in trace), trace
    processes = {t["process"].split(":")[-1] for t in trace}
    assert {"EMBED", "WINDOW_SCORE", "FUSE", "GATHER", "EVALUATE", "EXPLAIN", "MULTIQC"} <= processes
    job_ids = []
    for t in trace:
        assert t["native_id"].isdigit(), f"{t['name']}: native_id {t['native_id']!r} is not a SLURM job ID"
        assert t["queue"] == PARTITION, t
        work = glob.glob(os.path.join(slurm_run["base"], "work", t["hash"] + "*"))
        assert len(work) == 1, t["hash"]
        with open(os.path.join(work[0], ".slurm_job_id")) as fh:
            assert fh.read().strip() == t["native_id"], f"{t['name']}: SLURM_JOB_ID in the task != native_id"
        with open(os.path.join(work[0], ".command.run")) as fh:
            run = fh.read()
        assert f"#SBATCH -p {PARTITION}" in run and "#SBATCH --mem" in run
        job_ids.append(t["native_id"])
    assert len(set(job_ids)) == len(trace)
    print("SLURM job IDs:", " ".join(f"{t['process'].split(':')[-1]}={t['native_id']}" for t in trace))


def test_slurm_run_results(slurm_run):
    out = slurm_run["outdir"]
    proteins = read_tsv(os.path.join(out, "proteins.tsv"))
    assert len(proteins) == 8
    assert os.path.isfile(os.path.join(out, "evaluation", "metrics.json"))
    assert os.path.isfile(os.path.join(out, "multiqc", "multiqc_report.html"))
    # (with -ansi-log false Nextflow prints no executor line: the evidence that the tasks went
    # through SLURM is test_every_task_ran_as_a_slurm_job's)


def test_gpu_tasks_ask_slurm_for_a_gpu(slurm, tmp_path):
    """-profile slurm with gpu: the embedding tasks (label process_gpu) are submitted with
    --gres=gpu:1 and granted it (the CI node declares one count-only gpu), the others without."""
    env = {**nf_env(tmp_path / "nxf_home"), "NESSCAN_SLURM_QUEUE": PARTITION}
    r = run_pipeline("-profile", "test_stub,slurm,local_env,gpu", "-stub-run", "--outdir", tmp_path / "results",
                     "-process.beforeScript", 'echo "${SLURM_JOB_ID:-none} ${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}" > .slurm_job_id',
                     cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.output[-6000:]
    trace = newest_trace(tmp_path / "results")
    seen = set()
    for t in trace:
        work = glob.glob(os.path.join(tmp_path, "work", t["hash"] + "*"))[0]
        with open(os.path.join(work, ".command.run")) as fh:
            run = fh.read()
        job_id, *gpus = open(os.path.join(work, ".slurm_job_id")).read().split()
        assert job_id == t["native_id"]
        name = t["process"].split(":")[-1]
        seen.add(name)
        if name in ("EMBED", "EXPLAIN"):
            assert "#SBATCH --gres=gpu:1" in run, name
            assert gpus == ["0"], f"{name}: SLURM granted no GPU: {gpus}"
        else:
            assert "--gres" not in run, name
    assert "EMBED" in seen

"""The Nextflow pipeline, run for real with the offline launcher .ci/nextflow/nextflow (Nextflow
from Maven Central) and the tools of this virtual environment (`-profile test,local_env`).

One pipeline run is shared by the assertions on its results (module-scoped fixture); -resume,
-stub-run, a GPU-profile run on the CPU, a bad FASTA and bad parameters are separate runs.
Skipped only when there is no java.
"""

from __future__ import annotations

import csv
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

# the tables' columns as `nesscan predict` writes them: the pipeline's must be the same
from nesscan.registry import card_max_evalue
from nesscan.report import CANDIDATE_COLUMNS, PROTEIN_COLUMNS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = os.path.join(ROOT, ".ci", "nextflow", "nextflow")
MAIN = os.path.join(ROOT, "main.nf")
EXAMPLE = os.path.join(ROOT, "examples", "example.fasta")
EXAMPLE_NES = os.path.join(ROOT, "examples", "example_nes.tsv")
SHIPPED_MODEL = os.path.join(ROOT, "models", "nesscan-builtin-v2", "model.json")
MODULES = sorted(glob.glob(os.path.join(ROOT, "modules", "local", "*", "main.nf")))
TORCH_MODULES = ("embed", "window_score", "fuse", "evaluate", "explain")  # modules that run nesscan

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed: Nextflow cannot run")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def nf_env(nxf_home) -> dict:
    """This interpreter's bin/ first on PATH, so tasks run this environment's nesscan/multiqc."""
    env = {k: v for k, v in os.environ.items() if k not in ("NXF_WORK", "NXF_PARAMS_FILE")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NXF_HOME"] = str(nxf_home)
    env["NXF_OFFLINE"] = "true"
    env["NXF_ANSI_LOG"] = "false"
    env["NXF_DISABLE_CHECK_LATEST"] = "true"
    return env


def nextflow(*args, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([LAUNCHER, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    r.output = r.stdout + r.stderr  # type: ignore[attr-defined]
    return r


def run_pipeline(*args, cwd, env, timeout=600):
    return nextflow("run", MAIN, "-ansi-log", "false", *args, cwd=cwd, env=env, timeout=timeout)


def read_tsv(path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def header(path) -> list[str]:
    with open(path) as fh:
        return fh.readline().rstrip("\n").split("\t")


def newest_trace(outdir) -> list[dict]:
    traces = sorted(glob.glob(os.path.join(outdir, "pipeline_info", "execution_trace_*.txt")), key=os.path.getmtime)
    assert traces, f"no trace file in {outdir}/pipeline_info"
    return read_tsv(traces[-1])


def fasta_ids(path) -> list[str]:
    with open(path) as fh:
        return [line[1:].split()[0] for line in fh if line.startswith(">")]


def default_model_available() -> bool:
    """Whether nesscan finds its default model by itself (shipped in models/, or $NESSCAN_MODELS)."""
    extra = os.environ.get("NESSCAN_MODELS")
    return os.path.exists(SHIPPED_MODEL) or bool(
        extra and os.path.exists(os.path.join(extra, "nesscan-builtin-v2", "model.json")))


def model_args(request) -> list[str]:
    """The default model when nesscan finds it (as users run it); else a tiny trained one."""
    if default_model_available():
        return []
    return ["--model", request.getfixturevalue("tiny_model")]


def require_multiqc():
    if shutil.which("multiqc", path=os.path.dirname(sys.executable)) is None and shutil.which("multiqc") is None:
        pytest.fail("multiqc is not installed in this environment: the pipeline's MULTIQC step needs it "
                    "(it belongs in the package's test extras)")


# ------------------------------------------------------------------------------------------------
# the launcher
# ------------------------------------------------------------------------------------------------

def test_launcher_runs_pinned_nextflow(tmp_path):
    pinned = re.search(r"<nextflow.version>([^<]+)</nextflow.version>", open(os.path.join(ROOT, ".ci", "nextflow", "pom.xml")).read()).group(1)
    r = nextflow("-version", cwd=tmp_path, env=nf_env(tmp_path / "nxf_home"))
    assert r.returncode == 0, r.output
    assert f"version {pinned}" in r.output


# ------------------------------------------------------------------------------------------------
# one real run of the test profile, shared
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(request, tmp_path_factory):
    require_multiqc()
    base = tmp_path_factory.mktemp("nf_run")
    env = nf_env(base / "nxf_home")
    outdir = base / "results"
    extra = model_args(request)
    r = run_pipeline("-profile", "test,local_env", "--outdir", outdir, *extra, cwd=base, env=env)
    assert r.returncode == 0, r.output[-6000:]
    return {"base": base, "env": env, "outdir": str(outdir), "extra": extra, "result": r}


def test_run_gathers_tables_in_chunk_order(pipeline):
    out = pipeline["outdir"]
    for name in ("proteins.tsv", "candidates.tsv", "candidates.gff3"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert header(os.path.join(out, "proteins.tsv"))[:len(PROTEIN_COLUMNS)] == PROTEIN_COLUMNS
    assert header(os.path.join(out, "candidates.tsv"))[:len(CANDIDATE_COLUMNS)] == CANDIDATE_COLUMNS

    proteins = read_tsv(os.path.join(out, "proteins.tsv"))
    ids = fasta_ids(EXAMPLE)
    assert sorted(p["id"] for p in proteins) == sorted(ids)  # every protein once, one header
    # test profile: 3 proteins per chunk -> 3 chunks; the gathered table keeps chunk order
    chunk_of = {pid: i // 3 for i, pid in enumerate(ids)}
    chunks = [chunk_of[p["id"]] for p in proteins]
    assert chunks == sorted(chunks)
    for p in proteins:
        assert 0.0 <= float(p["score"]) <= 1.0 and 0.0 <= float(p["nes_score"]) <= 1.0

    candidates = read_tsv(os.path.join(out, "candidates.tsv"))
    assert {c["id"] for c in candidates} <= set(ids)
    assert all(c["id"] != "id" for c in candidates)  # no repeated header rows

    gff = open(os.path.join(out, "candidates.gff3")).read().splitlines()
    assert gff[0] == "##gff-version 3"
    assert sum(line.startswith("##gff-version") for line in gff) == 1
    features = [line.split("\t") for line in gff if line and not line.startswith("#")]
    nes = [f for f in features if f[2] == "nuclear_export_signal"]
    assert len(nes) == len(candidates)
    assert all(len(f) == 9 and int(f[3]) <= int(f[4]) for f in features)


def test_gathered_results_equal_nesscan_predict(pipeline, tmp_path):
    """Scatter/gather changes nothing: the pipeline's tables are `nesscan predict`'s on the whole file."""
    r = subprocess.run([sys.executable, "-m", "nesscan", "predict", "-i", EXAMPLE, "-o", tmp_path / "predict", "-q",
                        *pipeline["extra"]], capture_output=True, text=True, env=pipeline["env"])
    assert r.returncode == 0, r.stderr
    for name in ("proteins.tsv", "candidates.tsv"):
        ours = read_tsv(os.path.join(pipeline["outdir"], name))
        theirs = read_tsv(tmp_path / "predict" / name)
        key = (lambda row: (row["id"], int(row.get("rank") or 0)))
        assert sorted(ours, key=key) == sorted(theirs, key=key), name


def test_planted_pkia_nes_is_found(pipeline):
    """The planted PKIα NES is among the protein's two best candidates (with the shipped model it is
    second, behind the class-3-like stretch MRMVALHLGLLTELCL of the synthetic background; the
    three other planted NESs come first), and every planted NES overlaps a top-2 candidate."""
    if pipeline["extra"]:
        pytest.skip("models/nesscan-builtin-v2 is not there yet: the run used the tiny synthetic test model, "
                    "which cannot be expected to find PKIα's NES")
    candidates = read_tsv(os.path.join(pipeline["outdir"], "candidates.tsv"))
    for nes in read_tsv(EXAMPLE_NES):
        top2 = [c for c in candidates if c["id"] == nes["id"] and int(c["rank"]) <= 2]
        assert len(top2) == 2, nes["id"]
        assert any(int(c["start"]) <= int(nes["end"]) and int(c["end"]) >= int(nes["start"]) for c in top2), (nes, top2)


def test_evaluation_against_the_test_labels(pipeline):
    ev = os.path.join(pipeline["outdir"], "evaluation")
    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    assert metrics
    assert glob.glob(os.path.join(ev, "nesscan_*_mqc.*"))


def test_explain_publishes_attributions_and_profiles_per_chunk(pipeline):
    """--explain (on in the test profile): per chunk, attributions of the top candidates of every
    protein of the chunk and profile plots linked from index.html."""
    out = os.path.join(pipeline["outdir"], "explain")
    chunks = sorted(os.listdir(out))
    assert chunks == [f"example.chunk{i:05d}" for i in (1, 2, 3)]
    ids = fasta_ids(EXAMPLE)
    seen = set()
    for chunk in chunks:
        rows = read_tsv(os.path.join(out, chunk, "attributions.tsv"))
        assert rows and set(rows[0]) == {"id", "candidate_rank", "position", "residue", "attribution", "is_phi"}
        assert all(1 <= int(r["candidate_rank"]) <= 3 for r in rows)  # --explain_top_k 3
        seen |= {r["id"] for r in rows}
        index = open(os.path.join(out, chunk, "index.html")).read()
        pngs = glob.glob(os.path.join(out, chunk, "profiles", "*.png"))
        assert pngs and all(os.path.getsize(p) > 1000 for p in pngs)
        assert all(os.path.basename(p) in index for p in pngs)
    # every protein with a full window (demo_short is shorter than the window: nothing to explain)
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    with open(EXAMPLE) as fh:
        long_enough = {t.split()[0] for t, seq in SimpleFastaParser(fh) if len(seq) >= 20}
    assert long_enough and long_enough < set(ids)
    assert seen == long_enough


def test_windows_published_per_chunk_and_embeddings_not(pipeline):
    out = pipeline["outdir"]
    windows = sorted(glob.glob(os.path.join(out, "windows", "*.windows.tsv.gz")))
    summaries = sorted(glob.glob(os.path.join(out, "windows", "*.summary.tsv")))
    assert [os.path.basename(w) for w in windows] == [f"example.chunk{i:05d}.windows.tsv.gz" for i in (1, 2, 3)]
    assert len(summaries) == 3
    rows = read_tsv(windows[0])
    assert rows and set(rows[0]) >= {"id", "start", "end", "score"}
    assert not os.path.exists(os.path.join(out, "embeddings"))  # only with --save_embeddings


def test_multiqc_report_has_nesscan_sections(pipeline):
    mqc = os.path.join(pipeline["outdir"], "multiqc")
    html = open(os.path.join(mqc, "multiqc_report.html")).read()
    assert "nesscan_proteins" in html  # the proteins table (assets/multiqc_config.yml)
    assert "nesscan-summary" in html   # the run's parameters
    assert "nesscan_roc" in html       # EVALUATE's custom content (test profile gives --labels)
    versions = open(os.path.join(mqc, "multiqc_data", "multiqc_software_versions.txt")).read()
    for tool in ("nesscan", "torch", "Nextflow"):
        assert tool in versions


def test_every_process_reports_versions(pipeline):
    import yaml

    path = os.path.join(pipeline["outdir"], "pipeline_info", "nesscan_software_mqc_versions.yml")
    versions = yaml.safe_load(open(path))
    for proc in ("EMBED", "WINDOW_SCORE", "FUSE", "EVALUATE", "EXPLAIN"):
        assert set(versions[proc]) == {"nesscan", "python", "torch", "torch_cuda"}, versions[proc]
        assert versions[proc]["nesscan"] not in ("", None) and "not found" not in str(versions[proc])
    assert versions["GATHER"] == {"nesscan": "0.1.0"}
    assert versions["Workflow"]["Nextflow"]


def test_pipeline_info_and_trace(pipeline):
    info = os.path.join(pipeline["outdir"], "pipeline_info")
    for prefix in ("execution_report_", "execution_timeline_", "execution_trace_", "pipeline_dag_"):
        assert glob.glob(os.path.join(info, prefix + "*")), prefix
    trace = newest_trace(pipeline["outdir"])
    procs = [t["process"].split(":")[-1] for t in trace]
    assert sorted(procs) == sorted(["EMBED"] * 3 + ["WINDOW_SCORE"] * 3 + ["FUSE"] * 3 + ["EXPLAIN"] * 3
                                   + ["GATHER", "EVALUATE", "MULTIQC"])
    assert {t["status"] for t in trace} == {"COMPLETED"}


def test_resume_reexecutes_nothing(pipeline):
    r = run_pipeline("-profile", "test,local_env", "--outdir", pipeline["outdir"], *pipeline["extra"], "-resume",
                     cwd=pipeline["base"], env=pipeline["env"])
    assert r.returncode == 0, r.output[-6000:]
    trace = newest_trace(pipeline["outdir"])
    assert len(trace) == 15
    assert {t["status"] for t in trace} == {"CACHED"}, [(t["name"], t["status"]) for t in trace]


# ------------------------------------------------------------------------------------------------
# other runs
# ------------------------------------------------------------------------------------------------

# ------------------------------------------------------------------------------------------------
# samplesheet input: two samples in one run == two single-FASTA runs
# ------------------------------------------------------------------------------------------------

LABELS = os.path.join(ROOT, "assets", "test", "example_labels.tsv")


def write_subset_fasta(path, order=(6, 1, 4, 0)) -> list[str]:
    """Four of the example proteins, reordered (two chunks of --chunk_size 3)."""
    records = open(EXAMPLE).read().split(">")[1:]
    with open(path, "w") as fh:
        for i in order:
            fh.write(">" + records[i])
    return fasta_ids(path)


@pytest.fixture(scope="module")
def sheet_run(request, tmp_path_factory):
    """One run of a two-sample samplesheet (demo: the example proteins with their labels; subset:
    four of them, no labels; a relative path) and, at the same time, a single-FASTA run of subset."""
    require_multiqc()
    base = tmp_path_factory.mktemp("nf_sheet")
    env = nf_env(base / "nxf_home")
    subset_ids = write_subset_fasta(base / "subset.fasta")
    sheet = base / "samples.csv"
    sheet.write_text(f"sample,fasta,labels\ndemo,{EXAMPLE},{LABELS}\nsubset,subset.fasta,\n")
    # the test profile's task limits (1 CPU each), without its labels/--explain
    limits = base / "limits.config"
    limits.write_text("process.resourceLimits = [ cpus: 1, memory: '6.GB', time: '1.h' ]\n")
    common = ["-profile", "local_env", "-c", limits, "--chunk_size", 3, *model_args(request)]
    single_dir = base / "single"
    single_dir.mkdir()
    single = subprocess.Popen([LAUNCHER, "run", MAIN, "-ansi-log", "false", *map(str, common), "--input",
                               str(base / "subset.fasta"), "--outdir", str(base / "single_results")],
                              cwd=single_dir, env=nf_env(base / "nxf_home_single"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    r = run_pipeline(*common, "--input", sheet, "--nes_spans", EXAMPLE_NES, "--outdir", base / "results",
                     cwd=base, env=env, timeout=1500)
    single_out = single.communicate(timeout=1500)[0]
    assert r.returncode == 0, r.output[-6000:]
    assert single.returncode == 0, single_out[-6000:]
    margs = model_args(request)
    return {"outdir": str(base / "results"), "single": str(base / "single_results"), "subset_ids": subset_ids,
            "max_evalue": card_max_evalue(margs[1] if margs else None)}


def test_samplesheet_outputs_per_sample_equal_single_fasta_runs(sheet_run, pipeline):
    out = sheet_run["outdir"]
    # demo == the test profile's single-FASTA run of the same file (same chunking, labels, spans)
    for name in ("proteins.tsv", "candidates.tsv", "candidates.gff3"):
        assert open(os.path.join(out, "demo", name)).read() == open(os.path.join(pipeline["outdir"], name)).read(), name
        assert open(os.path.join(out, "subset", name)).read() == open(os.path.join(sheet_run["single"], name)).read(), name
    assert [p["id"] for p in read_tsv(os.path.join(out, "subset", "proteins.tsv"))] == sheet_run["subset_ids"]
    ours = json.load(open(os.path.join(out, "demo", "evaluation", "metrics.json")))
    theirs = json.load(open(os.path.join(pipeline["outdir"], "evaluation", "metrics.json")))
    assert ours["protein_level"] == theirs["protein_level"] and ours["localisation"] == theirs["localisation"]
    # per-sample folders only: nothing of a sample at the top; subset (no labels) not evaluated
    assert not os.path.exists(os.path.join(out, "proteins.tsv"))
    assert not os.path.exists(os.path.join(out, "subset", "evaluation"))
    assert len(glob.glob(os.path.join(out, "demo", "windows", "demo.chunk*.windows.tsv.gz"))) == 3
    assert len(glob.glob(os.path.join(out, "subset", "windows", "subset.chunk*.windows.tsv.gz"))) == 2


def test_samplesheet_chunks_of_all_samples_scattered_at_once(sheet_run):
    trace = newest_trace(sheet_run["outdir"])
    embeds = [t for t in trace if t["process"].endswith(":EMBED")]
    assert sorted(t["tag"] for t in embeds) == sorted([f"demo.chunk0000{i}" for i in (1, 2, 3)]
                                                      + [f"subset.chunk0000{i}" for i in (1, 2)])
    gathers = [t for t in trace if t["process"].endswith(":GATHER")]
    assert sorted(t["tag"] for t in gathers) == ["demo", "subset"]
    # every sample's chunks were submitted before the first GATHER started
    assert max(t["submit"] for t in embeds) <= min(t["start"] for t in gathers)  # "YYYY-MM-DD HH:MM:SS.mmm"
    assert len([t for t in trace if t["process"].endswith(":MULTIQC")]) == 1


def test_samplesheet_multiqc_has_a_row_per_sample(sheet_run):
    data = os.path.join(sheet_run["outdir"], "multiqc", "multiqc_data")
    stats = {row["Sample"]: row for row in read_tsv(os.path.join(data, "multiqc_general_stats.txt"))}
    assert set(stats) == {"demo", "subset"}, stats
    n_calls = {}
    for sample in ("demo", "subset"):
        cands = read_tsv(os.path.join(sheet_run["outdir"], sample, "candidates.tsv"))
        row = stats[sample]
        col = lambda suffix: next(v for k, v in row.items() if k.endswith(suffix))  # noqa: E731
        assert float(col("nesscan_proteins")) == len(read_tsv(os.path.join(sheet_run["outdir"], sample, "proteins.tsv")))
        assert float(col("nesscan_candidates")) == len(cands)
        assert float(col("nesscan_candidates_high")) == sum(c["high_confidence"] == "yes" for c in cands)
        # calls beside chance, at the cutoff FUSE used (the model card's: GATHER got the model)
        prots = read_tsv(os.path.join(sheet_run["outdir"], sample, "proteins.tsv"))
        chance = len(prots) * sheet_run["max_evalue"]
        calls = sum(int(p["n_high_confidence"]) for p in prots)
        assert float(col("nesscan_calls_by_chance")) == pytest.approx(chance, rel=1e-3)
        if calls:
            assert float(col("nesscan_est_fdr")) == pytest.approx(100 * min(1.0, chance / calls), rel=1e-3)
        else:  # no calls, no FDR
            assert col("nesscan_est_fdr") in ("", "nan", None)
        n_calls[sample] = calls
        assert float(col("nesscan_skipped")) == 0
    assert n_calls["demo"] > 0  # the FDR branch ran
    roc = [k for k in stats["demo"] if "roc_auc" in k]
    assert roc and stats["demo"][roc[0]] not in ("", None) and stats["subset"][roc[0]] in ("", None)


@pytest.mark.parametrize("rows, expected", [
    # three problems at once: duplicate sample, a bad name, a missing file; all on one line
    ("sample,fasta\ndemo,{ex}\ndemo,{ex}\nbad name,{ex}\nmiss,missing.fasta\n",
     ["line 3: duplicate sample 'demo' (also line 2)", "line 4: sample 'bad name' does not match",
      "line 5: fasta '{dir}/missing.fasta' does not exist"]),
    ("name,fasta\ndemo,{ex}\n", ["unknown column(s) name in the header"]),
], ids=["rows", "header"])
def test_bad_samplesheet_one_line_error(tmp_path, rows, expected):
    sheet = tmp_path / "samples.csv"
    sheet.write_text(rows.format(ex=EXAMPLE))
    r = run_pipeline("-profile", "local_env", "--input", sheet, "--outdir", tmp_path / "results", cwd=tmp_path,
                     env=nf_env(tmp_path / "nxf_home"), timeout=300)
    assert r.returncode != 0
    lines = [ln for ln in r.output.splitlines() if f"Samplesheet {sheet}:" in ln]
    assert len(lines) == 1, r.output[-3000:]
    for e in expected:
        assert e.format(dir=tmp_path) in lines[0], lines[0]
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # no task ran


def test_local_env_names_a_missing_tool(tmp_path):
    env = nf_env(tmp_path / "nxf_home")
    java = os.path.dirname(os.path.realpath(shutil.which("java")))
    env["PATH"] = os.pathsep.join([java, "/usr/bin", "/bin"])  # no nesscan, no multiqc
    r = run_pipeline("-profile", "local_env", "--input", EXAMPLE, "--outdir", tmp_path / "results", cwd=tmp_path,
                     env=env, timeout=300)
    assert r.returncode != 0
    lines = [ln for ln in r.output.splitlines() if "-profile local_env:" in ln]
    assert len(lines) == 1 and "nesscan, multiqc not found on PATH" in lines[0] and "nesscan[pipeline]" in lines[0], \
        r.output[-3000:]


def test_stub_run_exercises_every_branch(tmp_path):
    env = nf_env(tmp_path / "nxf_home")
    out = tmp_path / "results"
    r = run_pipeline("-profile", "test_stub,local_env", "-stub-run", "--outdir", out, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.output[-6000:]
    procs = {t["process"].split(":")[-1] for t in newest_trace(out)}
    assert procs == {"EMBED", "WINDOW_SCORE", "FUSE", "EXPLAIN", "GATHER", "EVALUATE", "MULTIQC"}
    assert len(glob.glob(str(out / "embeddings" / "*.h5"))) == 2      # --save_embeddings, 2 chunks
    assert (out / "evaluation").is_dir()                               # --labels
    assert (out / "multiqc" / "multiqc_report.html").exists()


def test_gpu_profile_asks_the_tool_for_cuda(tmp_path, request):
    """-profile gpu on a machine without a GPU: the embedding task gets accelerator 1 and asks
    nesscan for cuda, which falls back to the CPU, so the run still succeeds."""
    require_multiqc()
    env = nf_env(tmp_path / "nxf_home")
    out = tmp_path / "results"
    limits = tmp_path / "limits.config"
    limits.write_text("process.resourceLimits = [cpus: 1, memory: '6.GB', time: '1.h']\n")
    r = run_pipeline("-profile", "local_env,gpu", "-c", limits, "--input", EXAMPLE, "--chunk_size", 8,
                     "--explain", "--explain_plots", 1, "--outdir", out, *model_args(request), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.output[-6000:]
    trace = newest_trace(out)
    assert sorted(t["process"].split(":")[-1] for t in trace) == ["EMBED", "EXPLAIN", "FUSE", "GATHER", "MULTIQC",
                                                                    "WINDOW_SCORE"]
    for step in ("EMBED", "EXPLAIN"):  # the two steps that embed ask for the GPU
        task = [t for t in trace if t["process"].endswith(":" + step)][0]
        workdir = glob.glob(str(tmp_path / "work" / task["hash"]) + "*")
        assert len(workdir) == 1
        assert "--device cuda" in open(os.path.join(workdir[0], ".command.sh")).read(), step
    fuse = [t for t in trace if t["process"].endswith(":FUSE")][0]
    workdir = glob.glob(str(tmp_path / "work" / fuse["hash"]) + "*")
    assert "--device" not in open(os.path.join(workdir[0], ".command.sh")).read()  # CPU-only step


def test_bad_fasta_fails_with_the_tools_error(tmp_path):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok1\nMKVLLAGLDI\n>broken\nMKV1LLA\n")
    env = nf_env(tmp_path / "nxf_home")
    # the pipeline skips invalid records by default (issue 15); --skip_invalid false stops the run
    r = run_pipeline("-profile", "test,local_env", "--input", bad, "--skip_invalid", "false",
                     "--outdir", tmp_path / "results", cwd=tmp_path, env=env, timeout=300)
    assert r.returncode != 0
    # EMBED and (test profile: --explain) EXPLAIN read the chunk; whichever fails first is reported
    lines = [line.strip() for line in r.output.splitlines() if re.search(r"nesscan (embed|explain): error:", line)]
    assert lines, r.output[-4000:]
    assert "broken" in lines[0] and "position 4" in lines[0] and "--skip-invalid" in lines[0]


def test_bad_parameters_are_rejected_before_any_task(tmp_path):
    env = nf_env(tmp_path / "nxf_home")
    r = run_pipeline("-profile", "local_env", "--outdir", tmp_path / "results", "--bogus_param", "1",
                     "--chunk-size", "5", "--top_k", "many", "--max_evalue", "-1", "--publish_dir_mode", "nope",
                     cwd=tmp_path, env=env, timeout=300)
    assert r.returncode != 0
    out = r.output
    assert "--bogus_param: unknown parameter" in out
    assert "--chunk-size: unknown parameter (did you mean --chunk_size?)" in out
    assert "--input: missing required parameter" in out
    assert "--top_k: expected integer, got 'many'" in out
    assert "--max_evalue: -1 is below the minimum 0" in out
    assert "--publish_dir_mode: 'nope' is not one of" in out
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # no task ran


def test_schema_covers_exactly_the_config_params(tmp_path):
    schema = json.load(open(os.path.join(ROOT, "nextflow_schema.json")))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    props = {}
    for group in schema["$defs"].values():
        props.update(group["properties"])
    assert [ref["$ref"].split("/")[-1] for ref in schema["allOf"]] == list(schema["$defs"])

    r = nextflow("config", "-flat", ROOT, cwd=tmp_path, env=nf_env(tmp_path / "nxf_home"), timeout=300)
    assert r.returncode == 0, r.output
    config_params = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^params\.(\w+) = (.*)$", line)
        if m:
            config_params[m.group(1)] = m.group(2)
    assert set(config_params) == set(props)
    for name, spec in props.items():
        if "default" in spec:
            shown = config_params[name].strip("'")
            assert shown == str(spec["default"]).lower() if isinstance(spec["default"], bool) else shown == str(spec["default"]), name


# ------------------------------------------------------------------------------------------------
# module files (no Nextflow needed)
# ------------------------------------------------------------------------------------------------

def _section(text: str, start: str, ends: tuple[str, ...]) -> list[str]:
    m = re.search(rf"^\s*{start}:\s*$", text, re.M)
    assert m, f"no {start}: block"
    rest = text[m.end():]
    stop = min((mm.start() for e in ends if (mm := re.search(rf"^\s*{e}:\s*$", rest, re.M))), default=len(rest))
    return [ln.strip() for ln in rest[:stop].splitlines() if ln.strip() and not ln.strip().startswith("//")]


_QUALIFIER = re.compile(r"""\b(val|path|env|file|eval|stdin|stdout)\b\s*(?:\(\s*(?:"([^"]*)"|'([^']*)'|([\w.]+))|\s+(?:"([^"]*)"|'([^']*)'|([\w.]+)))""")


def _names(decl: str) -> list[str]:
    decl = re.split(r",\s*emit\s*:", decl)[0]
    return [next(g for g in m.groups()[1:] if g is not None) for m in _QUALIFIER.finditer(decl)]


def parse_main_nf(path):
    text = open(path).read()
    inputs = [_names(ln) for ln in _section(text, "input", ("output",))]
    outputs = {}
    for ln in _section(text, "output", ("when", "script", "exec")):
        emit = re.search(r"emit\s*:\s*(\w+)", ln)
        assert emit, f"{path}: output without emit: {ln}"
        outputs[emit.group(1)] = _names(ln)
    return text, inputs, outputs


def _meta_names(item) -> list[str]:
    if isinstance(item, list):
        return [next(iter(d)) for d in item]
    return [next(iter(item))]


@pytest.mark.parametrize("main_nf", MODULES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_module_meta_yml_matches_main_nf(main_nf):
    import yaml

    text, inputs, outputs = parse_main_nf(main_nf)
    meta = yaml.safe_load(open(os.path.join(os.path.dirname(main_nf), "meta.yml")))
    assert meta["name"] == os.path.basename(os.path.dirname(main_nf))
    assert [_meta_names(i) for i in meta["input"]] == inputs
    meta_out = {emit: sum((_meta_names(i) for i in items), []) for emit, items in meta["output"].items()}
    assert meta_out == outputs
    assert "versions" in outputs and outputs["versions"] == ["versions.yml"]


@pytest.mark.parametrize("main_nf", MODULES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_module_shape(main_nf):
    text = open(main_nf).read()
    name = os.path.basename(os.path.dirname(main_nf))
    assert re.search(rf"^process {name.upper()} \{{", text, re.M)
    assert os.path.exists(os.path.join(os.path.dirname(main_nf), "environment.yml"))
    for needle in ("label 'process_", 'conda "${moduleDir}/environment.yml"', "container ",
                   "task.ext.when == null || task.ext.when", "stub:", "versions.yml"):
        assert needle in text, f"{name}: missing {needle!r}"
    # a module never sets accelerator/publishDir itself: the config does (label process_gpu)
    assert not re.search(r"^\s*(accelerator|publishDir|containerOptions|maxForks)\b", text, re.M)
    script = text.split("script:")[1].split("stub:")[0]
    stub = text.split("stub:")[1]
    if name in TORCH_MODULES:
        assert "task.ext.args" in script
        for key in ("nesscan:", "python:", "torch:", "torch_cuda:"):
            assert key in script and key in stub, f"{name}: versions lack {key}"

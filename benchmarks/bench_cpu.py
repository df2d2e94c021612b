#!/usr/bin/env python3
"""CPU benchmark of ``nesscan predict`` (built-in embedder): throughput, peak memory and the
speed-up over a naive reference implementation of the first seed's way.

1. End to end: ``/usr/bin/time -v nesscan predict --input proteome_N.fasta`` for each size
   (default 2,000 and 20,000 proteins from ``make_proteome.py``), ``--runs`` times; medians of
   wall time, CPU time and peak RSS. Process start-up and imports are included.
2. Naive reference vs streaming path, in one process, on the first ``--naive-n`` proteins of the
   smallest proteome, runs interleaved: the naive path reads one protein at a time, embeds it,
   calls the classifier **once per window in a Python loop**, then fuses, ranks and writes with
   the same code as ``predict``; the streaming path is ``nesscan.predict.run_predict``. Reports
   seconds per protein of each, their ratio, and the largest difference between the two
   ``nes_score`` columns (they must agree).

    python benchmarks/bench_cpu.py [--sizes 2000,20000] [--runs 3] [--naive-n 100] [--threads N]
                                   [--model DIR] [--json out.json]

``--threads N`` sets ``OMP_NUM_THREADS`` for every measured run (default: unset). With the
built-in embedder ``predict`` itself runs torch on one thread per pipeline stage
(:func:`nesscan.predict.pipeline_torch_threads`), so the setting only matters for older
versions (before/after comparisons: put the old ``src`` first on ``PYTHONPATH``). The naive
reference always runs on one torch thread, its fastest setting. Needs GNU time at
``/usr/bin/time`` (Debian/Ubuntu package ``time``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_proteome  # noqa: E402

TIME = "/usr/bin/time"


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")}


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def parse_time_v(text: str) -> dict:
    def grab(pattern):
        m = re.search(pattern, text)
        return m.group(1) if m else None

    wall = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")
    parts = [float(x) for x in wall.split(":")] if wall else [float("nan")]
    secs = 0.0
    for p in parts:
        secs = secs * 60 + p
    return {"wall_s": secs, "user_s": float(grab(r"User time \(seconds\): ([\d.]+)") or "nan"),
            "sys_s": float(grab(r"System time \(seconds\): ([\d.]+)") or "nan"),
            "max_rss_mb": int(grab(r"Maximum resident set size \(kbytes\): (\d+)") or 0) / 1024}


def end_to_end(fasta: str, model: str | None, runs: int, env: dict) -> list[dict]:
    out = []
    for r in range(runs):
        with tempfile.TemporaryDirectory(prefix="nesscan-bench-") as tmp:
            cmd = [TIME, "-v", sys.executable, "-m", "nesscan", "predict", "--input", fasta, "--outdir", tmp, "-q"]
            if model:
                cmd += ["--model", model]
            load0 = loadavg()
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(f"nesscan predict failed:\n{p.stderr[-3000:]}")
            res = parse_time_v(p.stderr)
            res["load_before"] = load0
            res["load_after"] = loadavg()
            out.append(res)
            print(f"  run {r + 1}: {res['wall_s']:.1f} s wall, {res['user_s'] + res['sys_s']:.1f} s CPU, "
                  f"{res['max_rss_mb']:.0f} MB peak RSS (load {load0:.1f} -> {res['load_after']:.1f})", flush=True)
    return out


# ----------------------------------------------------------------------------- naive reference


def naive_predict(fasta: str, outdir: str, model_dir: str | None, top_k: int = 5, max_evalue: float | None = None) -> int:
    """The first seed's way: one protein at a time, no batching, the window classifier called
    once per window in a Python loop. Fusion, ranking and writing are predict's own code.

    It runs with one torch thread, its fastest setting: a one-window forward pass is far too
    small to split, and with torch's default (one thread per core) every call pays OpenMP
    hand-offs, which stall when another process holds a core (RESULTS.md: ~6 s instead of
    ~0.1 s per protein on the shared 2-core machine). The comparison is thus against the naive
    way at its best, not at its worst."""
    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _naive_loop(fasta, outdir, model_dir, top_k, max_evalue)
    finally:
        torch.set_num_threads(old_threads)


def _naive_loop(fasta: str, outdir: str, model_dir: str | None, top_k: int, max_evalue: float | None) -> int:
    import numpy as np
    import torch

    from nesscan.embedders import get_embedder
    from nesscan.fasta import iter_fasta, validate_fasta
    from nesscan.model import load
    from nesscan.predict import default_max_evalue, resolve_model, score_and_rank
    from nesscan.report import ResultWriter
    from nesscan.window_score import window_bounds

    validate_fasta(fasta)
    m = load(resolve_model(model_dir))
    embedder = get_embedder(m.card.embedder, layer=m.card.layer, context=m.card.context)
    max_evalue = default_max_evalue(m, max_evalue)
    arch = m.card.arch
    n = 0
    with ResultWriter(outdir, max_evalue, sample="naive") as out, torch.no_grad():
        for p in iter_fasta(fasta):
            emb = embedder.embed_batch([p.sequence])[0]
            starts, ends = window_bounds(len(p), m.window)
            scores = []
            for s, e in zip(starts, ends):
                w = torch.as_tensor(emb[s - 1 : e]).unsqueeze(0)
                z = float(m.net(w, torch.ones(w.shape[:2], dtype=torch.bool))) if m.net is not None else 0.0
                if arch in ("gbm", "stack"):  # the trees on this one window's channels
                    t = float(m.booster.raw(np.asarray(emb[s - 1 : e], dtype=np.float64)[:, m.raw["trees"]["channels"]]
                                            .reshape(1, -1))[0])
                    if arch == "gbm":
                        z = t
                    else:
                        st = m.raw["stack"]
                        pz = min(max(1 / (1 + np.exp(-z)), 1e-7), 1 - 1e-7)
                        z = st["coef"][0] * np.log(pz / (1 - pz)) + st["coef"][1] * t + st["intercept"]
                scores.append(float(1 / (1 + np.exp(-z))))
            out.add(score_and_rank(m, p.id, p.sequence, emb, np.array(scores), top_k, max_evalue), len(p))
            n += 1
    return n


def streaming_predict(fasta: str, outdir: str, model_dir: str | None) -> int:
    from nesscan.predict import run_predict

    run_predict(fasta, outdir, model=model_dir, progress=False)
    # (run_predict's return value names the proteins.tsv path under "proteins", not the count)
    with open(os.path.join(outdir, "proteins.tsv")) as fh:
        return sum(1 for _ in fh) - 1


def _nes_scores(path: str) -> dict:
    with open(os.path.join(path, "proteins.tsv"), newline="") as fh:
        return {r["id"]: float(r["nes_score"]) for r in csv.DictReader(fh, delimiter="\t")}


def naive_vs_streaming(fasta: str, n: int, model: str | None, runs: int) -> dict:
    """Both paths on the first ``n`` proteins, interleaved, in this process."""
    from nesscan.embedders import get_embedder
    from nesscan.model import load
    from nesscan.predict import resolve_model

    try:
        from nesscan.predict import pipeline_torch_threads
    except ImportError:  # an older nesscan without it (before/after comparisons)
        def pipeline_torch_threads(_):
            return None
    m = load(resolve_model(model))
    threads = pipeline_torch_threads(get_embedder(m.card.embedder, layer=m.card.layer)) or "torch default"

    tmp = tempfile.mkdtemp(prefix="nesscan-naive-")
    try:
        sub = os.path.join(tmp, f"first_{n}.fasta")
        with open(fasta) as src, open(sub, "w") as dst:
            k = 0
            for line in src:
                if line.startswith(">"):
                    if k == n:
                        break
                    k += 1
                dst.write(line)
        n = k
        streaming_predict(sub, os.path.join(tmp, "warm"), model)  # imports, first-call set-up
        times = {"naive": [], "streaming": []}
        for r in range(runs):
            for name, fn in (("naive", naive_predict), ("streaming", streaming_predict)):
                outdir = os.path.join(tmp, f"{name}{r}")
                t = time.perf_counter()
                got = fn(sub, outdir, model)
                times[name].append(time.perf_counter() - t)
                assert got == n, (name, got, n)
            print(f"  run {r + 1}: naive {times['naive'][-1]:.1f} s, streaming {times['streaming'][-1]:.2f} s "
                  f"(load {loadavg():.1f})", flush=True)
        a, b = _nes_scores(os.path.join(tmp, "naive0")), _nes_scores(os.path.join(tmp, "streaming0"))
        assert a.keys() == b.keys()
        diff = max(abs(a[i] - b[i]) for i in a)
        per = {k: statistics.median(v) / n for k, v in times.items()}
        return {"proteins": n, "runs": times, "s_per_protein": per, "speedup": per["naive"] / per["streaming"],
                "max_abs_diff_nes_score": diff, "torch_threads": {"naive": 1, "streaming": threads}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2000,20000", help="proteome sizes (proteome_<N>.fasta in --data-dir)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-n", type=int, default=100, help="proteins for the naive comparison (0 = skip)")
    ap.add_argument("--naive-runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the measured runs (default: torch's choice)")
    ap.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--data-dir", default=make_proteome.DEFAULT_OUT)
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    a = ap.parse_args(argv)
    if not os.path.exists(TIME):
        raise SystemExit(f"{TIME} not found: install GNU time (apt-get install time)")
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
        os.environ["MKL_NUM_THREADS"] = str(a.threads)
    sizes = [int(x) for x in a.sizes.split(",") if x]
    files = {s: os.path.join(a.data_dir, f"proteome_{s}.fasta") for s in sizes}
    if not all(os.path.exists(f) for f in files.values()):
        print(f"generating proteomes in {a.data_dir} ...", flush=True)
        make_proteome.generate(a.data_dir, n=max(sizes), subset=min(sizes))
    env = dict(os.environ)
    info = {"machine": machine(), "threads_setting": a.threads or "default", "sizes": {}}
    print(json.dumps(info["machine"]))
    for s in sizes:
        from nesscan.fasta import validate_fasta

        summ = validate_fasta(files[s])
        print(f"nesscan predict on {s} proteins ({summ.residues:,} residues), {a.runs} runs:", flush=True)
        runs = end_to_end(files[s], a.model, a.runs, env)
        med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "user_s", "sys_s", "max_rss_mb")}
        info["sizes"][s] = {"proteins": summ.n, "residues": summ.residues, "runs": runs, "median": med,
                            "proteins_per_s": summ.n / med["wall_s"], "residues_per_s": summ.residues / med["wall_s"]}
    if a.naive_n:
        print(f"naive reference vs streaming on the first {a.naive_n} proteins of {files[min(sizes)]}:", flush=True)
        info["naive"] = naive_vs_streaming(files[min(sizes)], a.naive_n, a.model, a.naive_runs)
    # the table
    print()
    print(f"| proteins | residues | wall (median of {a.runs}) | CPU (user+sys) | peak RSS | proteins/s | residues/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for s, r in info["sizes"].items():
        m = r["median"]
        print(f"| {r['proteins']:,} | {r['residues']:,} | {m['wall_s']:.1f} s | {m['user_s'] + m['sys_s']:.1f} s | "
              f"{m['max_rss_mb']:.0f} MB | {r['proteins_per_s']:.1f} | {r['residues_per_s']:,.0f} |")
    if a.naive_n:
        nv = info["naive"]
        print()
        print(f"naive: {nv['s_per_protein']['naive'] * 1e3:.1f} ms/protein, streaming (same proteins, same process): "
              f"{nv['s_per_protein']['streaming'] * 1e3:.1f} ms/protein -> {nv['speedup']:.1f}x; "
              f"max |nes_score difference| {nv['max_abs_diff_nes_score']:.1e}")
        for s, r in info["sizes"].items():
            per = r["median"]["wall_s"] / r["proteins"]
            print(f"naive vs end-to-end predict on {s:,} proteins (start-up included): "
                  f"{per * 1e3:.1f} ms/protein -> {nv['s_per_protein']['naive'] / per:.1f}x")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(info, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

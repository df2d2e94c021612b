"""The Nextflow pipeline under faults and with inputs as they come (issue 15), in real runs of
the pinned Nextflow with this environment's tools (``local_env``):

* a gzip-compressed proteome with RNA records among the proteins: skipped by default, listed
  per sample and counted in MultiQC's General Statistics;
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import shutil

import pytest

from test_nextflow import EXAMPLE, model_args, nf_env, read_tsv, require_multiqc, run_pipeline

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
    assert len(skipped) == 1, skipped
    rows = read_tsv(skipped[0])
    assert [row["id"] for row in rows] == ["rna_one", "rna_two"]
    assert all("nucleotide" in row["reason"] and row["chunk"].endswith(("chunk00001", "chunk00002")) for row in rows)
    stats = glob.glob(str(out / "multiqc" / "multiqc_data" / "multiqc_general_stats.txt"))
    assert stats, os.listdir(out / "multiqc")
    text = open(stats[0]).read()
    assert "skipped_records" in text
    sample_row = [line for line in text.splitlines() if line.startswith("mixed")]
    assert sample_row and "\t2" in sample_row[0], text
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

"""`nf-core pipelines lint` (nf-core/tools 4.2.1, its own virtual environment: .ci/nf-core/setup.sh,
or NESSCAN_NF_CORE_VENV) on this repository, offline: no failed lint test. The exceptions are in
.nf-core.yml, each with its reason. Skipped without nf-core or java; fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
VENV = os.environ.get("NESSCAN_NF_CORE_VENV") or os.path.join(ROOT, ".ci", "nf-core", "venv")
NF_CORE = os.path.join(VENV, "bin", "nf-core")


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def test_nf_core_yml_exceptions_have_reasons():
    """Every lint exception in .nf-core.yml sits under a comment that says why."""
    lines = open(os.path.join(ROOT, ".nf-core.yml")).read().splitlines()
    lint = lines.index("lint:")
    for i, line in enumerate(lines[lint + 1:], start=lint + 1):
        m = re.match(r"^  (\w+):", line)
        if not m:
            continue
        if not line.rstrip().endswith(":"):  # `test: false`: the reason is the comment above
            assert lines[i - 1].strip().startswith("#"), f".nf-core.yml: no reason above lint exception {m.group(1)}"
            continue
        for item in lines[i + 1:]:  # a list: its first item must follow a comment
            if not item.startswith("    "):
                break
            assert item.strip().startswith("#"), f".nf-core.yml: {m.group(1)}'s first entry has no reason"
            break


def test_nf_core_pipelines_lint_passes(tmp_path):
    if not os.access(NF_CORE, os.X_OK):
        unavailable(f"nf-core not installed in {VENV} (run .ci/nf-core/setup.sh)")
    if shutil.which("java") is None:
        unavailable("java not installed: nf-core lint runs `nextflow config`")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NXF_")}
    env.update(PATH=os.path.join(ROOT, ".ci", "nextflow") + os.pathsep + env.get("PATH", ""),
               NXF_OFFLINE="true", NXF_HOME=str(tmp_path / "nxf_home"), HIDE_PROGRESS="1")
    out = tmp_path / "lint.json"
    r = subprocess.run([NF_CORE, "--hide-progress", "pipelines", "lint", "--dir", ROOT, "--plain-text",
                        "--json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.exists(), (r.stdout + r.stderr)[-4000:]
    result = json.loads(out.read_text())
    failed = [f"{t}: {msg}" for t, msg in result["tests_failed"]]
    assert not failed, "nf-core lint failures (fix them, or add a documented exception to .nf-core.yml):\n" + \
        "\n".join(failed)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert len(result["tests_pass"]) >= 80
    print(f"nf-core lint: {len(result['tests_pass'])} passed, {len(result['tests_ignored'])} ignored, "
          f"{len(result['tests_warned'])} warned, 0 failed")

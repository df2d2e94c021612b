#!/bin/sh
# Run inside the image build (Dockerfile, Dockerfile.gpu, nesscan*.def), in two steps so that
# the large dependency layer is cached apart from nesscan's own code:
#   install-python-env.sh deps SRC_DIR [WHEELS_DIR]
#       a virtual environment at $NESSCAN_VENV (default /opt/nesscan/venv) with nesscan's
#       runtime dependencies (pyproject.toml) at the versions pinned in constraints.txt;
#       SRC_DIR holds constraints.txt and pyproject.toml. WHEELS_DIR, when given and holding
#       wheels, is searched before PyPI (e.g. a torch wheel brought in from the host).
#   install-python-env.sh package SRC_DIR
#       nesscan itself (a regular, non-editable install, no dependency resolution) from
#       SRC_DIR's pyproject.toml, README.md, src/ and models/ (or $NESSCAN_MODELS). With TORCH_INDEX_URL set
# (e.g. https://download.pytorch.org/whl/cpu) that index is searched too: a CPU-only torch of
# the same pinned version (2.13.0+cpu satisfies ==2.13.0) instead of PyPI's CUDA build.
# With PIP_CERT/SSL_CERT_FILE set (a TLS-intercepting proxy), pip trusts that bundle; pip's
# other PIP_* settings (PIP_FIND_LINKS, PIP_NO_INDEX: CI's offline wheelhouse) apply as usual.
set -eu
mode=${1:?usage: install-python-env.sh deps|package SRC_DIR [WHEELS_DIR]}
src=${2:?usage: install-python-env.sh deps|package SRC_DIR [WHEELS_DIR]}
wheels=${3:-}
venv=${NESSCAN_VENV:-/opt/nesscan/venv}
PIP_VERSION=${PIP_VERSION:-26.3}
SETUPTOOLS_VERSION=${SETUPTOOLS_VERSION:-84.2.1}
WHEEL_VERSION=${WHEEL_VERSION:-0.48.0}

export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

if [ "$mode" = package ]; then
    # pip builds in the source tree: work on a copy (SRC_DIR may be a read-only mount)
    build=$(mktemp -d)
    cp -r "$src/pyproject.toml" "$src/README.md" "$src/src" "$build/"
    # the models too, so that a pyproject.toml that installs them as data-files finds them
    if [ -d "$src/models" ]; then
        cp -r "$src/models" "$build/"
    elif [ -n "${NESSCAN_MODELS:-}" ] && [ -d "$NESSCAN_MODELS" ]; then
        cp -r "$NESSCAN_MODELS" "$build/models"
    fi
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation "$build"
    rm -rf "$build"
    exit 0
fi
[ "$mode" = deps ] || { echo "install-python-env.sh: unknown step '$mode' (deps|package)" >&2; exit 2; }
set --
if [ -n "$wheels" ] && [ -n "$(find "$wheels" -maxdepth 1 -name '*.whl' 2>/dev/null | head -n 1)" ]; then
    set -- "$@" --find-links "$wheels"
fi
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    set -- "$@" --extra-index-url "$TORCH_INDEX_URL"
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "pip==$PIP_VERSION" "setuptools==$SETUPTOOLS_VERSION" "wheel==$WHEEL_VERSION"
# the runtime dependencies named in pyproject.toml, at the versions in constraints.txt
"$venv/bin/python" - "$src/pyproject.toml" >/tmp/nesscan-requirements.txt <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    print("\n".join(tomllib.load(fh)["project"]["dependencies"]))
PY
"$venv/bin/python" -m pip install --quiet "$@" -c "$src/constraints.txt" -r /tmp/nesscan-requirements.txt
rm -f /tmp/nesscan-requirements.txt
# every pinned package that got installed must be at its pinned version
"$venv/bin/python" - "$src/constraints.txt" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" not in line:
        continue
    name, want = (s.strip() for s in line.split("==", 1))
    try:
        have = version(name)
    except PackageNotFoundError:
        continue
    if have.split("+")[0] != want:
        bad.append(f"{name} {have} (pinned {want})")
if bad:
    sys.exit("install-python-env.sh: not at the pinned version: " + ", ".join(bad))
PY

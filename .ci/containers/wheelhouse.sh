#!/usr/bin/env bash
# Fills a wheelhouse with every wheel the images install (pip/setuptools/wheel at the versions
# install-python-env.sh pins, nesscan's dependencies at constraints.txt's), for CPython 3.11 on
# x86_64 Linux (Debian bookworm's Python). check_def.py installs from it offline
# (PIP_FIND_LINKS + PIP_NO_INDEX), so the .def checks do not download 3.5 GB twice per CI run:
# pip's own cache does not work behind this machine's TLS-intercepting proxy.
#   wheelhouse.sh [DIR]     (default $NESSCAN_CI_CACHE/wheelhouse-cp311); prints DIR
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"
dir=${1:-$NESSCAN_CI_CACHE/wheelhouse-cp311}
py=${PYTHON:-python3}
if [ "$("$py" -c 'import sys; print(sys.version_info[:2] == (3, 11))')" != True ]; then
    echo "wheelhouse.sh: $py is not Python 3.11: no wheelhouse" >&2
    exit 1
fi
pin() { sed -n "s/^$1=\${$1:-\(.*\)}$/\1/p" "$NESSCAN_REPO/containers/install-python-env.sh"; }
mapfile -t deps < <("$py" -c '
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$NESSCAN_REPO/pyproject.toml")
mkdir -p "$dir"
# dependencies published as source only (metapredict 3.1.1 has no wheel on PyPI): built into
# wheels here once, then found by the download below through --find-links
for sdist_only in metapredict; do
    if ! ls "$dir"/"$sdist_only"-*.whl >/dev/null 2>&1; then
        nice -n 15 "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$dir" \
            -c "$NESSCAN_REPO/constraints.txt" "$sdist_only" >&2
    fi
done
nice -n 15 "$py" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --dest "$dir" \
    --find-links "$dir" \
    -c "$NESSCAN_REPO/constraints.txt" \
    "pip==$(pin PIP_VERSION)" "setuptools==$(pin SETUPTOOLS_VERSION)" "wheel==$(pin WHEEL_VERSION)" "${deps[@]}" >&2
echo "$dir"

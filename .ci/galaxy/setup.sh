#!/usr/bin/env bash
# Galaxy 26.1.1 (+ galaxy-tool-util's EDAM extra for the linter) in its own virtual environment,
# for tests/test_galaxy.py and .ci/galaxy/lint.py. Idempotent: an environment that already has
# these versions is kept (about 3 minutes and 1.6 GB otherwise).
#
#   .ci/galaxy/setup.sh [VENV]      default VENV: $NESSCAN_GALAXY_VENV or .ci/galaxy/venv
#
# Pinned to 26.1.1: galaxy 26.1.2 on PyPI pins a certifi release that is not published.
set -euo pipefail
cd "$(dirname "$0")/../.."
GALAXY_VERSION=26.1.1
VENV="${1:-${NESSCAN_GALAXY_VENV:-.ci/galaxy/venv}}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -x "$VENV/bin/galaxy-web" ] && [ -x "$VENV/bin/galaxy-tool-test" ] \
   && "$VENV/bin/python" - "$GALAXY_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import edam_ontology  # noqa: F401  (galaxy-tool-util[edam])
sys.exit(0 if version("galaxy") == version("galaxy-tool-util") == sys.argv[1] else 1)
PY
then
    echo "Galaxy $GALAXY_VERSION already in $VENV"
    exit 0
fi

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24"
"$VENV/bin/python" -m pip install --quiet "galaxy==$GALAXY_VERSION" "galaxy-tool-util[edam]==$GALAXY_VERSION" bioblend
"$VENV/bin/galaxy-tool-test" --help >/dev/null
echo "Galaxy $GALAXY_VERSION installed in $VENV"

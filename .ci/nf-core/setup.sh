#!/usr/bin/env bash
# nf-core/tools 4.2.1 in its own virtual environment (.ci/nf-core/venv), every dependency pinned by
# .ci/nf-core/requirements.txt, so that it never touches the pinned nesscan test environment.
# Used by tests/test_nf_core_lint.py (`nf-core pipelines lint`, offline).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf venv
python3 -m venv venv
venv/bin/python -m pip install --quiet --upgrade "pip>=24"
venv/bin/python -m pip install --quiet -r requirements.txt
venv/bin/nf-core --version

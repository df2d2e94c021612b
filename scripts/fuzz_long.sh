#!/usr/bin/env bash
# The long fuzz profile of tests/test_fuzz.py (issue 15): 10,000 generated/mutated FASTA files
# through the reader in-process, 150 through `nesscan predict` in-process (cli.main) and 10
# through `nesscan predict` as a subprocess; seeded (--hypothesis-seed, default 15), with a
# progress bar per test. Prints the cases run per test (JSON) and pytest's summary; the figures
# of the last run go into docs/reliability.md.
#
#   scripts/fuzz_long.sh [SEED]        (15-60 min on 2 shared cores; 52 min for the figures in docs/reliability.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-15}"
report="$(mktemp)"
export NESSCAN_FUZZ_PROFILE=long NESSCAN_FUZZ_REPORT="$report" NESSCAN_FUZZ_PROGRESS=1
start=$(date +%s)
status=0
python -m pytest -q -s -p no:cacheprovider tests/test_fuzz.py --hypothesis-seed="$seed" \
    --hypothesis-show-statistics || status=$?
echo "== fuzz_long: seed $seed, $(( $(date +%s) - start )) s, pytest exit status $status"
echo "== cases run per test:"
cat "$report"
rm -f "$report"
exit "$status"

#!/usr/bin/env bash
# Stops the daemons .ci/slurm/start.sh started, by the PIDs it recorded (slurmd, slurmctld, munged).
set -uo pipefail
STATE="${NESSCAN_SLURM_DIR:-/var/spool/nesscan-slurm}"
[ -s "$STATE/pids" ] || { echo ".ci/slurm/stop.sh: nothing to stop ($STATE/pids missing)"; exit 0; }
while read -r pid; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
done < "$STATE/pids"
rm -f "$STATE/pids"
echo "SLURM stopped"

#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (root; Debian's slurm-wlm 22.05 + munge), for
# tests/test_slurm.py. Installs the packages when they are missing, writes /etc/slurm/slurm.conf,
# starts munged, slurmctld and slurmd, waits until the node takes jobs and writes the daemons'
# PIDs to $NESSCAN_SLURM_DIR/pids (stop them with .ci/slurm/stop.sh).
#
#   bash .ci/slurm/start.sh && sbatch --wrap hostname
#
# No cgroup.conf on purpose: 22.05 has no CgroupPlugin=disabled, and slurmd then refuses to start
# in a container without a cgroup hierarchy; proctrack/linuxproc + task/none need none.
set -euo pipefail
STATE="${NESSCAN_SLURM_DIR:-/var/spool/nesscan-slurm}"
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
    echo ".ci/slurm/start.sh: needs root (it writes /etc/slurm and starts the daemons)" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
if [ -s "$STATE/pids" ] && xargs -r kill -0 < "$STATE/pids" 2>/dev/null; then
    echo ".ci/slurm/start.sh: already running (PIDs $(tr '\n' ' ' < "$STATE/pids"))"
    exit 0
fi

host="$(hostname -s)"
cpus="$(nproc)"
# RealMemory below the free memory (MB), at least 1 GB
free_mb="$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)"
mem=$(( free_mb * 8 / 10 ))
[ "$mem" -ge 1024 ] || mem=1024

# a fresh cluster every time: no node state (a drain reason) or job left from an earlier start
rm -rf /var/spool/slurmctld /var/spool/slurmd
mkdir -p "$STATE" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm /run/munge
rm -f /etc/slurm/cgroup.conf
# one count-only "gpu" generic resource (no device file, no GPU needed): lets CI check that the
# slurm profile asks for --gres=gpu:1 on the GPU tasks and that SLURM grants it
cat > /etc/slurm/gres.conf <<GRES
NodeName=${host} Name=gpu File=/dev/null Count=1
GRES
cat > /etc/slurm/slurm.conf <<CONF
# written by nesscan's .ci/slurm/start.sh: a one-node test cluster
ClusterName=nesscan-ci
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
GresTypes=gpu
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
PartitionName=ci Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF

# munge: Debian's package created the key; the daemon runs as the munge user
chown munge:munge /run/munge
runuser -u munge -- /usr/sbin/munged
for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
munge_pid="$(cat /run/munge/munged.pid)"

setsid slurmctld -D > "$STATE/slurmctld.out" 2>&1 < /dev/null &
ctld_pid=$!
setsid slurmd -D > "$STATE/slurmd.out" 2>&1 < /dev/null &
d_pid=$!
printf '%s\n' "$d_pid" "$ctld_pid" "$munge_pid" > "$STATE/pids"

# the node must be idle before jobs start
for _ in $(seq 120); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -qx 'idle'; then
        echo "SLURM up: node ${host}, ${cpus} CPUs, ${mem} MB; PIDs slurmd ${d_pid} slurmctld ${ctld_pid} munged ${munge_pid}"
        exit 0
    fi
    sleep 0.5
done
echo ".ci/slurm/start.sh: the node never became idle:" >&2
sinfo -N -l >&2 || true
tail -n 20 "$STATE/slurmctld.out" "$STATE/slurmd.out" /var/log/slurm/*.log >&2 || true
exit 1

# Sourced as a Nextflow beforeScript by tests/test_nextflow_faults.py: puts the task's shell (and
# so the task) into a new memory cgroup, below the caller's own, limited to $1 bytes, as a
# cluster's batch system does. Past the limit the kernel's OOM killer ends the task (exit 137).
#   usage: source memory_cgroup.sh LIMIT_BYTES
nesscan_limit="$1"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then                  # cgroup v2
    nesscan_cg="/sys/fs/cgroup$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)/nesscan-oom-test-$$"
    mkdir "$nesscan_cg"
    echo "$nesscan_limit" > "$nesscan_cg/memory.max"
    echo 0 > "$nesscan_cg/memory.swap.max" 2>/dev/null || true
else                                                                # cgroup v1
    nesscan_cg="/sys/fs/cgroup/memory$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)/nesscan-oom-test-$$"
    mkdir "$nesscan_cg"
    echo "$nesscan_limit" > "$nesscan_cg/memory.limit_in_bytes"
    echo "$nesscan_limit" > "$nesscan_cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
fi
echo $$ > "$nesscan_cg/cgroup.procs"
echo "memory cgroup $nesscan_cg: limit $nesscan_limit bytes" >&2

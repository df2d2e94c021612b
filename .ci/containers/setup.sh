#!/usr/bin/env bash
# Prepares this machine for the container tests (tests/test_containers.py with
# NESSCAN_CONTAINER_TESTS=1): Debian's podman, runc and debootstrap, a podman that works here
# (CONTAINERS_CONF=.ci/containers/containers.conf), and the local Debian base image (base.sh,
# cached in /var/cache/nesscan-ci between runs). Idempotent; exits non-zero when podman cannot
# run a container.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

need=()
for cmd in podman runc debootstrap; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${need[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # with podman's recommends (netavark, aardvark-dns, catatonit, buildah, ...): the set tested here
    nice -n 15 apt-get install -y -qq podman runc debootstrap fuse-overlayfs uidmap slirp4netns >/dev/null
fi
podman --version
# working containers left behind by an interrupted build (buildah's, "Storage" in podman ps
# --external) hold gigabytes: CI starts no build before this script, so none is in use
stale=$(podman ps -a --external --format '{{.ID}} {{.Status}}' | awk '$2 == "Storage" {print $1}')
if [ -n "$stale" ]; then
    # shellcheck disable=SC2086
    podman rm --force $stale >/dev/null && echo "setup.sh: removed $(echo $stale | wc -w) stale build container(s)"
fi
"$(dirname "$0")/base.sh"
# the smallest end-to-end check: podman runs a container from the base with our settings
podman run --rm --network none "$NESSCAN_BASE_IMAGE" sh -c 'test "$(ulimit -n)" = 20000' \
    || { echo "setup.sh: podman cannot run a container (see above)" >&2; exit 1; }
df -h "$(podman info --format '{{.Store.GraphRoot}}')" | tail -n 1 | awk '{print "setup.sh: podman storage: " $4 " free"}'
echo "setup.sh: ready"

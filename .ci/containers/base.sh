#!/usr/bin/env bash
# Makes the local stand-in for the public base image (debian:bookworm-slim): a
# `debootstrap --variant=minbase bookworm` rootfs from the Debian mirror apt is configured with,
# imported into podman as $NESSCAN_BASE_IMAGE. The rootfs tarball is cached in
# $NESSCAN_CI_CACHE and reused by later runs (NESSCAN_CI_REFRESH_BASE=1 makes a new one;
# one older than $NESSCAN_CI_BASE_MAX_AGE_DAYS, default 30, is made anew too).
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

tarball=$NESSCAN_CI_CACHE/debian-bookworm-minbase.tar
max_age=${NESSCAN_CI_BASE_MAX_AGE_DAYS:-30}

mirror() {  # the Debian mirror apt uses here (deb822 .sources or one-line sources.list)
    local m
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
    [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                         | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

if [ "${NESSCAN_CI_REFRESH_BASE:-0}" = 1 ] || { [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime +"$max_age")" ]; }; then
    rm -f "$tarball"
    podman rmi -f "$NESSCAN_BASE_IMAGE" >/dev/null 2>&1 || true
fi

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "base.sh: debootstrap missing (run .ci/containers/setup.sh)" >&2; exit 1; }
    MIRROR=$(mirror)
    security=${MIRROR%/debian}/debian-security
    echo "base.sh: debootstrap --variant=minbase bookworm from $MIRROR"
    mkdir -p "$NESSCAN_CI_CACHE"
    work=$(mktemp -d "$NESSCAN_CI_CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    nice -n 15 debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # the same suites as debian:bookworm-slim: bookworm, bookworm-updates, bookworm-security
    rm -f "$work/rootfs/etc/apt/sources.list"
    cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # slim like debian:bookworm-slim: no apt lists, no package cache, no docs
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
           "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/usr/share/doc/* \
           "$work"/rootfs/usr/share/man/* "$work"/rootfs/var/log/*.log
    tar -C "$work/rootfs" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
fi

if ! podman image exists "$NESSCAN_BASE_IMAGE"; then
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        "$tarball" "$NESSCAN_BASE_IMAGE" >/dev/null
fi
podman image inspect --format '{{.Id}} {{.Size}}' "$NESSCAN_BASE_IMAGE" | awk -v n="$NESSCAN_BASE_IMAGE" '{printf "base.sh: %s %s (%.0f MB)\n", n, substr($1,1,12), $2/1e6}'

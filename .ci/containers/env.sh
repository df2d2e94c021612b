# shellcheck shell=bash
# Sourced by the other .ci/containers scripts: where things are and what they are called.
# Every value can be overridden from the environment.
NESSCAN_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export NESSCAN_REPO
export CONTAINERS_CONF=${CONTAINERS_CONF:-$NESSCAN_REPO/.ci/containers/containers.conf}
# cache of the debootstrapped base, kept between CI runs on the same machine
export NESSCAN_CI_CACHE=${NESSCAN_CI_CACHE:-/var/cache/nesscan-ci}
export NESSCAN_BASE_IMAGE=${NESSCAN_BASE_IMAGE:-localhost/nesscan-ci/debian:bookworm-minbase}
# the image name and tag: one source, containers/image-ref (name + the package version)
NESSCAN_IMAGE=${NESSCAN_IMAGE:-$("$NESSCAN_REPO/containers/image-ref")}
export NESSCAN_IMAGE
# the host CA bundle: HTTPS from inside builds is TLS-intercepted here
export NESSCAN_CA_BUNDLE=${NESSCAN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

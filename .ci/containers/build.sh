#!/usr/bin/env bash
# Builds a nesscan image with podman on the local Debian base (base.sh), the way CI does:
#   .ci/containers/build.sh [--gpu] [--tag REF] [-- EXTRA_PODMAN_BUILD_ARGS...]
# --gpu builds containers/Dockerfile.gpu (its nvidia/cuda base cannot be pulled here, so it is
# built on the same Debian base: this checks its steps, not the CUDA base). The host CA bundle is
# passed as the build secret extra_ca when it exists (HTTPS inside builds is TLS-intercepted
# here); a torch wheel found on the host (PIP_FIND_LINKS folders, NESSCAN_WHEELS) is linked into
# containers/wheels/ so the build need not download it again. Prints the image reference.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"
cd "$NESSCAN_REPO"

dockerfile=containers/Dockerfile
tag=$NESSCAN_IMAGE
if [ "${1:-}" = --gpu ]; then
    dockerfile=containers/Dockerfile.gpu
    tag=$(containers/image-ref --gpu)
    shift
fi
if [ "${1:-}" = --tag ]; then tag=$2; shift 2; fi
[ "${1:-}" = -- ] && shift

"$(dirname "$0")/base.sh" >&2

# host wheels of the pinned torch (same Python ABI as the image: cp311 on bookworm)
torch_version=$(sed -n 's/^torch==//p' constraints.txt)
IFS=: read -r -a dirs <<<"${NESSCAN_WHEELS:-}:${PIP_FIND_LINKS:-}"
for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for w in "$d"/torch-"$torch_version"-cp311-*manylinux*x86_64.whl; do
        [ -f "$w" ] || continue
        ln -f "$w" containers/wheels/ 2>/dev/null || cp -f "$w" containers/wheels/
        echo "build.sh: using host wheel $(basename "$w")" >&2
    done
done

# metapredict publishes only a source archive and the images carry no compiler: its wheel is
# built once on the host (the same cp311 ABI and Debian glibc as the image) and handed to the
# build through containers/wheels/, like the torch wheel
mp_version=$(sed -n 's/^metapredict==//p' constraints.txt)
if [ -n "$mp_version" ] && ! ls containers/wheels/metapredict-"$mp_version"-*.whl >/dev/null 2>&1; then
    found=""
    for d in "${dirs[@]}"; do
        for w in "$d"/metapredict-"$mp_version"-cp311-*.whl; do
            [ -f "$w" ] && { ln -f "$w" containers/wheels/ 2>/dev/null || cp -f "$w" containers/wheels/; found=1; }
        done
    done
    [ -n "$found" ] || nice -n 15 python3 -m pip wheel --quiet --disable-pip-version-check --no-deps \
        --wheel-dir containers/wheels "metapredict==$mp_version" >&2
    echo "build.sh: using a host-built wheel of metapredict $mp_version" >&2
fi

secret=()
[ -s "$NESSCAN_CA_BUNDLE" ] && secret=(--secret "id=extra_ca,src=$NESSCAN_CA_BUNDLE")

start=$(date +%s)
nice -n 15 podman build \
    --file "$dockerfile" \
    --tag "$tag" \
    --build-arg "BASE_IMAGE=$NESSCAN_BASE_IMAGE" \
    --build-arg "NESSCAN_VERSION=$(containers/image-ref --version)" \
    --build-arg "VCS_REF=$(git rev-parse HEAD 2>/dev/null || true)" \
    "${secret[@]}" \
    --layers \
    "$@" \
    . >&2
# drop images left untagged by this rebuild (the layer cache of the tagged ones stays)
podman image prune -f >/dev/null
echo "build.sh: built $tag in $(( $(date +%s) - start )) s," \
     "$(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')" >&2
echo "$tag"

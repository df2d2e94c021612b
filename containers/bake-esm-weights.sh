#!/bin/sh
# Run inside the image build: bakes ESM-2 checkpoints into the torch hub cache of the image,
# $TORCH_HOME/hub/checkpoints/<name>.pt, where `nesscan embed|predict|train --embedder <name>`
# finds them without a network (NESSCAN_OFFLINE=1).
#   bake-esm-weights.sh "NAME[,NAME...]" [LOCAL_DIR]
# NAME: an ESM-2 model, e.g. esm2_t33_650M_UR50D. A LOCAL_DIR/<name>.pt (the build's
# containers/weights/) is used when present; otherwise nesscan downloads it from fair-esm's
# public URL, as it does outside containers. Each checkpoint is then loaded once by nesscan's own
# loader (a one-protein `nesscan embed`, offline), so a truncated or foreign file fails the build.
set -eu
models=$(printf '%s' "${1:-}" | tr ',' ' ')
local_dir=${2:-}
[ -n "$models" ] || exit 0
: "${TORCH_HOME:?TORCH_HOME must be set}"
ckpt_dir="$TORCH_HOME/hub/checkpoints"
mkdir -p "$ckpt_dir"
probe=$(mktemp -d)
printf '>probe\nMSEEKLAKLLEELLRKLQEN\n' >"$probe/probe.fasta"
for name in $models; do
    case "$name" in
        esm2_*) ;;
        *) echo "bake-esm-weights.sh: '$name' is not an ESM-2 model name (esm2_...)" >&2; exit 2 ;;
    esac
    if [ -n "$local_dir" ] && [ -s "$local_dir/$name.pt" ]; then
        echo "bake-esm-weights.sh: $name from the build context"
        cp "$local_dir/$name.pt" "$ckpt_dir/$name.pt"
    else
        echo "bake-esm-weights.sh: $name: download"
        nesscan embed --embedder "$name" --input "$probe/probe.fasta" --output "$probe/download.h5" \
            --device cpu --quiet
        rm -f "$probe/download.h5"
    fi
    NESSCAN_OFFLINE=1 nesscan embed --embedder "$name" --input "$probe/probe.fasta" \
        --output "$probe/check.h5" --device cpu --quiet
    rm -f "$probe/check.h5"
    ls -l "$ckpt_dir/$name.pt"
done
rm -rf "$probe"
chmod -R a+rX "$TORCH_HOME"

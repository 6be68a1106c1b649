#!/usr/bin/env bash
# Build Ferry's standard environment images, tagged as the seeded environments name them
# (jobs/migrations/0002_seed_environments_and_machines.py). `make images` runs this.
#
#   platform/images/build.sh [OPTIONS] [IMAGE...]
#
# IMAGE is one of the names below (default: every CPU image, and with --gpu every image).
# An image whose parent is missing gets its parent built first.
#
#   name                   tag                          FROM
#   base                   ferry/base:bookworm          debootstrap + docker import (no registry)
#   python-3.11            ferry/python:3.11            ferry/base:bookworm
#   pytorch-2.5            ferry/pytorch:2.5            ferry/python:3.11        (PyTorch's index)
#   tensorflow-2.16        ferry/tensorflow:2.16        ferry/python:3.11        (PyPI)
#   python-3.11-cuda       ferry/python:3.11-cuda       $CUDA_BASE               (a registry)
#   pytorch-2.5-cuda       ferry/pytorch:2.5-cuda       ferry/python:3.11-cuda   (PyTorch's index)
#   tensorflow-2.16-cuda   ferry/tensorflow:2.16-cuda   ferry/python:3.11-cuda   (PyPI)
#
# Options (each also read from the environment variable in brackets):
#   --gpu                   also build the -cuda images [GPU=1]. Their base comes from a
#                           registry (Docker Hub's nvidia/cuda): only where one is reachable.
#   --no-torch-index        skip the images that need PyTorch's wheel index [NO_TORCH_INDEX=1]
#   --torch-index URL       PyTorch's index, or a mirror of it [TORCH_INDEX]; default
#                           https://download.pytorch.org/whl/cpu (whl/cu124 for -cuda images)
#   --pip-index URL         a PyPI mirror for every pip install [PIP_INDEX_URL]
#   --mirror URL            the Debian mirror for debootstrap [MIRROR]; default deb.debian.org
#   --cuda-base IMAGE       the CUDA base [CUDA_BASE];
#                           default nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
#   --rebuild-base          make ferry/base:bookworm again even if it exists [REBUILD_BASE=1]
#
# Needs: a Docker engine; for the base, root and debootstrap (apt-get install debootstrap).
# The base is built once and kept: the script skips it while the engine has it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKER=${DOCKER:-docker}
GPU=${GPU:-0}
NO_TORCH_INDEX=${NO_TORCH_INDEX:-0}
TORCH_INDEX=${TORCH_INDEX:-}
PIP_INDEX_URL=${PIP_INDEX_URL:-}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CUDA_BASE=${CUDA_BASE:-nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04}
REBUILD_BASE=${REBUILD_BASE:-0}
SUITE=bookworm

CPU_IMAGES=(base python-3.11 pytorch-2.5 tensorflow-2.16)
GPU_IMAGES=(python-3.11-cuda pytorch-2.5-cuda tensorflow-2.16-cuda)

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

tag_of() {
    case $1 in
        base) echo "ferry/base:$SUITE" ;;
        python-3.11) echo ferry/python:3.11 ;;
        pytorch-2.5) echo ferry/pytorch:2.5 ;;
        tensorflow-2.16) echo ferry/tensorflow:2.16 ;;
        python-3.11-cuda) echo ferry/python:3.11-cuda ;;
        pytorch-2.5-cuda) echo ferry/pytorch:2.5-cuda ;;
        tensorflow-2.16-cuda) echo ferry/tensorflow:2.16-cuda ;;
        *) die "no image named '$1'; choose from: ${CPU_IMAGES[*]} ${GPU_IMAGES[*]}" ;;
    esac
}

parent_of() {
    case $1 in
        python-3.11) echo base ;;
        pytorch-2.5 | tensorflow-2.16) echo python-3.11 ;;
        pytorch-2.5-cuda | tensorflow-2.16-cuda) echo python-3.11-cuda ;;
        *) echo "" ;;
    esac
}

needs_torch_index() { [[ $1 == pytorch-2.5* ]]; }

have_image() { "$DOCKER" image inspect "$1" > /dev/null 2>&1; }

# --- the base: Debian bookworm from debootstrap, imported without any registry ---------------

build_base() {
    local tag root
    tag=$(tag_of base)
    command -v debootstrap > /dev/null || die "debootstrap is missing: apt-get install debootstrap"
    [[ $(id -u) == 0 ]] || die "debootstrap needs root to build $tag: run this as root"
    root=$(mktemp -d "${TMPDIR:-/tmp}/ferry-base-XXXXXX")
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '$root'" EXIT
    say "debootstrap $SUITE from $MIRROR (python3, python3-venv, ca-certificates)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$root" "$MIRROR"
    # Caches and package lists only make the image bigger; jobs do not use apt.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
    say "docker import -> $tag"
    tar -C "$root" -c . | "$DOCKER" import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE $MIRROR" \
        - "$tag" > /dev/null
    rm -rf "$root"
    trap - EXIT
}

# --- the Dockerfiles ---------------------------------------------------------------------------

build_args() {
    # Printed one per line, for mapfile: the build arguments of image $1.
    local index
    case $1 in
        python-3.11) ;;
        python-3.11-cuda) echo "--build-arg=BASE=$CUDA_BASE" ;;
        pytorch-2.5 | pytorch-2.5-cuda)
            if [[ $1 == *-cuda ]]; then
                index=${TORCH_INDEX:-https://download.pytorch.org/whl/cu124}
                echo "--build-arg=BASE=$(tag_of python-3.11-cuda)"
            else
                index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
            fi
            echo "--build-arg=TORCH_INDEX=$index"
            ;;
        tensorflow-2.16) ;;
        tensorflow-2.16-cuda)
            echo "--build-arg=BASE=$(tag_of python-3.11-cuda)"
            echo "--build-arg=TF_PACKAGE=tensorflow[and-cuda]"
            ;;
    esac
    # Only when set: an empty PIP_INDEX_URL would tell pip to use no index at all.
    if [[ -n $PIP_INDEX_URL ]]; then
        echo "--build-arg=PIP_INDEX_URL=$PIP_INDEX_URL"
    fi
}

dockerfile_of() {
    case $1 in
        python-3.11) echo "$HERE/python-3.11/Dockerfile" ;;
        python-3.11-cuda) echo "$HERE/python-3.11/Dockerfile.cuda" ;;
        *) echo "$HERE/${1%-cuda}/Dockerfile" ;;
    esac
}

build_image() {
    local name=$1 tag dockerfile args started
    tag=$(tag_of "$name")
    dockerfile=$(dockerfile_of "$name")
    mapfile -t args < <(build_args "$name")
    say "docker build $tag (${dockerfile#"$HERE"/})"
    started=$SECONDS
    "$DOCKER" build --pull=false -t "$tag" -f "$dockerfile" "${args[@]}" "$(dirname "$dockerfile")"
    say "$tag built in $((SECONDS - started)) s"
}

# --- what to build -----------------------------------------------------------------------------

declare -A VISITED=()

build() {
    local name=$1 parent
    [[ -n ${VISITED[$name]:-} ]] && return
    VISITED[$name]=1
    if needs_torch_index "$name" && [[ $NO_TORCH_INDEX == 1 ]]; then
        say "skipping $name: it needs PyTorch's wheel index (NO_TORCH_INDEX=1)"
        SKIPPED+=("$name")
        return
    fi
    parent=$(parent_of "$name")
    if [[ -n $parent ]] && ! have_image "$(tag_of "$parent")"; then
        build "$parent"
    fi
    if [[ $name == base ]]; then
        if have_image "$(tag_of base)" && [[ $REBUILD_BASE != 1 ]]; then
            say "$(tag_of base) exists; kept (--rebuild-base makes it again)"
            return
        fi
        build_base
    else
        build_image "$name"
    fi
    BUILT+=("$(tag_of "$name")")
}

main() {
    local wanted=() name
    while (($#)); do
        case $1 in
            --gpu) GPU=1 ;;
            --no-torch-index) NO_TORCH_INDEX=1 ;;
            --torch-index) TORCH_INDEX=${2:?--torch-index needs a URL}; shift ;;
            --pip-index) PIP_INDEX_URL=${2:?--pip-index needs a URL}; shift ;;
            --mirror) MIRROR=${2:?--mirror needs a URL}; shift ;;
            --cuda-base) CUDA_BASE=${2:?--cuda-base needs an image}; shift ;;
            --rebuild-base) REBUILD_BASE=1 ;;
            -h | --help) usage ;;
            -*) printf 'build.sh: unknown option %s\n\n' "$1" >&2; usage 2 ;;
            *) tag_of "$1" > /dev/null; wanted+=("$1") ;;
        esac
        shift
    done
    if ((${#wanted[@]} == 0)); then
        wanted=("${CPU_IMAGES[@]}")
        [[ $GPU == 1 ]] && wanted+=("${GPU_IMAGES[@]}")
    fi
    for name in "${wanted[@]}"; do
        if [[ $name == *-cuda && $GPU != 1 ]]; then
            die "$name needs --gpu (GPU=1): its base, $CUDA_BASE, comes from a registry"
        fi
    done
    "$DOCKER" info > /dev/null 2>&1 || die "no Docker engine answers ('$DOCKER info' failed)"
    BUILT=() SKIPPED=()
    for name in "${wanted[@]}"; do
        build "$name"
    done
    say "built: ${BUILT[*]:-nothing}"
    if ((${#SKIPPED[@]})); then
        say "skipped: ${SKIPPED[*]}"
    fi
}

main "$@"

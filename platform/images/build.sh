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
#   pytorch-2.13           ferry/pytorch:2.13           ferry/python:3.11        (PyTorch's index)
#   tensorflow-2.16        ferry/tensorflow:2.16        ferry/python:3.11        (PyPI)
#   python-3.11-cuda       ferry/python:3.11-cuda       $CUDA_BASE               (a registry)
#   pytorch-2.13-cuda      ferry/pytorch:2.13-cuda      ferry/python:3.11-cuda   (PyTorch's index)
#   tensorflow-2.16-cuda   ferry/tensorflow:2.16-cuda   ferry/python:3.11-cuda   (PyPI)
#   pytorch-2.5[-cuda]     ferry/pytorch:2.5[-cuda]     (as pytorch-2.13; built only when named)
#
# Options (each also read from the environment variable in brackets):
#   --gpu                   also build the -cuda images [GPU=1]. Their base comes from a
#                           registry (Docker Hub's nvidia/cuda): only where one is reachable.
#   --no-torch-index        skip the images that need PyTorch's wheel index [NO_TORCH_INDEX=1]
#   --torch-index URL       PyTorch's index, or a mirror of it [TORCH_INDEX]; default
#                           https://download.pytorch.org/whl/cpu (a CUDA one for -cuda images:
#                           whl/cu130 for 2.13, whl/cu124 for 2.5)
#   --no-torchvision        PyTorch images without torchvision [NO_TORCHVISION=1], e.g. for a
#                           wheelhouse whose torch has no torchvision built for it
#   --pip-index URL         a PyPI mirror for every pip install [PIP_INDEX_URL]
#   --wheelhouse            pip on this machine downloads each image's packages, and the build
#                           installs them from there with no index [WHEELHOUSE=1]: for a host
#                           whose containers cannot reach the indexes themselves (a proxy that
#                           re-signs TLS, a mirror only the host is configured for). This
#                           machine's pip settings apply: its index, proxy, certificates and
#                           find-links (a folder of wheels kept offline).
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
NO_TORCHVISION=${NO_TORCHVISION:-0}
WHEELHOUSE=${WHEELHOUSE:-0}
PIP_INDEX_URL=${PIP_INDEX_URL:-}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CUDA_BASE=${CUDA_BASE:-nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04}
REBUILD_BASE=${REBUILD_BASE:-0}
SUITE=bookworm

CPU_IMAGES=(base python-3.11 pytorch-2.13 tensorflow-2.16)
GPU_IMAGES=(python-3.11-cuda pytorch-2.13-cuda tensorflow-2.16-cuda)
# Every image's Python (Debian bookworm's; Ubuntu 22.04's python3.11 in the -cuda ones): what
# --wheelhouse downloads wheels for.
IMAGE_PYTHON=3.11

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
        pytorch-2.13) echo ferry/pytorch:2.13 ;;
        tensorflow-2.16) echo ferry/tensorflow:2.16 ;;
        python-3.11-cuda) echo ferry/python:3.11-cuda ;;
        pytorch-2.5-cuda) echo ferry/pytorch:2.5-cuda ;;
        pytorch-2.13-cuda) echo ferry/pytorch:2.13-cuda ;;
        tensorflow-2.16-cuda) echo ferry/tensorflow:2.16-cuda ;;
        *) die "no image named '$1'; choose from: ${CPU_IMAGES[*]} ${GPU_IMAGES[*]}" ;;
    esac
}

parent_of() {
    case $1 in
        python-3.11) echo base ;;
        pytorch-2.5 | pytorch-2.13 | tensorflow-2.16) echo python-3.11 ;;
        pytorch-2.5-cuda | pytorch-2.13-cuda | tensorflow-2.16-cuda) echo python-3.11-cuda ;;
        *) echo "" ;;
    esac
}

needs_torch_index() { [[ $1 == pytorch-* ]]; }

torch_packages() {
    # The requirements of PyTorch image $1, one line: torch X.Y and its torchvision 0.(Y+15).
    local version=${1#pytorch-} minor
    version=${version%-cuda}
    minor=${version#2.}
    if [[ $NO_TORCHVISION == 1 ]]; then
        echo "torch==$version.*"
    else
        echo "torch==$version.* torchvision==0.$((minor + 15)).*"
    fi
}

default_torch_index() {
    case $1 in
        pytorch-2.5-cuda) echo https://download.pytorch.org/whl/cu124 ;;
        *-cuda) echo https://download.pytorch.org/whl/cu130 ;;
        *) echo https://download.pytorch.org/whl/cpu ;;
    esac
}

tf_package() {
    if [[ $1 == *-cuda ]]; then echo "tensorflow[and-cuda]"; else echo tensorflow-cpu; fi
}

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
        pytorch-*)
            [[ $1 != *-cuda ]] || echo "--build-arg=BASE=$(tag_of python-3.11-cuda)"
            echo "--build-arg=TORCH_INDEX=${TORCH_INDEX:-$(default_torch_index "$1")}"
            echo "--build-arg=TORCH_PACKAGES=$(torch_packages "$1")"
            ;;
        tensorflow-2.16) ;;
        tensorflow-2.16-cuda)
            echo "--build-arg=BASE=$(tag_of python-3.11-cuda)"
            echo "--build-arg=TF_PACKAGE=$(tf_package "$1")"
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
        pytorch-*) echo "$HERE/pytorch/Dockerfile" ;;
        *) echo "$HERE/${1%-cuda}/Dockerfile" ;;
    esac
}

# --- --wheelhouse: packages downloaded here, served to the build on this machine's loopback ----

wheelhouse_download() {
    # Download what image $1 installs, and everything it needs, into folder $2, as wheels for
    # the image's Python and this machine's processor. The image's glibc is 2.35 or newer.
    local name=$1 into=$2 arch n index
    local -a args packages
    arch=$(uname -m)
    args=(--only-binary=:all: --python-version "$IMAGE_PYTHON" --implementation cp
          --platform "manylinux2014_$arch" --platform "linux_$arch" -d "$into")
    for n in $(seq 17 35); do args+=(--platform "manylinux_2_${n}_$arch"); done
    case $name in
        pytorch-*)
            index=${TORCH_INDEX:-$(default_torch_index "$name")}
            read -ra packages <<< "$(torch_packages "$name")"
            say "pip download (here) ${packages[*]} from $index"
            python3 -m pip download -q "${args[@]}" --index-url "$index" "${packages[@]}"
            packages=(numpy)
            ;;
        tensorflow-*) packages=("$(tf_package "$name")==2.16.*") ;;
        *) return 0 ;;
    esac
    say "pip download (here) ${packages[*]}"
    python3 -m pip download -q "${args[@]}" ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} \
        "${packages[@]}"
}

WHEEL_SERVER_PID="" WHEELHOUSE_URL=""

serve_wheelhouse() {
    # Serve folder $1 over HTTP on 127.0.0.1 (a build with --network host reaches it), at
    # $WHEELHOUSE_URL. A pip find-links URL wants a page of links: the folder listing is one.
    local dir=$1 port_file="$1/.port" port
    python3 -c 'import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass  # pip, in the build, says what it fetched
handler = functools.partial(Quiet, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
open(sys.argv[2], "w").write(str(server.server_address[1]))
server.serve_forever()' "$dir" "$port_file" > /dev/null &
    WHEEL_SERVER_PID=$!
    for _ in $(seq 50); do [[ -s $port_file ]] && break; sleep 0.1; done
    port=$(cat "$port_file" 2> /dev/null) || die "the wheelhouse server did not start"
    WHEELHOUSE_URL="http://127.0.0.1:$port/"
}

stop_wheelhouse() {
    [[ -z $WHEEL_SERVER_PID ]] || kill "$WHEEL_SERVER_PID" 2> /dev/null || true
    WHEEL_SERVER_PID=""
}

build_image() {
    local name=$1 tag dockerfile args started wheels
    tag=$(tag_of "$name")
    dockerfile=$(dockerfile_of "$name")
    mapfile -t args < <(build_args "$name")
    started=$SECONDS
    if [[ $WHEELHOUSE == 1 ]]; then
        wheels=$(mktemp -d "${TMPDIR:-/tmp}/ferry-wheels-XXXXXX")
        # shellcheck disable=SC2064  # expand now: the trap must clean up this very build
        trap "stop_wheelhouse; rm -rf '$wheels'" EXIT
        wheelhouse_download "$name" "$wheels"
        serve_wheelhouse "$wheels"
        args+=(--network host --build-arg PIP_NO_INDEX=1 --build-arg "PIP_FIND_LINKS=$WHEELHOUSE_URL")
    fi
    say "docker build $tag (${dockerfile#"$HERE"/})"
    "$DOCKER" build --pull=false -t "$tag" -f "$dockerfile" "${args[@]}" "$(dirname "$dockerfile")"
    if [[ $WHEELHOUSE == 1 ]]; then
        stop_wheelhouse
        rm -rf "$wheels"
        trap - EXIT
    fi
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
            --no-torchvision) NO_TORCHVISION=1 ;;
            --wheelhouse) WHEELHOUSE=1 ;;
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

# Sourced (the tests do, for its functions), it runs nothing.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi

#!/usr/bin/env bash
# Build a local stand-in for the Dockerfile's base image, for machines that cannot reach an image registry.
#
#   sudo docker/build_base.sh [--force] [TAG]
#
# TAG defaults to the BASE_IMAGE default in ./Dockerfile, so that afterwards the unchanged Dockerfile builds
# with the legacy builder (DOCKER_BUILDKIT=0 docker build ...), which uses a local image of the FROM name
# without pulling. An existing image of that tag is kept unless --force is given.
#
# The stand-in: Debian bookworm (debootstrap --variant=minbase from this machine's apt mirror, docker import),
# a Python 3.11 venv at /opt/venv first on PATH, and the CPU torch wheel found by
# `pip download torch==<constraints.txt version>` (usually a local file), so no multi-GB CUDA build is pulled.
# pip inside uses this machine's CA bundle (PIP_CERT), which the package index needs here.
#
# Environment overrides: DEBIAN_MIRROR (apt mirror URL), DEBIAN_SUITE (bookworm), TORCH_WHEEL (path to a
# torch wheel for cp311/linux x86_64), CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt), PIP_INDEX_URL.
# Needs: root, docker (daemon running), debootstrap, python3 with pip.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${DEBIAN_SUITE:-bookworm}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
ROOTFS_TAG="embedtrack-standin-rootfs:$SUITE"

say() { echo "[build_base] $*" >&2; }
die() {
    echo "[build_base] error: $*" >&2
    exit 1
}

FORCE=0
TAG=""
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help)
            sed -n '2,18s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*) die "unknown option $arg (see --help)" ;;
        *) TAG="$arg" ;;
    esac
done
if [ -z "$TAG" ]; then
    TAG="$(sed -n 's/^ARG BASE_IMAGE=\(.*\)$/\1/p' "$REPO/Dockerfile" | head -n 1)"
    [ -n "$TAG" ] || die "no 'ARG BASE_IMAGE=...' line in $REPO/Dockerfile; pass the tag as argument"
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root; run with sudo"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
docker info >/dev/null 2>&1 || die "no docker daemon reachable (start it: dockerd &)"
[ -f "$CA_BUNDLE" ] || die "CA bundle $CA_BUNDLE not found (apt-get install -y ca-certificates, or set CA_BUNDLE)"

if docker image inspect "$TAG" >/dev/null 2>&1 && [ "$FORCE" = 0 ]; then
    say "image $TAG exists already; keeping it (use --force to rebuild)"
    exit 0
fi

# The Debian archive this machine's apt uses: first http(s) URI of a main suite (not -security/-updates).
detect_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) {
                 if ($(i + 1) !~ /-/) print $i; break } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" } {
                 uri = ""; main = 0
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
                     if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] !~ /-/) main = 1 }
                 }
                 if (uri ~ /^https?:\/\// && main) print uri }' "$f"
    done
}
MIRROR="${DEBIAN_MIRROR:-$(detect_mirror | head -n 1)}"
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list(.d); set DEBIAN_MIRROR"

WORK="$(mktemp -d /tmp/embedtrack-standin.XXXXXX)"
trap 'rm -rf "$WORK"; docker rmi "$ROOTFS_TAG" >/dev/null 2>&1 || true' EXIT
mkdir -p "$WORK/context/wheels"

# 1. the CPU torch wheel
if [ -n "${TORCH_WHEEL:-}" ]; then
    [ -f "$TORCH_WHEEL" ] || die "TORCH_WHEEL=$TORCH_WHEEL is not a file"
    cp "$TORCH_WHEEL" "$WORK/context/wheels/"
else
    TORCH_PIN="$(grep -E '^torch==' "$REPO/constraints.txt" | head -n 1)"
    [ -n "$TORCH_PIN" ] || die "no torch==VERSION line in $REPO/constraints.txt; set TORCH_WHEEL"
    say "looking for $TORCH_PIN (cp311) with pip download"
    python3 -m pip download "$TORCH_PIN" --no-deps --only-binary=:all: --python-version 3.11 \
        -d "$WORK/context/wheels" >&2 || die "pip download $TORCH_PIN failed; set TORCH_WHEEL=/path/to/torch.whl"
fi
WHEEL="$(basename "$(ls "$WORK"/context/wheels/torch-*.whl | head -n 1)")"
case "$WHEEL" in
    *+cpu*) say "torch wheel: $WHEEL" ;;
    *) die "$WHEEL is not a CPU build (it would pull the CUDA libraries); set TORCH_WHEEL to a torch-*+cpu-*.whl" ;;
esac

# 2. pip settings the image needs to reach the package index from here
cp "$CA_BUNDLE" "$WORK/context/ca-bundle.crt"
INDEX_URL="${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}"
{
    echo "[global]"
    echo "cert = /etc/ssl/certs/host-ca-bundle.crt"
    case "$INDEX_URL" in http://* | https://*) echo "index-url = $INDEX_URL" ;; esac
} >"$WORK/context/pip.conf"
cp "$REPO/docker/standin.Dockerfile" "$WORK/context/Dockerfile"

# 3. the Debian root file system, imported as an image
START=$(date +%s)
say "debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$WORK/rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed (log above)"
}
rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
tar -C "$WORK/rootfs" -c . | docker import - "$ROOTFS_TAG" >/dev/null
say "rootfs imported as $ROOTFS_TAG after $(($(date +%s) - START)) s"

# 4. Python venv + torch on top, tagged as the base image
DOCKER_BUILDKIT=0 docker build --build-arg ROOTFS_IMAGE="$ROOTFS_TAG" -t "$TAG" "$WORK/context" >&2
docker run --rm "$TAG" python -c "import torch; print('[build_base] check: torch', torch.__version__)" >&2
SIZE="$(docker image inspect -f '{{.Size}}' "$TAG")"
say "built stand-in $TAG in $(($(date +%s) - START)) s, $((SIZE / 1000000)) MB"

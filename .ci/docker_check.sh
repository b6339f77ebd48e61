#!/usr/bin/env bash
# CI check of the CTC submission package: the Docker image and the CTC scripts, end to end.
#
#   .ci/docker_check.sh            (as root, or with passwordless sudo; from any directory)
#
#  1. installs docker.io + debootstrap (apt) if missing and starts dockerd in the background if none runs;
#     fails loudly when Docker cannot start (never skips)
#  2. builds the stand-in base image (docker/build_base.sh; kept if it exists) and the image (legacy builder)
#  3. writes a small synthetic Fluo-N2DH-SIM+ dataset with `embedtrack synth`, runs
#     `docker run --rm --network none -v DATA:/data IMAGE Fluo-N2DH-SIM+ 01`, then `embedtrack validate` and
#     `embedtrack evaluate` against its ground truth; fails if SEG < MIN_SEG or TRA < MIN_TRA
#     then stops a second run with `docker stop` (must take < 3 s and leave no temporary folder)
#  4. checks the container's errors: unknown dataset, missing /data mount, dataset without a model
#  5. the same dataset through ctc_scripts/Fluo-N2DH-SIM+-01.sh (no Docker) from a CTC submission layout
#  6. if the real PhC-C2DL-PSC frames are at hand (PSC_DATA), runs the container on them, validates the
#     result and scores SEG against the silver truth (fails if SEG < MIN_SEG_PSC); says SKIPPED otherwise
#  7. each bundled real-data model on the held-out frames of its training data (REAL_DATA; frames the model
#     never saw, cut out by `python -m embedtrack.training.heldout`): docker run, validate, evaluate, and fail below the
#     floors of .ci/real_floors.txt (a little under the measured scores); SKIPPED without the data
# Prints build time, image size and run times.
#
# Environment (defaults in brackets):
#   MIN_SEG [0.50] MIN_TRA [0.50] MIN_SEG_PSC [0.30]  score thresholds
#   SYNTH_FRAMES [20] SYNTH_SIZE ["256 256"] SYNTH_SEED [3]   the synthetic dataset
#   PSC_DATA [<repo>/../shared/data/ctc]  folder holding PhC-C2DL-PSC/02 and 02_ST
#   REAL_DATA [$PSC_DATA]  folder holding the real CTC training datasets named in .ci/real_floors.txt
#   IMAGE [embedtrack]  image tag;  EMBEDTRACK [<repo>/.venv/bin/embedtrack or embedtrack]  host command
#   KEEP_WORK=1 keeps the work folder; KEEP_DOCKERD=1 leaves a dockerd started here running
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIN_SEG="${MIN_SEG:-0.50}"
MIN_TRA="${MIN_TRA:-0.50}"
MIN_SEG_PSC="${MIN_SEG_PSC:-0.30}"
SYNTH_FRAMES="${SYNTH_FRAMES:-20}"
SYNTH_SIZE="${SYNTH_SIZE:-256 256}"
SYNTH_SEED="${SYNTH_SEED:-3}"
PSC_DATA="${PSC_DATA:-$REPO/../shared/data/ctc}"
REAL_DATA="${REAL_DATA:-$PSC_DATA}"
IMAGE="${IMAGE:-embedtrack}"
if [ -n "${EMBEDTRACK:-}" ]; then
    ET="$EMBEDTRACK"
elif [ -x "$REPO/.venv/bin/embedtrack" ]; then
    ET="$REPO/.venv/bin/embedtrack"
else
    ET="embedtrack"
fi
PY="$(dirname "$(command -v "$ET")")/python"
[ -x "$PY" ] || PY="python3"
DATASET="Fluo-N2DH-SIM+"

T0=$(date +%s)
step() { echo; echo "== $* [$(($(date +%s) - T0)) s]"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

WORK="$(mktemp -d /tmp/embedtrack-ci.XXXXXX)"
DOCKERD_PID=""
cleanup() {
    if [ -n "$DOCKERD_PID" ] && [ "${KEEP_DOCKERD:-0}" != 1 ]; then
        as_root kill "$DOCKERD_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "work folder kept: $WORK"
    else
        as_root rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# expect_error SUBSTRING CMD...: CMD must exit non-zero and print SUBSTRING
expect_error() {
    local want="$1" out rc=0
    shift
    out="$("$@" 2>&1)" || rc=$?
    [ "$rc" != 0 ] || fail "expected an error from: $*"
    grep -qF -- "$want" <<<"$out" || fail "error of '$*' lacks '$want': $out"
    echo "  ok, exit $rc: $(head -n 1 <<<"$out")"
}

# check_scores JSON NAME=MIN...: the scores in an `embedtrack evaluate --json` file reach the minimums
check_scores() {
    "$PY" - "$@" <<'EOF'
import json, math, sys
path, limits = sys.argv[1], sys.argv[2:]
scores = json.load(open(path))["scores"]
bad = []
for item in limits:
    name, minimum = item.split("=")
    value = scores.get(name)
    ok = value is not None and not math.isnan(value) and value >= float(minimum)
    print(f"  {name} = {value} (minimum {minimum}) {'ok' if ok else 'TOO LOW'}")
    if not ok:
        bad.append(name)
sys.exit(f"FAIL: {', '.join(bad)} under threshold in {path}" if bad else 0)
EOF
}

# --- 1. Docker -------------------------------------------------------------------------------------------
step "Docker"
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "installing docker.io and debootstrap"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
command -v docker >/dev/null || fail "no docker command after installing docker.io"
if ! as_root docker info >/dev/null 2>&1; then
    echo "starting dockerd in the background (log: $WORK/dockerd.log)"
    as_root dockerd >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do
        as_root docker info >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 1
    done
    if ! as_root docker info >/dev/null 2>&1; then
        tail -n 30 "$WORK/dockerd.log" >&2 || true
        fail "Docker cannot start on this machine (dockerd log above); the container check cannot run"
    fi
fi
as_root docker version --format 'docker client {{.Client.Version}}, server {{.Server.Version}}'

# --- 2. images ---------------------------------------------------------------------------------------------
step "stand-in base image"
as_root "$REPO/docker/build_base.sh"

step "docker build -t $IMAGE"
BUILD_START=$(date +%s)
as_root env DOCKER_BUILDKIT=0 docker build -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 || {
    tail -n 40 "$WORK/build.log" >&2
    fail "docker build failed (log above)"
}
BUILD_S=$(($(date +%s) - BUILD_START))
IMAGE_MB=$(($(as_root docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000))
echo "  built in $BUILD_S s, image size $IMAGE_MB MB"
as_root docker run --rm --network none "$IMAGE" --help >"$WORK/help.txt" || fail "docker run $IMAGE --help failed"
grep -q "embedtrack DATASET SEQ" "$WORK/help.txt" || fail "--help does not explain the usage"
echo "  models in the image: $(as_root docker run --rm --network none "$IMAGE" --list-models | tr '\n' ' ')"

# --- 3. synthetic dataset through the container ------------------------------------------------------------
step "synthetic $DATASET dataset"
DATA="$WORK/docker_data"
# shellcheck disable=SC2086  # SYNTH_SIZE is "H W"
"$ET" synth "$DATA/$DATASET" --preset fluo --frames "$SYNTH_FRAMES" --size $SYNTH_SIZE --seed "$SYNTH_SEED" \
    --sequences 01
cp -r "$DATA" "$WORK/ctc"  # an untouched copy for the CTC script in step 5
chmod 0777 "$DATA/$DATASET"  # the container's non-root user writes 01_RES here

step "docker run $IMAGE $DATASET 01"
RUN_START=$(date +%s)
as_root docker run --rm --network none -v "$DATA:/data" "$IMAGE" "$DATASET" 01 ||
    fail "docker run $IMAGE $DATASET 01 failed (output above)"
DOCKER_RUN_S=$(($(date +%s) - RUN_START))
"$ET" validate "$DATA/$DATASET/01_RES" || fail "the container wrote an invalid $DATASET/01_RES"
"$ET" evaluate "$DATA/$DATASET/01_RES" "$DATA/$DATASET/01_GT" --json "$WORK/docker_scores.json"
check_scores "$WORK/docker_scores.json" "SEG=$MIN_SEG" "TRA=$MIN_TRA"

# --- 3b. docker stop ------------------------------------------------------------------------------------------
step "docker stop during a run"
STOP="$WORK/stop_data"
"$ET" synth "$STOP/$DATASET" --preset fluo --frames 60 --size 384 384 --seed 1 --sequences 01 \
    >"$WORK/stop_synth.log" 2>&1 || { tail -n 20 "$WORK/stop_synth.log" >&2; fail "embedtrack synth failed"; }
chmod 0777 "$STOP/$DATASET"
CONTAINER="$(as_root docker run -d --rm --network none -v "$STOP:/data" "$IMAGE" "$DATASET" 01)"
for _ in $(seq 240); do  # until the first mask is in the temporary folder
    compgen -G "$STOP/$DATASET/.01_RES.tmp-*/mask*.tif" >/dev/null && break
    as_root docker inspect "$CONTAINER" >/dev/null 2>&1 || fail "the container ended before it could be stopped"
    sleep 0.5
done
compgen -G "$STOP/$DATASET/.01_RES.tmp-*/mask*.tif" >/dev/null || fail "no mask written within 120 s"
STOP_START=$(date +%s%N)
as_root docker stop -t 10 "$CONTAINER" >/dev/null
STOP_MS=$((($(date +%s%N) - STOP_START) / 1000000))
LEFT="$(ls -A "$STOP/$DATASET" | grep -v '^01$\|^01_GT$\|^01_ST$\|^synth.json$' || true)"
[ -z "$LEFT" ] || fail "docker stop left $LEFT in $STOP/$DATASET"
[ "$STOP_MS" -lt 3000 ] || fail "docker stop took $STOP_MS ms (SIGTERM ignored?)"
echo "  ok: docker stop took $STOP_MS ms and left no temporary folder"

# --- 4. clear errors -----------------------------------------------------------------------------------------
step "container errors"
expect_error "unknown dataset" as_root docker run --rm --network none -v "$DATA:/data" "$IMAGE" No-Such-Dataset 01
expect_error "nothing is mounted at /data" as_root docker run --rm --network none "$IMAGE" "$DATASET" 01
MODELS="$(as_root docker run --rm --network none "$IMAGE" --list-models)"
NO_MODEL=""
while read -r name; do
    case "$name" in "" | \#*) continue ;; esac
    if ! grep -q "^$name (" <<<"$MODELS"; then
        NO_MODEL="$name"
        break
    fi
done <"$REPO/docker/ctc_datasets.txt"
if [ -n "$NO_MODEL" ]; then
    expect_error "embedtrack train" as_root docker run --rm --network none -v "$DATA:/data" "$IMAGE" "$NO_MODEL" 01
else
    echo "  every CTC dataset has a model in the image; no 'dataset without a model' case to check"
fi

# --- 5. CTC script without Docker ----------------------------------------------------------------------------
step "ctc_scripts/$DATASET-01.sh from a submission layout"
cp -r "$REPO/ctc_scripts" "$WORK/ctc/SW"
RUN_START=$(date +%s)
(cd "$WORK/ctc/SW" && EMBEDTRACK="$ET" "./$DATASET-01.sh") || fail "$DATASET-01.sh failed (output above)"
SCRIPT_RUN_S=$(($(date +%s) - RUN_START))
[ -d "$WORK/ctc/$DATASET/01_RES" ] || fail "the CTC script did not write ../$DATASET/01_RES"
"$ET" validate "$WORK/ctc/$DATASET/01_RES" || fail "the CTC script wrote an invalid 01_RES"
"$ET" evaluate "$WORK/ctc/$DATASET/01_RES" "$WORK/ctc/$DATASET/01_GT" --json "$WORK/script_scores.json"
check_scores "$WORK/script_scores.json" "SEG=$MIN_SEG" "TRA=$MIN_TRA"

# --- 6. real PhC-C2DL-PSC frames through the container -------------------------------------------------------
step "PhC-C2DL-PSC (real frames) through the container"
PSC_RUN_S="skipped"
if [ -d "$PSC_DATA/PhC-C2DL-PSC/02" ]; then
    PSC="$WORK/psc"
    mkdir -p "$PSC/PhC-C2DL-PSC"
    cp -r "$PSC_DATA/PhC-C2DL-PSC/02" "$PSC/PhC-C2DL-PSC/02"
    chmod 0777 "$PSC/PhC-C2DL-PSC"
    RUN_START=$(date +%s)
    as_root docker run --rm --network none -v "$PSC:/data" "$IMAGE" PhC-C2DL-PSC 02 ||
        fail "docker run $IMAGE PhC-C2DL-PSC 02 failed (output above)"
    PSC_RUN_S="$(($(date +%s) - RUN_START)) s"
    "$ET" validate "$PSC/PhC-C2DL-PSC/02_RES" || fail "the container wrote an invalid PhC-C2DL-PSC/02_RES"
    if [ -d "$PSC_DATA/PhC-C2DL-PSC/02_ST/SEG" ]; then
        # py-ctcmetrics wants a TRA folder beside SEG even for SEG alone: link the ST masks by overlap for it
        "$PY" - "$PSC_DATA/PhC-C2DL-PSC/02_ST/SEG" "$PSC/psc_gt" <<'EOF'
import sys
from pathlib import Path
from ctc.io import open_segmentation
from embedtrack.training.data import write_linked_gt
st = open_segmentation(sys.argv[1])
write_linked_gt(list(st), st.indices, st.ndigits, Path(sys.argv[2]))
EOF
        "$ET" evaluate "$PSC/PhC-C2DL-PSC/02_RES" "$PSC/psc_gt" --metrics SEG --json "$WORK/psc_scores.json"
        check_scores "$WORK/psc_scores.json" "SEG=$MIN_SEG_PSC"
    fi
else
    echo "  SKIPPED: no $PSC_DATA/PhC-C2DL-PSC/02 here (set PSC_DATA to the folder holding PhC-C2DL-PSC)"
fi

# --- 7. bundled real-data models on their held-out frames ----------------------------------------------------
step "bundled models on the held-out frames of their real training data"
REAL_RUNS=""
while read -r ds seq floors; do
    case "$ds" in "" | \#*) continue ;; esac
    if [ ! -d "$REAL_DATA/$ds/$seq" ]; then
        echo "  SKIPPED $ds: no $REAL_DATA/$ds/$seq here"
        continue
    fi
    HELD="$WORK/real/$ds"
    "$PY" -m embedtrack.training.heldout "$REAL_DATA/$ds" "$seq" "$HELD/$ds" || fail "cannot cut the held-out frames of $ds"
    chmod 0777 "$HELD/$ds"
    RUN_START=$(date +%s)
    as_root docker run --rm --network none -v "$HELD:/data" "$IMAGE" "$ds" "$seq" ||
        fail "docker run $IMAGE $ds $seq failed (output above)"
    REAL_RUNS="$REAL_RUNS $ds: $(($(date +%s) - RUN_START)) s;"
    "$ET" validate "$HELD/$ds/${seq}_RES" || fail "the container wrote an invalid $ds/${seq}_RES"
    METRICS="$(tr ' ' '\n' <<<"$floors" | cut -d= -f1 | paste -sd, -)"
    "$ET" evaluate "$HELD/$ds/${seq}_RES" "$HELD/$ds/${seq}_GT" --metrics "$METRICS" --json "$WORK/real_$ds.json"
    # shellcheck disable=SC2086  # floors is a list of NAME=MIN words
    check_scores "$WORK/real_$ds.json" $floors
done <"$REPO/.ci/real_floors.txt"

step "docker check passed"
echo "  image $IMAGE: $IMAGE_MB MB, docker build $BUILD_S s (on the ready stand-in base)"
echo "  docker run $DATASET 01 ($SYNTH_FRAMES frames of ${SYNTH_SIZE/ /x}): $DOCKER_RUN_S s;" \
    "CTC script: $SCRIPT_RUN_S s; PhC-C2DL-PSC 02: $PSC_RUN_S"
echo "  held-out real frames:${REAL_RUNS:- skipped}"

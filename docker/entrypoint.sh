#!/usr/bin/env bash
# Entrypoint of the embedtrack image:  DATASET SEQ [extra `embedtrack run` options]
#
# Reads /data/DATASET/SEQ, writes /data/DATASET/SEQ_RES with the model for DATASET, looked up in
#   /models/DATASET               (a model folder mounted at run time)
#   /opt/embedtrack/models/DATASET (baked in with the MODELS_DIR build argument)
#   the models bundled inside the embedtrack package.
# The EMBEDTRACK_* variables below only exist so that the script can be tested outside the image.
set -euo pipefail

DATA_ROOT="${EMBEDTRACK_DATA_ROOT:-/data}"
MOUNTED_MODELS="${EMBEDTRACK_MOUNTED_MODELS:-/models}"
BAKED_MODELS="${EMBEDTRACK_BAKED_MODELS:-/opt/embedtrack/models}"
DATASETS_FILE="${EMBEDTRACK_DATASETS_FILE:-/usr/local/share/embedtrack/ctc_datasets.txt}"
RUNNER="${EMBEDTRACK:-embedtrack}"
PYTHON="${EMBEDTRACK_PYTHON:-python}"
MOUNTS_FILE="${EMBEDTRACK_MOUNTS:-/proc/mounts}"
PROG="embedtrack-docker"

die() {  # die EXIT_CODE MESSAGE [MORE LINES...]
    local code="$1"
    shift
    echo "$PROG: error: $1" >&2
    shift
    local line
    for line in "$@"; do
        echo "    $line" >&2
    done
    exit "$code"
}

bundled_models() {  # the models/ folder inside the installed embedtrack package
    if [ -n "${EMBEDTRACK_BUNDLED_MODELS:-}" ]; then
        echo "$EMBEDTRACK_BUNDLED_MODELS"
        return
    fi
    "$PYTHON" -c 'import importlib.util, os
spec = importlib.util.find_spec("embedtrack")
print(os.path.join(os.path.dirname(spec.origin), "models") if spec and spec.origin else "")' 2>/dev/null || true
}

known_datasets() {
    if [ -f "$DATASETS_FILE" ]; then
        sed -e 's/#.*//' -e 's/[[:space:]]//g' "$DATASETS_FILE" | grep -v '^$' || true
    fi
}

is_known_dataset() {
    known_datasets | grep -qxF -- "$1"
}

model_sources() {  # lines "SOURCE DIR", in lookup order
    echo "mounted $MOUNTED_MODELS"
    echo "baked $BAKED_MODELS"
    local bundled
    bundled="$(bundled_models)"
    if [ -n "$bundled" ]; then
        echo "bundled $bundled"
    fi
}

find_model() {  # print the model argument for `embedtrack run --model`; fail if there is none
    local source dir
    while read -r source dir; do
        if [ -d "$dir/$1" ]; then
            if [ "$source" = bundled ]; then
                echo "$1"
            else
                echo "$dir/$1"
            fi
            return 0
        fi
    done < <(model_sources)
    return 1
}

list_models() {  # "NAME (source)" for every model folder, first source wins
    local source dir path name seen=" "
    while read -r source dir; do
        [ -d "$dir" ] || continue
        for path in "$dir"/*/; do
            [ -d "$path" ] || continue
            name="$(basename "$path")"
            case "$name" in __pycache__ | .*) continue ;; esac
            case "$seen" in *" $name "*) continue ;; esac
            seen="$seen$name "
            echo "$name ($source)"
        done
    done < <(model_sources)
}

how_to_get_a_model() {  # the lines that explain training and providing a model for dataset $1
    echo "Train one outside the container on the CTC training data of $1 (see 'embedtrack train --help'):"
    echo "    embedtrack train /path/to/ctc/$1 --preset $1 --out extra_models/$1"
    echo "then either mount the model folder at run time:"
    echo "    docker run --rm -v /path/to/ctc:/data -v \$PWD/extra_models/$1:/models/$1:ro embedtrack $1 SEQ"
    echo "or bake it into the image (run in the repository; the folder must lie inside it):"
    echo "    DOCKER_BUILDKIT=0 docker build --build-arg MODELS_DIR=extra_models -t embedtrack ."
}

usage() {
    local uid models missing name
    uid="$(id -u)"
    models="$(list_models)"
    missing=""
    for name in $(known_datasets); do
        if ! find_model "$name" >/dev/null; then
            missing="$missing $name"
        fi
    done
    cat <<EOF
Usage: docker run --rm [--gpus all] -v /path/to/ctc:/data embedtrack DATASET SEQ [OPTIONS]

Segment and track one Cell Tracking Challenge sequence with EmbedTrack.
Reads the frames /data/DATASET/SEQ/tNNN.tif and writes /data/DATASET/SEQ_RES/
(maskNNN.tif + res_track.txt), the CTC result layout. No network is needed.

  DATASET   CTC dataset name; it selects the model, e.g. Fluo-N2DH-SIM+ or PhC-C2DL-PSC
  SEQ       sequence folder inside /data/DATASET, e.g. 01 or 02
  OPTIONS   passed on to 'embedtrack run': --tta/--no-tta, --device auto|cpu|cuda,
            --batch-size N, --fov-border PX, --overwrite, --output DIR
            (default output: /data/DATASET/SEQ_RES)

GPU: add '--gpus all' (needs the NVIDIA Container Toolkit); without one the container runs on CPU.
Permissions: the container runs as uid $uid; if that user cannot write into /data/DATASET,
add --user "\$(id -u):\$(id -g)" to the docker run command.

Models in this image (a folder mounted at /models/DATASET takes precedence):
$(if [ -n "$models" ]; then echo "$models" | sed 's/^/  /'; else echo "  (none)"; fi)
CTC datasets without a model here:${missing:- (none)}
$(how_to_get_a_model DATASET | sed 's/^/  /')

Other uses:
  docker run --rm embedtrack --list-models       list the models above
  docker run --rm embedtrack embedtrack ARGS...  any embedtrack command, e.g. 'embedtrack models'
EOF
}

mount_is_read_only() {  # mount_is_read_only PATH: the mount that holds PATH has the 'ro' option
    local path
    path="$(readlink -f -- "$1" 2>/dev/null || echo "$1")"
    [ -r "$MOUNTS_FILE" ] || return 1
    awk -v p="$path" '
        { mp = $2; gsub(/\\040/, " ", mp); prefix = (mp == "/") ? "/" : mp "/"
          if ((p == mp || index(p, prefix) == 1) && length(mp) >= best) { best = length(mp); opts = $4 } }
        END { n = split(opts, o, ","); for (i = 1; i <= n; i++) if (o[i] == "ro") exit 0; exit 1 }' "$MOUNTS_FILE"
}

option_value() {  # option_value NAME ARGS...: the value given to --NAME in ARGS (empty if absent)
    local name="$1" value="" arg
    shift
    while [ $# -gt 0 ]; do
        arg="$1"
        shift
        case "$arg" in
            "$name") value="${1:-}" ;;
            "$name"=*) value="${arg#*=}" ;;
        esac
    done
    echo "$value"
}

has_option() {  # has_option NAME ARGS...
    local name="$1" arg
    shift
    for arg in "$@"; do
        case "$arg" in "$name" | "$name"=*) return 0 ;; esac
    done
    return 1
}

case "${1:-}" in
    -h | --help | help)
        usage
        exit 0
        ;;
    "")
        usage >&2
        exit 2
        ;;
    --list-models)
        list_models
        exit 0
        ;;
    embedtrack)
        shift
        exec "$RUNNER" "$@"
        ;;
esac

if [ $# -lt 2 ]; then
    die 2 "expected DATASET SEQ, got only '$1'." "Example: docker run --rm -v /path/to/ctc:/data embedtrack Fluo-N2DH-SIM+ 01" \
        "See: docker run --rm embedtrack --help"
fi
DATASET="$1"
SEQ="$2"
shift 2
if [[ "$SEQ" =~ ^[0-9]$ ]]; then
    SEQ="0$SEQ"
fi
if [[ -z "$DATASET" || "$DATASET" == */* || "$DATASET" == .* || -z "$SEQ" || "$SEQ" == */* || "$SEQ" == .* ]]; then
    die 2 "DATASET and SEQ must be plain folder names (got '$DATASET' '$SEQ')." "See: docker run --rm embedtrack --help"
fi

# 1. a model for the dataset
if ! MODEL="$(find_model "$DATASET")"; then
    if is_known_dataset "$DATASET"; then
        mapfile -t hints < <(how_to_get_a_model "$DATASET")
        die 1 "no model for dataset '$DATASET' in this image and none mounted at $MOUNTED_MODELS/$DATASET." "${hints[@]}"
    fi
    die 2 "unknown dataset '$DATASET': not a CTC dataset of this package and no model folder of that name." \
        "CTC datasets: $(known_datasets | tr '\n' ' ')" \
        "Models here: $(list_models | tr '\n' ' ')" \
        "A model for another name can be mounted at $MOUNTED_MODELS/$DATASET."
fi

# 2. the mounted data
if [ ! -d "$DATA_ROOT" ]; then
    die 1 "nothing is mounted at $DATA_ROOT." "Mount the folder that holds the CTC dataset folders, e.g." \
        "docker run --rm -v /path/to/ctc:$DATA_ROOT embedtrack $DATASET $SEQ"
fi
SEQ_DIR="$DATA_ROOT/$DATASET/$SEQ"
if [ ! -d "$SEQ_DIR" ]; then
    die 1 "sequence folder not found: $SEQ_DIR" \
        "The folder mounted at $DATA_ROOT must contain $DATASET/$SEQ/t000.tif ..." \
        "Found in $DATA_ROOT: $(ls -A "$DATA_ROOT" 2>/dev/null | head -n 20 | tr '\n' ' ')"
fi

# 3. somewhere to write
OUTPUT="$(option_value --output "$@")"
if [ -z "$OUTPUT" ]; then
    OUTPUT="${SEQ_DIR}_RES"
    set -- --output "$OUTPUT" "$@"
fi
OUT_PARENT="$(dirname "$OUTPUT")"
if [ -d "$OUT_PARENT" ] && mount_is_read_only "$OUT_PARENT"; then
    die 1 "cannot write $OUTPUT: $OUT_PARENT is on a read-only mount." \
        "Mount the data folder writable (without ':ro'), or mount a writable folder as well and pass" \
        "--output /that/folder/${SEQ}_RES."
fi
if [ -d "$OUT_PARENT" ] && [ ! -w "$OUT_PARENT" ] && [ "$(id -u)" = 0 ]; then
    die 1 "cannot write $OUTPUT: $OUT_PARENT is not writable, not even for root." \
        "Check the folder's permissions on the host (or its file system), or pass --output to a writable folder."
fi
if [ -d "$OUT_PARENT" ] && [ ! -w "$OUT_PARENT" ]; then
    die 1 "cannot write $OUTPUT: $OUT_PARENT belongs to uid $(stat -c %u "$OUT_PARENT"), the container runs as uid $(id -u)." \
        "Add --user \"\$(id -u):\$(id -g)\" to the docker run command, or make the folder writable."
fi
if [ ! -w "${HOME:-/nonexistent}" ]; then
    export HOME=/tmp  # a --user without a home folder
fi

# 4. GPU or CPU, said once
if ! has_option --device "$@"; then
    if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        set -- --device cuda "$@"
    else
        echo "$PROG: no CUDA GPU visible in the container (start it with --gpus all to use one); running on CPU." >&2
        set -- --device cpu "$@"
    fi
fi

exec "$RUNNER" run "$SEQ_DIR" --model "$MODEL" "$@"

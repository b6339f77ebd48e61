#!/usr/bin/env bash
# Run EmbedTrack on one Cell Tracking Challenge sequence, without Docker.
#
#   ./run_sequence.sh DATA_ROOT DATASET SEQ [extra `embedtrack run` options]
#
# Reads DATA_ROOT/DATASET/SEQ (frames tNNN.tif) and writes DATA_ROOT/DATASET/SEQ_RES.
# Model: $EMBEDTRACK_MODELS_DIR/DATASET when that folder exists, else the model bundled as DATASET.
# The `embedtrack` command: $EMBEDTRACK, else `embedtrack` on PATH, else .venv/bin/embedtrack beside this script.
set -euo pipefail

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "$0"
}

case "${1:-}" in
    -h | --help)
        usage
        exit 0
        ;;
esac
if [ $# -lt 3 ]; then
    usage >&2
    exit 2
fi

DATA_ROOT="$1"
DATASET="$2"
SEQ="$3"
shift 3

SEQ_DIR="$DATA_ROOT/$DATASET/$SEQ"
if [ ! -d "$SEQ_DIR" ]; then
    echo "error: sequence folder not found: $SEQ_DIR" >&2
    exit 1
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${EMBEDTRACK:-}" ]; then
    RUNNER="$EMBEDTRACK"
elif command -v embedtrack >/dev/null 2>&1; then
    RUNNER="embedtrack"
elif [ -x "$HERE/.venv/bin/embedtrack" ]; then
    RUNNER="$HERE/.venv/bin/embedtrack"
else
    echo "error: no 'embedtrack' command: install the package (pip install .) or set EMBEDTRACK" >&2
    exit 1
fi

MODEL="$DATASET"
if [ -n "${EMBEDTRACK_MODELS_DIR:-}" ] && [ -d "$EMBEDTRACK_MODELS_DIR/$DATASET" ]; then
    MODEL="$EMBEDTRACK_MODELS_DIR/$DATASET"
fi

exec "$RUNNER" run "$SEQ_DIR" --model "$MODEL" --output "${SEQ_DIR}_RES" "$@"

#!/usr/bin/env bash
# Cell Tracking Challenge entry point: EmbedTrack on Fluo-N2DH-GOWT1, sequence 01.
#
# Put the folder holding this script next to the dataset folders:
#     <root>/Fluo-N2DH-GOWT1/01        input frames tNNN.tif (read)
#     <root>/Fluo-N2DH-GOWT1/01_RES    result masks + res_track.txt (written)
#     <root>/<this folder>/Fluo-N2DH-GOWT1-01.sh
# Paths are resolved from this script's location, so it may be started from any working directory.
# Model: <this folder>/models/Fluo-N2DH-GOWT1 when that folder exists, else the model bundled as "Fluo-N2DH-GOWT1".
# The `embedtrack` command: $EMBEDTRACK, else <this folder>/venv/bin/embedtrack, else `embedtrack` on PATH.
# Extra arguments are passed on to `embedtrack run` (e.g. --device cpu, --overwrite).
#
# Generated from docker/ctc_script.sh.in by docker/make_ctc_scripts.py; edit the template, not this file.
set -euo pipefail

DATASET="Fluo-N2DH-GOWT1"
SEQ="01"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

if [ -n "${EMBEDTRACK:-}" ]; then
    RUNNER="$EMBEDTRACK"
elif [ -x "$HERE/venv/bin/embedtrack" ]; then
    RUNNER="$HERE/venv/bin/embedtrack"
else
    RUNNER="embedtrack"
fi

MODEL="$DATASET"
if [ -d "$HERE/models/$DATASET" ]; then
    MODEL="$HERE/models/$DATASET"
fi

if [ ! -d "$ROOT/$DATASET/$SEQ" ]; then
    echo "error: input sequence folder not found: $ROOT/$DATASET/$SEQ" >&2
    echo "       (place the folder with this script next to the '$DATASET' dataset folder)" >&2
    exit 1
fi

exec "$RUNNER" run "$ROOT/$DATASET/$SEQ" --model "$MODEL" --output "$ROOT/$DATASET/${SEQ}_RES" "$@"

#!/usr/bin/env bash
# Train the three stages of a synthetic recipe and write a model file free of local paths.
#   segmenter -> tracker (the iteration TRACKER_ITER is exported and chained) -> refiner, each on the frozen,
#   disk-cached stages before it, then MODEL_OUT.safetensors + MODEL_OUT.yaml with the given KEY=VALUE settings.
# Used by build_demo_model.sh (configs/synth) and build_mnv2_model.sh (configs/synth_mnv2). A re-run rebuilds:
# each stage is trained with --overwrite, which replaces the earlier run's files in WORK_DIR/<stage> only.
# Usage: bash scripts/train_synth_stages.sh CONFIG_DIR WORK_DIR TRACKER_ITER MODEL_OUT [KEY=VALUE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SPVIS=${SPVIS:-.venv/bin/spvis}
C=$1 O=$2 TRACKER_ITER=$3 MODEL_OUT=$4
shift 4
"$SPVIS" train --overwrite --config "$C/segmenter.yaml" OUTPUT_DIR="$O/segmenter"
"$SPVIS" train --overwrite --config "$C/tracker.yaml" OUTPUT_DIR="$O/tracker" MODEL.FROZEN_CACHE_DIR="$O/frozen_cache" \
    MODEL.WEIGHTS="$O/segmenter/model_final.safetensors"
"$SPVIS" checkpoint export "$O/tracker/model_$TRACKER_ITER.pth" --out "$O/tracker/model_$TRACKER_ITER.safetensors"
"$SPVIS" train --overwrite --config "$C/refiner.yaml" OUTPUT_DIR="$O/refiner" MODEL.FROZEN_CACHE_DIR="$O/frozen_cache" \
    MODEL.WEIGHTS="$O/tracker/model_$TRACKER_ITER.safetensors"
cp "$O/refiner/model_final.safetensors" "$MODEL_OUT.safetensors"
# the written config names no local path: no weights to chain from, no cache, no datasets, no output folder
"$SPVIS" config --config "$O/refiner/model_final.yaml" MODEL.WEIGHTS= MODEL.FROZEN_CACHE_DIR= MODEL.DEVICE=auto \
    MODEL.BACKBONE.PRETRAINED= "DATASETS.TRAIN=[]" "DATASETS.TEST=[]" OUTPUT_DIR=output/demo \
    "MODEL.CLASS_NAMES=[red_disc,green_square,blue_triangle,yellow_star,magenta_ring,cyan_cross]" "$@" \
    > "$MODEL_OUT.yaml"

#!/usr/bin/env bash
# Rebuild the built-in model shipped in src/spvis/assets/ (used by `spvis demo` and by `spvis infer` without
# --weights) from nothing, with the synth_v4 recipe (configs/synth_v4/; fresh procedural clips at every step, so
# no dataset is written for training):
#   segmenter  3000 steps of 4 two-frame clips, per-frame matching + the query contrastive loss
#              (MODEL.LOSS.QUERY_CONTRAST_WEIGHT): the embeddings MinVIS-style association matches are trained
#              to follow an object when its query slot changes
#   tracker    at initialisation: DVIS's tracker with its heads copied from the segmenter, not trained (training
#              it at this budget costs 10-20 DetA points per frame: docs/RESULTS.md, "Training speedrun")
#   refiner    300 steps on the frozen segmenter + tracker (11-frame clips)
#   inference  the tracker's alignment also weighs where each object was (MODEL.TRACKER.ALIGN_MASK_WEIGHT 1: mask
#              overlap with the slot's last confident mask, same label), and the PGT track memory and lifecycle
#              (sleep and re-identification) are on; chosen on the 12 validation sets (docs/RESULTS.md)
# One torch thread per stage, as the shipped model was trained (CPU training is deterministic for a fixed thread
# count; with SOLVER.CPU_THREADS=2 it is ~1.8x faster and equal up to float reassociation). On the 2-core machine
# with one other job: segmenter ~61 min (3000 steps at ~1.2 s), tracker ~1 min, refiner ~8 min; with
# SOLVER.CPU_THREADS=2 on the idle machine the segmenter takes ~35 min (0.6-0.7 s per step).
# Usage: [SEED=S] bash scripts/build_demo_model.sh [WORK_DIR]   (default WORK_DIR: output/synth_v4, SEED 0; another
# seed builds the same recipe's chain for benchmarks/ablation.py)
set -euo pipefail
cd "$(dirname "$0")/.."
SPVIS=${SPVIS:-.venv/bin/spvis}
O=${1:-output/synth_v4}
C=configs/synth_v4
ONE="SOLVER.CPU_THREADS=1 SEED=${SEED:-0}"
"$SPVIS" train --overwrite --config "$C/segmenter.yaml" OUTPUT_DIR="$O/segmenter" $ONE SOLVER.CHECKPOINT_PERIOD=1000
"$SPVIS" train --overwrite --config "$C/tracker.yaml" OUTPUT_DIR="$O/tracker" $ONE \
    MODEL.WEIGHTS="$O/segmenter/model_final.safetensors" SOLVER.BASE_LR=0 SOLVER.MAX_ITER=1 SOLVER.EMA_DECAY=0
"$SPVIS" train --overwrite --config "$C/refiner.yaml" OUTPUT_DIR="$O/refiner" $ONE SOLVER.CHECKPOINT_PERIOD=100 \
    MODEL.WEIGHTS="$O/tracker/model_final.safetensors"
M=src/spvis/assets/demo_model
cp "$O/refiner/model_final.safetensors" "$M.safetensors"
# the written config names no local path: no weights to chain from, no cache, no datasets, no output folder; it adds
# the inference-time association settings (they change no weight)
"$SPVIS" config --config "$O/refiner/model_final.yaml" MODEL.WEIGHTS= MODEL.FROZEN_CACHE_DIR= MODEL.DEVICE=auto \
    MODEL.BACKBONE.PRETRAINED= "DATASETS.TRAIN=[]" "DATASETS.TEST=[]" OUTPUT_DIR=output/demo SOLVER.CPU_THREADS=0 \
    MODEL.TRACKER.ALIGN_MASK_WEIGHT=1.0 MODEL.TRACKER.PGT.MEMORY=true MODEL.TRACKER.PGT.LIFECYCLE=true \
    "MODEL.CLASS_NAMES=[red_disc,green_square,blue_triangle,yellow_star,magenta_ring,cyan_cross]" > "$M.yaml"
echo "built-in model written to $M.{safetensors,yaml}; score it on the report sets with:"
echo "  python benchmarks/heldout_accuracy.py --rows $M.safetensors:minvis:online $M.safetensors:learned:online \\"
echo "      $M.safetensors:learned:offline"

#!/usr/bin/env bash
# Rebuild the demo model shipped in src/spvis/assets/ (used by `spvis demo`): the three-stage synthetic
# recipe (configs/synth/) at 128x160, shortened so that a 2-core CPU trains it in well under an hour.
# Usage: bash scripts/build_demo_model.sh [WORK_DIR]   (default WORK_DIR: ./output/demo_model)
set -euo pipefail
cd "$(dirname "$0")/.."
SPVIS=${SPVIS:-.venv/bin/spvis}
WORK=${1:-output/demo_model}
SEG_ITERS=${SEG_ITERS:-400}
TRK_ITERS=${TRK_ITERS:-200}
REF_ITERS=${REF_ITERS:-150}
mkdir -p "$WORK"
[ -f "$WORK/data/train.json" ] || "$SPVIS" synth --out "$WORK/data" --videos 60 --frames 20 --size 128x160 \
    --occlusion medium --seed 0
COMMON=(DATASETS.TRAIN="[$WORK/data/train.json]" "INPUT.MIN_SIZE_TRAIN=[112,128]" INPUT.MAX_SIZE_TRAIN=160
        INPUT.MIN_SIZE_TEST=128 INPUT.MAX_SIZE_TEST=160 DATALOADER.NUM_WORKERS=0 SOLVER.WARMUP_ITERS=20
        SOLVER.CHECKPOINT_PERIOD=50 SOLVER.LOG_PERIOD=10 "DATASETS.TEST=[]")
"$SPVIS" train --config configs/synth/segmenter.yaml --resume "${COMMON[@]}" SOLVER.MAX_ITER=$SEG_ITERS \
    "SOLVER.STEPS=[$((SEG_ITERS * 5 / 6))]" OUTPUT_DIR="$WORK/segmenter"
"$SPVIS" train --config configs/synth/tracker.yaml --resume "${COMMON[@]}" SOLVER.MAX_ITER=$TRK_ITERS \
    "SOLVER.STEPS=[$((TRK_ITERS * 5 / 6))]" MODEL.WEIGHTS="$WORK/segmenter/model_final.safetensors" \
    OUTPUT_DIR="$WORK/tracker"
"$SPVIS" train --config configs/synth/refiner.yaml --resume "${COMMON[@]}" SOLVER.MAX_ITER=$REF_ITERS \
    "SOLVER.STEPS=[$((REF_ITERS * 5 / 6))]" MODEL.WEIGHTS="$WORK/tracker/model_final.safetensors" \
    OUTPUT_DIR="$WORK/refiner"
cp "$WORK/refiner/model_final.safetensors" src/spvis/assets/demo_model.safetensors
cp "$WORK/refiner/model_final.yaml" src/spvis/assets/demo_model.yaml
echo "demo model written to src/spvis/assets/demo_model.{safetensors,yaml}"

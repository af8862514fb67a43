#!/usr/bin/env bash
# Rebuild the demo model shipped in src/spvis/assets/ (used by `spvis demo` and by `spvis infer` without
# --weights). This is the command that produced the shipped model: the synthetic recipe of configs/synth/
# shortened 10x (segmenter 200 / tracker 100 / refiner 50 iterations), 2 gloo processes on CPU.
# Usage: bash scripts/build_demo_model.sh [WORK_DIR]   (default WORK_DIR: output/synth_short)
set -euo pipefail
cd "$(dirname "$0")/.."
SPVIS=${SPVIS:-.venv/bin/spvis}
O=${1:-output/synth_short}
[ -f datasets/synth/train.json ] || "$SPVIS" synth --out datasets/synth --videos 120 --frames 30 --size 192x256 \
    --occlusion heavy --seed 0
"$SPVIS" train --config configs/synth/segmenter.yaml --num-gpus 2 SOLVER.MAX_ITER=200 "SOLVER.STEPS=[160]" \
    SOLVER.WARMUP_ITERS=20 OUTPUT_DIR="$O/segmenter"
"$SPVIS" train --config configs/synth/tracker.yaml --num-gpus 2 SOLVER.MAX_ITER=100 "SOLVER.STEPS=[80]" \
    SOLVER.WARMUP_ITERS=10 MODEL.WEIGHTS="$O/segmenter/model_final.safetensors" OUTPUT_DIR="$O/tracker"
"$SPVIS" train --config configs/synth/refiner.yaml --num-gpus 2 SOLVER.MAX_ITER=50 "SOLVER.STEPS=[40]" \
    SOLVER.WARMUP_ITERS=5 MODEL.WEIGHTS="$O/tracker/model_final.safetensors" OUTPUT_DIR="$O/refiner"
cp "$O/refiner/model_final.safetensors" src/spvis/assets/demo_model.safetensors
cp "$O/refiner/model_final.yaml" src/spvis/assets/demo_model.yaml
echo "demo model written to src/spvis/assets/demo_model.{safetensors,yaml}; score it with:"
echo "  $SPVIS infer --input datasets/synth/valid.json --image-root datasets/synth/valid/JPEGImages --mode online --out $O/eval_online"
echo "  $SPVIS eval --gt datasets/synth/valid.json --pred $O/eval_online/results.json"

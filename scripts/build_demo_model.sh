#!/usr/bin/env bash
# Rebuild the demo model shipped in src/spvis/assets/ (used by `spvis demo` and by `spvis infer` without
# --weights) from nothing: generate the data, train the three stages of configs/synth/, export the
# iterations the recipe ships, and write the weights + a config free of local paths.
#   segmenter: 1000 iterations, 8 single-frame clips per batch, at 1.5x the benchmark resolution
#   tracker:   iteration 200 of a 600-iteration run on the frozen, disk-cached segmenter
#   refiner:   500 iterations on the frozen segmenter + tracker
# Measured on the shared 2-core machine with 1 torch thread per process (README, "Training budget"):
# segmenter ~1-2 h, tracker ~15-25 min, refiner ~10-15 min, evaluations included. Nothing is downloaded.
# Usage: bash scripts/build_demo_model.sh [WORK_DIR]   (default WORK_DIR: output/synth)
set -euo pipefail
cd "$(dirname "$0")/.."
O=${1:-output/synth}
bash scripts/make_synth_data.sh datasets
bash scripts/train_synth_stages.sh configs/synth "$O" 0000200 src/spvis/assets/demo_model \
    TEST.OFFLINE_SCORE=min TEST.TRACK_NMS_IOU=0
echo "demo model written to src/spvis/assets/demo_model.{safetensors,yaml}; score it with:"
echo "  python benchmarks/heldout_accuracy.py --rows src/spvis/assets/demo_model.safetensors:learned:online"

"""Learning is tested: the real model, trained by `spvis train`, must fit a few tiny videos.

A change that breaks learning (a wrong loss sign, a matcher bug, frozen parameters, a broken stage
hand-off) leaves every shape and "runs" test green; these fail. Scores come from the trainer's own
evaluation chain, computed by spvis.evaluation on the training videos.

What each test may assert follows from what the recipe guarantees, not from one machine's rounding:
training amplifies the last-bit differences between oneDNN kernels (AVX2 / AVX-512), so a verdict like
"online AP >= MinVIS AP after 60 iterations" flips between machines (issue 21: 83.0 < 87.6 with
ATEN_CPU_CAPABILITY=avx2 and on AMD EPYC, passing elsewhere). Each assertion now has a margin backed by
the spread measured with ``python benchmarks/learning_spread.py`` (20 runs: SEED 0-4 x OMP threads
{1, 2} x ATEN_CPU_CAPABILITY {default (AVX-512 here), avx2}; AMD EPYC, 2 cores; min / mean / max):

| quantity | measured | asserted | planted bug |
|---|---|---|---|
| segmenter MinVIS AP | 0.726 / 0.812 / 0.876 | >= 0.65 | (a wrong loss: ~0) |
| hand-off gap, online - MinVIS AP at iteration 0 | -0.025 / 0.007 / 0.076 | abs <= 0.15 | heads not copied: -0.73 .. -0.88 |
| tracker MinVIS AP at iteration 0 | = segmenter AP | >= 0.65 | MODEL.WEIGHTS not loaded: 0.0 |
| relative drop of the fixed-batch denoising loss | 0.126 / 0.208 / 0.258 | >= 0.05 | LR 0 (nothing learns): 0.000 |
| online - MinVIS AP after 60 iterations | -0.047 / 0.003 / 0.126 | >= -0.15 | heads not copied: -0.72 .. -0.83 |

Threads do not change a number (SOLVER.CPU_THREADS=1 pins one); the kernel set does (seeds 1, 3, 4).
Guided matching cannot show in 60 iterations (the tracker starts equal to its input, so both matchings
agree: planted, nothing moved); tests/test_tracker_stage.py checks it directly. Finding: the tracker stage
ends below its input in 8 of 20 runs (by at most 4.7 AP), above in 4; on average it adds nothing here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spvis.cli.main import main
from spvis.data.synth import generate_synthetic_dataset

# 300 + 60 training iterations of the real model: out of the default run; CI runs them once, under
# ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=1 (.ci/run)
pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synth"
TINY = ["MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=3", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=2", "MODEL.TRACKER.DECODER_LAYERS=1", "MODEL.LOSS.TRAIN_NUM_POINTS=512",
        "INPUT.MIN_SIZE_TRAIN=[64]", "INPUT.MAX_SIZE_TRAIN=64", "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=64",
        "INPUT.RANDOM_FLIP=false", "SOLVER.WARMUP_ITERS=10", "SOLVER.LOG_PERIOD=10", "SOLVER.CPU_THREADS=1",
        "SOLVER.CHECKPOINT_PERIOD=100000", "DATALOADER.NUM_WORKERS=0", "TEST.EVAL_PERIOD=0",
        "MODEL.FROZEN_CACHE_DIR=", "INPUT.SAMPLING_NUM_CLIPS=1"]
SEGMENTER_ITERS, TRACKER_ITERS = 300, 60

# Margins, from the measured spread (module docstring)
SEGMENTER_MIN_AP = 0.65  # measured minimum 0.726
HANDOFF_TOL = 0.15  # |online AP - MinVIS AP| at iteration 0; measured at most 0.076
MIN_LOSS_DROP = 0.05  # relative drop of the fixed-batch denoising loss; measured at least 0.126
MAX_AP_DROP = 0.15  # online AP after TRACKER_ITERS at most this far below MinVIS AP; measured at most 0.047


def make_tiny_videos(root: Path) -> Path:
    info = generate_synthetic_dataset(root, videos=3, frames=6, size=64, categories=3, max_objects=2,
                                      occlusion="none", valid_fraction=0.0, seed=3)
    return Path(info["train_json"])


def train_segmenter(videos: Path, out: Path, seed: int = 0) -> Path:
    code = main(["train", "--config", str(CONFIGS / "segmenter.yaml"), *TINY, f"OUTPUT_DIR={out}", f"SEED={seed}",
                 f"DATASETS.TRAIN=[{videos}]", f"DATASETS.TEST=[{videos}]", "INPUT.SAMPLING_FRAME_NUM=1",
                 "SOLVER.IMS_PER_BATCH=6", "SOLVER.CLIPS_PER_DEVICE=6", "SOLVER.BASE_LR=0.002",
                 f"SOLVER.MAX_ITER={SEGMENTER_ITERS}", f"SOLVER.STEPS=[{SEGMENTER_ITERS * 9 // 10}]"])
    assert code == 0
    return out


def tracker_overrides(segmenter_dir: Path, videos: Path, out: Path, seed: int = 0,
                      iters: int = TRACKER_ITERS) -> list[str]:
    return [*TINY, f"OUTPUT_DIR={out}", f"SEED={seed}", f"MODEL.WEIGHTS={segmenter_dir / 'model_final.safetensors'}",
            f"DATASETS.TRAIN=[{videos}]", f"DATASETS.TEST=[{videos}]", "INPUT.SAMPLING_FRAME_NUM=3",
            "INPUT.SAMPLING_FRAME_RANGE=1", "SOLVER.IMS_PER_BATCH=4", "SOLVER.CLIPS_PER_DEVICE=4",
            "SOLVER.BASE_LR=0.0002",
            # the reference contrastive loss has nothing to separate on 3 short videos without occlusion
            # and only perturbs the masks of so small a model (measured: AP 78.6 with it, 83.6 without)
            "MODEL.LOSS.REID_WEIGHT=0",
            f"SOLVER.MAX_ITER={iters}", f"SOLVER.STEPS=[{max(iters * 9 // 10, 1)}]"]


def handoff_scores(segmenter_dir: Path, videos: Path, out: Path, seed: int = 0) -> dict[str, float]:
    """The tracker stage's evaluation chain at iteration 0: model built and initialised exactly as
    `spvis train` does (MODEL.WEIGHTS + head inheritance), no optimiser step."""
    from spvis.config import load_config
    from spvis.engine.checkpointing import load_initial_weights
    from spvis.engine.distributed import init_distributed
    from spvis.engine.launch import build_evaluator, build_model
    from spvis.engine.trainer import setup_reproducibility

    cfg = load_config(str(CONFIGS / "tracker.yaml"), tracker_overrides(segmenter_dir, videos, out, seed))
    setup_reproducibility(cfg)
    model = build_model(cfg)
    load_initial_weights(model, cfg.MODEL.WEIGHTS, stage=cfg.STAGE)
    model.eval()
    scores = build_evaluator(cfg, init_distributed("cpu"))(model, 0)
    return {f"{mode}/AP": float(metrics["AP"]) for mode, metrics in scores.items()}


def fixed_batch_loss(segmenter_dir: Path, videos: Path, out: Path, weights: Path | None = None,
                     samples: int = 6) -> float:
    """The tracker stage's total loss on a fixed batch (the first ``samples`` training samples), without
    gradients, with the full denoising ratio (seeded, the same corruption for every model) and matching
    segmenter-guided: with ``weights`` None the iteration-0 model (hand-off), else those trained weights.
    What 60 iterations on already-fitted videos teach the tracker is to recover from corrupted references
    (the noise-free loss starts at the segmenter's optimum and barely moves: measured -2 % .. +2 %). The
    training log cannot show this either: the denoising ramp raises the logged loss while the model learns."""
    import torch

    from spvis.checkpoints.loading import load_state_strict
    from spvis.checkpoints import load_weights
    from spvis.config import load_config
    from spvis.data.clip_dataset import collate_clips
    from spvis.engine.checkpointing import load_initial_weights
    from spvis.engine.launch import build_model, build_train_dataset
    from spvis.engine.trainer import setup_reproducibility

    cfg = load_config(str(CONFIGS / "tracker.yaml"), tracker_overrides(segmenter_dir, videos, out))
    setup_reproducibility(cfg)
    model = build_model(cfg)
    if weights is None:
        load_initial_weights(model, cfg.MODEL.WEIGHTS, stage=cfg.STAGE)
    else:
        load_state_strict(model, load_weights(str(weights))[0], source=str(weights))
    dataset = build_train_dataset(cfg)
    batch = collate_clips([dataset[i] for i in range(samples)])
    model.train()
    # the end of the ramp, still guided: noise ratio ~ MODEL.TRACKER.NOISE_RATIO, segmenter-guided matching
    span = 10**6
    iteration = int(span * min(cfg.MODEL.TRACKER.NOISE_WARMUP, cfg.MODEL.TRACKER.GUIDED_MATCHING)) - 1
    torch.manual_seed(0)  # the noise draws and the matcher's and criterion's point samples
    import random
    random.seed(0)
    with torch.no_grad():
        return float(sum(v for v in model(batch, iteration=iteration, max_iter=span).values()))


def train_tracker(segmenter_dir: Path, videos: Path, out: Path, seed: int = 0, extra: list[str] = ()) -> Path:
    code = main(["train", "--config", str(CONFIGS / "tracker.yaml"),
                 *tracker_overrides(segmenter_dir, videos, out, seed), *extra])
    assert code == 0
    return out


def final_eval(output_dir: Path) -> dict[str, float]:
    """{'minvis/AP': ..., 'online/AP': ...} of the evaluation the trainer logged after its last iteration."""
    entries = [json.loads(x) for x in (output_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in entries if any(k.startswith("eval/") for k in e)]
    return {k[len("eval/"):]: v for k, v in evals[-1].items() if k.startswith("eval/")}


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> Path:
    return make_tiny_videos(tmp_path_factory.mktemp("learn"))


@pytest.fixture(scope="module")
def trained_segmenter(tiny_videos, tmp_path_factory) -> Path:
    return train_segmenter(tiny_videos, tmp_path_factory.mktemp("segmenter"))


def test_segmenter_overfits_its_training_videos(trained_segmenter):
    scores = final_eval(trained_segmenter)
    assert scores["minvis/AP"] >= SEGMENTER_MIN_AP, scores


def test_tracker_handoff_reproduces_segmenter_with_minvis(trained_segmenter, tiny_videos, tmp_path):
    """Iteration 0: heads copied from the segmenter, residual branches zero -> the MinVIS result."""
    scores = handoff_scores(trained_segmenter, tiny_videos, tmp_path / "handoff")
    assert scores["minvis/AP"] >= SEGMENTER_MIN_AP, scores
    assert abs(scores["online/AP"] - scores["minvis/AP"]) <= HANDOFF_TOL, scores


def test_tracker_stage_learns_without_losing_its_input(trained_segmenter, tiny_videos, tmp_path):
    before = fixed_batch_loss(trained_segmenter, tiny_videos, tmp_path / "loss")
    out = train_tracker(trained_segmenter, tiny_videos, tmp_path / "tracker")
    after = fixed_batch_loss(trained_segmenter, tiny_videos, tmp_path / "loss", out / "model_final.safetensors")
    assert after <= (1 - MIN_LOSS_DROP) * before, (before, after)
    scores = final_eval(out)
    assert scores["online/AP"] >= scores["minvis/AP"] - MAX_AP_DROP, scores

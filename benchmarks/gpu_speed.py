"""Inference (and, with --train, training) speed of the R50 YouTube-VIS architecture on one device.

Prints, for random weights (speed does not depend on values):
* segmenter ms/frame in fp32, TF32 (CUDA), bf16 and fp16 (CUDA) autocast;
* online (segmenter + tracker, ``OnlineTracker.stream``) and offline (+ refiner, ``run_offline``) frames/s end
  to end, RLE results included, at 360x640 and 480x854;
* peak GPU memory;
* with CUDA, the GPU kernel time against the wall time of the online loop (torch.profiler), so the gap to
  the launch-free limit is visible.
With ``--train``: s/iter, images/s and peak memory of the R50 segmenter and tracker stages with AMP on
synthetic data at the recipe's resolution. Without a GPU it says so and exits 0, unless ``--device cpu``.

    python benchmarks/gpu_speed.py                          # one GPU, about 3 minutes
    python benchmarks/gpu_speed.py --train --train-iters 200
    python benchmarks/gpu_speed.py --device cpu --frames 3 --sizes 180x320   # a quick check on CPU
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def build(cfg_overrides: list[str], device: torch.device):
    """The DVIS online+offline R50 architecture with random weights, in eval mode on ``device``."""
    from spvis.config import load_config
    from spvis.modeling.meta_arch import SPVISModel

    cfg = load_config(str(ROOT / "configs" / "ytvis19" / "dvis_offline_R50.yaml"),
                      ["MODEL.WEIGHTS=", f"MODEL.DEVICE={device.type}", *cfg_overrides])
    torch.manual_seed(0)
    return SPVISModel.from_config(cfg).to(device).eval(), cfg


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def segmenter_ms(model, device: torch.device, size: tuple[int, int], frames: int, dtype: torch.dtype | None,
                 tf32: bool) -> float:
    """Mean ms/frame of the per-frame segmenter on normalised random input."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    images = torch.randn(1, 3, *size, device=device)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        model.segment(images)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for _ in range(frames):
            model.segment(images)
        synchronize(device)
    return 1000 * (time.perf_counter() - start) / frames


class RandomVideo:
    """A re-iterable source of random uint8 frames (what the engines read)."""

    def __init__(self, height: int, width: int, frames: int):
        rng = np.random.default_rng(0)
        self.frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(frames)]
        self.name, self.height, self.width, self.num_frames = "random", height, width, frames
        self.truncated, self.error, self.fps = False, None, 10.0

    def __iter__(self):
        return iter(self.frames)


def end_to_end_fps(model, cfg, video: RandomVideo, mode: str, device: torch.device) -> float:
    """Frames/s of one whole video through the online or offline engine (results encoded)."""
    from spvis.engine.offline import run_offline
    from spvis.engine.streaming import OnlineTracker

    synchronize(device)
    start = time.perf_counter()
    if mode == "online":
        engine = OnlineTracker(model, cfg, score_thr=0.5)
        for _ in engine.stream(iter(video)):
            pass
        engine.video_result(1)
    else:
        run_offline(model, cfg, video)
    synchronize(device)
    return video.num_frames / (time.perf_counter() - start)


def kernel_vs_wall(model, cfg, video: RandomVideo, device: torch.device) -> tuple[float, float]:
    """(GPU kernel ms/frame, wall ms/frame) of the online loop under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    from spvis.engine.streaming import OnlineTracker

    engine = OnlineTracker(model, cfg, score_thr=0.5)
    synchronize(device)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in engine.stream(iter(video)):
            pass
        synchronize(device)
    wall = time.perf_counter() - start
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
    return kernel_us / 1000 / video.num_frames, 1000 * wall / video.num_frames


def train_speed(stage: str, device: torch.device, iters: int) -> tuple[float, float, float]:
    """(s/iter, images/s, peak GPU GB) of the R50 ``stage`` with AMP on generated videos at 360x640 scale."""
    from spvis.config import load_config
    from spvis.data.synth import generate_synthetic_dataset
    from spvis.engine.distributed import init_distributed
    from spvis.engine.launch import build_model, build_train_dataset
    from spvis.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        info = generate_synthetic_dataset(Path(tmp) / "data", videos=8, frames=12, size=(360, 640), categories=8,
                                          occlusion="heavy", valid_fraction=0.0, seed=0)
        config = "segmenter_R50.yaml" if stage == "segmenter" else "dvis_online_R50.yaml"
        cfg = load_config(str(ROOT / "configs" / "ytvis19" / config),
                          [f"MODEL.DEVICE={device}", "MODEL.WEIGHTS=", "MODEL.BACKBONE.PRETRAINED=", "MODEL.NUM_CLASSES=8",
                           f"DATASETS.TRAIN=[{info['train_json']}]", "DATASETS.TEST=[]", f"SOLVER.MAX_ITER={iters}",
                           f"SOLVER.STEPS=[{iters}]", f"OUTPUT_DIR={tmp}/out", "SOLVER.CHECKPOINT_PERIOD=1000000",
                           f"SOLVER.LOG_PERIOD={max(iters // 4, 1)}", "SOLVER.AMP=true",
                           "MODEL.FROZEN_CACHE_DIR="])
        ctx = init_distributed(cfg.MODEL.DEVICE)
        trainer = Trainer(cfg, build_model(cfg), build_train_dataset(cfg), ctx, install_signal_handlers=False)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        trainer.train()
        seconds = (time.perf_counter() - start) / iters
    images = int(cfg.SOLVER.IMS_PER_BATCH) * int(cfg.INPUT.SAMPLING_FRAME_NUM) * int(cfg.INPUT.SAMPLING_NUM_CLIPS)
    peak = torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else float("nan")
    return seconds, images / seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    parser.add_argument("--sizes", nargs="+", default=["360x640", "480x854"])
    parser.add_argument("--frames", type=int, default=60, help="frames per measurement")
    parser.add_argument("--train", action="store_true", help="also measure the training stages")
    parser.add_argument("--train-iters", type=int, default=100)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_speed: no CUDA device on this machine; nothing measured (use --device cpu for a CPU check)")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; R50 DVIS architecture, random weights")
    model, cfg = build([], device)
    precisions = [("fp32", None, False), ("bf16", torch.bfloat16, False)]
    if device.type == "cuda":
        precisions = [("fp32", None, False), ("TF32", None, True), ("bf16", torch.bfloat16, True),
                      ("fp16", torch.float16, True)]
    print("\n| size | " + " | ".join(f"segmenter {p[0]} ms/frame" for p in precisions) + " |")
    print("|---|" + "---:|" * len(precisions))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    for size in sizes:
        cells = [f"{segmenter_ms(model, device, size, args.frames, dtype, tf32):.1f}" for _, dtype, tf32 in precisions]
        print(f"| {size[0]}x{size[1]} | " + " | ".join(cells) + " |", flush=True)
    halves = [("fp32", "")] + ([("TF32", "")] if device.type == "cuda" else []) + [("--half", "auto")]
    print("\n| size | precision | online frames/s | offline frames/s | peak GPU GB |")
    print("|---|---|---:|---:|---:|")
    for size in sizes:
        video = RandomVideo(size[0], size[1], args.frames)
        for label, half in halves:
            model, cfg = build([f"TEST.HALF={half}"], device)
            if device.type == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = label != "fp32"
                torch.backends.cudnn.allow_tf32 = label != "fp32"
                torch.cuda.reset_peak_memory_stats(device)
            end_to_end_fps(model, cfg, RandomVideo(size[0], size[1], 3), "online", device)  # warm-up
            online = end_to_end_fps(model, cfg, video, "online", device)
            offline = end_to_end_fps(model, cfg, video, "offline", device)
            peak = f"{torch.cuda.max_memory_allocated(device) / 1024**3:.2f}" if device.type == "cuda" else "n/a"
            print(f"| {size[0]}x{size[1]} | {label} | {online:.1f} | {offline:.1f} | {peak} |", flush=True)
    if device.type == "cuda":
        kernel, wall = kernel_vs_wall(model, cfg, RandomVideo(*sizes[0], min(args.frames, 20)), device)
        print(f"\nonline loop at {sizes[0][0]}x{sizes[0][1]} (--half): GPU kernel time {kernel:.1f} ms/frame, "
              f"wall {wall:.1f} ms/frame ({100 * kernel / wall:.0f} % of the wall time in kernels)")
    if args.train:
        print("\n| stage | s/iter | images/s | peak GPU GB |")
        print("|---|---:|---:|---:|")
        for stage in ("segmenter", "tracker"):
            seconds, rate, peak = train_speed(stage, device, args.train_iters)
            print(f"| {stage} (R50, AMP) | {seconds:.3f} | {rate:.1f} | {peak:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where one training step of a stage spends its time: the data loader alone, then the step split into its
parts (segmenter forward by module, matching, losses, backward, optimiser), then the top operators of
torch.profiler. Prints tables; nothing is asserted.

    python benchmarks/train_step_profile.py                              # the synth segmenter recipe, CPU
    python benchmarks/train_step_profile.py --config configs/synth/segmenter.yaml --steps 5 \
        --opts MODEL.BACKBONE.NAME=mobilenet_v2 SOLVER.IMS_PER_BATCH=8

Data: DATASETS.TRAIN of the config (``bash scripts/make_synth_data.sh`` makes the synth recipe's sets).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


class PartTimer:
    """Wall seconds per named part; forward hooks time the segmenter's modules."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, float] = {}

    def hook(self, module: torch.nn.Module, name: str) -> None:
        module.register_forward_pre_hook(lambda *_: self._started.__setitem__(name, time.perf_counter()))
        module.register_forward_hook(lambda *_: self._stop(name))

    def _stop(self, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._started.pop(name)

    def wrap(self, owner: object, attribute: str, name: str) -> None:
        """Time every call of ``owner.attribute`` (a function or method) as part ``name``."""
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        setattr(owner, attribute, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "synth" / "segmenter.yaml"))
    parser.add_argument("--steps", type=int, default=4, help="measured steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--opts", nargs="*", default=[], help="config overrides KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spvis.config import load_config
    from spvis.data.clip_dataset import collate_clips
    from spvis.engine.launch import build_model, build_train_dataset
    from spvis.engine.optim import build_optimizer
    from spvis.engine.trainer import setup_reproducibility
    from spvis.modeling import criterion as criterion_module
    from spvis.modeling import matcher as matcher_module

    cfg = load_config(args.config, ["MODEL.DEVICE=cpu", *args.opts])
    setup_reproducibility(cfg)
    dataset = build_train_dataset(cfg)
    clips = int(cfg.SOLVER.CLIPS_PER_DEVICE)
    frames = int(cfg.INPUT.SAMPLING_FRAME_NUM) * int(cfg.INPUT.SAMPLING_NUM_CLIPS)

    start = time.perf_counter()
    batches = [collate_clips([dataset[(i * clips + j) % len(dataset)] for j in range(clips)])
               for i in range(args.steps + 1)]
    load_s = (time.perf_counter() - start) / ((args.steps + 1) * clips * frames)

    model = build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    timer = PartTimer()
    for name in ("backbone", "sem_seg_head.pixel_decoder", "sem_seg_head.predictor"):
        module = model.get_submodule(name)
        timer.hook(module, name)
    timer.wrap(matcher_module.HungarianMatcher, "forward", "matching")
    timer.wrap(criterion_module.SetCriterion, "forward", "criterion (incl. matching)")

    def step(batch: list[dict]) -> None:
        optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        losses = model(batch)
        t1 = time.perf_counter()
        sum(losses.values()).backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        timer.seconds["forward + losses"] += t1 - t0
        timer.seconds["backward"] += t2 - t1
        timer.seconds["optimizer"] += t3 - t2

    step(batches[0])  # warm-up (allocator, first-call costs)
    timer.seconds.clear()
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[1:]:
            step(batch)
    wall = (time.perf_counter() - start) / args.steps
    images = clips * frames
    print(f"config {args.config} {' '.join(args.opts)}; {args.threads} thread(s); {images} images per step")
    print(f"data loader alone: {load_s * 1000:.1f} ms/image ({1 / load_s:.0f} images/s)")
    print(f"step (under the profiler): {wall:.3f} s, {wall / images:.3f} s/image, {images / wall:.1f} images/s\n")
    print("| part | s/step | share |")
    print("|---|---:|---:|")
    for name, seconds in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {seconds / args.steps:.3f} | {100 * seconds / args.steps / wall:.0f} % |")
    print("\nTop operators by self CPU time (forward and backward together):\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))


if __name__ == "__main__":
    main()

"""CPU speed of online inference end to end, side by side: SPVIS in fp32 and in its fast modes vs the official DVIS.

The official DVIS R50 online architecture (``configs/ytvis19/dvis_online_R50.yaml``: R50, 100 queries, 6 encoder and
9 decoder layers, the 6-layer referring tracker) with random weights (speed does not depend on values), 360x640
frames (moving discs on a texture), 2 torch threads, online end to end: ``OnlineTracker.stream`` does the model's
preprocessing, segmenter, tracker, masks at the frame's size, the per-frame results and the RLEs of every track.
Each mode runs in its own spawned process, built once; rounds are interleaved (mode A, B, C, then again), each round
``--passes`` passes over ``--frames`` frames after one warm-up pass, so a load change hits every mode alike. Printed:
ms/frame per mode and round, the median, and the ratio to the official code's ms/frame.

The official code needs detectron2, which is not on PyPI; where it cannot be run here, ``--official-ms`` gives its
ms/frame from a side-by-side run on this machine kind (issue 34: 1454 and 1451 ms/frame, 2 threads, same
architecture, size, frames and passes; default 1452). Pass your own figure after running it beside this script.

Fast modes (the accuracy each costs on the built-in model is in docs/RESULTS.md): ``bf16`` = bf16 autocast on CPU
(TEST.HALF=bf16); ``small`` = a smaller test size (INPUT.MIN_SIZE_TEST 240 / MAX_SIZE_TEST 427); ``fast`` = both
plus 50 queries (the random-weight model only: a trained model's queries are part of its weights).

    python benchmarks/cpu_speed.py                                   # 2 rounds x 3 passes x 20 frames, ~20 min idle
    python benchmarks/cpu_speed.py --frames 2 --passes 1 --rounds 1  # a check that it runs
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "ytvis19" / "dvis_online_R50.yaml"
OFFICIAL_MS = 1452.0  # issue 34: the official DVIS code on this machine kind, 1454 and 1451 ms/frame
MODES = {
    "fp32": [],
    "bf16": ["TEST.HALF=bf16"],
    "small": ["INPUT.MIN_SIZE_TEST=240", "INPUT.MAX_SIZE_TEST=427"],
    "fast": ["TEST.HALF=bf16", "INPUT.MIN_SIZE_TEST=240", "INPUT.MAX_SIZE_TEST=427", "MODEL.DECODER.NUM_QUERIES=50"],
}


def _child(overrides: list[str], frames: int, size: tuple[int, int], threads: int, connection) -> None:
    """Build the model once, warm up, then run ``passes`` timed passes each time the parent asks."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from online_memory import synthetic_frames

    from spvis.config import load_config
    from spvis.engine.streaming import OnlineTracker
    from spvis.modeling.meta_arch import SPVISModel

    torch.set_num_threads(threads)
    cfg = load_config(str(CONFIG), ["MODEL.WEIGHTS=", "MODEL.DEVICE=cpu", "MODEL.REFINER.ENABLED=False", *overrides])
    torch.manual_seed(0)
    model = SPVISModel.from_config(cfg).eval()
    video = list(synthetic_frames(frames, *size))
    engine = OnlineTracker(model, cfg, score_thr=0.5)

    def one_pass() -> float:
        start = time.perf_counter()
        for _ in engine.stream(video):
            pass
        engine.video_result(1)  # the per-video entries: every track's RLEs filed
        return 1000 * (time.perf_counter() - start) / len(video)

    one_pass()  # warm-up: allocator, oneDNN primitives
    connection.send("ready")
    while (passes := connection.recv()) > 0:
        connection.send([one_pass() for _ in range(passes)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", default="360x640", help="HxW of the frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--official-ms", type=float, default=OFFICIAL_MS,
                        help="the official DVIS code's online ms/frame on this machine kind (see the docstring)")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    context = mp.get_context("spawn")
    workers = {}
    for mode in args.modes:  # built one after another: no mode's start-up overlaps another's timing
        parent, child = context.Pipe()
        process = context.Process(target=_child, args=(MODES[mode], args.frames, size, args.threads, child))
        process.start()
        parent.recv()
        workers[mode] = (parent, process)
    timings: dict[str, list[float]] = {mode: [] for mode in args.modes}
    for _ in range(args.rounds):
        for mode, (connection, _) in workers.items():
            connection.send(args.passes)
            timings[mode].extend(connection.recv())
    for connection, process in workers.values():
        connection.send(0)
        process.join()
    print(f"online end to end, R50 DVIS online architecture, random weights, {args.size}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.passes} passes x {args.frames} frames (ms/frame)")
    print(f"official DVIS: {args.official_ms:.0f} ms/frame (--official-ms)")
    print(f"{'mode':>6} {'median':>8} {'x official':>11}  per pass")
    for mode, values in timings.items():
        median = statistics.median(values)
        print(f"{mode:>6} {median:8.0f} {median / args.official_ms:10.2f}x  {' '.join(f'{v:.0f}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

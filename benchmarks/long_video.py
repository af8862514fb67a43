"""Long videos end to end: time and peak memory of ``spvis infer`` (online, offline) and ``spvis eval``.

For each length, one procedural video (``spvis synth``, heavy occlusion, frame stride 3) is generated,
then every command runs in a fresh process whose peak RSS comes from ``os.wait4``. Prints a table.

    python benchmarks/long_video.py --frames 300 600 2000 --size 96x128
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPVIS = [sys.executable, "-m", "spvis"]


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one child process; raises if it fails."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: progress bars would fill a pipe and block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=os.environ.copy())
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed: {errors.read().decode()[-400:]}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 600, 2000])
    parser.add_argument("--size", default="96x128", help="frame size HxW of the generated video")
    parser.add_argument("--weights", help="model (default: the built-in demo model)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    weights = ["--weights", args.weights] if args.weights else []
    print("| frames | command | seconds | ms/frame | peak RSS MiB |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.frames:
            data = Path(tmp) / f"v{frames}"
            subprocess.run([*SPVIS, "synth", "--out", str(data), "--videos", "1", "--frames", str(frames),
                            "--size", args.size, "--occlusion", "heavy", "--frame-stride", "3",
                            "--valid-fraction", "0", "--seed", "7", "--no-progress"],
                           check=True, stdout=subprocess.DEVNULL)
            gt, root = data / "train.json", data / "train" / "JPEGImages"
            for mode in ("online", "offline"):
                out = Path(tmp) / f"out{frames}_{mode}"
                seconds, rss = run_measured([*SPVIS, "infer", "--input", str(gt), "--image-root", str(root),
                                             "--mode", mode, "--out", str(out), *weights])
                print(f"| {frames} | infer --mode {mode} (+ overlay) | {seconds:.1f} | "
                      f"{1000 * seconds / frames:.0f} | {rss:.0f} |", flush=True)
                seconds, rss = run_measured([*SPVIS, "eval", "--gt", str(gt), "--pred", str(out / "results.json")])
                print(f"| {frames} | eval ({mode} results) | {seconds:.1f} | {1000 * seconds / frames:.1f} | "
                      f"{rss:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

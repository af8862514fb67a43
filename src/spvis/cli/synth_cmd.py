"""`spvis synth`: write the procedural occlusion benchmark (train + valid with GT) in the YouTube-VIS layout,
or with ``--task vps`` / ``--task vss`` the panoptic version with drifting stuff in the VIPSeg / VSPW layout."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate the procedural occlusion benchmark (YouTube-VIS layout)",
        description="Writes OUT/train.json, OUT/valid.json (both with ground truth) and "
                    "OUT/{train,valid}/JPEGImages/<video>/<frame>.jpg, deterministically per seed.")
    parser.add_argument("--task", choices=("vis", "vps", "vss"), default="vis",
                        help="vis: YouTube-VIS layout (default); vps: VIPSeg layout (OUT/VIPSeg/VIPSeg_720P/...); "
                             "vss: VSPW layout (OUT/VSPW_480p/...); vps/vss add textured stuff regions")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--videos", type=int, default=40, help="number of videos (train + valid)")
    parser.add_argument("--frames", type=int, default=24, help="frames per video (hundreds are fine)")
    parser.add_argument("--size", default="256x256", help="frame size HxW (or one number for square frames)")
    parser.add_argument("--categories", type=int, default=6, help="number of object categories (shapes)")
    parser.add_argument("--stuff", type=int, default=4, help="vps/vss: number of stuff classes (2..4: sky, ground, "
                                                            "water, wall)")
    parser.add_argument("--max-objects", type=int, default=4, help="most objects per video")
    parser.add_argument("--occlusion", default="medium", choices=("none", "light", "medium", "heavy"),
                        help="how many planned full occlusions (disappear, then re-appear)")
    parser.add_argument("--frame-stride", type=int, default=1,
                        help="keep every K-th frame of the motion (mimics low frame rates)")
    parser.add_argument("--identity", default="normal", choices=("normal", "hard"),
                        help="vis: hard = look-alike objects whose paths cross, hidden 10-40 frames behind moving "
                             "occluders, leaving and re-entering the frame (docs/SYNTH_IDENTITY.md)")
    parser.add_argument("--valid-fraction", type=float, default=0.2, help="fraction of videos in valid.json")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed = same dataset)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spvis.utils.atomic_io import check_output_dir

    check_output_dir(args.out)  # a file in the way or a read-only folder: one line before any video is drawn
    if args.task != "vis":
        return run_panoptic(args)
    from spvis.data.identity_stats import format_identity_line
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(
        args.out, videos=args.videos, frames=args.frames, size=args.size, categories=args.categories,
        max_objects=args.max_objects, occlusion=args.occlusion, frame_stride=args.frame_stride,
        valid_fraction=args.valid_fraction, seed=args.seed, progress=not args.no_progress, identity=args.identity)
    print(f"wrote {info['videos']['train']} train + {info['videos']['valid']} valid videos "
          f"({info['frames']} frames, {info['tracks']['train'] + info['tracks']['valid']} tracks) to {info['out_dir']} "
          f"in {info['seconds']:.1f} s")
    print(f"  categories: {', '.join(info['categories'])}")
    print(f"  occlusion: {info['events']} planned events, {info['full_occlusion_frames']} fully hidden and "
          f"{info['partial_occlusion_frames']} partially hidden object-frames, {info['reappearances']} re-appearances")
    print(f"  {format_identity_line(info['identity'])}")
    print(f"  train: {info['train_json']}  (images {info['train_image_root']})")
    print(f"  valid: {info['valid_json']}  (images {info['valid_image_root']})")
    return 0


def run_panoptic(args: argparse.Namespace) -> int:
    """``--task vps`` / ``--task vss``: the VIPSeg / VSPW layout (train + val)."""
    from spvis.data.synth_panoptic import describe, generate_panoptic_dataset
    from spvis.errors import SpvisError

    if args.frame_stride != 1:
        raise SpvisError("--frame-stride applies to --task vis only")
    if args.identity != "normal":
        raise SpvisError("--identity applies to --task vis only")
    info = generate_panoptic_dataset(
        args.out, task=args.task, videos=args.videos, frames=args.frames, size=args.size, categories=args.categories,
        stuff=args.stuff, max_objects=args.max_objects, occlusion=args.occlusion, valid_fraction=args.valid_fraction,
        seed=args.seed, progress=not args.no_progress)
    print(describe(info), end="")
    return 0

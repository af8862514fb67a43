"""`spvis data check|split|show`: validate a dataset and print statistics, carve a local val split, draw GT."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", help="registered/builtin dataset name, a YTVIS-format or VIPSeg json, "
                                                   "or a VSPW split file / root folder")
    parser.add_argument("--json", help="dataset json (instead of the positional name)")
    parser.add_argument("--image-root", help="folder the json's file_names are relative to")
    parser.add_argument("--config", help="config whose DATASETS.REGISTER names user datasets")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="check, split or show a dataset")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="validate a dataset and print its statistics",
                           description="Exits 2 with one line naming the file, the video/annotation id and the "
                                       "field when anything is wrong.")
    _add_dataset_args(check)
    check.add_argument("--all-frames", action="store_true", help="read every frame header, not only the first")
    check.add_argument("--no-frames", action="store_true", help="skip frame files (annotations only)")
    check.add_argument("--stats-json", help="also write the statistics to this json file")
    check.add_argument("--mask-root", help="VIPSeg: the panomasksRGB folder (default: beside the json)")
    check.add_argument("--split", help="VSPW: the split of a root folder given as the dataset (default val)")
    check.set_defaults(func=run_check)

    split = sub.add_parser("split", help="carve a local validation split out of an annotated train json")
    _add_dataset_args(split)
    split.add_argument("--val-fraction", type=float, required=True, help="fraction of videos held out, in (0, 1)")
    split.add_argument("--seed", type=int, default=0, help="random seed of the video permutation")
    split.add_argument("--out", required=True, help="output folder for train.json and valid.json")
    split.set_defaults(func=run_split)

    show = sub.add_parser("show", help="draw the ground truth of one video to an mp4 or a png sheet")
    _add_dataset_args(show)
    show.add_argument("--video", required=True, help="video id (or name / frame folder)")
    show.add_argument("--out", required=True, help="FILE.mp4 (every frame) or FILE.png (up to 8 frames)")
    show.add_argument("--fps", type=float, default=6.0, help="frame rate of the mp4")
    show.add_argument("--max-frames", type=int, help="only the first N frames")
    show.set_defaults(func=run_show)


def _resolve(args: argparse.Namespace):
    """(DatasetSpec, loaded dataset) from the positional name, --json or --config."""
    from spvis.data.catalog import load_dataset, resolve_dataset
    from spvis.errors import SpvisError

    key = args.json or args.dataset
    if not key:
        raise SpvisError("give a dataset name or json (positional) or --json FILE")
    if Path(key).is_dir() and (Path(key) / "data").is_dir():  # a VSPW root: the split picks the list file
        key = str(Path(key) / f"{getattr(args, 'split', None) or 'val'}.txt")
    if args.json and args.dataset:
        raise SpvisError("give either a dataset name or --json, not both")
    cfg = None
    if args.config:
        from spvis.config import load_config

        cfg = load_config(args.config)
    spec = resolve_dataset(key, args.image_root, cfg=cfg)
    if getattr(args, "mask_root", None):
        spec = replace(spec, mask_root=Path(args.mask_root))
    return spec, load_dataset(spec)


def _require_instance_format(spec) -> None:
    """SpvisError for VIPSeg / VSPW datasets, which only ``data check`` handles."""
    from spvis.errors import SpvisError

    if spec.kind in ("vipseg", "vspw"):
        raise SpvisError(f"{spec.json}: a {'VIPSeg' if spec.kind == 'vipseg' else 'VSPW'} dataset; only "
                         f"'spvis data check' handles this format")


def run_check(args: argparse.Namespace) -> int:
    from collections import Counter

    from spvis.data.check import (check_frames, check_images, check_masks, check_segmentation_dataset,
                                  dataset_statistics, format_statistics)
    from spvis.data.coco import ImageDataset
    from spvis.utils.atomic_io import atomic_write_json

    spec, ds = _resolve(args)
    if spec.kind in ("vipseg", "vspw"):
        stats, lines = check_segmentation_dataset(ds, read_files=not args.no_frames)
        print("\n".join(lines))
        if args.stats_json:
            atomic_write_json(args.stats_json, stats, indent=2)
        print("ok")
        return 0
    if isinstance(ds, ImageDataset):
        if not args.no_frames:
            check_images(ds)
        per_cat = Counter(ds.class_names[ds.dataset_to_contiguous_id[i.category_id]]
                          for insts in ds.instances_by_image.values() for i in insts)
        print(f"dataset: {spec.json} (COCO images for pseudo-videos)")
        print(f"images: {len(ds.images)}  instances (non-crowd, mapped): {sum(per_cat.values())}  "
              f"categories: {len(ds.class_names)}")
        for name, count in per_cat.most_common():
            print(f"  {name}: {count}")
        print("ok")
        return 0
    check_masks(ds)
    if not args.no_frames:
        check_frames(ds, all_frames=args.all_frames)
    stats = dataset_statistics(ds)
    for line in format_statistics(stats, None if args.no_frames else (ds.image_root or ds.json_path.parent)):
        print(line)
    if args.stats_json:
        atomic_write_json(args.stats_json, stats, indent=2)
    print("ok")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from spvis.data.split import split_video_json
    from spvis.utils.atomic_io import check_output_dir

    check_output_dir(args.out)
    spec, _ = _resolve(args)
    _require_instance_format(spec)
    result = split_video_json(spec.json, args.out, val_fraction=args.val_fraction, seed=args.seed,
                              image_root=spec.image_root)
    for split in ("train", "valid"):
        r = result[split]
        print(f"{split}: {r['videos']} videos, {r['tracks']} tracks -> {r['json']}")
    if spec.image_root is not None:
        print(f"frames stay in {spec.image_root} (linked as {args.out}/{{train,valid}}/JPEGImages)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from spvis.data.coco import ImageDataset
    from spvis.errors import SpvisError
    from spvis.utils.atomic_io import check_output_file
    from spvis.viz.show import show_video

    check_output_file(args.out)
    spec, ds = _resolve(args)
    _require_instance_format(spec)
    if isinstance(ds, ImageDataset):
        raise SpvisError(f"{spec.json}: show draws video datasets; this is a COCO image dataset")
    if not ds.has_annotations:
        raise SpvisError(f"{spec.json}: has no annotations to show")
    result = show_video(ds, args.video, args.out, fps=args.fps, max_frames=args.max_frames)
    print(f"wrote {result['frames']} frames of video {result['video']} to {result['out']}")
    return 0

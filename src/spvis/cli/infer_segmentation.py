"""``spvis infer --task vps|vss``: a VIPSeg json or VSPW split in, the submission layout ``spvis eval`` scores out.

vps: ``OUT/pred.json`` + ``OUT/pan_pred/<video>/<frame>.png``; vss: ``OUT/<video>/<frame>.png``; both with
``OUT/<video>.mp4`` overlays unless ``--no-overlay``. ``--mode online`` streams (flat memory); ``--mode offline``
adds the refiner and DVIS_offline's per-video rule within ``--max-memory-gb``. The work is in
``spvis.engine.segmentation``; this module checks flags and the output folder and reports.
"""

from __future__ import annotations

import argparse
import sys

from spvis.cli.device_args import apply_threads


def check_segmentation_arguments(args: argparse.Namespace) -> None:
    """One-line errors for flags that --task vps|vss does not take."""
    from spvis.errors import SpvisError

    task = f"--task {args.task}"
    if args.max_memory_gb is not None and args.mode != "offline":
        raise SpvisError("--max-memory-gb applies to --mode offline only")
    if args.max_memory_gb is not None and not args.max_memory_gb >= 0:
        raise SpvisError(f"--max-memory-gb must be >= 0, got {args.max_memory_gb}")
    for flag, used in (("--resume", args.resume), ("--save-masks", args.save_masks),
                       ("--window-size", args.window_size is not None), ("--score-thr", args.score_thr != 0.0),
                       ("--backend", getattr(args, "backend", "torch") != "torch")):
        if used:
            hint = (" (TEST.PANOPTIC.OBJECT_THRESHOLD=... sets the vps segment threshold)" if flag == "--score-thr"
                    else "")
            raise SpvisError(f"{flag} applies to --task vis only{hint}")
    if args.max_frames is not None and args.max_frames < 1:
        raise SpvisError(f"--max-frames must be at least 1, got {args.max_frames}")


def infer_segmentation(args: argparse.Namespace) -> int:
    """Check everything, then run every video of the input and write the submission layout."""
    from tqdm import tqdm

    from spvis.engine.infer_settings import FOREIGN_RESULTS
    from spvis.cli.model_args import load_model_from_args
    from spvis.engine.inference import load_model
    from spvis.engine.segmentation import (VPSSubmissionWriter, VSSPredictionWriter, check_model_classes,
                                           planned_outputs, run_segmentation_video, segmentation_input)
    from spvis.errors import SpvisError
    from spvis.utils.atomic_io import check_output_dir, refuse_overwriting_inputs, remove_stale_temp_files

    check_segmentation_arguments(args)
    apply_threads(args)
    out_dir = check_output_dir(args.out)
    inp = segmentation_input(args.task, args.input, args.image_root)
    outputs = planned_outputs(inp, out_dir, overlays=not args.no_overlay)
    refuse_overwriting_inputs(outputs, [("--input", args.input), ("--weights", args.weights),
                                        ("--config", args.config)])
    present = [p for p in outputs if p.is_file()]
    foreign = [out_dir / name for name in FOREIGN_RESULTS if (out_dir / name).is_file()]  # kept with --exist-ok
    if (present or foreign) and not args.exist_ok:
        shown = present + foreign
        names = ", ".join(str(p.relative_to(out_dir)) for p in shown[:3]) + (", ..." if len(shown) > 3 else "")
        raise SpvisError(f"--out {out_dir} holds the outputs of another run ({names}); pass --exist-ok to replace "
                         f"them")
    model, cfg, _ = load_model_from_args(args, load_model)
    check_model_classes(inp, int(cfg.MODEL.NUM_CLASSES))
    for path in present:  # --exist-ok: this command's own outputs of the previous run
        path.unlink()
    remove_stale_temp_files(outputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = VPSSubmissionWriter(out_dir, inp.category_ids) if args.task == "vps" else VSSPredictionWriter(out_dir)
    frames = 0
    for video in inp.videos:
        total = len(video.frame_paths) if args.max_frames is None else min(len(video.frame_paths), args.max_frames)
        with tqdm(total=total, desc=video.name, unit="frame", file=sys.stderr) as bar:
            try:
                frames += run_segmentation_video(
                    model, cfg, inp, video, writer=writer, mode=args.mode,
                    overlay=None if args.no_overlay else out_dir / f"{video.name}.mp4", max_frames=args.max_frames,
                    allow_truncated=args.allow_truncated, max_memory_gb=args.max_memory_gb,
                    on_frame=lambda: bar.update(1))
            except SpvisError as exc:
                raise SpvisError(f"video {video.name}: {exc}") from None
    if args.task == "vps":
        path = writer.close()
        print(f"wrote {path} and {out_dir / 'pan_pred'} ({len(inp.videos)} videos, {frames} frames); score it with "
              f"spvis eval --task vps --gt {inp.path} --pred {out_dir}")
    else:
        print(f"wrote {frames} label maps of {len(inp.videos)} videos to {out_dir}; score them with spvis eval "
              f"--task vss --gt {inp.path.parent} --split {inp.path.stem} --pred {out_dir}")
    return 0

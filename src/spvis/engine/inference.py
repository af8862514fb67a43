"""Inference front end shared by ``spvis infer``, ``spvis demo``, the benchmarks and the Python API.

``load_model`` builds a model from our weights; ``iter_jobs`` turns an input (dataset json, video file or
frame folder) into videos to run; ``run_video`` runs one of them online (streaming, flat memory) or
offline (+ refiner) and writes its overlay video.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

DEFAULT_FPS = 10.0  # overlay frame rate when the input has none (frame folders, datasets)
SINGLE_VIDEO_ID = 1  # results.json needs an integer video id; a lone video/folder gets this one
BUILTIN_WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "demo_model.safetensors"


@dataclass
class VideoJob:
    """One video to run: its results id, a frame source and the label maps for output."""

    video_id: int
    name: str
    source: Any  # spvis.data.frames source: .name, .fps, .truncated, .error, iterable of (H, W, 3) uint8
    category_ids: Sequence[int] | None
    class_names: Sequence[str]
    path: str | None = None  # the video file or frame folder (VideoResult.plot reads frames from it)


def load_model(weights: str | Path | None = None, config: str | Path | None = None,
               overrides: Sequence[str] = ()):
    """(model in eval mode on its device, cfg) from our weights (default: the built-in demo model).

    ``config`` replaces the config saved beside the weights; ``overrides`` are KEY=VALUE strings. Weights
    that do not fit the config are a one-line CheckpointError naming the keys.
    """
    import torch

    from spvis.checkpoints import load_weights
    from spvis.checkpoints.io import config_path_for
    from spvis.checkpoints.loading import load_state_strict
    from spvis.config import load_config
    from spvis.modeling.meta_arch import build_model

    weights = str(BUILTIN_WEIGHTS if weights is None else weights)
    state, saved_cfg = load_weights(weights)
    if config is not None:
        cfg = load_config(config, list(overrides))
    else:
        cfg = saved_cfg
        cfg.merge_overrides(list(overrides))
    model = build_model(cfg, str(config or config_path_for(weights)))
    # the error names the config too: weights that fit their own file stop fitting when the config was edited
    load_state_strict(model, state, source=f"{weights} with the config {config or config_path_for(weights)}")
    from spvis.engine.distributed import resolve_device

    return model.to(resolve_device(str(cfg.MODEL.DEVICE))).eval(), cfg

def class_names_for(cfg) -> list[str]:
    """Class names for overlays of a plain video: MODEL.CLASS_NAMES, else the builtin dataset with this many
    classes, else none."""
    from spvis.data.categories import OVIS_NAMES, YTVIS_2019_NAMES

    if len(cfg.MODEL.CLASS_NAMES) == cfg.MODEL.NUM_CLASSES:
        return list(cfg.MODEL.CLASS_NAMES)
    return {len(YTVIS_2019_NAMES): YTVIS_2019_NAMES, len(OVIS_NAMES): OVIS_NAMES}.get(cfg.MODEL.NUM_CLASSES, [])


def single_video_name(path: str | Path) -> str:
    """The name (overlay stem) of a lone video file, frame folder, URL or webcam."""
    from spvis.data.live import is_live, live_name

    if is_live(str(path)):
        return live_name(str(path))
    path = Path(path)
    return path.stem if path.is_file() else path.name


def planned_videos(input_path: str, image_root: str | None = None) -> list[tuple[int, str]]:
    """(video id, name) of every video ``iter_jobs`` yields for this input, known before a model or frame is
    read: lets ``spvis infer`` check its output folder first."""
    from spvis.data import load_video_dataset

    path = Path(input_path)
    if path.suffix.lower() == ".json" and path.is_file():
        return [(record.id, f"{record.id}") for record in load_video_dataset(path, image_root).videos]
    return [(SINGLE_VIDEO_ID, single_video_name(input_path))]


def iter_jobs(input_path: str, image_root: str | None, cfg, max_frames: int | None = None,
              allow_truncated: bool = False) -> Iterator[VideoJob]:
    """The videos named by --input: every video of a dataset json, or the one video / frame folder. Each video's
    frame files are checked as it is opened (``spvis.data.frames``); ``allow_truncated`` ends a video before its
    first bad frame instead of raising."""
    from spvis.data import load_video_dataset, open_frame_source
    from spvis.errors import SpvisError

    from spvis.data.live import is_live

    path = Path(input_path)
    if path.suffix.lower() == ".json" and not is_live(input_path):
        from spvis.data.catalog import default_image_root

        dataset = load_video_dataset(path, image_root)
        if dataset.num_classes != cfg.MODEL.NUM_CLASSES:
            raise SpvisError(f"{path}: field 'categories': {dataset.num_classes} categories but the model "
                             f"predicts MODEL.NUM_CLASSES = {cfg.MODEL.NUM_CLASSES}")
        for record in dataset.videos:
            # without --image-root, frames are found as `spvis data check` finds them (<stem>/JPEGImages first)
            source = open_frame_source(record, image_root=dataset.image_root or default_image_root(path),
                                       max_frames=max_frames, allow_truncated=allow_truncated)
            yield VideoJob(record.id, f"{record.id}", source, dataset.contiguous_to_dataset_id,
                           dataset.class_names)
        return
    if image_root is not None:
        raise SpvisError("--image-root is only used with a dataset json --input")
    live = is_live(input_path)
    source = open_frame_source(input_path if live else path, max_frames=max_frames, allow_truncated=allow_truncated)
    yield VideoJob(SINGLE_VIDEO_ID, single_video_name(input_path), source, None, class_names_for(cfg),
                   None if live else str(path))


def run_video(model, cfg, job: VideoJob, *, mode: str, out_dir: Path | None, score_thr: float,
              max_frames: int | None, max_memory_gb: float | None = None, window_size: int | None = None,
              mask_dir: Path | None = None, allow_truncated: bool = False):
    """Infer one video (online stream or offline engine), writing its overlay when ``out_dir`` is set and one
    16-bit PNG id map per frame into ``mask_dir/<video>/`` when that is set (the overlay's instances).

    A video that breaks off (a cut mp4, a frame that does not decode, a live stream lost) is an SpvisError naming
    the file, and its overlay is dropped, unless ``allow_truncated``: then the frames before the break are the video
    (``result.truncated`` and ``result.error`` say so). A live stream ended on request (``source.stopped``: the
    first Ctrl-C) is kept the same way without the flag."""
    from tqdm import tqdm

    from spvis.data.frame_source import limit_frames
    from spvis.engine.streaming import OnlineTracker
    from spvis.errors import SpvisError
    from spvis.utils.signals import raise_if_stopped

    source = limit_frames(job.source, max_frames)
    total = source.num_frames
    writer = _overlay_writer(out_dir, job)
    bar = tqdm(total=total, desc=job.name, unit="frame", file=sys.stderr)
    overlay_thr = max(score_thr, 0.5)

    def on_frame(frame_result, frame) -> None:
        raise_if_stopped()  # a stop signal whose exception a finalizer swallowed still stops the run here
        if mask_dir is not None:
            from spvis.viz.id_maps import id_map, write_id_map

            keep = frame_result.scores >= overlay_thr
            write_id_map(mask_dir / job.name / f"{frame_result.frame_index:05d}.png",
                         id_map(frame_result.masks[keep], frame_result.track_ids[keep], frame_result.scores[keep]))
        if writer is not None:
            from spvis.viz.overlay import draw_overlay

            keep = frame_result.scores >= overlay_thr
            writer.write(draw_overlay(frame, frame_result.masks[keep], frame_result.track_ids[keep],
                                      frame_result.labels[keep], job.class_names, frame_result.scores[keep]))
        bar.update(1)

    try:
        if mode == "offline":
            from spvis.engine.offline import run_offline

            result = run_offline(model, cfg, source, max_memory_gb, window_size, video_id=job.video_id,
                                 category_ids=job.category_ids, frame_callback=lambda fr: on_frame(fr, fr.frame))
        else:
            engine = OnlineTracker(model, cfg, score_thr=overlay_thr, keep_frames=writer is not None)
            for frame_result in engine.stream(source, source=job.name):
                on_frame(frame_result, frame_result.frame)
            if engine.frame_size is None:
                raise SpvisError(f"{job.name}: {getattr(job.source, 'error', None) or 'the input has no frames'}")
            result = engine.video_result(job.video_id, category_ids=job.category_ids, score_thr=score_thr,
                                         truncated=bool(getattr(job.source, "truncated", False)),
                                         error=getattr(job.source, "error", None))
        if result.truncated and not allow_truncated and not getattr(job.source, "stopped", False):
            raise SpvisError(f"{result.error or job.name + ': the video breaks off'}; the video is incomplete (pass "
                             f"--allow-truncated to keep the {result.num_frames} frames before the break)")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    if mode == "offline" and score_thr > 0:
        result.keep_entries([e["score"] >= score_thr for e in result.entries])
    result.name = job.name
    result.source = job.path
    categories = job.category_ids if job.category_ids is not None else range(1, len(job.class_names) + 1)
    result.names = {int(cid): str(name) for cid, name in zip(categories, job.class_names)}
    return result


def _overlay_writer(out_dir: Path | None, job: VideoJob):
    if out_dir is None:
        return None
    from spvis.viz.video_writer import VideoWriter

    return VideoWriter(out_dir / f"{job.name}.mp4", fps=getattr(job.source, "fps", None) or DEFAULT_FPS)

"""Video panoptic (VPS, VIPSeg layout) and video semantic (VSS, VSPW layout) inference: datasets in, submissions out.

``segmentation_input(task, path, ...)`` opens a VIPSeg json or a VSPW split file and plans its videos;
``run_segmentation_video`` runs one video through the model, online (streamed, ``SPVISModel.parse_frame``, flat
memory) or offline (refiner and DVIS_offline's per-video rule: ``video_segments`` / ``segment_mask_logits``, masks
decoded window by window within the memory budget), and hands each frame to a writer:

* ``VPSSubmissionWriter``: ``OUT/pan_pred/<video>/<frame>.png`` (ids RGB-encoded, 0 = VOID) and, at the end,
  ``OUT/pred.json`` (``annotations[{video_id, annotations[{image_id, file_name, segments_info[{id, category_id,
  isthing}]}]}]``): the layout ``spvis eval --task vps`` and the official VIPSeg scripts read.
* ``VSSPredictionWriter``: ``OUT/<video>/<frame>.png`` label maps (values = contiguous classes, which for VSPW are
  the raw mask values - 1): the layout ``spvis eval --task vss`` reads.

Panoptic ids (``VideoSegmentIds``): stuff classes keep one id for the whole video, thing tracks one id each; ids
count from 1 in order of first appearance. Every file is written atomically.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from spvis.errors import SpvisError
from spvis.modeling.panoptic import PanopticRules

PRED_JSON = "pred.json"
PAN_DIR = "pan_pred"


@dataclass
class SegmentationVideo:
    """One video to run: its name (folder of its outputs), frame names and frame files in order."""

    name: str
    frame_names: list[str]
    frame_paths: list[Path]


@dataclass
class SegmentationInput:
    """A VIPSeg json (task vps) or VSPW split (task vss) opened for inference."""

    task: str
    path: Path
    videos: list[SegmentationVideo]
    class_names: list[str]  # contiguous class -> name
    category_ids: list[int]  # contiguous class -> dataset id (vps: categories' ids; vss: the contiguous class)
    num_things: int  # vps: contiguous classes below this are things

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def segmentation_input(task: str, path: str | Path, image_root: str | Path | None = None) -> SegmentationInput:
    """Open a VIPSeg panoptic json (``task`` vps) or a VSPW split file ``VSPW_480p/<split>.txt`` (vss)."""
    from spvis.data.catalog import load_dataset, resolve_dataset

    spec = resolve_dataset(path, image_root)
    want = {"vps": "vipseg", "vss": "vspw"}[task]
    if spec.kind != want:
        layout = ("a VIPSeg panoptic json (panoptic_gt_VIPSeg_<split>.json)" if task == "vps"
                  else "a VSPW split file (VSPW_480p/<split>.txt)")
        raise SpvisError(f"{path}: --task {task} reads {layout}, this is a {spec.kind} input")
    ds = load_dataset(spec)
    if task == "vps":
        videos = [SegmentationVideo(v.video_id, [f.name for f in v.frames], [ds.image_path(f) for f in v.frames])
                  for v in ds.videos]
        return SegmentationInput(task, spec.json, videos, list(ds.class_names), list(ds.contiguous_to_dataset_id),
                                 int(ds.num_things))
    videos = [SegmentationVideo(v.name, [f.name for f in v.frames], [ds.image_path(f) for f in v.frames])
              for v in ds.videos]
    return SegmentationInput(task, spec.json, videos, list(ds.class_names), list(range(ds.num_classes)), 0)


def check_model_classes(inp: SegmentationInput, num_classes: int) -> None:
    """The model's classes must be the dataset's (vps: the same number, things first; vss: at most the 124
    VSPW classes, model class k = VSPW class k)."""
    if inp.task == "vps" and num_classes != inp.num_classes:
        raise SpvisError(f"{inp.path}: field 'categories': {inp.num_classes} categories but the model predicts "
                         f"MODEL.NUM_CLASSES = {num_classes}")
    if inp.task == "vss" and num_classes > inp.num_classes:
        raise SpvisError(f"{inp.path}: the model predicts MODEL.NUM_CLASSES = {num_classes} classes, more than the "
                         f"{inp.num_classes} VSPW classes its label maps can hold")


def panoptic_rules(cfg: Any, num_things: int) -> PanopticRules:
    """The VPS rules of the config (TEST.PANOPTIC.*) for a dataset with ``num_things`` thing classes."""
    try:
        return PanopticRules(num_things=num_things, object_threshold=float(cfg.TEST.PANOPTIC.OBJECT_THRESHOLD),
                             overlap_threshold=float(cfg.TEST.PANOPTIC.OVERLAP_THRESHOLD))
    except ValueError as exc:
        raise SpvisError(f"TEST.PANOPTIC: {exc}") from None


class VideoSegmentIds:
    """Panoptic segment ids of one video: one per stuff class, one per thing track, from 1 upwards."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, int], int] = {}

    def id_of(self, *, isthing: bool, label: int, track_id: int) -> int:
        """The id of a thing's track or a stuff class (new ids in order of first appearance)."""
        key = ("thing", int(track_id)) if isthing else ("stuff", int(label))
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]


@dataclass
class PanopticFrameResult:
    """One frame on the host: its id map and segments."""

    ids: np.ndarray  # (H, W) uint32 panoptic ids, 0 = VOID
    segments: list[dict]  # [{id, label (contiguous), isthing}] stuff first, each id once


def panoptic_to_host(frame: Any, ids: VideoSegmentIds) -> PanopticFrameResult:
    """A ``PanopticFrame`` (device) -> panoptic ids on the host; stuff segments of one class share their id."""
    pixels = frame.pixels.cpu().numpy()  # (H, W) int64, -1 VOID
    labels, things = frame.labels.tolist(), frame.isthing.tolist()
    tracks = frame.track_ids.tolist()
    segment_ids = np.array([ids.id_of(isthing=t, label=lab, track_id=tr) for lab, t, tr in zip(labels, things, tracks)]
                           + [0], dtype=np.uint32)  # (S + 1,): the last entry maps VOID (-1) to 0
    id_map = segment_ids[pixels]  # (H, W)
    shown = np.zeros(len(labels) + 1, dtype=bool)
    shown[pixels.ravel()] = True  # a video-level segment may show no pixel on this frame: it is not listed
    segments: dict[int, dict] = {}
    for sid, lab, thing, on in sorted(zip(segment_ids[:-1].tolist(), labels, things, shown[:-1].tolist()),
                                      key=lambda s: s[2]):
        if on:
            segments.setdefault(sid, {"id": sid, "label": int(lab), "isthing": bool(thing)})
    return PanopticFrameResult(id_map, list(segments.values()))


class VPSSubmissionWriter:
    """Writes the VIPSeg submission layout: PNGs as frames come, ``pred.json`` once every video is done."""

    def __init__(self, out_dir: Path, category_ids: Sequence[int]):
        self.out_dir = Path(out_dir)
        self.category_ids = list(category_ids)
        self.videos: list[dict] = []

    def png_path(self, video: str, frame: str) -> Path:
        return self.out_dir / PAN_DIR / video / f"{frame}.png"

    def start_video(self, name: str) -> None:
        self.videos.append({"video_id": name, "annotations": []})

    def add_frame(self, frame_name: str, result: PanopticFrameResult) -> None:
        from spvis.data.png_io import write_id_png

        video = self.videos[-1]
        write_id_png(self.png_path(video["video_id"], frame_name), result.ids, atomic=True)
        video["annotations"].append({
            "image_id": frame_name, "file_name": f"{frame_name}.png",
            "segments_info": [{"id": s["id"], "category_id": int(self.category_ids[s["label"]]),
                               "isthing": int(s["isthing"])} for s in result.segments]})

    def close(self) -> Path:
        from spvis.utils.atomic_io import atomic_write_json

        path = self.out_dir / PRED_JSON
        atomic_write_json(path, {"annotations": self.videos})
        return path


class VSSPredictionWriter:
    """Writes ``OUT/<video>/<frame>.png`` uint8 label maps."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.video = ""

    def png_path(self, video: str, frame: str) -> Path:
        return self.out_dir / video / f"{frame}.png"

    def start_video(self, name: str) -> None:
        self.video = name

    def add_frame(self, frame_name: str, labels: np.ndarray) -> None:
        from spvis.data.png_io import write_label_png

        write_label_png(self.png_path(self.video, frame_name), labels, atomic=True)


def planned_outputs(inp: SegmentationInput, out_dir: Path, *, overlays: bool) -> list[Path]:
    """Every file an inference run over ``inp`` writes into ``out_dir``."""
    outputs: list[Path] = []
    if inp.task == "vps":
        outputs.append(out_dir / PRED_JSON)
        outputs += [out_dir / PAN_DIR / v.name / f"{f}.png" for v in inp.videos for f in v.frame_names]
    else:
        outputs += [out_dir / v.name / f"{f}.png" for v in inp.videos for f in v.frame_names]
    if overlays:
        outputs += [out_dir / f"{v.name}.mp4" for v in inp.videos]
    return outputs


def _label_png_ready(labels: np.ndarray) -> np.ndarray:
    if labels.size and int(labels.max()) > 255:
        raise SpvisError(f"class {int(labels.max())} does not fit a uint8 label PNG")
    return labels.astype(np.uint8)


class _FrameSink:
    """Writes one video's frames: the writer's PNGs (and json entries) and the overlay."""

    def __init__(self, inp: SegmentationInput, writer: VPSSubmissionWriter | VSSPredictionWriter,
                 video: SegmentationVideo, overlay: Path | None, on_frame: Callable[[], None] | None):
        self.inp, self.writer, self.video, self.on_frame = inp, writer, video, on_frame
        self.ids = VideoSegmentIds()
        self.count = 0
        self.overlay = None
        if overlay is not None:
            from spvis.engine.inference import DEFAULT_FPS
            from spvis.viz.video_writer import VideoWriter

            self.overlay = VideoWriter(overlay, fps=DEFAULT_FPS)
        writer.start_video(video.name)

    def add(self, frame: np.ndarray, result: Any) -> None:
        """One frame's ``PanopticFrame`` / ``SemanticFrame`` (device tensors) and its RGB pixels."""
        name = self.video.frame_names[self.count]
        if self.inp.task == "vps":
            host = panoptic_to_host(result, self.ids)
            self.writer.add_frame(name, host)
            if self.overlay is not None:
                self.overlay.write(_panoptic_overlay(frame, host, self.inp.class_names))
        else:
            labels = _label_png_ready(result.labels.cpu().numpy())
            self.writer.add_frame(name, labels)
            if self.overlay is not None:
                self.overlay.write(_semantic_overlay(frame, labels, self.inp.class_names))
        self.count += 1
        if self.on_frame is not None:
            self.on_frame()

    def abort(self) -> None:
        if self.overlay is not None:
            self.overlay.abort()

    def close(self) -> None:
        if self.overlay is not None:
            self.overlay.close()


def run_segmentation_video(model: torch.nn.Module, cfg: Any, inp: SegmentationInput, video: SegmentationVideo, *,
                           writer: VPSSubmissionWriter | VSSPredictionWriter, mode: str = "online",
                           overlay: Path | None = None, max_frames: int | None = None, allow_truncated: bool = False,
                           max_memory_gb: float | None = None,
                           on_frame: Callable[[], None] | None = None) -> int:
    """Run one video into ``writer`` (and an overlay mp4 at ``overlay``); returns the frames written.

    online: streamed frame by frame (flat memory), each track scored by its logits averaged over its frames so far.
    offline: DVIS_offline's per-video rule: the refiner over the whole video, each track scored once (refiner and
    tracker probabilities combined by TEST.OFFLINE_SCORE), the VPS overlap rule counted over all frames; masks are
    decoded window by window (twice for vps: counts, then pixels), features cached within ``max_memory_gb``
    (default TEST.MAX_MEMORY_GB) and otherwise recomputed. The model is put in eval mode and its mode restored.
    """
    from spvis.data.frames import ImageSequenceSource

    source = ImageSequenceSource(video.name, list(video.frame_paths), source=f"{inp.path}: video {video.name}",
                                 max_frames=max_frames, allow_truncated=allow_truncated)
    was_training = model.training
    model.eval()
    sink = _FrameSink(inp, writer, video, overlay, on_frame)
    try:
        if mode == "offline":
            _run_offline(model, cfg, inp, source, sink, max_memory_gb)
        else:
            _run_online(model, cfg, inp, source, sink)
        if source.truncated and not allow_truncated:
            raise SpvisError(f"{source.error}; the video is incomplete (pass --allow-truncated to keep the "
                             f"{sink.count} frames before the break)")
    except BaseException:
        sink.abort()
        raise
    finally:
        model.train(was_training)
    sink.close()
    if source.truncated:
        print(f"spvis infer: warning: {video.name}: {source.error}; kept the {sink.count} frames read",
              file=sys.stderr)
    return sink.count


def _run_online(model: torch.nn.Module, cfg: Any, inp: SegmentationInput, source: Any, sink: _FrameSink) -> None:
    from spvis.engine.streaming import check_frame, online_state_options

    rules = panoptic_rules(cfg, inp.num_things) if inp.task == "vps" else None
    state = model.init_segmentation_state(task=inp.task, rules=rules, **online_state_options(model, cfg))
    expected: tuple[int, int] | None = None
    for index, frame in enumerate(source):
        check_frame(frame, index, expected, source.name)
        expected = frame.shape[:2]
        sink.add(frame, model.parse_frame(state, frame))


def _run_offline(model: torch.nn.Module, cfg: Any, inp: SegmentationInput, source: Any, sink: _FrameSink,
                 max_memory_gb: float | None) -> None:
    from spvis.engine.offline import frame_windows, plan_windows
    from spvis.engine.precision import autocast_name
    from spvis.engine.streaming import check_frame
    from spvis.modeling.inference import PanopticFrame, SemanticFrame
    from spvis.modeling.inference.emission import MASK_CHUNK
    from spvis.modeling.panoptic import (keep_by_probabilities, panoptic_counts, panoptic_pixels, segments_kept,
                                         semantic_scores_from_probabilities)

    if getattr(model, "refiner", None) is None:
        raise SpvisError("offline mode needs a model with a refiner (set MODEL.REFINER.ENABLED True)")
    height, width = int(source.height), int(source.width)
    budget = cfg.TEST.MAX_MEMORY_GB if max_memory_gb is None else max_memory_gb
    _, cache_frames = plan_windows(cfg, height=height, width=width, num_queries=cfg.MODEL.DECODER.NUM_QUERIES,
                                   max_memory_gb=budget, window_size=None)
    size = int(cfg.TEST.WINDOW_SIZE)
    state = model.init_offline_state(cache_frames=cache_frames,
                                     autocast=autocast_name(cfg, next(model.parameters()).device))
    for w, window in enumerate(frame_windows(iter(source), size)):  # pass 1: segmenter + tracker (+ grounding)
        for offset, frame in enumerate(window):
            check_frame(frame, w * size + offset, (height, width), source.name)
        model.encode_frames(state, window)
    segments = model.video_segments(state, combine=cfg.TEST.OFFLINE_SCORE)
    num_frames = state.num_frames

    def windows() -> Iterator[tuple[int, int, list[np.ndarray], torch.Tensor]]:
        """(start, stop, frames, mask features) of every window; frames re-read (the overlay and the features not
        cached need them)."""
        frames = frame_windows(iter(source), size, limit=num_frames)
        for start in range(0, num_frames, size):
            stop = min(start + size, num_frames)
            window = next(frames, None)
            if window is None or len(window) != stop - start:
                raise SpvisError(f"{source.name}: gave fewer frames on the second read than on the first "
                                 f"({num_frames})")
            yield start, stop, window, model.window_features(state, start, stop, window)

    if inp.task == "vss":
        rows = torch.arange(len(segments.track_ids))
        probs = segments.probs[:, :-1]  # (N, K) the no-object column left out
        for start, stop, window, features in windows():
            scores = None
            for first in range(0, len(rows), MASK_CHUNK):
                chunk = rows[first:first + MASK_CHUNK]
                masks = model.segment_mask_logits(state, segments, chunk, start, stop, features)  # (n, Tw, H, W)
                part = semantic_scores_from_probabilities(probs[chunk].to(masks.device), masks)  # (K, Tw, H, W)
                scores = part if scores is None else scores + part
            labels = scores.argmax(0) if scores is not None else torch.zeros((stop - start, height, width),
                                                                              dtype=torch.int64)
            for t in range(stop - start):
                sink.add(window[t], SemanticFrame(start + t, labels[t]))
        return
    rules = panoptic_rules(cfg, inp.num_things)
    keep, scores, labels = keep_by_probabilities(segments.probs, rules)  # (n,) host
    area = torch.zeros(len(keep), dtype=torch.int64)
    orig = torch.zeros(len(keep), dtype=torch.int64)
    if len(keep):
        for start, stop, _, features in windows():  # pass 2a: the overlap rule's counts over the whole video
            masks = model.segment_mask_logits(state, segments, keep, start, stop, features)  # (n, Tw, H, W)
            a, o = panoptic_counts(scores.to(masks.device), masks)
            area += a.cpu()
            orig += o.cpu()
    ok = segments_kept(area, orig, rules)  # (n,)
    kept = keep[ok]
    for start, stop, window, features in windows():  # pass 2b: pixels of the kept segments
        if len(keep):
            masks = model.segment_mask_logits(state, segments, keep, start, stop, features)
            pixels = panoptic_pixels(scores.to(masks.device), masks, ok.to(masks.device)).cpu()  # (Tw, H, W)
        else:
            pixels = torch.full((stop - start, height, width), -1, dtype=torch.int64)
        for t in range(stop - start):
            sink.add(window[t], PanopticFrame(start + t, pixels[t], segments.track_ids[kept], labels[ok],
                                              scores[ok], labels[ok] < rules.num_things))


def _panoptic_overlay(frame: np.ndarray, result: PanopticFrameResult, names: Sequence[str]) -> np.ndarray:
    """The frame with each segment blended in its id's colour and labelled with its class."""
    from spvis.viz.overlay import draw_overlay

    segments = result.segments
    masks = result.ids[None] == np.array([s["id"] for s in segments], dtype=np.uint32).reshape(-1, 1, 1)
    return draw_overlay(frame, masks, [s["id"] for s in segments], [s["label"] for s in segments], names)


def _semantic_overlay(frame: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The frame with each class's pixels blended in the class's colour and labelled."""
    from spvis.viz.overlay import draw_overlay

    classes = np.unique(labels)
    masks = labels[None] == classes.reshape(-1, 1, 1)
    return draw_overlay(frame, masks, classes.tolist(), classes.tolist(), names)


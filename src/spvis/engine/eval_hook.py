"""Periodic evaluation during training: sharded inference on DATASETS.TEST[0], gathered, scored on rank 0.

Videos are dealt to ranks round-robin; every rank runs the online (``OnlineTracker``) or offline
(``run_offline``) engine on its share per TEST.MODE, the result entries are gathered, and the main process
scores them with ``spvis.evaluation.evaluate`` (VIS AP + tracking metrics). Other ranks return {}.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from torch import nn

from spvis.engine.distributed import DistContext, gather_objects, shard
from spvis.errors import ConfigError


def predict_videos(model: nn.Module, cfg: Any, dataset: Any, videos: list[Any]) -> list[dict]:
    """Result entries ({video_id, category_id, score, segmentations}) of ``videos`` in TEST.MODE."""
    from spvis.data.frames import open_frame_source

    category_ids = list(dataset.contiguous_to_dataset_id)
    root = dataset.image_root if dataset.image_root is not None else dataset.json_path.parent
    entries: list[dict] = []
    if cfg.TEST.MODE == "offline":
        from spvis.engine.offline import run_offline

        for video in videos:
            result = run_offline(model, cfg, open_frame_source(video, image_root=root), video_id=video.id,
                                 category_ids=category_ids)
            entries.extend(result.entries)
        return entries
    from spvis.engine.streaming import OnlineTracker

    tracker = OnlineTracker(model, cfg)
    for video in videos:
        # drain the stream: per-frame results are summarised inside the tracker; the video entries come below
        deque(tracker.stream(open_frame_source(video, image_root=root), source=str(dataset.json_path)), maxlen=0)
        entries.extend(tracker.video_result(video.id, category_ids=category_ids).entries)
    return entries


def build_eval_hook(cfg: Any, ctx: DistContext) -> Callable[[nn.Module, int], dict] | None:
    """``evaluate(model, iteration) -> metrics`` for the trainer, or None for the segmenter stage.

    The segmenter stage has no trained tracker yet, so tracking metrics would score a random tracker.
    """
    if cfg.STAGE == "segmenter":
        if ctx.is_main:
            print("note: no periodic evaluation in the segmenter stage (videos need the tracker stage)", flush=True)
        return None
    try:
        from spvis.evaluation import evaluate
    except ImportError:
        raise ConfigError("DATASETS.TEST is set but spvis.evaluation.evaluate is not available in this "
                          "installation; clear DATASETS.TEST to train without evaluation") from None
    from spvis.data.catalog import load_dataset, resolve_dataset

    spec = resolve_dataset(cfg.DATASETS.TEST[0], cfg=cfg)
    dataset = load_dataset(spec)
    if not dataset.has_annotations:
        raise ConfigError(f"DATASETS.TEST[0] = {cfg.DATASETS.TEST[0]!r} ({spec.json}) has no annotations to "
                          "evaluate against")
    mine = shard(list(dataset.videos), ctx.rank, ctx.world_size)

    def run(model: nn.Module, iteration: int) -> dict:
        entries = predict_videos(model, cfg, dataset, mine)
        gathered = gather_objects(entries)
        if not ctx.is_main:
            return {}
        results = [e for part in gathered for e in part]
        return evaluate(str(spec.json), results, track_score_thr=float(cfg.TEST.TRACK_SCORE_THR))

    return run

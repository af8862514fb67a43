"""Periodic evaluation during training: the stage's whole accuracy chain on DATASETS.TEST[0].

Every stage must be at least as good as its input, so each evaluation scores the chain up to the stage
being trained, on the same videos:

* segmenter stage: ``minvis`` (the segmenter with MinVIS association, no tracker);
* tracker stage: ``minvis`` and ``online`` (segmenter + the learned tracker);
* refiner stage: ``minvis``, ``online`` and ``offline`` (+ the refiner).

Videos are dealt to ranks round-robin; every rank runs inference on its share, the result entries are
gathered and the main process scores them with ``spvis.evaluation.evaluate``. The hook returns
``{mode: metrics}`` (other ranks return {}) and prints one chain line, marking a link that is worse than
the one before it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from torch import nn

from spvis.engine.distributed import DistContext, gather_objects, shard
from spvis.errors import ConfigError

STAGE_CHAIN = {"segmenter": ("minvis",), "tracker": ("minvis", "online"), "refiner": ("minvis", "online", "offline")}


def predict_videos(model: nn.Module, cfg: Any, dataset: Any, videos: list[Any], mode: str) -> list[dict]:
    """Result entries ({video_id, category_id, score, segmentations}) of ``videos``.

    ``mode``: ``minvis`` (online, MinVIS association), ``online`` (learned tracker) or ``offline``.
    """
    from spvis.data.frames import open_frame_source

    category_ids = list(dataset.contiguous_to_dataset_id)
    root = dataset.image_root if dataset.image_root is not None else dataset.json_path.parent
    entries: list[dict] = []
    if mode == "offline":
        from spvis.engine.offline import run_offline

        for video in videos:
            result = run_offline(model, cfg, open_frame_source(video, image_root=root), video_id=video.id,
                                 category_ids=category_ids)
            entries.extend(result.entries)
        return entries
    from spvis.engine.streaming import OnlineTracker

    tracker = OnlineTracker(model, cfg, association="minvis" if mode == "minvis" else "learned")
    for video in videos:
        # drain the stream: per-frame results are summarised inside the tracker; the video entries come below
        deque(tracker.stream(open_frame_source(video, image_root=root), source=str(dataset.json_path)), maxlen=0)
        entries.extend(tracker.video_result(video.id, category_ids=category_ids).entries)
    return entries


def chain_line(iteration: int, scores: dict[str, dict]) -> str:
    """``minvis AP 51.2 IDF1 70.1 <= online AP ...`` (x100); a link worse than the previous one is marked."""
    parts, previous = [], None
    for mode, metrics in scores.items():
        ap = 100 * float(metrics.get("AP", -1))
        idf1 = 100 * float(metrics.get("tracking", {}).get("pooled", {}).get("IDF1", -1))
        link = "" if previous is None else (" <= " if ap >= previous else " > (worse!) ")
        parts.append(f"{link}{mode} AP {ap:.1f} IDF1 {idf1:.1f}")
        previous = ap
    return f"evaluation chain at iteration {iteration}: " + "".join(parts)


def build_eval_hook(cfg: Any, ctx: DistContext) -> Callable[[nn.Module, int], dict]:
    """``evaluate(model, iteration) -> {mode: metrics}`` over the stage's chain (see the module docstring)."""
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
    modes = STAGE_CHAIN[cfg.STAGE]

    def run(model: nn.Module, iteration: int) -> dict:
        scores: dict[str, dict] = {}
        for mode in modes:
            gathered = gather_objects(predict_videos(model, cfg, dataset, mine, mode))
            if ctx.is_main:
                results = [e for part in gathered for e in part]
                scores[mode] = evaluate(str(spec.json), results, track_score_thr=float(cfg.TEST.TRACK_SCORE_THR))
        if ctx.is_main:
            print(chain_line(iteration, scores), flush=True)
        return scores

    return run

"""Streaming online inference: per-frame results, per-video top-k entries, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from _tracker_fakes import FakeSegmenterModel, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.engine.streaming import OnlineTracker, resized_shape
from spvis.errors import DataFormatError, SpvisError
from spvis.modeling.postprocess import vis_topk


def _frames(count: int, height: int = 50, width: int = 70, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=2 * t, axis=1) for t in range(count)]


def test_resized_shape_follows_detectron2_rule():
    assert resized_shape(480, 854, 360, 1333) == (360, 641)
    assert resized_shape(128, 192, 128, 1333) == (128, 192)
    assert resized_shape(100, 1000, 360, 1333) == (133, 1333)


def test_stream_yields_frames_at_original_size_and_topk_entries():
    cfg = tiny_cfg()
    model = FakeSegmenterModel(cfg)
    engine = OnlineTracker(model, cfg, score_thr=0.0)
    results = list(engine.stream(_frames(5)))
    assert [r.frame_index for r in results] == list(range(5))
    for r in results:
        assert r.masks.dtype == bool and r.masks.shape[1:] == (50, 70)
        assert len(r.track_ids) == len(r.labels) == len(r.scores) == r.masks.shape[0]
    video = engine.video_result(7)
    assert video.num_frames == 5 and (video.height, video.width) == (50, 70)
    assert len(video.entries) == cfg.TEST.MAX_NUM
    scores = [e["score"] for e in video.entries]
    assert scores == sorted(scores, reverse=True)
    for entry in video.entries:
        assert entry["video_id"] == 7 and 1 <= entry["category_id"] <= cfg.MODEL.NUM_CLASSES
        assert len(entry["segmentations"]) == 5
        assert mask_utils.decode(entry["segmentations"][0]).shape == (50, 70)


def test_video_entries_equal_official_rule_on_whole_clip_logits():
    cfg = tiny_cfg()
    model = FakeSegmenterModel(cfg).eval()
    frames = _frames(4)
    engine = OnlineTracker(model, cfg, score_thr=0.0)
    list(engine.stream(frames))
    entries = engine.video_result(1).entries
    with torch.no_grad():
        images = torch.cat([engine.preprocess(f)[0] for f in frames])
        seg = model.segment(images)
        out, _ = model.tracker(seg["pred_embds"].unsqueeze(0), seg["mask_features"].unsqueeze(0))
    scores, labels, _ = vis_topk(out["pred_logits"][0].mean(0), cfg.TEST.MAX_NUM)
    np.testing.assert_allclose(sorted(e["score"] for e in entries), sorted(scores.tolist()), atol=1e-5)
    assert sorted(e["category_id"] for e in entries) == sorted((labels + 1).tolist())


def test_mixed_frame_sizes_is_a_one_line_error():
    cfg = tiny_cfg()
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg)
    frames = _frames(2) + _frames(1, height=60)
    with pytest.raises(DataFormatError, match="frame 2.*size"):
        list(engine.stream(frames, source="clip_dir"))


def test_zero_frames_has_nothing_to_report():
    cfg = tiny_cfg()
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg)
    assert list(engine.stream([])) == []
    with pytest.raises(SpvisError, match="no frames"):
        engine.video_result("empty")


def test_category_ids_map_contiguous_labels_to_dataset_ids():
    cfg = tiny_cfg()
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg)
    list(engine.stream(_frames(2)))
    entries = engine.video_result(3, category_ids=[10, 20, 30]).entries
    assert {e["category_id"] for e in entries} <= {10, 20, 30}


def test_lifecycle_stream_with_no_live_track_reports_nothing():
    cfg = tiny_cfg(MEMORY=True, LIFECYCLE=True, BIRTH_SCORE_THR=1.1)  # nothing can be born
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg, score_thr=0.0)
    results = list(engine.stream(_frames(3)))
    assert all(r.masks.shape == (0, 50, 70) for r in results)
    assert engine.video_result(1).entries == []


def test_lifecycle_stream_entries_use_track_ids_and_null_before_birth():
    cfg = tiny_cfg(MEMORY=True, LIFECYCLE=True, CLIP_ASSOCIATION=True, CLIP_LEN=2, BIRTH_SCORE_THR=0.0,
                   MEMORY_SCORE_THR=0.0)
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg, score_thr=0.0)
    list(engine.stream(_frames(5)))
    video = engine.video_result(1)
    assert video.entries
    for entry in video.entries:
        segs = entry["segmentations"]
        assert len(segs) == 5
        first = next(i for i, s in enumerate(segs) if s is not None)
        assert all(s is None for s in segs[:first])


def test_stream_restores_training_mode():
    cfg = tiny_cfg()
    model = FakeSegmenterModel(cfg).train()
    engine = OnlineTracker(model, cfg)
    stream = engine.stream(_frames(3))
    next(stream)
    assert not model.training and not model.tracker.training
    list(stream)
    assert model.training and model.tracker.training


def test_model_without_tracker_is_a_clear_error():
    cfg = tiny_cfg()
    model = FakeSegmenterModel(cfg)
    model.tracker = None
    with pytest.raises(SpvisError, match="TRACKER.ENABLED"):
        OnlineTracker(model, cfg)

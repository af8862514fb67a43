"""Streaming online inference: per-frame results, per-video top-k entries, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from pycocotools import mask as mask_utils

from _tracker_fakes import FakeSegmenterModel, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.engine.streaming import OnlineTracker
from spvis.errors import DataFormatError, SpvisError
from spvis.modeling.inference import OnlineInferenceMixin
from spvis.modeling.postprocess import vis_topk
from spvis.modeling.preprocessing import Preprocessor, resized_shape


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
        images = model.preprocessor(np.stack(frames)).images
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


class _ScriptedTracker(nn.Module):
    """A tracker whose per-frame output is a script: ``frames[t]`` = {slot: (track id, label, mask)}.

    Slots not in the script hold no track (id -1). Logits are +8 on the label and -5 on no-object, or
    ``logit_rows[t][slot]`` when given. Masks are (H, W) bool at the frame size (the test input is neither
    resized nor padded, so a +-10 logit map comes back as exactly that mask).
    """

    def __init__(self, frames, num_slots=6, num_classes=3, logit_rows=None):
        super().__init__()
        self.frames, self.num_slots, self.num_classes = frames, num_slots, num_classes
        self.logit_rows = logit_rows or {}
        self.dummy = nn.Parameter(torch.zeros(1))

    def step(self, frame_embeds, mask_features, state=None, frame_masks=None, frame_logits=None):
        t = 0 if state is None else state + 1
        height, width = mask_features.shape[-2:]
        ids = torch.full((1, self.num_slots), -1, dtype=torch.int64)
        logits = torch.zeros(1, self.num_slots, self.num_classes + 1)
        masks = torch.full((1, self.num_slots, height, width), -10.0)
        for slot, (track_id, label, mask) in self.frames[t].items():
            ids[0, slot] = track_id
            row = self.logit_rows.get(t, {}).get(slot)
            if row is None:
                logits[0, slot, label], logits[0, slot, -1] = 8.0, -5.0
            else:
                logits[0, slot] = torch.tensor(row)
            masks[0, slot][torch.from_numpy(mask)] = 10.0
        return {"pred_logits": logits, "pred_masks": masks, "track_ids": ids}, t


class _ScriptedModel(OnlineInferenceMixin, nn.Module):
    def __init__(self, tracker):
        super().__init__()
        self.tracker = tracker
        self.preprocessor = Preprocessor.from_config(_scripted_cfg())

    def segment(self, images):
        return {"pred_embds": torch.zeros(1, self.tracker.num_slots, 4), "mask_features": torch.zeros(1, 4, *images.shape[-2:])}


def _scripted_cfg():
    cfg = tiny_cfg()
    cfg.INPUT.MIN_SIZE_TEST = 32  # a 32x32 frame is neither resized nor padded (SIZE_DIVISIBILITY 32)
    cfg.INPUT.MAX_SIZE_TEST = 32
    cfg.TEST.MAX_NUM = 3
    return cfg


def _box(y: int, x: int, size: int = 6) -> np.ndarray:
    mask = np.zeros((32, 32), dtype=bool)
    mask[y:y + size, x:x + size] = True
    return mask


def _decode(rle: dict) -> np.ndarray:
    return mask_utils.decode(dict(rle, counts=rle["counts"].encode())).astype(bool)


def _blank_frames(count: int) -> list[np.ndarray]:
    return [np.full((32, 32, 3), 128, dtype=np.uint8) for _ in range(count)]


def test_category_ids_map_contiguous_labels_to_dataset_ids():
    """Each entry's category is the dataset id of ITS track's label, not merely some dataset id."""
    script = [{0: (0, 2, _box(2, 2)), 1: (1, 0, _box(20, 20)), 4: (4, 1, _box(2, 20))} for _ in range(2)]
    cfg = _scripted_cfg()
    engine = OnlineTracker(_ScriptedModel(_ScriptedTracker(script)), cfg, score_thr=0.0)
    list(engine.stream(_blank_frames(2)))
    entries = engine.video_result(3, category_ids=[10, 20, 30]).entries
    # top 3 over (track, class): each track's own label, mapped 0 -> 10, 1 -> 20, 2 -> 30
    corner = {tuple(int(v) for v in np.argwhere(_decode(e["segmentations"][0]))[0]): e["category_id"]
              for e in entries}  # top-left pixel of each entry's frame-0 mask -> its category
    assert corner == {(2, 2): 30, (20, 20): 10, (2, 20): 20}
    assert all(e["video_id"] == 3 for e in entries)


def test_lifecycle_stream_with_no_live_track_reports_nothing():
    cfg = tiny_cfg(MEMORY=True, LIFECYCLE=True, BIRTH_SCORE_THR=1.1)  # nothing can be born
    engine = OnlineTracker(FakeSegmenterModel(cfg), cfg, score_thr=0.0)
    results = list(engine.stream(_frames(3)))
    assert all(r.masks.shape == (0, 50, 70) for r in results)
    assert engine.video_result(1).entries == []


def test_track_entries_follow_track_ids_across_slots_with_null_before_birth_and_in_gaps():
    """Hand-scripted tracker output: entries are keyed by track id (not slot), with null exactly where a
    track holds no slot, each mask on its own frame, and the score from the mean logits of its frames."""
    a = {t: _box(2, 2 + 3 * t) for t in range(5)}  # track 4 moves right
    b = {t: _box(20, 4 + 2 * t) for t in range(5)}  # track 11 born on frame 2
    script = [
        {0: (4, 0, a[0])},
        {0: (4, 0, a[1])},
        {0: (4, 0, a[2]), 3: (11, 2, b[2])},
        {3: (11, 2, b[3])},  # track 4 loses its slot on frame 3 ...
        {5: (4, 0, a[4]), 3: (11, 2, b[4])},  # ... and comes back in another slot on frame 4
    ]
    rows = {t: {0: [2.0 + t, 0.0, 0.0, 0.0]} for t in range(3)}  # track 4: label-0 logits 2, 3, 4 ...
    rows[4] = {5: [5.0, 0.0, 0.0, 0.0]}  # ... and 5: mean over its 4 frames = 3.5
    cfg = _scripted_cfg()
    engine = OnlineTracker(_ScriptedModel(_ScriptedTracker(script, logit_rows=rows)), cfg, score_thr=0.0)
    frames = list(engine.stream(_blank_frames(5)))
    assert [sorted(r.track_ids.tolist()) for r in frames] == [[4], [4], [4, 11], [11], [4, 11]]
    video = engine.video_result(9, category_ids=[10, 20, 30])
    assert video.num_frames == 5
    four = max((e for e in video.entries if e["category_id"] == 10), key=lambda e: e["score"])
    eleven = max((e for e in video.entries if e["category_id"] == 30), key=lambda e: e["score"])
    assert [s is None for s in four["segmentations"]] == [False, False, False, True, False]
    assert [s is None for s in eleven["segmentations"]] == [True, True, False, False, False]
    for t in (0, 1, 2, 4):
        assert np.array_equal(_decode(four["segmentations"][t]), a[t]), t
    for t in (2, 3, 4):
        assert np.array_equal(_decode(eleven["segmentations"][t]), b[t]), t
    # track 4: mean logits (3.5, 0, 0, 0) -> p(label 0) = e^3.5 / (e^3.5 + 3)
    assert abs(four["score"] - np.exp(3.5) / (np.exp(3.5) + 3)) < 1e-6
    # track 11: mean logits (0, 0, 8, -5) -> e^8 / (e^8 + 2 + e^-5)
    assert abs(eleven["score"] - np.exp(8) / (np.exp(8) + 2 + np.exp(-5))) < 1e-6
    # top 3 of (track, class): track 11 label 2, track 4 label 0, then the larger runner-up, track 4's
    # labels 1/2 at 1 / (e^3.5 + 3) = 0.0278 vs track 11's labels 0/1 at 1 / (e^8 + 2 + e^-5) = 0.0003
    assert [e["category_id"] for e in video.entries][:2] == [30, 10]
    assert video.entries[2]["segmentations"] == four["segmentations"]


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

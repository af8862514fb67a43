"""The model owns online inference: explicit state, ``step`` == ``stream``, a state saved and restored mid-video."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import spvis
from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.config import load_config
from spvis.errors import SpvisError
from spvis.modeling.inference import OnlineState
from spvis.modeling.meta_arch import SPVISModel
from spvis.predictor import VideoSegmenter

REPO = Path(__file__).resolve().parent.parent


def _frames(count: int = 6, height: int = 40, width: int = 56, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=3 * t, axis=1) for t in range(count)]


def _segmenter(**overrides) -> VideoSegmenter:
    """A tiny random SPVIS model (the real modules, the synth recipe's architecture) with config overrides."""
    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", [
        "MODEL.TRACKER.ENABLED=true", "MODEL.DEVICE=cpu", "INPUT.MIN_SIZE_TEST=48", "INPUT.MAX_SIZE_TEST=96",
        "MODEL.DECODER.NUM_QUERIES=8", "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1",
        *[f"{key}={value}" for key, value in overrides.items()]])
    torch.manual_seed(0)
    return VideoSegmenter(SPVISModel.from_config(cfg).eval(), cfg)


def _same(a, b) -> None:
    assert a.frame_index == b.frame_index
    assert np.array_equal(a.track_ids, b.track_ids) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.masks, b.masks)


LIFECYCLE = {"MODEL.TRACKER.PGT.MEMORY": True, "MODEL.TRACKER.PGT.LIFECYCLE": True,
             "MODEL.TRACKER.PGT.CLIP_ASSOCIATION": True, "MODEL.TRACKER.PGT.CLIP_LEN": 2,
             "MODEL.TRACKER.PGT.BIRTH_SCORE_THR": 0.0, "MODEL.TRACKER.PGT.MEMORY_SCORE_THR": 0.0}


QUERY_PGT = {"TEST.TRACKER": "pgt", "MODEL.TRACKER.PGT.DET_SCORE_THR": 0.0,
             "MODEL.TRACKER.PGT.BIRTH_SCORE_THR": 0.0}

# the mask-overlap alignment with motion, for the tracker and for MinVIS (every query counts as confident below)
ALIGN = {"MODEL.TRACKER.ALIGN_MASK_WEIGHT": 1.0, "MODEL.TRACKER.ALIGN_MOTION": True}
MINVIS_ALIGN = {"TEST.TRACKER": "minvis", "TEST.MINVIS_MASK_WEIGHT": 1.0, "MODEL.TRACKER.ALIGN_MOTION": True}


@pytest.fixture(autouse=True)
def every_query_confident(monkeypatch):
    """A random model's class scores are near uniform: let every query feed the mask-overlap memory."""
    monkeypatch.setattr("spvis.modeling.pgt.matching.MASK_MEMORY_SCORE", 0.0)


@pytest.mark.parametrize("overrides", [{}, {"TEST.TRACKER": "minvis"}, {"TEST.SNAP_IOU": 0.3}, LIFECYCLE, QUERY_PGT,
                                       ALIGN, MINVIS_ALIGN],
                         ids=["learned", "minvis", "snap", "pgt-lifecycle", "pgt-queries", "align", "minvis-align"])
def test_step_equals_stream_frame_for_frame(overrides):
    segmenter, frames = _segmenter(**overrides), _frames()
    state = segmenter.init_state()
    stepped = [segmenter.step(state, frame, score_thr=0.0) for frame in frames]
    streamed = list(segmenter.stream(frames, score_thr=0.0))
    assert len(stepped) == len(streamed) == len(frames) and state.frame_index == len(frames)
    for a, b in zip(stepped, streamed, strict=True):
        _same(a, b)
    assert any(len(r.track_ids) for r in stepped)


@pytest.mark.parametrize("overrides", [{}, {"TEST.TRACKER": "minvis"}, LIFECYCLE, QUERY_PGT, ALIGN, MINVIS_ALIGN],
                         ids=["learned", "minvis", "pgt-lifecycle", "pgt-queries", "align", "minvis-align"])
def test_a_saved_state_resumes_the_video_exactly(overrides):
    """Save after 3 frames (torch.save of state_dict(), read back with weights_only=True), restore, and continue:
    the same results as the uninterrupted run, which keeps going on its own state."""
    segmenter, frames = _segmenter(**overrides), _frames(7)
    state = segmenter.init_state()
    for frame in frames[:3]:
        segmenter.step(state, frame, score_thr=0.0)
    buffer = io.BytesIO()
    torch.save(state.state_dict(), buffer)
    buffer.seek(0)
    restored = OnlineState.from_state_dict(torch.load(buffer, weights_only=True), device="cpu")
    assert restored.frame_index == 3 and tuple(restored.frame_size) == (40, 56)
    if overrides in (ALIGN, MINVIS_ALIGN):  # the slot memory travels with the state
        assert restored.association_state.slot_masks.masks.any()
    for frame in frames[3:]:
        _same(segmenter.step(state, frame, score_thr=0.0), segmenter.step(restored, frame, score_thr=0.0))


def test_one_model_tracks_two_videos_at_once():
    segmenter, a, b = _segmenter(), _frames(seed=1), _frames(seed=2)
    alone_a = [segmenter.step(s, f) for s in [segmenter.init_state()] for f in a]
    alone_b = [segmenter.step(s, f) for s in [segmenter.init_state()] for f in b]
    state_a, state_b = segmenter.init_state(), segmenter.init_state()
    for fa, fb, ra, rb in zip(a, b, alone_a, alone_b):
        _same(segmenter.step(state_a, fa), ra)
        _same(segmenter.step(state_b, fb), rb)


def test_state_errors_are_one_line():
    segmenter = _segmenter()
    state = segmenter.init_state()
    segmenter.step(state, _frames(1)[0])
    with pytest.raises(spvis.SpvisError, match="frame 1.*differs"):
        segmenter.step(state, _frames(1, height=32)[0])
    with pytest.raises(SpvisError, match="unknown association 'nope'"):
        segmenter.model.init_state(association="nope")
    with pytest.raises(ValueError, match="cannot hold a 'Popen'"):
        OnlineState.from_state_dict({"__class__": "Popen", "attributes": {}})

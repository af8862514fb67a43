"""The package top level is the public API: every name resolves, and the README's example runs."""

import numpy as np

import spvis


def test_every_public_name_resolves():
    for name in spvis.__all__:
        assert getattr(spvis, name) is not None


def test_readme_example_tracks_a_synthetic_video(tmp_path):
    written = spvis.generate_synthetic_dataset(tmp_path / "d", videos=1, frames=4, size=(96, 128),
                                               categories=6, occlusion="none", valid_fraction=0.0, seed=3)
    dataset = spvis.load_video_dataset(written["train_json"], written["train_image_root"])
    model, cfg = spvis.load_model()  # the built-in demo model
    tracker = spvis.OnlineTracker(model, cfg)
    frames = list(spvis.open_frame_source(dataset.videos[0], image_root=dataset.image_root))
    results = list(tracker.stream(frames))
    assert [r.frame_index for r in results] == [0, 1, 2, 3]
    assert all(r.masks.shape[-2:] == (96, 128) for r in results)
    # the demo model finds the objects: every frame has at least one confident track
    assert all(len(r.track_ids) > 0 and np.all(r.scores >= 0) for r in results)


def test_load_stream_predict_and_save_pretrained(tmp_path):
    import pytest

    written = spvis.generate_synthetic_dataset(tmp_path / "d", videos=1, frames=5, size=(96, 128),
                                               categories=6, occlusion="none", valid_fraction=0.0, seed=4)
    dataset = spvis.load_video_dataset(written["train_json"], written["train_image_root"])
    folder = (dataset.image_root / dataset.videos[0].file_names[0]).parent
    segmenter = spvis.load("demo")
    assert "demo" in spvis.list_models() and len(segmenter.names) == segmenter.cfg.MODEL.NUM_CLASSES
    streamed = list(segmenter.stream(folder, max_frames=3))
    assert [r.frame_index for r in streamed] == [0, 1, 2]
    online = segmenter.predict(folder)
    offline = segmenter.predict(folder, mode="offline")
    for video in (online, offline):
        assert video.num_frames == 5 and video.entries
        assert all(len(e["segmentations"]) == 5 for e in video.entries)
    saved = segmenter.save_pretrained(tmp_path / "folder")
    assert saved.name == "model.safetensors" and (tmp_path / "folder" / "MODEL_CARD.md").is_file()
    again = spvis.load(tmp_path / "folder")
    assert [r.track_ids.tolist() for r in again.stream(folder, max_frames=3)] == \
        [r.track_ids.tolist() for r in streamed]
    with pytest.raises(spvis.SpvisError, match="nope.mp4: no such video"):
        list(segmenter.stream(tmp_path / "nope.mp4"))

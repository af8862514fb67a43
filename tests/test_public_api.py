"""The package top level is the public API: every name resolves, and the README's example runs."""

import importlib
import inspect

import numpy as np
import pytest

import spvis


def test_every_public_name_is_the_object_its_module_defines():
    assert spvis.__all__ == sorted(spvis._EXPORTS) + ["__version__"] and dir(spvis) == sorted(spvis.__all__)
    for name, module in spvis._EXPORTS.items():
        assert getattr(spvis, name) is getattr(importlib.import_module(module), name), name
    assert isinstance(spvis.__version__, str) and spvis.__version__.count(".") == 2
    assert inspect.isclass(spvis.VideoSegmenter) and issubclass(spvis.SpvisError, Exception)
    assert spvis.BUILTIN_WEIGHTS.is_file()
    # the documented keywords of the entry points (README "Python API")
    assert {"resume", "overwrite", "num_processes"} <= set(inspect.signature(spvis.train).parameters)
    assert {"device", "half"} <= set(inspect.signature(spvis.load).parameters)
    with pytest.raises(AttributeError, match="module 'spvis' has no attribute 'nope'"):
        spvis.nope  # noqa: B018


def test_readme_example_tracks_a_synthetic_video(tmp_path):
    written = spvis.generate_synthetic_dataset(tmp_path / "d", videos=1, frames=4, size=(96, 128),
                                               categories=6, occlusion="none", valid_fraction=0.0, seed=3)
    dataset = spvis.load_video_dataset(written["train_json"], written["train_image_root"])
    model, cfg = spvis.load_model()  # the built-in demo model
    tracker = spvis.OnlineTracker(model, cfg)
    frames = list(spvis.open_frame_source(dataset.videos[0], image_root=dataset.image_root))
    results = list(tracker.stream(frames))
    assert [r.frame_index for r in results] == [0, 1, 2, 3]
    for r in results:
        n = len(r.track_ids)
        assert n > 0 and r.masks.shape == (n, 96, 128) and r.masks.dtype == bool
        assert r.scores.shape == r.labels.shape == (n,) and len(set(r.track_ids.tolist())) == n
        assert np.all((r.scores > 0) & (r.scores <= 1)) and r.scores.max() >= 0.5
    # the demo model finds the red disc (the video's only object of its class) in every frame, with its class
    # and one track id throughout
    from spvis.data.rle import decode_rle

    disc = next(t for t in dataset.tracks(dataset.videos[0].id) if dataset.dataset_to_contiguous_id[t.category_id] == 0)
    found = []
    for r in results:
        gt = decode_rle(disc.segmentations[r.frame_index])
        ious = [(gt & m).sum() / (gt | m).sum() for m in r.masks]
        best = int(np.argmax(ious))
        assert ious[best] > 0.9 and r.labels[best] == 0, (r.frame_index, ious)
        found.append(int(r.track_ids[best]))
    assert len(set(found)) == 1


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

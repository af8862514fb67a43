"""Streaming online inference on the official bundle reproduces DVIS_online's per-video results.

The checkpoint holds refiner keys too, so the model is built from the offline config; the online engine
uses only its segmenter and tracker (bit-identical to DVIS_online per the bundle README)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.engine.streaming import OnlineTracker


@pytest.fixture(scope="module")
def official(test_data_dir):
    importer = pytest.importorskip("spvis.checkpoints.importer")
    bundle = test_data_dir / "dvis_official_tiny"
    model, cfg = importer.build_official_model(bundle / "checkpoint.pth", bundle / "config.yaml", "dvis")
    frames = np.load(bundle / "inputs.npz")["frames"]
    return model.eval(), cfg, frames, dict(np.load(bundle / "outputs.npz"))


def test_stream_reproduces_official_online_results(official):
    model, cfg, frames, outputs = official
    engine = OnlineTracker(model, cfg, score_thr=0.5)
    per_frame = list(engine.stream(iter(frames)))
    assert len(per_frame) == len(frames)
    entries = engine.video_result(0).entries
    official_rows = sorted(zip(outputs["final_online_labels"].tolist(), outputs["final_online_scores"].tolist(),
                               range(10)), key=lambda r: -r[1])
    assert len(entries) == len(official_rows)
    by_score = sorted(entries, key=lambda e: -e["score"])
    for entry, (label, score, row) in zip(by_score, official_rows):
        assert entry["category_id"] == label + 1
        assert abs(entry["score"] - score) < 1e-5
        masks = np.stack([mask_utils.decode(s) for s in entry["segmentations"]])  # (T, H, W)
        assert int((masks != outputs["final_online_masks"][row]).sum()) <= 60

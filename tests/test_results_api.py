"""Results that draw and serialise themselves (FrameResult / VideoResult .plot, .to_dict, .to_json,
VideoResult.track) and the streaming VISEvaluator, equal to `spvis eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import spvis
from spvis.cli.main import main
from spvis.errors import DataFormatError
from spvis.evaluation import VISEvaluator

EVAL = Path(__file__).parent / "data" / "eval"
BENCHMARK_KEYS = {"video_id", "category_id", "score", "segmentations"}


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    written = spvis.generate_synthetic_dataset(root, videos=1, frames=4, size=(96, 128), categories=6,
                                               occlusion="none", valid_fraction=0.0, seed=4)
    return written, next(Path(written["train_image_root"]).iterdir())


def test_video_result_tracks_plots_and_serialises(synth_video, tmp_path):
    written, folder = synth_video
    video = spvis.load("demo", device="cpu").predict(folder)
    assert video.name == folder.name and video.source == str(folder)
    assert len(video.entry_track_ids) == len(video.entries) and set(video.track_ids) == set(video.entry_track_ids)
    assert all(set(e) == BENCHMARK_KEYS for e in video.entries)  # track ids are kept beside the entries
    first = video.track(video.track_ids[0])
    assert first and all(video.entry_track_ids[video.entries.index(e)] == video.track_ids[0] for e in first)
    with pytest.raises(KeyError, match="no track 9999"):
        video.track(9999)
    assert video.masks(first[0]).shape == (4, 96, 128)

    text = video.to_json(tmp_path / "results.json")
    entries = json.loads(text)
    assert entries == json.loads((tmp_path / "results.json").read_text())
    assert entries and all(set(e) == BENCHMARK_KEYS for e in entries)
    assert video.to_dict()["results"] == entries and video.to_dict()["name"] == folder.name
    metrics = spvis.evaluate(written["train_json"], tmp_path / "results.json")  # the benchmark format, scorable
    assert metrics["AP"] > 0.3

    frame = np.asarray(next(iter(spvis.open_frame_source(folder))))
    overlay = video.plot(0)
    assert overlay.shape == frame.shape and overlay.dtype == np.uint8 and (overlay != frame).any()
    assert np.array_equal(video.plot(0, score_thr=1.01), frame)  # nothing above the threshold: the frame itself


def test_frame_results_plot_and_serialise(synth_video):
    _, folder = synth_video
    results = list(spvis.load("demo", device="cpu").stream(folder, max_frames=2))
    result = results[1]
    overlay = result.plot()
    assert overlay.shape == (96, 128, 3) and (overlay != result.frame).any()
    data = json.loads(result.to_json())
    assert data["frame_index"] == 1 and len(data["instances"]) == len(result.track_ids)
    instance = data["instances"][0]
    assert instance["name"] in spvis.load("demo").names and set(instance["segmentation"]) == {"size", "counts"}


def test_vis_evaluator_streams_videos_and_equals_spvis_eval(tmp_path, capsys):
    entries = json.loads((EVAL / "blobs_results.json").read_text())
    by_video: dict[int, list[dict]] = {}
    for entry in entries:
        by_video.setdefault(entry["video_id"], []).append(entry)
    evaluator = VISEvaluator(EVAL / "blobs_gt.json", per_category=True)
    for video_id, video_entries in by_video.items():
        evaluator.process(video_id, [{k: v for k, v in e.items() if k != "video_id"} for e in video_entries])
    streamed = evaluator.evaluate()

    ordered = tmp_path / "results.json"  # the same entries, in processing order, through the CLI
    ordered.write_text(json.dumps([e for v in by_video.values() for e in v]))
    assert main(["eval", "--gt", str(EVAL / "blobs_gt.json"), "--pred", str(ordered), "--per-category",
                 "--out", str(tmp_path / "metrics.json")]) == 0
    capsys.readouterr()
    assert json.loads(json.dumps(streamed)) == json.loads((tmp_path / "metrics.json").read_text())

    with pytest.raises(DataFormatError, match="processed twice"):
        evaluator.process(1, by_video[1])
    with pytest.raises(DataFormatError, match="belongs to video 2"):
        evaluator.process(3, by_video[2])
    evaluator.reset()
    assert evaluator.evaluate()["info"]["num_results"] == 0

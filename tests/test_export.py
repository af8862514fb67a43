"""`spvis export` (ONNX / TorchScript graphs of the segmenter and the tracker step) and `spvis infer --backend`.

The graphs must agree with the eager model within the stated tolerance, the graph backend must give the same track
ids and scores as eager through the same online pipeline, and bad export folders are one-line errors naming the file
and the field. One tiny random model is exported once per format for the module (ONNX export: ~10 s of CPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from test_reliability import TINY, weights  # noqa: F401 (the tiny model and its weights fixture)
from spvis.cli.main import main
from spvis.config import load_config
from spvis.engine.inference import load_model
from spvis.engine.streaming import OnlineTracker
from spvis.errors import SpvisError

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

REPO = Path(__file__).resolve().parents[1]
SIZE = "32x48"  # the test videos' frame size (network input 32x64 after padding to 32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[str, str]:
    """(dataset json, image root) of two 4-frame 32x48 videos."""
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), videos=2, frames=4, size=(32, 48),
                                      categories=3, max_objects=2, valid_fraction=0.0, seed=5)
    return info["train_json"], info["train_image_root"]


def _export(weights: Path, out: Path, fmt: str) -> Path:
    torch.set_num_threads(1)
    assert main(["export", "--weights", str(weights), "--format", fmt, "--out", str(out), "--size", SIZE]) == 0
    return out


@pytest.fixture(scope="module")
def onnx_dir(weights, tmp_path_factory) -> Path:
    return _export(weights, tmp_path_factory.mktemp("export") / "onnx", "onnx")


@pytest.fixture(scope="module")
def script_dir(weights, tmp_path_factory) -> Path:
    return _export(weights, tmp_path_factory.mktemp("export") / "ts", "torchscript")


def test_export_writes_checked_graphs_and_a_manifest(onnx_dir):
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["config.yaml", "manifest.json", "segmenter.onnx",
                                                         "tracker_step.onnx"]
    assert manifest["input_size"] == [32, 64] and manifest["deform_attn_core"] == "grid_sample"
    check = manifest["check"]
    assert check["tolerance"] == 1e-3
    for graph, cases in (("segmenter", {"random", "real"}), ("tracker_step", {"random", "real_first", "real"})):
        assert set(check["max_abs_diff"][graph]) == cases
        assert max(check["max_abs_diff"][graph].values()) <= 1e-3
    segmenter = manifest["graphs"]["segmenter"]
    assert [i["name"] for i in segmenter["inputs"]] == ["images"] and segmenter["inputs"][0]["shape"] == [1, 3, 32, 64]
    assert [o["name"] for o in segmenter["outputs"]] == ["pred_logits", "pred_masks", "pred_embds", "mask_features"]
    assert segmenter["outputs"][0]["shape"] == [1, 6, 4]  # Q = 6 queries, K + 1 = 4 classes


def test_onnx_graphs_equal_eager_on_new_inputs(weights, onnx_dir):
    """Independent of the export's own check: other random inputs, every output, through onnxruntime."""
    from spvis.export.graphs import SegmenterGraph, TrackerStepGraph

    model, _ = load_model(weights, None, ["MODEL.DEVICE=cpu"])
    generator = torch.Generator().manual_seed(42)
    images = torch.randn(1, 3, 32, 64, generator=generator)
    session = ort.InferenceSession(str(onnx_dir / "segmenter.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = SegmenterGraph(model)(images)
    for want, got in zip(expected, session.run(None, {"images": images.numpy()})):
        assert want.shape == got.shape
        assert np.abs(want.numpy() - got).max() < 1e-3
    q, c = 6, 32
    inputs = [torch.randn(q, 1, c, generator=generator) for _ in range(3)] + [
        torch.randn(1, 32, 8, 16, generator=generator)]  # stride-4 mask features of a 32x64 input
    session = ort.InferenceSession(str(onnx_dir / "tracker_step.onnx"), providers=["CPUExecutionProvider"])
    for first in (True, False):
        with torch.no_grad():
            expected = TrackerStepGraph(model.tracker)(*inputs, torch.tensor(first))
        got = session.run(None, {**{n: x.numpy() for n, x in zip(("identity", "reference", "memory",
                                                                    "mask_features"), inputs)},
                                 "first": np.array(first)})
        for want, out in zip(expected, got):
            assert np.abs(want.numpy() - out).max() < 1e-3


def _stream(model, cfg, frames):
    engine = OnlineTracker(model, cfg, score_thr=0.0)
    return list(engine.stream(frames))


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_graph_backend_tracks_like_eager(weights, dataset, onnx_dir, script_dir, backend):
    """Same pipeline, graphs in place of the forwards: the same ids per frame, scores within 1e-4."""
    from spvis.data import open_frame_source
    from spvis.export.runtime import load_exported_model

    folder = onnx_dir if backend == "onnx" else script_dir
    eager, cfg = load_model(weights, None, ["MODEL.DEVICE=cpu"])
    graph, graph_cfg = load_exported_model(folder, backend)
    video = sorted(Path(dataset[1]).iterdir())[0]
    frames = list(open_frame_source(video))
    want, got = _stream(eager, cfg, frames), _stream(graph, graph_cfg, frames)
    assert len(want) == len(got) == 4
    for a, b in zip(want, got):
        assert a.track_ids.tolist() == b.track_ids.tolist()
        assert np.abs(a.scores - b.scores).max() < 1e-4
        assert (a.masks != b.masks).mean() < 1e-3  # a mask logit within 1e-4 of 0 may flip a pixel


def test_infer_backend_onnx_writes_the_eager_results(weights, dataset, onnx_dir, tmp_path):
    gt, root = dataset
    common = ["infer", "--input", gt, "--image-root", root, "--no-overlay", "--save-masks"]
    assert main([*common, "--weights", str(weights), "--out", str(tmp_path / "eager")]) == 0
    assert main([*common, "--backend", "onnx", "--weights", str(onnx_dir), "--out", str(tmp_path / "onnx")]) == 0
    want = json.loads((tmp_path / "eager" / "results.json").read_text())
    got = json.loads((tmp_path / "onnx" / "results.json").read_text())
    assert [(e["video_id"], e["category_id"]) for e in want] == [(e["video_id"], e["category_id"]) for e in got]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(want, got)) < 1e-4
    from spvis.viz.id_maps import read_id_map

    maps = sorted((tmp_path / "eager" / "masks").rglob("*.png"))
    assert len(maps) == 8
    for path in maps:
        other = read_id_map(tmp_path / "onnx" / path.relative_to(tmp_path / "eager"))
        assert np.unique(read_id_map(path)).tolist() == np.unique(other).tolist()  # the same track ids
    settings = json.loads((tmp_path / "onnx" / "results.settings.json").read_text())
    assert settings["weights"].startswith("sha256:")  # the manifest's, which holds every graph's sha256


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if "frame/s]" not in line]  # no bars
    assert len(lines) == 1 and lines[0].startswith("spvis "), lines
    return lines[0]


def test_export_refuses_to_replace_an_export_without_overwrite(weights, script_dir, capsys):
    before = (script_dir / "manifest.json").read_bytes()
    line = _error(capsys, ["export", "--weights", str(weights), "--format", "torchscript", "--out", str(script_dir),
                           "--size", SIZE])
    assert "--overwrite" in line and "manifest.json" in line
    assert (script_dir / "manifest.json").read_bytes() == before
    (script_dir / "notes.txt").write_text("mine")
    assert main(["export", "--weights", str(weights), "--format", "torchscript", "--out", str(script_dir),
                 "--size", SIZE, "--overwrite"]) == 0
    assert (script_dir / "notes.txt").read_text() == "mine"  # --overwrite replaces only the export's own files


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "copy"))


def test_bad_export_folders_are_one_line_errors(dataset, onnx_dir, tmp_path, capsys):
    gt, root = dataset
    infer = ["infer", "--input", gt, "--image-root", root, "--no-overlay", "--backend", "onnx"]
    missing = tmp_path / "nowhere"
    line = _error(capsys, [*infer, "--weights", str(missing), "--out", str(tmp_path / "o1")])
    assert str(missing) in line and "export folder" in line
    folder = _copy(onnx_dir, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["input_size"] = "32x64"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    line = _error(capsys, [*infer, "--weights", str(folder), "--out", str(tmp_path / "o2")])
    assert "manifest.json" in line and "field 'input_size'" in line
    manifest["input_size"] = [32, 64]
    del manifest["graphs"]["tracker_step"]["file"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    line = _error(capsys, [*infer, "--weights", str(folder), "--out", str(tmp_path / "o3")])
    assert "manifest.json" in line and "field 'graphs.tracker_step.file'" in line
    manifest["graphs"]["tracker_step"]["file"] = "tracker_step.onnx"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with open(folder / "segmenter.onnx", "ab") as handle:
        handle.write(b"\0")
    line = _error(capsys, [*infer, "--weights", str(folder), "--out", str(tmp_path / "o4")])
    assert "field 'graphs.segmenter.sha256'" in line
    line = _error(capsys, [*infer[:-1], "torchscript", "--weights", str(onnx_dir), "--out", str(tmp_path / "o5")])
    assert "field 'backend'" in line and "--backend onnx" in line
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_graph_backend_refuses_what_it_cannot_run(dataset, onnx_dir, tmp_path, capsys):
    gt, root = dataset
    infer = ["infer", "--input", gt, "--image-root", root, "--no-overlay", "--backend", "onnx", "--weights",
             str(onnx_dir), "--out", str(tmp_path / "out")]
    assert "--mode online" in _error(capsys, [*infer, "--mode", "offline"])
    assert "MODEL.NUM_CLASSES" in _error(capsys, [*infer, "MODEL.NUM_CLASSES=5"])
    assert "--half" in _error(capsys, [*infer, "--half"])


def test_a_frame_size_the_graphs_do_not_take_is_one_line(onnx_dir, tmp_path, capsys):
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(tmp_path / "wide", videos=1, frames=2, size=(96, 48), categories=3,
                                      valid_fraction=0.0, seed=1)
    line = _error(capsys, ["infer", "--input", info["train_json"], "--image-root", info["train_image_root"],
                           "--no-overlay", "--backend", "onnx", "--weights", str(onnx_dir), "--out",
                           str(tmp_path / "out")])
    assert "--size" in line and "32x64" in line


def test_missing_onnxruntime_names_the_extra(weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    line = _error(capsys, ["export", "--weights", str(weights), "--out", str(tmp_path / "x"), "--size", SIZE])
    assert "pip install 'spvis[export]'" in line
    assert not (tmp_path / "x").exists()


def test_export_refuses_tracker_parts_outside_the_graph():
    from spvis.export.graphs import check_exportable

    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", [*TINY, "MODEL.TRACKER.RCP=True"])
    with pytest.raises(SpvisError, match="MODEL.TRACKER.RCP"):
        check_exportable(cfg)

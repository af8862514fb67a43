"""The bugs the fuzz suite (test_fuzz.py) found, each pinned by a small test that fails without its fix: the fuzz
cases that found them change when the mutators do, these stay."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from spvis.cli.main import main
from spvis.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, Path]:
    """(json, image root) of a 2-video, 3-frame 32x48 synthetic dataset."""
    from spvis.data.synth import generate_synthetic_dataset

    info = generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), videos=2, frames=3, size=(32, 48),
                                      categories=3, max_objects=2, valid_fraction=0.0, seed=3)
    return Path(info["train_json"]), Path(info["train_image_root"])


def _one_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"spvis {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_data_check_all_frames_refuses_a_cut_frame(synth, tmp_path, capsys):
    """`data check --all-frames` read only the header, which a frame cut after it still has."""
    dataset, root = synth
    images = shutil.copytree(root, tmp_path / "JPEGImages")
    frame = images / "video_00002" / "00001.jpg"
    frame.write_bytes(frame.read_bytes()[:-200])
    assert main(["data", "check", "--json", str(dataset), "--image-root", str(images), "--all-frames"]) == 2
    line = _one_error(capsys, "data")
    assert "video 2" in line and "00001.jpg" in line and "end marker" in line


def test_results_zip_with_corrupt_deflate_data_is_one_line(synth, tmp_path, capsys):
    """zlib.error escaped the zip reader as a traceback."""
    import zipfile

    dataset, _ = synth
    gt = json.loads(dataset.read_text())
    entries = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    archive = tmp_path / "results.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("results.json", json.dumps(entries * 20))
    data = bytearray(archive.read_bytes())
    start = 30 + len("results.json")  # the deflate stream of the only member
    for offset in range(start + 5, start + 45):
        data[offset] ^= 0x5A
    archive.write_bytes(bytes(data))
    assert main(["eval", "--gt", str(dataset), "--pred", str(archive)]) == 2
    assert "results.zip" in _one_error(capsys, "eval")
    assert not (tmp_path / "metrics.json").exists()


def test_checkpoint_import_refuses_nan_weights(tmp_path, capsys):
    """Import wrote NaN weights to a .safetensors file; only loading it later said they were broken."""
    import torch

    from spvis.checkpoints.official_config import official_to_cfg
    from spvis.modeling.meta_arch import SPVISModel

    config = REPO / "tests" / "data" / "dvis_official_tiny" / "config.yaml"
    torch.manual_seed(0)
    state = {k: v.numpy().copy() for k, v in SPVISModel.from_config(official_to_cfg(config)).state_dict().items()}
    name = sorted(k for k, v in state.items() if v.dtype == np.float32)[5]
    state[name].reshape(-1)[0] = np.nan
    weights = tmp_path / "model.pkl"
    weights.write_bytes(pickle.dumps({"model": state}))
    out = tmp_path / "out.safetensors"
    assert main(["checkpoint", "import", str(weights), "--format", "dvis", "--official-config", str(config),
                 "--out", str(out)]) == 2
    line = _one_error(capsys, "checkpoint")
    assert "model.pkl" in line and name in line and "NaN" in line
    assert not out.exists()


def test_refused_training_leaves_no_output_dir(synth, tmp_path, capsys):
    """A solver setting the trainer refuses (SOLVER.MAX_ITER=0) was checked after OUTPUT_DIR/log.txt was made."""
    dataset, _ = synth
    out = tmp_path / "run"
    assert main(["train", "--config", str(REPO / "configs" / "synth" / "segmenter.yaml"),
                 f"DATASETS.TRAIN=[{dataset}]", "SOLVER.MAX_ITER=0", f"OUTPUT_DIR={out}", "MODEL.DEVICE=cpu"]) == 2
    assert "SOLVER.MAX_ITER must be at least 1" in _one_error(capsys, "train")
    assert not out.exists()


def test_failed_infer_leaves_no_empty_out_folder(synth, tmp_path, capsys):
    """An error once the run had begun (here: the dataset's 3 categories against the demo model's 6) left an empty
    --out folder behind."""
    dataset, root = synth
    out = tmp_path / "out"
    assert main(["infer", "--input", str(dataset), "--image-root", str(root), "--out", str(out), "--no-overlay"]) == 2
    assert "categories" in _one_error(capsys, "infer")
    assert not out.exists()


def test_config_sizes_have_upper_bounds():
    """A layer count or size no machine can build (MASK_FORMER.DEC_LAYERS 2**31 hung checkpoint import)."""
    from spvis.config import load_config

    with pytest.raises(ConfigError, match=r"MODEL\.DECODER\.DEC_LAYERS must be at most 256, got 2147483648"):
        load_config(None, ["MODEL.DECODER.DEC_LAYERS=2147483648"])
    with pytest.raises(ConfigError, match=r"INPUT\.MIN_SIZE_TRAIN\[1\] must be at most 16384"):
        load_config(None, ["INPUT.MIN_SIZE_TRAIN=[32,100000]"])
    load_config(None, ["MODEL.DECODER.DEC_LAYERS=256", "INPUT.MAX_SIZE_TEST=16384"])


def test_official_range_error_names_the_official_key(tmp_path):
    import yaml

    from spvis.checkpoints.official_config import official_to_cfg

    tree = yaml.safe_load((REPO / "tests" / "data" / "dvis_official_tiny" / "config.yaml").read_text())
    tree["MODEL"]["SEM_SEG_HEAD"]["DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS"] = -2
    path = tmp_path / "official.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"official\.yaml: .*\(official MODEL\.SEM_SEG_HEAD\."
                                          r"DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS\) must be positive"):
        official_to_cfg(path)


def test_sizes_that_build_no_model_are_a_config_error():
    """CONV_DIM 16 (GroupNorm(32, 16)) was a torch ValueError traceback."""
    from spvis.config import load_config
    from spvis.modeling.meta_arch import build_model

    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", ["MODEL.PIXEL_DECODER.CONV_DIM=16"])
    with pytest.raises(ConfigError, match=r"my\.yaml: its sizes do not build a model: .*divisible by"):
        build_model(cfg, "my.yaml")


def test_damaged_mp4_stream_header_is_one_line(tmp_path, capsys):
    """A video stream whose codec PyAV cannot open (codec_context None) was an AttributeError traceback."""
    from spvis.data import frames

    class Stream:
        codec_context = None

    class Container:
        streams = type("Streams", (), {"video": [Stream()]})()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    import av

    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    original = av.open
    av.open = lambda *a, **k: Container()
    try:
        with pytest.raises(frames.SpvisError, match=r"v\.mp4: cannot read video: its video stream has no usable"):
            frames.VideoFileSource(video)
    finally:
        av.open = original


def test_a_lone_surrogate_in_a_dataset_prints(synth, tmp_path, capsys):
    """A json "\\ud800" escape decodes to a lone surrogate; `data check` printing it was a UnicodeEncodeError."""
    dataset, root = synth
    data = json.loads(dataset.read_text())
    data["annotations"][0]["occlusion"] = ["\ud800"] * len(data["annotations"][0]["segmentations"])
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(data))  # ensure_ascii: written as the escape, as a foreign tool may
    assert main(["data", "check", "--json", str(path), "--image-root", str(root)]) == 0
    assert "\\ud800" in capsys.readouterr().out


@pytest.mark.parametrize("dotted, value, message", [
    ("MODEL.BACKBONE.NAME", {"a": 1}, r"MODEL\.BACKBONE\.NAME must be a string"),
    ("MODEL.META_ARCHITECTURE", ["DVIS_online"], r"MODEL\.META_ARCHITECTURE must be a string"),
    ("MODEL.RESNETS.OUT_FEATURES", [], r"MODEL\.RESNETS\.OUT_FEATURES must be a non-empty list"),
    ("MODEL.RESNETS.DEFORM_ON_PER_STAGE", 5, r"DEFORM_ON_PER_STAGE must be a list"),
    ("MODEL.BACKBONE.NAME", "D2SwinTransformer", None),  # with five NUM_HEADS for four DEPTHS, below
    ("MODEL.SEM_SEG_HEAD.IN_FEATURES", ["res2", "res3", "res4", "res5", "res3"], r"IN_FEATURES lists 'res3' twice"),
])
def test_official_names_and_lists_of_the_wrong_shape_are_config_errors(tmp_path, dotted, value, message):
    """A mapping as the backbone name was `TypeError: unhashable type`, an empty OUT_FEATURES `min() arg is an empty
    sequence` while building the model, a number as DEFORM_ON_PER_STAGE `TypeError` from any()."""
    import yaml

    from spvis.checkpoints.official_config import official_to_cfg

    tree = yaml.safe_load((REPO / "tests" / "data" / "dvis_official_tiny" / "config.yaml").read_text())
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    if message is None:  # the extra head count was ignored and the import went through
        tree["MODEL"]["SWIN"]["NUM_HEADS"] = [3, 6, 12, 24, 24]
        message = r"MODEL\.SWIN\.NUM_HEADS has 5 entries but MODEL\.SWIN\.DEPTHS has 4 stages"
    path = tmp_path / "official.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=message):
        official_to_cfg(path)


def test_a_frame_path_with_a_lone_surrogate_is_a_data_error(synth, tmp_path, capsys):
    """os.stat of a lone-surrogate path raised UnicodeEncodeError inside `infer`."""
    dataset, root = synth
    data = json.loads(dataset.read_text())
    data["videos"][0]["file_names"][1] = "video_00001/\ud800.jpg"
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(data))
    assert main(["data", "check", "--json", str(path), "--image-root", str(root)]) == 2
    line = _one_error(capsys, "data")
    assert "surrogate.json" in line and "file_names" in line and "not valid unicode" in line


def test_mp4_metadata_that_is_not_utf8_does_not_stop_reading(tmp_path):
    """A Latin-1 title tag (or a flipped byte in one) made av.open raise UnicodeDecodeError."""
    import av

    from spvis.data.frames import VideoFileSource

    path = tmp_path / "latin1.mp4"
    with av.open(str(path), "w", metadata_encoding="latin-1") as container:
        container.metadata["title"] = "caf\xe9 cr\xe8me"
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width, stream.pix_fmt = 32, 48, "yuv420p"
        for t in range(3):
            frame = np.full((32, 48, 3), 40 * t, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    source = VideoFileSource(path)
    assert (source.height, source.width) == (32, 48) and len(list(source)) == 3


def test_an_occlusion_label_that_is_a_mapping_is_a_data_error(synth, tmp_path, capsys):
    """An unhashable occlusion label was `TypeError: unhashable type: 'dict'` in `eval --gt`."""
    dataset, _ = synth
    data = json.loads(dataset.read_text())
    data["annotations"][0]["occlusion"][1] = {"label": "no_occlusion"}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(data))
    results = [{"video_id": 1, "category_id": data["annotations"][0]["category_id"], "score": 0.5,
                "segmentations": data["annotations"][0]["segmentations"]}]
    pred = tmp_path / "results.json"
    pred.write_text(json.dumps(results))
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 2
    line = _one_error(capsys, "eval")
    assert "gt.json" in line and "field 'occlusion'" in line

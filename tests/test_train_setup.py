"""`spvis train` before its first step: the set-up printed at once and kept in OUTPUT_DIR/log.txt, missing
datasets named with how to make them, and --num-gpus fitted to a shipped recipe's batch before spawning."""

from __future__ import annotations

import pytest

import spvis.engine.launch as launch
from spvis.cli.main import main
from spvis.errors import ConfigError

# the shipped segmenter recipe shrunk to seconds: same code paths, tiny dims, 64 px frames, 1 step
TINY = ["MODEL.DEVICE=cpu", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.LOSS.TRAIN_NUM_POINTS=256", "INPUT.MIN_SIZE_TRAIN=[64]",
        "INPUT.MAX_SIZE_TRAIN=64", "SOLVER.MAX_ITER=1", "SOLVER.WARMUP_ITERS=1", "SOLVER.IMS_PER_BATCH=2",
        "SOLVER.CLIPS_PER_DEVICE=2", "SOLVER.LOG_PERIOD=1", "DATALOADER.NUM_WORKERS=0"]


def test_setup_is_printed_first_and_everything_is_logged(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--config", "synth/segmenter.yaml", *TINY, "DATASETS.TRAIN=[synth:target]",
                 f"OUTPUT_DIR={out}"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0] == "spvis train: stage segmenter from synth/segmenter.yaml (from scratch)"
    assert lines[1].startswith("  device cpu (1 thread per process); 1 process; global batch 2 clips")
    assert lines[2].startswith(f"  output {out} ")
    assert lines[3] == "  data synth:target: 1,048,576 samples (generated on the fly: a new video per sample)"
    log = (out / "log.txt").read_text()
    assert log.splitlines()[:4] == lines[:4] and "iter 1/1" in log


def test_a_missing_dataset_says_how_to_make_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no datasets/ yet
    assert main(["train", "--config", "synth/segmenter.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spvis train: error: DATASETS.TRAIN: datasets/synth_train/train.json not found")
    assert "scripts/make_synth_data.sh" in err and "DATASETS.TRAIN=[synth:target]" in err and "\n" not in err


def test_num_gpus_fits_clips_per_device_or_refuses_before_spawning(monkeypatch, capsys):
    spawned = {}
    monkeypatch.setattr(launch, "_launch_local", lambda config, overrides, resume, n, *_: spawned.update(o=overrides))
    stream = ["DATASETS.TRAIN=[synth:target]"]
    assert launch.train("synth/segmenter.yaml", stream, num_processes=2) is None
    assert spawned["o"] == [*stream, "SOLVER.CLIPS_PER_DEVICE=4"]  # recipe: batch 8, 8 clips per device
    assert "SOLVER.CLIPS_PER_DEVICE=4 (was 8)" in capsys.readouterr().err
    spawned.clear()
    with pytest.raises(ConfigError, match=r"IMS_PER_BATCH=8 does not split over 3 processes; run "
                                          r"`spvis train --config synth/segmenter.yaml --num-gpus 2`"):
        launch.train("synth/segmenter.yaml", stream, num_processes=3)
    assert spawned == {}

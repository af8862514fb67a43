"""`spvis train` end to end with the real model: segmenter -> tracker -> refiner chained through MODEL.WEIGHTS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spvis.cli.main import main
from test_train_fakes import make_synth

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synth"
# The shipped recipe shrunk to a few seconds per stage: same code paths, tiny dims and 64 px frames.
TINY = ["MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=3", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1", "MODEL.REFINER.DECODER_LAYERS=1",
        "MODEL.LOSS.TRAIN_NUM_POINTS=256", "INPUT.MIN_SIZE_TRAIN=[64]", "INPUT.MAX_SIZE_TRAIN=64",
        "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=64", "INPUT.SAMPLING_FRAME_RANGE=1",
        "SOLVER.MAX_ITER=2", "SOLVER.STEPS=[1]", "SOLVER.WARMUP_ITERS=1", "SOLVER.IMS_PER_BATCH=2",
        "SOLVER.CLIPS_PER_DEVICE=2", "MODEL.FROZEN_CACHE_DIR=", "INPUT.SAMPLING_NUM_CLIPS=1", "TEST.EVAL_PERIOD=0",
        "SOLVER.LOG_PERIOD=1", "DATALOADER.NUM_WORKERS=0", "DATASETS.TEST=[]"]


@pytest.mark.slow
def test_three_stages_chain_with_the_real_model(tmp_path, capsys):
    train_json = make_synth(tmp_path / "synth")
    frames = {"segmenter": 2, "tracker": 3, "refiner": 3}
    weights = ""
    for stage in ("segmenter", "tracker", "refiner"):
        out = tmp_path / stage
        code = main(["train", "--config", str(CONFIGS / f"{stage}.yaml"), *TINY, f"OUTPUT_DIR={out}",
                     f"DATASETS.TRAIN=[{train_json}]", f"MODEL.WEIGHTS={weights}",
                     f"INPUT.SAMPLING_FRAME_NUM={frames[stage]}"])
        assert code == 0, capsys.readouterr().err
        entries = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [e["iteration"] for e in entries] == [1, 2]
        assert all(torch.isfinite(torch.tensor(e["total_loss"])) for e in entries)
        weights = str(out / "model_final.safetensors")
        assert Path(weights).is_file() and (out / "model_final.yaml").is_file()
    from spvis.checkpoints import load_weights

    seg, _ = load_weights(tmp_path / "segmenter" / "model_final.safetensors")
    ref, ref_cfg = load_weights(tmp_path / "refiner" / "model_final.safetensors")
    assert ref_cfg.STAGE == "refiner" and any(k.startswith("refiner.") for k in ref)
    # the later stages froze the segmenter: its weights pass through unchanged
    assert all(torch.equal(seg[k], ref[k]) for k in seg if k.startswith(("backbone.", "sem_seg_head.")))
    # a stage given the weights of an unrelated architecture says so in one line
    code = main(["train", "--config", str(CONFIGS / "tracker.yaml"), *TINY, "MODEL.NUM_CLASSES=4",
                 f"OUTPUT_DIR={tmp_path / 'bad'}", f"DATASETS.TRAIN=[{train_json}]",
                 f"MODEL.WEIGHTS={tmp_path / 'segmenter' / 'model_final.safetensors'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "mis-shaped" in err[-1] and "model_final.safetensors" in err[-1]

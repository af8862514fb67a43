"""Periodic evaluation: the hook runs real inference + spvis.evaluation; the trainer calls it on schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spvis.config import load_config
from spvis.engine.distributed import init_distributed
from test_train_fakes import make_synth, run_fake_training, tiny_cfg

SYNTH_BASE = Path(__file__).resolve().parents[1] / "configs" / "synth" / "Base-synth.yaml"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth")).parent


def _tiny_model_cfg(synth: Path, mode: str):
    cfg = load_config(SYNTH_BASE, [
        "MODEL.DEVICE=cpu", "MODEL.NUM_CLASSES=3", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.TRACKER.DECODER_LAYERS=1", "MODEL.REFINER.DECODER_LAYERS=1",
        "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=64", f"DATASETS.TEST=[{synth / 'valid.json'}]",
        "STAGE=tracker" if mode == "online" else "STAGE=refiner", f"TEST.MODE={mode}",
        f"MODEL.REFINER.ENABLED={'true' if mode == 'offline' else 'false'}"])
    return cfg


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_eval_hook_scores_real_inference(synth, mode):
    from spvis.cli.train_cmd import build_evaluator, build_model

    cfg = _tiny_model_cfg(synth, mode)
    torch.manual_seed(0)
    hook = build_evaluator(cfg, init_distributed("cpu"))
    metrics = hook(build_model(cfg).eval(), 0)
    assert 0.0 <= metrics["AP"] <= 1.0 or metrics["AP"] == -1
    assert metrics["info"]["num_videos"] == 1 and "tracking" in metrics


def test_segmenter_stage_has_no_video_evaluation(synth, capsys):
    from spvis.cli.train_cmd import build_evaluator

    cfg = _tiny_model_cfg(synth, "online")
    cfg.STAGE = "segmenter"
    assert build_evaluator(cfg, init_distributed("cpu")) is None


def test_trainer_calls_evaluator_every_period_and_logs_metrics(synth, tmp_path):
    from spvis.engine.trainer import Trainer, setup_reproducibility
    from spvis.cli.train_cmd import build_train_dataset
    from test_train_fakes import TinyClipModel
    import os

    cfg = tiny_cfg(synth / "train.json", tmp_path, MAX_ITER=4)
    cfg.TEST.EVAL_PERIOD = 2
    calls = []

    def evaluator(model, iteration):
        assert not model.training
        calls.append(iteration)
        return {"AP": 0.25 * iteration, "tracking": {"IDF1": 0.5}}

    setup_reproducibility(cfg)
    trainer = Trainer(cfg, TinyClipModel(), build_train_dataset(cfg), init_distributed("cpu"), evaluator=evaluator,
                      log_stream=open(os.devnull, "w"))
    result = trainer.train()
    assert calls == [2, 4] and result.eval_metrics["AP"] == 1.0
    evals = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "eval/AP" in x]
    assert [(e["iteration"], e["eval/AP"], e["eval/tracking/IDF1"]) for e in evals] == [(2, 0.5, 0.5), (4, 1.0, 0.5)]

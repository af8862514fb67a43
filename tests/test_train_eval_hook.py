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


@pytest.mark.parametrize("stage,modes", [("segmenter", ["minvis"]), ("tracker", ["minvis", "online"]),
                                         ("refiner", ["minvis", "online", "offline"])])
def test_eval_hook_scores_the_stage_chain_like_infer_and_eval(synth, stage, modes, capsys):
    """The hook scores every link of the stage's chain exactly as `spvis infer` + `evaluate` would."""
    from spvis.engine.launch import build_evaluator, build_model
    from spvis.engine.eval_hook import predict_videos
    from spvis.data.catalog import load_dataset, resolve_dataset
    from spvis.evaluation import evaluate

    cfg = _tiny_model_cfg(synth, "offline" if stage == "refiner" else "online")
    cfg.STAGE = stage
    torch.manual_seed(0)
    hook = build_evaluator(cfg, init_distributed("cpu"))
    model = build_model(cfg).eval()
    scores = hook(model, 7)
    assert list(scores) == modes
    dataset = load_dataset(resolve_dataset(cfg.DATASETS.TEST[0], cfg=cfg))
    for mode in modes:
        expected = evaluate(str(synth / "valid.json"), predict_videos(model, cfg, dataset, list(dataset.videos), mode))
        assert scores[mode]["AP"] == expected["AP"]
        assert scores[mode]["tracking"]["pooled"]["IDF1"] == expected["tracking"]["pooled"]["IDF1"]
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("evaluation chain at iteration 7")]
    assert len(line) == 1 and all(f"{m} AP" in line[0] for m in modes)


def test_chain_line_marks_a_stage_worse_than_its_input():
    scores = {"minvis": {"AP": 0.5, "tracking": {"pooled": {"IDF1": 0.7}}},
              "online": {"AP": 0.6, "tracking": {"pooled": {"IDF1": 0.8}}},
              "offline": {"AP": 0.55, "tracking": {"pooled": {"IDF1": 0.9}}}}
    from spvis.engine.eval_hook import chain_line

    assert chain_line(3, scores) == ("evaluation chain at iteration 3: minvis AP 50.0 IDF1 70.0 <= online AP 60.0 "
                                     "IDF1 80.0 > (worse!) offline AP 55.0 IDF1 90.0")


def test_trainer_calls_evaluator_every_period_and_logs_metrics(synth, tmp_path):
    from spvis.engine.trainer import Trainer, setup_reproducibility
    from spvis.engine.launch import build_train_dataset
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

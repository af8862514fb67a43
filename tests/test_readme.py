"""The README's Python section and its training commands run as written (in a fresh folder, data shrunk)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

import spvis
from spvis.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
# the shipped segmenter recipe shrunk to seconds (later overrides win over the README's)
TINY = ["MODEL.DEVICE=cpu", "MODEL.BACKBONE.WIDTH=8", "MODEL.PIXEL_DECODER.CONV_DIM=32",
        "MODEL.PIXEL_DECODER.MASK_DIM=32", "MODEL.PIXEL_DECODER.ENC_LAYERS=1", "MODEL.PIXEL_DECODER.ENC_FFN=64",
        "MODEL.DECODER.HIDDEN_DIM=32", "MODEL.DECODER.NUM_QUERIES=6", "MODEL.DECODER.DIM_FEEDFORWARD=64",
        "MODEL.DECODER.DEC_LAYERS=1", "MODEL.LOSS.TRAIN_NUM_POINTS=256", "INPUT.MIN_SIZE_TRAIN=[64]",
        "INPUT.MAX_SIZE_TRAIN=64", "SOLVER.MAX_ITER=1", "SOLVER.WARMUP_ITERS=1", "SOLVER.IMS_PER_BATCH=2",
        "SOLVER.CLIPS_PER_DEVICE=2", "DATALOADER.NUM_WORKERS=0"]


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_python_section_runs_as_written(tmp_path, monkeypatch):
    from spvis.viz.video_writer import VideoWriter

    written = spvis.generate_synthetic_dataset(tmp_path, videos=2, frames=4, size=(96, 128), categories=6,
                                               occlusion="none", valid_fraction=0.5, seed=8)
    train_video = next(Path(written["train_image_root"]).iterdir())
    with VideoWriter(tmp_path / "my_video.mp4", fps=5) as writer:  # "your own video"
        for frame in spvis.open_frame_source(train_video):
            writer.write(np.asarray(frame))
    assert (tmp_path / "valid.json").is_file() and (tmp_path / "valid" / "JPEGImages").is_dir()
    monkeypatch.chdir(tmp_path)
    code = blocks(section("Python"), "python")
    assert len(code) == 2
    namespace: dict = {}
    exec(compile(code[0], str(README), "exec"), namespace)
    assert namespace["video"].name == "my_video" and namespace["overlay"].shape == (96, 128, 3)
    assert (tmp_path / "my_video_results.json").is_file()
    exec(compile(code[1], str(README), "exec"), namespace)  # evaluation, with the segmenter of the first block
    assert 0 <= namespace["metrics"]["AP"] <= 1 and namespace["metrics"]["info"]["num_videos"] == 1


def test_readme_training_commands_run_from_a_fresh_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no datasets/, no output/
    lines = [line for block in blocks(section("Training on your data"), "bash") for line in block.splitlines()
             if line.startswith(("spvis synth", "spvis train"))]
    assert [line.split()[1] for line in lines] == ["synth", "train", "train"]
    for line in lines:
        args = shlex.split(line)[1:]
        if args[0] == "synth":
            args = [{"400": "2", "40": "4"}.get(a, a) for a in args]  # --videos 400 --frames 40 -> 2, 4
        else:
            args += TINY
        assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "output" / "synth" / "segmenter" / "log.txt").is_file()
    assert (tmp_path / "output" / "stream" / "model_final.safetensors").is_file()

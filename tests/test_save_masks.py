"""`spvis infer --save-masks`: one 16-bit PNG id map per frame, equal to the overlay's instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import spvis
from spvis.cli.main import main
from spvis.viz.id_maps import id_map, read_id_map


def test_save_masks_writes_per_frame_track_id_maps(tmp_path, capsys):
    written = spvis.generate_synthetic_dataset(tmp_path / "d", videos=1, frames=3, size=(96, 128), categories=6,
                                               occlusion="none", valid_fraction=0.0, seed=6)
    folder = next(Path(written["train_image_root"]).iterdir())
    out = tmp_path / "out"
    args = ["infer", "--input", str(folder), "--out", str(out), "--no-overlay", "--save-masks", "--device", "cpu"]
    assert main(args) == 0
    assert f"video_id 1 is {folder.name}" in capsys.readouterr().out  # a lone video's results name it
    pngs = sorted((out / "masks" / folder.name).glob("*.png"))
    assert [p.name for p in pngs] == ["00000.png", "00001.png", "00002.png"]
    streamed = list(spvis.load("demo", device="cpu").stream(folder, score_thr=0.5))
    for png, result in zip(pngs, streamed):
        saved = read_id_map(png)
        assert saved.dtype == np.uint16 and saved.shape == (96, 128) and saved.any()
        assert np.array_equal(saved, id_map(result.masks, result.track_ids, result.scores))
    capsys.readouterr()
    assert main(args) == 2 and "holds the outputs of another run" in capsys.readouterr().err  # never overwritten
    assert main([*args, "--exist-ok"]) == 0


def test_overlapping_masks_keep_the_higher_score():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2], masks[1, 1:] = True, True
    ids = id_map(masks, [7, 0], [0.9, 0.6])  # pixel = track id + 1 (track ids start at 0), 0 = background
    assert ids[0].tolist() == [8] * 4 and ids[1].tolist() == [8] * 4 and ids[3].tolist() == [1] * 4
    assert id_map(masks[:0], [], []).tolist() == [[0] * 4] * 4

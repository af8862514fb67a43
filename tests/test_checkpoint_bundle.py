"""Headline test: the official DVIS reference bundle, imported, reproduces the official segmenter tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spvis.checkpoints import bundle_segmenter
from spvis.checkpoints.importer import build_official_model
from spvis.checkpoints.verify import compare, format_table
from spvis.cli.main import main

SEGMENTER_KEYS = ("seg_logits", "seg_masks", "seg_embds")


@pytest.fixture(autouse=True)
def _single_thread():
    """The bundle model is tiny; on a busy 2-core machine thread hand-off costs more than it gains."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def bundle(test_data_dir):
    return test_data_dir / "dvis_official_tiny"


@pytest.fixture(scope="module")
def produced(bundle):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, _ = build_official_model(bundle / "checkpoint.pth", bundle / "config.yaml", "dvis")
        frames = np.load(bundle / "inputs.npz")["frames"]
        return bundle_segmenter.produce(model, frames, {})
    finally:
        torch.set_num_threads(previous)


def _reference(bundle) -> dict[str, np.ndarray]:
    ref = dict(np.load(bundle / "outputs.npz"))
    ref.update(dict(np.load(bundle / "intermediates.npz")))
    return ref


def test_segmenter_tensors_match_official(bundle, produced):
    reference = _reference(bundle)
    rows = compare(reference, produced)
    by_key = {row.key: row for row in rows}
    expected = set(SEGMENTER_KEYS) | {k for k in reference if k.startswith(("chanmean_", "frame0_"))}
    assert expected <= set(by_key), f"not produced: {expected - set(by_key)}"
    failed = [row for row in rows if not row.passed]
    assert not failed, format_table(failed)
    for key in SEGMENTER_KEYS:  # well inside the bundle's ~1e-4 float-noise budget
        assert by_key[key].max_abs < 1e-4


def test_mask_features_handed_to_later_producers(produced):
    assert produced["mask_features"].shape == (6, 64, 32, 48)
    assert produced["seg_embds"].shape == (6, 20, 64)


def test_a_perturbed_tensor_fails_the_comparison(bundle, produced):
    reference = _reference(bundle)
    broken = dict(produced)
    broken["seg_logits"] = produced["seg_logits"] + 1e-3
    rows = {row.key: row for row in compare(reference, broken)}
    assert not rows["seg_logits"].passed and rows["seg_masks"].passed


def test_verify_cli_imports_and_compares(bundle, tmp_path, capsys):
    out = tmp_path / "imported"
    code = main(["checkpoint", "import", str(bundle / "checkpoint.pth"), "--format", "dvis",
                 "--official-config", str(bundle / "config.yaml"), "--out", str(out)])
    assert code == 0 and (out / "model.safetensors").is_file() and (out / "config.yaml").is_file()
    assert (out / "MODEL_CARD.md").is_file()
    capsys.readouterr()
    code = main(["checkpoint", "verify", "--weights", str(out / "model.safetensors"), "--bundle", str(bundle)])
    printed = capsys.readouterr().out
    # every tensor the official code recorded in the bundle (segmenter, tracker, refiner, final outputs,
    # intermediates) has a row, and every row passes: imported weights reproduce the whole official chain
    recorded = {k.replace("_ids", "_ids+labels") for k in _reference(bundle) if not k.endswith("_labels")}
    rows = {line.split()[0]: line for line in printed.splitlines()[1:] if line.split() and line.split()[0] in recorded}
    failed = [line for line in rows.values() if not (line.rstrip().endswith("ok") or " ok " in line)]
    assert not failed, "\n".join(failed)
    assert set(rows) == recorded
    assert {k.split("_")[0] for k in rows} >= {"seg", "trk", "ref", "final"}
    assert code == 0 and f"{len(recorded)}/{len(recorded)} tensors within tolerance" in printed

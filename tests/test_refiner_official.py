"""The temporal refiner reproduces the official DVIS refiner on the reference bundle (imported weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spvis.modeling.refiner import TemporalRefiner

BUNDLE = "dvis_official_tiny"


@pytest.fixture(scope="module")
def bundle(test_data_dir):
    folder = test_data_dir / BUNDLE
    state = torch.load(folder / "checkpoint.pth", weights_only=True)["model"]
    outputs = dict(np.load(folder / "outputs.npz"))
    return state, outputs


def _official_refiner(state: dict) -> TemporalRefiner:
    refiner = TemporalRefiner(num_classes=40, hidden_dim=64, nheads=8, dim_feedforward=256, num_layers=6, mask_dim=64)
    weights = {k[len("refiner."):]: v.float() for k, v in state.items() if k.startswith("refiner.")}
    result = refiner.load_state_dict(weights, strict=True)  # every official refiner.* key, nothing else
    assert not result.missing_keys and not result.unexpected_keys
    return refiner.eval()


def test_refiner_key_names_match_official_list(bundle):
    state, _ = bundle
    refiner = _official_refiner(state)
    ours = {f"refiner.{k}": tuple(v.shape) for k, v in refiner.state_dict().items()}
    official = {k: tuple(v.shape) for k, v in state.items() if k.startswith("refiner.")}
    assert ours == official


def test_refiner_reproduces_official_logits_and_embeddings(bundle):
    state, outputs = bundle
    refiner = _official_refiner(state)
    with torch.no_grad():
        out = refiner(torch.from_numpy(outputs["trk_embds"])[None], torch.from_numpy(outputs["trk_frame_embds"])[None])
    assert out["pred_logits"].shape == (1, 20, 41)
    assert out["pred_embds"].shape == (1, 6, 20, 64)
    np.testing.assert_allclose(out["pred_logits"][0].numpy(), outputs["ref_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["pred_embds"][0].numpy(), outputs["ref_embds"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["pred_logits"][0].numpy(), outputs["final_offline_cls_in"], atol=1e-4, rtol=0)
    assert out["aux_outputs"] == []  # eval mode: no aux heads
    with torch.no_grad():
        train_out = refiner.train()(torch.from_numpy(outputs["trk_embds"])[None],
                                    torch.from_numpy(outputs["trk_frame_embds"])[None])
    assert len(train_out["aux_outputs"]) == 5  # dropout is 0: training mode gives the same final outputs
    np.testing.assert_allclose(train_out["pred_logits"][0].numpy(), outputs["ref_logits"], atol=1e-4, rtol=0)


def test_refiner_on_perturbed_input_differs(bundle):
    """Guards against a refiner that ignores its input: perturbing one frame changes the video logits."""
    state, outputs = bundle
    refiner = _official_refiner(state)
    embeds = torch.from_numpy(outputs["trk_embds"])[None].clone()
    embeds[:, 2] = embeds[:, 2].flip(1)
    with torch.no_grad():
        out = refiner(embeds, torch.from_numpy(outputs["trk_frame_embds"])[None])
    assert np.abs(out["pred_logits"][0].numpy() - outputs["ref_logits"]).max() > 1e-2

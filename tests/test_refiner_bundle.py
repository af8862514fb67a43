"""The refiner bundle producer reproduces the official offline class scores, top-k and refiner outputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spvis.checkpoints.bundle_refiner import REFINER_KEYS, produce
from spvis.modeling.refiner import TemporalRefiner


def _model(folder):
    state = torch.load(folder / "checkpoint.pth", weights_only=True)["model"]
    holder = nn.Module()
    holder.refiner = TemporalRefiner(num_classes=40, hidden_dim=64, nheads=8, dim_feedforward=256, num_layers=6,
                                     mask_dim=64)
    holder.refiner.load_state_dict({k[8:]: v.float() for k, v in state.items() if k.startswith("refiner.")})
    return holder.eval()


def test_bundle_refiner_outputs_and_offline_topk(test_data_dir):
    folder = test_data_dir / "dvis_official_tiny"
    ref = dict(np.load(folder / "outputs.npz"))
    frames = np.load(folder / "inputs.npz")["frames"]
    features = torch.randn(6, 64, 32, 48, generator=torch.Generator().manual_seed(0))  # masks checked elsewhere
    produced = {"trk_embds": ref["trk_embds"], "trk_frame_embds": ref["trk_frame_embds"],
                "trk_logits": ref["trk_logits"], "mask_features": features}
    out = produce(_model(folder), frames, produced, max_num=10)
    assert set(out) == set(REFINER_KEYS)
    for key in ("ref_logits", "ref_embds", "final_offline_cls_in", "final_offline_aux_cls_in"):
        np.testing.assert_allclose(out[key], ref[key], atol=1e-4, rtol=0, err_msg=key)
    ours = sorted(zip(out["final_offline_ids"], out["final_offline_labels"], out["final_offline_scores"]))
    official = sorted(zip(ref["final_offline_ids"], ref["final_offline_labels"], ref["final_offline_scores"]))
    assert [(i, l) for i, l, _ in ours] == [(i, l) for i, l, _ in official]
    np.testing.assert_allclose([s for *_, s in ours], [s for *_, s in official], atol=1e-5)
    assert out["ref_masks"].shape == (6, 20, 32, 48)
    assert out["final_offline_masks"].shape == (10, 6, 128, 192) and out["final_offline_masks"].dtype == np.uint8

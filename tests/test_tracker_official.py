"""The referring tracker reproduces the official DVIS tracker on the reference bundle (to ~1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.modeling.tracker import ReferringTracker

BUNDLE_Q, BUNDLE_C, BUNDLE_K = 20, 64, 40


@pytest.fixture(scope="module")
def bundle(test_data_dir):
    folder = test_data_dir / "dvis_official_tiny"
    state = torch.load(folder / "checkpoint.pth", weights_only=True, map_location="cpu")["model"]
    outputs = dict(np.load(folder / "outputs.npz"))
    return state, outputs


@pytest.fixture(scope="module")
def tracker(bundle):
    state, _ = bundle
    module = ReferringTracker(hidden_dim=BUNDLE_C, num_heads=8, dim_feedforward=256, num_layers=6,
                              num_classes=BUNDLE_K, mask_dim=BUNDLE_C)
    tracker_state = {k[len("tracker."):]: v.float() for k, v in state.items() if k.startswith("tracker.")}
    missing, unexpected = module.load_state_dict(tracker_state, strict=True)
    assert not missing and not unexpected
    return module.eval()


def test_official_keys_match_exactly(bundle, tracker):
    state, _ = bundle
    official = {k[len("tracker."):]: tuple(v.shape) for k, v in state.items() if k.startswith("tracker.")}
    ours = {k: tuple(v.shape) for k, v in tracker.state_dict().items()}
    assert ours == official


def test_tracker_reproduces_official_logits_embeds_and_matching(bundle, tracker):
    _, outputs = bundle
    seg_embds = torch.from_numpy(outputs["seg_embds"])  # (T, Q, C)
    mask_features = torch.zeros(seg_embds.shape[0], 1, BUNDLE_C, 2, 2)  # masks are checked elsewhere
    with torch.no_grad():
        out, state = tracker(seg_embds.unsqueeze(0), mask_features.transpose(0, 1))
    np.testing.assert_array_equal(out["match_indices"][0].numpy(), outputs["trk_match_indices"])
    np.testing.assert_allclose(out["pred_logits"][0].numpy(), outputs["trk_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["pred_embds"][0].numpy(), outputs["trk_embds"], atol=1e-4, rtol=0)
    assert state.frame_index == seg_embds.shape[0] - 1
    assert out["track_ids"][0].tolist() == [list(range(BUNDLE_Q))] * seg_embds.shape[0]
    online_cls = out["pred_logits"][0].mean(0)
    np.testing.assert_allclose(online_cls.numpy(), outputs["final_online_cls_in"], atol=1e-4, rtol=0)


def test_frame_forward_reproduces_official_frame_memory(bundle, tracker):
    _, outputs = bundle
    seg_embds = torch.from_numpy(outputs["seg_embds"]).unsqueeze(0)
    with torch.no_grad():
        memory = tracker.frame_forward(seg_embds)
    np.testing.assert_allclose(memory[0].numpy(), outputs["trk_frame_embds"], atol=1e-4, rtol=0)


def test_step_by_step_equals_whole_clip(bundle, tracker):
    _, outputs = bundle
    seg_embds = torch.from_numpy(outputs["seg_embds"])
    mask_features = torch.randn(seg_embds.shape[0], 1, BUNDLE_C, 4, 6)
    with torch.no_grad():
        whole, _ = tracker(seg_embds.unsqueeze(0), mask_features.transpose(0, 1))
        state = None
        for t in range(seg_embds.shape[0]):
            out, state = tracker.step(seg_embds[t : t + 1], mask_features[t], state)
            torch.testing.assert_close(out["pred_masks"], whole["pred_masks"][:, :, t])
            torch.testing.assert_close(out["pred_logits"], whole["pred_logits"][:, t])


def test_bundle_producer_reproduces_online_results_without_masks(bundle, tracker):
    """Producer on the bundle's segmenter queries: tracker tensors and the final (id, label, score) set."""
    from types import SimpleNamespace

    from spvis.checkpoints.bundle_tracker import TRACKER_KEYS, produce

    _, outputs = bundle
    frames = np.zeros((6, 128, 192, 3), np.uint8)
    features = np.zeros((6, BUNDLE_C, 32, 48), np.float32)
    got = produce(SimpleNamespace(tracker=tracker), frames, {"seg_embds": outputs["seg_embds"],
                                                             "mask_features": features})
    assert set(got) == set(TRACKER_KEYS)
    for key in ("trk_logits", "trk_embds", "trk_frame_embds", "final_online_cls_in"):
        np.testing.assert_allclose(got[key], outputs[key], atol=1e-4, rtol=0, err_msg=key)
    np.testing.assert_array_equal(got["trk_match_indices"], outputs["trk_match_indices"])
    ours = sorted(zip(got["final_online_ids"].tolist(), got["final_online_labels"].tolist()))
    official = sorted(zip(outputs["final_online_ids"].tolist(), outputs["final_online_labels"].tolist()))
    assert ours == official
    assert got["final_online_masks"].shape == outputs["final_online_masks"].shape

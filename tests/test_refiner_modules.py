"""Invariants of the refiner, SIM and RCP modules (small random models, CPU)."""

from __future__ import annotations

import torch

from spvis.config import get_cfg
from spvis.modeling.rcp import (
    CausalRefinementCompensator,
    VideoRefinementCompensator,
    contrastive_loss,
    preservation_loss,
)
from spvis.modeling.refiner import TemporalRefiner, build_refiner
from spvis.modeling.sim import SpatialInteractionModule, attention_block_mask, dilate_masks


def _tiny_refiner(**kwargs) -> TemporalRefiner:
    torch.manual_seed(0)
    return TemporalRefiner(num_classes=5, hidden_dim=32, nheads=4, dim_feedforward=64, num_layers=2,
                           mask_dim=32, **kwargs).eval()


def test_refiner_batched_equals_per_video():
    refiner = _tiny_refiner()
    x, mem = torch.randn(2, 7, 6, 32), torch.randn(2, 7, 6, 32)
    with torch.no_grad():
        both = refiner(x, mem)
        first = refiner(x[:1], mem[:1])
    torch.testing.assert_close(both["pred_logits"][:1], first["pred_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(both["pred_embds"][:1], first["pred_embds"], atol=1e-5, rtol=0)


def test_refiner_single_frame_and_windowed_masks():
    refiner = _tiny_refiner()
    with torch.no_grad():
        out = refiner(torch.randn(1, 1, 6, 32), torch.randn(1, 1, 6, 32))
        assert out["pred_logits"].shape == (1, 6, 6)
        out = refiner(torch.randn(1, 5, 6, 32), torch.randn(1, 5, 6, 32))
        features = torch.randn(1, 5, 32, 8, 10)
        full = refiner.predict_masks(out["pred_embds"], features)
        windows = torch.cat([refiner.predict_masks(out["pred_embds"][:, s:s + 2], features[:, s:s + 2])
                             for s in range(0, 5, 2)], dim=1)
    assert full.shape == (1, 5, 6, 8, 10)
    torch.testing.assert_close(full, windows, atol=1e-5, rtol=0)


def test_build_refiner_defaults_are_plain_dvis_and_switches_add_modules():
    cfg = get_cfg()
    cfg.MODEL.DECODER.HIDDEN_DIM = 32
    cfg.MODEL.PIXEL_DECODER.MASK_DIM = 32
    cfg.MODEL.DECODER.DIM_FEEDFORWARD = 64
    cfg.MODEL.DECODER.NHEADS = 4
    cfg.MODEL.REFINER.DECODER_LAYERS = 2
    plain = build_refiner(cfg)
    assert plain.sim is None and plain.rcp is None
    assert all(k.split(".")[0] in {
        "transformer_time_self_attention_layers", "conv_short_aggregate_layers", "conv_norms",
        "transformer_obj_self_attention_layers", "transformer_cross_attention_layers", "transformer_ffn_layers",
        "decoder_norm", "class_embed", "mask_embed", "activation_proj"} for k in plain.state_dict())
    cfg.MODEL.REFINER.SIM = True
    cfg.MODEL.REFINER.RCP = True
    full = build_refiner(cfg)
    assert isinstance(full.sim, SpatialInteractionModule) and isinstance(full.rcp, VideoRefinementCompensator)
    out = full(torch.randn(1, 4, 10, 32), torch.randn(1, 4, 10, 32))
    assert out["rcp_compensated"].shape == (1, 4, 10, 32) and out["rcp_memory"].shape == (1, 10, 32)
    assert len(plain.transformer_time_self_attention_layers) == 2
    out["pred_logits"].sum().backward()
    assert full.rcp.compensator.alpha.grad is not None


def test_dilation_and_empty_mask_rows():
    logits = torch.full((1, 2, 5, 5), -1.0)
    logits[0, 0, 2, 2] = 1.0
    region = dilate_masks(logits, 1)
    assert region[0, 0].sum() == 9 and region[0, 1].sum() == 0
    block = attention_block_mask(region, nheads=2)
    assert block.shape == (1 * 2, 2, 25)
    assert (~block[0, 0]).sum() == 9 and not block[0, 1].any()  # empty mask: sees everything


def test_sim_starts_as_identity_and_respects_the_guide_mask():
    torch.manual_seed(0)
    sim = SpatialInteractionModule(hidden_dim=16, mask_dim=8, nheads=2, dilation=1, feature_stride=1)
    queries, features = torch.randn(1, 1, 16), torch.randn(1, 8, 6, 6)
    guide = torch.full((1, 1, 6, 6), -20.0)
    guide[0, 0, 1, 1] = 5.0
    out = sim(queries, features, guide)
    torch.testing.assert_close(out["embeds"], queries)  # gate 0: exact identity
    with torch.no_grad():
        sim.gate.fill_(1.0)
        base = sim(queries, features, guide)["embeds"]
        far = features.clone()
        far[..., 4:, 4:] += 5.0  # outside the dilated mask (rows/cols 0..2)
        outside = sim(queries, far, guide)["embeds"]
        near = features.clone()
        near[..., 1, 1] += 5.0
        inside = sim(queries, near, guide)["embeds"]
    assert (outside - base).abs().max() < 1e-3  # only the sigmoid(-20) pooling weight leaks
    assert (inside - base).abs().max() > 1e-2


def test_causal_rcp_state_is_bounded_and_causal():
    torch.manual_seed(0)
    rcp = CausalRefinementCompensator(8, memory_size=3)
    frames = torch.randn(10, 2, 4, 8)
    state, outputs = None, []
    for t in range(10):
        out, state = rcp.step(frames[t], state, scores=torch.ones(2, 4))
        outputs.append(out)
        assert state.fifo.shape == (2, 3, 4, 8) and state.filled == min(t + 1, 3)
    changed = frames.clone()
    changed[7:] += 3.0  # the future must not change earlier outputs
    state = None
    for t in range(7):
        out, state = rcp.step(changed[t], state, scores=torch.ones(2, 4))
        torch.testing.assert_close(out, outputs[t])
    with torch.no_grad():
        rcp.compensator.alpha.zero_()
    out, _ = rcp.step(frames[0], None)
    torch.testing.assert_close(out, frames[0])


def test_low_scores_freeze_the_stable_embedding():
    rcp = CausalRefinementCompensator(8, memory_size=3, score_threshold=0.5)
    x = torch.randn(1, 2, 8)
    _, state = rcp.step(x, None)
    _, new_state = rcp.step(torch.randn(1, 2, 8), state, scores=torch.zeros(1, 2))
    torch.testing.assert_close(new_state.stable, state.stable)


def test_preservation_loss_values():
    m = torch.randn(1, 3, 8)
    same = m.unsqueeze(1).repeat(1, 4, 1, 1)
    valid = torch.ones(1, 4, 3, dtype=torch.bool)
    assert preservation_loss(same, m, valid).item() < 1e-6
    assert abs(preservation_loss(-same, m, valid).item() - 2.0) < 1e-5
    assert preservation_loss(-same, m, torch.zeros_like(valid)).item() == 0.0


def test_contrastive_loss_prefers_consistent_tracks():
    torch.manual_seed(0)
    identities = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    consistent = identities.unsqueeze(0).repeat(5, 1, 1)[None] + 0.01 * torch.randn(1, 5, 4, 16)
    swapped = consistent.clone()
    swapped[0, 2:] = swapped[0, 2:, [1, 0, 3, 2]]  # identities switch slots half way
    valid = torch.ones(1, 5, 4, dtype=torch.bool)
    good, bad = contrastive_loss(consistent, valid), contrastive_loss(swapped, valid)
    assert good < 0.05 < bad
    assert contrastive_loss(consistent, torch.zeros_like(valid)).item() == 0.0


def test_fused_attention_blocks_equal_the_shared_layers():
    """The refiner's need_weights=False attention path computes exactly what the layer modules compute."""
    refiner = _tiny_refiner()
    x, mem = torch.randn(9, 3, 32), torch.randn(6, 3, 32)
    from spvis.modeling.refiner import _attend

    with torch.no_grad():
        time_layer = refiner.transformer_time_self_attention_layers[0]
        cross_layer = refiner.transformer_cross_attention_layers[0]
        torch.testing.assert_close(_attend(time_layer.self_attn, time_layer.norm, x, x), time_layer(x),
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(_attend(cross_layer.multihead_attn, cross_layer.norm, x, mem),
                                   cross_layer(x, mem), atol=1e-5, rtol=0)

"""Tracker with the Joint Feature-Preserving parts: MODEL.TRACKER.SIM and MODEL.TRACKER.RCP."""

from __future__ import annotations

import torch

from _tracker_fakes import TINY, FakeSegmenterModel, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.modeling.stages import tracker_stage
from spvis.modeling.tracker import build_tracker


def _cfg(sim: bool = False, rcp: bool = False, alpha: float = 0.0):
    cfg = tiny_cfg()
    cfg.MODEL.TRACKER.SIM = sim
    cfg.MODEL.TRACKER.RCP = rcp
    cfg.MODEL.TRACKER.RCP_ALPHA_INIT = alpha
    cfg.MODEL.TRACKER.RCP_MEMORY_SIZE = 3
    return cfg


def _tracker(cfg):
    torch.manual_seed(0)
    return build_tracker(cfg).eval()


def _clip(frames: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, frames, TINY["Q"], TINY["C"], generator=gen)
    features = torch.randn(1, frames, TINY["C"], 12, 10, generator=gen)
    return embeds, features


def _run(tracker, embeds, features) -> dict:
    with torch.no_grad():
        out, _ = tracker(embeds, features)
    return out


def test_switches_off_keep_exactly_the_dvis_keys():
    keys = set(_tracker(_cfg()).state_dict())
    assert not any(k.startswith(("sim.", "rcp.")) for k in keys)
    on = set(_tracker(_cfg(sim=True, rcp=True)).state_dict())
    assert keys < on
    assert {"sim.gate", "rcp.compensator.alpha", "rcp.key_proj.weight"} <= on - keys


def test_zero_gates_reproduce_dvis_and_perturbed_gates_change_outputs():
    embeds, features = _clip()
    for switches, gate_name in (({"sim": True}, "sim.gate"), ({"rcp": True}, "rcp.compensator.alpha")):
        tracker = _tracker(_cfg(**switches))
        dvis = _tracker(_cfg())
        dvis.load_state_dict({k: v for k, v in tracker.state_dict().items() if k in dvis.state_dict()})
        base = _run(dvis, embeds, features)
        at_init = _run(tracker, embeds, features)
        for key in ("pred_logits", "pred_masks", "pred_embds"):
            torch.testing.assert_close(at_init[key], base[key], rtol=0, atol=1e-6)
        with torch.no_grad():
            dict(tracker.named_parameters())[gate_name].fill_(0.5)
        moved = _run(tracker, embeds, features)
        assert (moved["pred_logits"] - base["pred_logits"]).abs().max() > 1e-4, gate_name
        assert (moved["pred_masks"] - base["pred_masks"]).abs().max() > 1e-4, gate_name


def test_sim_follows_the_previous_mask_of_each_slot():
    """After frame 0 the guide is the slot's previous mask: changing it changes that slot's output."""
    tracker = _tracker(_cfg(sim=True))
    with torch.no_grad():
        tracker.sim.gate.fill_(1.0)
    embeds, features = _clip(2)
    with torch.no_grad():
        _, state = tracker.step(embeds[:, 0], features[:, 0])
        assert state.sim_guide.dtype == torch.bool and state.sim_guide.shape == (1, TINY["Q"], 12, 10)
        out_a, _ = tracker.step(embeds[:, 1], features[:, 1], state)
        state.sim_guide = torch.zeros_like(state.sim_guide)
        state.sim_guide[:, :, :3, :3] = True
        out_b, _ = tracker.step(embeds[:, 1], features[:, 1], state)
    assert (out_a["pred_embds"] - out_b["pred_embds"]).abs().max() > 1e-4


def test_state_stays_bounded_over_many_frames():
    cfg = _cfg(sim=True, rcp=True, alpha=0.05)
    tracker = _tracker(cfg)
    embeds, features = _clip(frames=12, seed=3)
    sizes = []
    state = None
    with torch.no_grad():
        for t in range(embeds.shape[1]):
            out, state = tracker.step(embeds[:, t], features[:, t], state)
            assert torch.isfinite(out["pred_logits"]).all()
            sizes.append(state.rcp.fifo.numel() + state.sim_guide.numel() + state.last_output.numel())
    assert state.rcp.fifo.shape == (1, 3, TINY["Q"], TINY["C"]) and state.rcp.filled == 3
    assert len(set(sizes)) == 1  # nothing grows with the number of frames
    assert not state.rcp.fifo.requires_grad and not state.rcp.stable.requires_grad


def _targets(num_frames: int) -> dict:
    masks = torch.zeros(2, num_frames, 32, 32)
    masks[0, :, 4:12, 4:12] = 1
    masks[1, 1:, 20:28, 16:30] = 1
    return {"labels": torch.tensor([0, 2]), "ids": torch.tensor([5, 9]), "masks": masks,
            "present": masks.flatten(2).any(-1)}


def test_one_tracker_stage_step_trains_sim_and_rcp():
    cfg = _cfg(sim=True, rcp=True, alpha=0.05)
    cfg.INPUT.SAMPLING_FRAME_NUM = 2
    cfg.INPUT.SAMPLING_NUM_CLIPS = 2
    cfg.MODEL.LOSS.TRAIN_NUM_POINTS = 64
    cfg.STAGE = "tracker"
    model = FakeSegmenterModel(cfg)
    model.train()
    with torch.no_grad():
        model.tracker.sim.gate.fill_(0.5)  # at 0 only the gate itself would get a gradient
    criterion = tracker_stage.TrackerCriterion.from_config(cfg)
    losses = criterion(model, torch.randn(4, 3, 32, 32), [_targets(4)], 4, iteration=0, max_iter=1)
    assert "loss_preserve" in losses and torch.isfinite(losses["loss_preserve"])
    sum(losses.values()).backward()
    for name, param in list(model.tracker.sim.named_parameters()) + list(model.tracker.rcp.named_parameters()):
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert model.pixel_proj.weight.grad is None  # the segmenter stays frozen


def test_preservation_loss_uses_only_matched_present_slots():
    slots, ids = torch.tensor([4, 1]), torch.tensor([0, 1])
    valid = tracker_stage.matched_presence([(slots, ids)], [_targets(3)], 3, TINY["Q"])
    expected = torch.zeros(1, 3, TINY["Q"], dtype=torch.bool)
    expected[0, :, 4] = True
    expected[0, 1:, 1] = True
    assert torch.equal(valid, expected)


def test_empty_previous_mask_attends_and_pools_everywhere():
    tracker = _tracker(_cfg(sim=True))
    with torch.no_grad():
        tracker.sim.gate.fill_(1.0)
        queries, features = torch.randn(1, TINY["Q"], TINY["C"]), torch.randn(1, TINY["C"], 12, 10)
        empty = torch.zeros(1, TINY["Q"], 12, 10, dtype=torch.bool)
        unguided = tracker.sim(queries, features, None)
        guided = tracker.sim(queries, features, empty)
    torch.testing.assert_close(guided["embeds"], unguided["embeds"])
    torch.testing.assert_close(guided["appearance"], unguided["appearance"])

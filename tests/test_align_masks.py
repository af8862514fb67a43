"""MODEL.TRACKER.ALIGN_MASK_WEIGHT: look-alike queries (equal embeddings) are aligned by where each object was."""

from __future__ import annotations

import torch

from _tracker_fakes import TINY, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.modeling.pgt.association import mask_iou
from spvis.modeling.pgt.matching import (FrameMasks, SlotMasks, alignment_costs, mask_centres, match_batch,
                                         remember_slot_masks, translate_masks)
from spvis.modeling.tracker import build_tracker

Q, C = TINY["Q"], TINY["C"]


def _masks(*columns: int, width: int = 8) -> torch.Tensor:
    """One (4, width) mask per query, filled in two columns starting at each given column; -1 = empty. -> (1, Q, h, w)
    mask logits (+5 inside, -5 outside)."""
    logits = torch.full((1, len(columns), 4, width), -5.0)
    for q, column in enumerate(columns):
        if column >= 0:
            logits[0, q, :, column:column + 2] = 5.0
    return logits


def _logits(*confident: bool) -> torch.Tensor:
    """(1, Q, K+1) class logits: class 0 at probability ~1 where confident, else no-object."""
    logits = torch.full((1, len(confident), TINY["K"] + 1), -10.0)
    for q, yes in enumerate(confident):
        logits[0, q, 0 if yes else -1] = 10.0
    return logits


def test_batched_mask_iou_equals_the_per_clip_one():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 5, 20, generator=gen) > 0.5, torch.rand(3, 4, 20, generator=gen) > 0.5
    batched = mask_iou(a, b)
    assert batched.shape == (3, 5, 4)
    for clip in range(3):
        torch.testing.assert_close(batched[clip], mask_iou(a[clip], b[clip]))


def test_overlap_term_breaks_a_tie_between_look_alikes_and_is_off_by_default():
    same = torch.randn(1, C).expand(2, C)  # two identical embeddings: cosine cannot tell them apart
    ref, cur = same.unsqueeze(1), same.unsqueeze(1)  # (Q=2, B=1, C)
    ref_masks = torch.tensor([[[1, 1, 0, 0], [0, 0, 1, 1]]]).bool()  # slot 0 left, slot 1 right
    cur_masks = torch.tensor([[[0, 0, 1, 1], [1, 1, 0, 0]]]).bool()  # query 0 right, query 1 left
    costs = alignment_costs(ref, cur, ref_masks, cur_masks, mask_weight=1.0)
    torch.testing.assert_close(costs - alignment_costs(ref, cur), 1 - mask_iou(ref_masks, cur_masks))
    same_labels = torch.zeros(1, 2, dtype=torch.long)
    still = torch.zeros(1, 2, 2)
    slots = SlotMasks(ref_masks.view(1, 2, 1, 4), same_labels, still, still, torch.ones(1, 2))
    frame = FrameMasks(cur_masks.view(1, 2, 1, 4), same_labels, torch.ones(1, 2, dtype=torch.bool))
    assert match_batch(ref, cur, "hungarian", slots, frame, 1.0).tolist() == [[1, 0]]
    assert match_batch(ref, cur, "hungarian", slots, frame, 0.0).tolist() == [[0, 1]]  # a tie, kept in order
    # another label: an occluder that appears where the hidden object was is not pulled into its slot
    other = FrameMasks(cur_masks, torch.tensor([[1, 1]]), frame.confident)
    assert torch.equal(match_batch(ref, cur, "hungarian", slots, other, 1.0), match_batch(ref, cur, "hungarian"))


def _tracker(weight: float):
    cfg = tiny_cfg()
    cfg.MODEL.TRACKER.ALIGNMENT = "hungarian"
    cfg.MODEL.TRACKER.ALIGN_MASK_WEIGHT = weight
    return build_tracker(cfg).eval()


@torch.no_grad()
def test_tracker_follows_look_alikes_that_swap_query_order():
    """Frame 1: two look-alikes in queries 0 (left) and 1 (right); frame 2: the segmenter lists them the other way
    round with the same embeddings. Only the overlap with each slot's last mask can keep the identities."""
    embeds = torch.randn(1, Q, C)
    embeds[:, 1] = embeds[:, 0]
    features = torch.randn(1, C, 4, 8)
    conf = _logits(True, True, False, False, False, False)
    first = _masks(0, 6, -1, -1, -1, -1)
    second = _masks(6, 0, -1, -1, -1, -1)  # query 0 is now the right object, query 1 the left one
    for weight, expected in ((1.0, [1, 0]), (0.0, [0, 1])):
        tracker = _tracker(weight)
        _, state = tracker.step(embeds, features, None, frame_masks=first, frame_logits=conf)
        out, state = tracker.step(embeds, features, state, frame_masks=second, frame_logits=conf)
        assert out["match_indices"][0, :2].tolist() == expected, weight
    assert state.slot_masks is None  # weight 0 keeps no masks: DVIS's state


@torch.no_grad()
def test_slot_remembers_its_last_confident_mask_through_an_occlusion():
    tracker = _tracker(1.0)
    embeds, features = torch.randn(1, Q, C), torch.randn(1, C, 4, 8)
    seen = _masks(2, -1, -1, -1, -1, -1)
    _, state = tracker.step(embeds, features, None, frame_masks=seen, frame_logits=_logits(True, *[False] * 5))
    remembered = state.slot_masks.masks.clone()
    assert remembered[0, 0].any() and not remembered[0, 1:].any()  # unconfident queries leave no mask
    assert state.slot_masks.labels[0].tolist() == [0] + [-1] * (Q - 1)
    # hidden: the query that held the object is no-object with a stray mask elsewhere
    _, state = tracker.step(embeds, features, state, frame_masks=_masks(*[5] * Q), frame_logits=_logits(*[False] * Q))
    assert torch.equal(state.slot_masks.masks, remembered)


@torch.no_grad()
def test_training_and_mask_free_calls_use_embeddings_only():
    tracker = _tracker(1.0)
    embeds, features = torch.randn(1, Q, C), torch.randn(1, C, 4, 8)
    _, state = tracker.step(embeds, features, None)
    out, state = tracker.step(embeds.flip(1), features, state)
    assert out["match_indices"][0].tolist() == list(range(Q))[::-1]
    assert state.slot_masks is None


@torch.no_grad()
def test_minvis_overlap_term_is_off_as_published_and_keeps_look_alikes_when_on():
    from spvis.modeling.minvis import minvis_step

    embeds = torch.randn(1, Q, C)
    embeds[:, 1] = embeds[:, 0]
    conf = _logits(True, True, False, False, False, False)

    def seg(masks):
        return {"pred_embds": embeds, "pred_logits": conf, "pred_masks": masks}

    for weight, expected in ((1.0, [1, 0]), (0.0, [0, 1])):
        _, state = minvis_step(seg(_masks(0, 6, -1, -1, -1, -1)), None, weight)
        out, state = minvis_step(seg(_masks(6, 0, -1, -1, -1, -1)), state, weight)
        assert out["match_indices"][0, :2].tolist() == expected, weight
        assert (state.slot_masks is None) == (weight == 0)


def test_translate_masks_moves_each_mask_by_its_own_shift_and_drops_what_leaves():
    masks = torch.zeros(1, 2, 3, 5, dtype=torch.bool)
    masks[0, 0, 1, 1] = masks[0, 1, 0, 4] = True
    moved = translate_masks(masks, torch.tensor([[[1.0, 2.2], [0.0, 1.0]]]))
    assert moved[0, 0].nonzero().tolist() == [[2, 3]]
    assert not moved[0, 1].any()  # pushed out of the frame
    torch.testing.assert_close(mask_centres(masks), torch.tensor([[[1.0, 1.0], [0.0, 4.0]]]))


def test_velocity_follows_the_centre_between_sightings_and_motion_resolves_a_crossing():
    conf = torch.ones(1, 2, dtype=torch.bool)
    labels = torch.zeros(1, 2, dtype=torch.long)
    order = torch.tensor([[0, 1]])

    def frame(*columns):
        masks = torch.zeros(1, 2, 2, 8, dtype=torch.bool)
        for q, column in enumerate(columns):
            masks[0, q, :, column:column + 2] = True
        return FrameMasks(masks, labels, conf)

    slots = remember_slot_masks(None, frame(0, 6), order)
    slots = remember_slot_masks(slots, frame(2, 4), order)  # slot 0 moves right, slot 1 left, 2 pixels a frame
    torch.testing.assert_close(slots.velocity, torch.tensor([[[0.0, 2.0], [0.0, -2.0]]]))
    # they cross: query 0 is now at slot 1's next place (2) and query 1 at slot 0's (4); same embeddings
    same = torch.randn(1, C).expand(2, C).unsqueeze(1)
    crossed = frame(2, 4)
    assert match_batch(same, same, "hungarian", slots, crossed, 1.0, motion=False).tolist() == [[0, 1]]
    assert match_batch(same, same, "hungarian", slots, crossed, 1.0, motion=True).tolist() == [[1, 0]]
    # unseen for a frame: the memory keeps the mask, ages it, and keeps the velocity for the propagation
    hidden = FrameMasks(torch.zeros(1, 2, 2, 8, dtype=torch.bool), labels, torch.zeros(1, 2, dtype=torch.bool))
    later = remember_slot_masks(slots, hidden, order)
    assert later.age.tolist() == [[2.0, 2.0]] and torch.equal(later.masks, slots.masks)
    assert later.propagated()[0, 0, 0].nonzero().flatten().tolist() == [6, 7]

"""TEST.EXCLUSIVE_MASKS: a pixel several tracks' masks claim stays in one of them (score x mask probability)."""

from __future__ import annotations

import torch

from spvis.modeling.inference.emission import MASK_CHUNK, emit_frame
from spvis.modeling.postprocess import exclusive_masks
from spvis.modeling.preprocessing import PreparedFrames


def _logits(*boxes: tuple[int, int, int, int, float], size: int = 8) -> torch.Tensor:
    """One (size, size) logit map per box (y0, y1, x0, x1, logit inside); -5 outside."""
    out = torch.full((len(boxes), size, size), -5.0)
    for i, (y0, y1, x0, x1, value) in enumerate(boxes):
        out[i, y0:y1, x0:x1] = value
    return out


def test_disputed_pixels_go_to_the_higher_claim_and_the_rest_is_untouched():
    logits = _logits((0, 4, 0, 4, 3.0), (2, 6, 2, 6, 3.0))  # overlap: rows 2-3, cols 2-3
    masks = exclusive_masks(logits, torch.tensor([0.9, 0.5]))
    assert masks[0, 2:4, 2:4].all() and not masks[1, 2:4, 2:4].any()
    assert masks[1, 4:6, 2:6].all() and masks[1, 2:4, 4:6].all()  # undisputed pixels of the loser stay
    assert (masks[0] | masks[1]).sum() == ((logits[0] > 0) | (logits[1] > 0)).sum()  # nothing dropped
    assert not (masks[0] & masks[1]).any()


def test_mask_probability_can_outweigh_a_higher_score():
    logits = _logits((0, 4, 0, 4, 0.2), (0, 4, 0, 4, 6.0))  # 0.9 * 0.55 < 0.6 * 0.998
    masks = exclusive_masks(logits, torch.tensor([0.9, 0.6]))
    assert not masks[0].any() and masks[1, :4, :4].all()


def test_entries_of_one_track_keep_their_pixels_and_absent_tracks_claim_nothing():
    logits = _logits((0, 4, 0, 4, 3.0), (0, 4, 0, 4, 3.0), (0, 4, 0, 4, 3.0))
    scores = torch.tensor([0.9, 0.4, 0.5])  # entries 0 and 1: one track listed with two classes
    masks = exclusive_masks(logits, scores, owners=torch.tensor([7, 7, 8]))
    assert masks[0, :4, :4].all() and masks[1, :4, :4].all() and not masks[2].any()
    absent = exclusive_masks(logits, scores, owners=torch.tensor([7, 7, 8]),
                             competing=torch.tensor([False, False, True]))
    assert absent[2, :4, :4].all()  # the absent track's claim does not take the pixels away


def _emit(track_ids, logits, exclusive):
    prepared = PreparedFrames(images=torch.zeros(1, 3, 8, 8), image_size=(8, 8), frame_size=(8, 8))
    frame = emit_frame(track_ids, logits, _mask_logits, prepared, 0, exclusive=exclusive)
    return frame


def test_emit_frame_chunks_agree_with_the_rule_over_all_slots():
    global _mask_logits
    generator = torch.Generator().manual_seed(0)
    num_slots = MASK_CHUNK + 5  # two chunks: the running best claim crosses the chunk border
    _mask_logits = torch.randn(num_slots, 8, 8, generator=generator) * 3
    class_logits = torch.randn(num_slots, 4, generator=generator)
    track_ids = torch.arange(num_slots)
    track_ids[3] = -1  # a slot that holds no track claims nothing
    plain = _emit(track_ids, class_logits, exclusive=False)
    assert (plain.masks.sum(0) > 1).any(), "the random masks should overlap somewhere"
    frame = _emit(track_ids, class_logits, exclusive=True)
    scores = class_logits.softmax(-1)[:, :-1].max(-1).values
    expected = exclusive_masks(_mask_logits, scores, competing=track_ids >= 0)
    held = track_ids >= 0
    assert torch.equal(frame.masks[held], expected[held])
    assert (frame.masks[held].sum(0) <= 1).all()
    host = frame.to_host()
    assert (host.masks(held.numpy()) == expected[held].numpy()).all()


_mask_logits = torch.zeros(0)

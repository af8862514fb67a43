"""VPS / VSS post-processing (reference §6): thresholds by hand, a naive per-query loop as reference, the semantic
sum over query chunks, and the tracks' running class logits."""

from __future__ import annotations

import pytest
import torch

from spvis.modeling.panoptic import (VOID, PanopticRules, RunningClassLogits, assign_panoptic, keep_queries,
                                     panoptic_counts, panoptic_from_logits, panoptic_pixels, segments_kept,
                                     semantic_class_scores, semantic_labels)

BIG = 20.0  # a logit that makes softmax ~1 and sigmoid ~1


def _logits(labels: list[int], num_classes: int, strength: float = BIG) -> torch.Tensor:
    """(Q, K+1) class logits peaked at ``labels`` (K = no-object)."""
    out = torch.zeros(len(labels), num_classes + 1)
    out[torch.arange(len(labels)), torch.tensor(labels)] = strength
    return out


def test_thresholds_things_stuff_and_void_by_hand():
    rules = PanopticRules(num_things=1)  # class 0 thing, classes 1, 2 stuff
    cls = torch.cat([_logits([0, 1, 2, 3], 3), torch.zeros(1, 4)])  # q3: no-object, q4: uniform (score 0.25)
    masks = torch.full((5, 1, 4, 6), -BIG)
    masks[0, 0, :2, :3] = BIG  # thing top-left
    masks[1, 0, :, 3:] = BIG  # stuff right half
    masks[2, 0, 2:, :3] = 0.1  # stuff bottom-left, weak mask (sigmoid 0.52): still >= 0.5
    masks[3, 0] = BIG  # no-object everywhere: never kept
    masks[4, 0] = BIG  # low score: never kept
    result = panoptic_from_logits(cls, masks, rules)
    assert result.queries.tolist() == [0, 1, 2] and result.labels.tolist() == [0, 1, 2]
    assert result.isthing.tolist() == [True, False, False]
    assert (result.pixels[0, :2, :3] == 0).all() and (result.pixels[0, :, 3:] == 1).all()
    assert (result.pixels[0, 2:, :3] == 2).all()


def test_overlap_threshold_drops_a_mostly_covered_segment_and_leaves_void():
    rules = PanopticRules(num_things=2)
    cls = _logits([0, 1], 2)
    masks = torch.full((2, 1, 1, 10), -BIG)
    masks[0, 0, 0, :10] = BIG  # q0 covers all 10 pixels
    masks[1, 0, 0, :3] = 2 * BIG  # q1 covers 3; wins them (higher prob x score only by its mask: equal ~1)
    scores = torch.tensor([0.9, 0.95])  # q1's score is higher: it wins its 3 pixels; q0 keeps 7 of 10 < 0.8
    result = assign_panoptic(scores, torch.tensor([0, 1]), masks, rules)
    assert result.queries.tolist() == [1]
    assert result.pixels[0, 0].tolist() == [0, 0, 0] + [VOID] * 7  # q0 dropped: its pixels are VOID
    looser = assign_panoptic(scores, torch.tensor([0, 1]), masks, PanopticRules(num_things=2, overlap_threshold=0.7))
    assert looser.queries.tolist() == [0, 1] and looser.pixels[0, 0].tolist() == [1, 1, 1] + [0] * 7
    assert keep_queries(torch.zeros(3, 4), rules)[0].numel() == 0  # uniform softmax: nothing passes 0.8


def _naive(cls: torch.Tensor, masks: torch.Tensor, rules: PanopticRules) -> tuple[list[int], torch.Tensor]:
    """The documented rule as a loop over kept queries, in order."""
    probs = cls.softmax(-1)
    scores, labels = probs.max(-1)
    kept = [q for q in range(cls.shape[0]) if labels[q] != cls.shape[1] - 1 and scores[q] > rules.object_threshold]
    pixels = torch.full(masks.shape[1:], VOID, dtype=torch.int64)
    if not kept:
        return [], pixels
    m = masks[kept].sigmoid()
    winner = (scores[kept].view(-1, 1, 1, 1) * m).argmax(0)
    segments: list[int] = []
    for i, q in enumerate(kept):
        area_mask = (winner == i) & (m[i] >= 0.5)
        area, orig = int(area_mask.sum()), int((m[i] >= 0.5).sum())
        if area == 0 or orig == 0 or area / orig < rules.overlap_threshold:
            continue
        pixels[area_mask] = len(segments)
        segments.append(q)
    return segments, pixels


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_the_naive_loop(seed):
    g = torch.Generator().manual_seed(seed)
    rules = PanopticRules(num_things=2, object_threshold=0.5, overlap_threshold=0.4)
    cls = torch.randn(8, 5, generator=g) * 4
    blobs = torch.randn(8, 3, 3, 3, generator=g) * 4  # smooth masks: blobs upsampled over three frames
    masks = torch.nn.functional.interpolate(blobs, size=(8, 9), mode="bilinear", align_corners=False)
    result = panoptic_from_logits(cls, masks, rules)
    segments, pixels = _naive(cls, masks, rules)
    kept = keep_queries(cls, rules)[0].tolist()
    assert 0 < len(segments) < len(kept), (kept, segments)  # segments kept and segments dropped by the overlap
    assert result.queries.tolist() == segments and torch.equal(result.pixels, pixels)
    assert torch.equal(result.isthing, result.labels < 2)


def test_the_per_video_rule_in_windows_equals_the_rule_on_the_whole_video():
    """Offline decodes a few frames at a time: counts summed over windows, then pixels window by window, give the
    whole video's assignment."""
    g = torch.Generator().manual_seed(7)
    rules = PanopticRules(num_things=2, object_threshold=0.5, overlap_threshold=0.5)
    scores, labels = torch.rand(6, generator=g) * 0.5 + 0.5, torch.randint(0, 4, (6,), generator=g)
    blobs = torch.randn(6, 7, 3, 3, generator=g) * 4
    masks = torch.nn.functional.interpolate(blobs, size=(8, 9), mode="bilinear", align_corners=False)  # 7 frames
    whole = assign_panoptic(scores, labels, masks, rules)
    area = orig = torch.zeros(6, dtype=torch.int64)
    for start in range(0, 7, 3):
        a, o = panoptic_counts(scores, masks[:, start:start + 3])
        area, orig = area + a, orig + o
    ok = segments_kept(area, orig, rules)
    assert 0 < int(ok.sum()) < 6 and torch.equal(whole.queries, torch.nonzero(ok)[:, 0])
    pixels = torch.cat([panoptic_pixels(scores, masks[:, s:s + 3], ok) for s in range(0, 7, 3)])
    assert torch.equal(pixels, whole.pixels)


def test_semantic_scores_add_over_query_chunks_and_argmax_is_the_label():
    g = torch.Generator().manual_seed(0)
    cls, masks = torch.randn(10, 4, generator=g), torch.randn(10, 2, 5, 6, generator=g)
    whole = semantic_class_scores(cls, masks)  # (3, 2, 5, 6)
    chunked = semantic_class_scores(cls[:4], masks[:4]) + semantic_class_scores(cls[4:], masks[4:])
    torch.testing.assert_close(whole, chunked)
    labels = semantic_labels(cls, masks)
    assert labels.shape == (2, 5, 6) and torch.equal(labels, whole.argmax(0))
    one = torch.full((1, 1, 2, 2), BIG)  # one query of class 2: every pixel is class 2
    assert (semantic_labels(_logits([2], 3), one) == 2).all()


def test_running_class_logits_average_each_track_over_its_frames():
    running = RunningClassLogits()
    assert running.update(torch.zeros(0, dtype=torch.int64), torch.zeros(0, 2)).shape == (0, 2)  # no track yet
    assert running.update(torch.tensor([-1]), torch.ones(1, 2)).tolist() == [[1.0, 1.0]]
    first = running.update(torch.tensor([5, -1, 7]), torch.tensor([[1.0, 0.0], [9.0, 9.0], [2.0, 2.0]]))
    assert first.tolist() == [[1.0, 0.0], [9.0, 9.0], [2.0, 2.0]]  # -1: its own logits, not stored
    second = running.update(torch.tensor([7, 5, 8]), torch.tensor([[4.0, 0.0], [3.0, 2.0], [1.0, 1.0]]))
    assert second.tolist() == [[3.0, 1.0], [2.0, 1.0], [1.0, 1.0]]  # order of the rows does not matter
    assert sorted(running.ids.tolist()) == [5, 7, 8]

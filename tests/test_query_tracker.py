"""PGT association over segmenter queries (TEST.TRACKER=pgt): detections, identities that survive slot swaps,
sleep and motion-gated re-identification, death."""

from __future__ import annotations

import torch

from spvis.modeling.pgt.query_tracker import (QueryTracker, QueryTrackerOptions, detections, mask_centres,
                                              shift_masks)

H = W = 32
K = 3  # classes


def _frame(objects: list[tuple[int, int, int, torch.Tensor]], num_queries: int = 6) -> dict:
    """Segmenter outputs with query q drawing a 6x6 square at (y, x) of class k and embedding e, for
    objects = [(query, y, x, embed)]; other queries are no-object with empty masks."""
    logits = torch.full((1, num_queries, K + 1), -5.0)
    logits[0, :, K] = 5.0  # no-object
    masks = torch.full((1, num_queries, H, W), -5.0)
    embeds = torch.randn(1, num_queries, 8, generator=torch.Generator().manual_seed(num_queries))
    for q, y, x, e in objects:
        logits[0, q, K] = -5.0
        logits[0, q, 0] = 5.0
        masks[0, q, y:y + 6, x:x + 6] = 5.0
        embeds[0, q] = e
    feats = torch.zeros(1, 8, H, W)
    return {"pred_logits": logits, "pred_masks": masks, "pred_embds": embeds, "mask_features": feats}


def _tracker(**kw) -> QueryTracker:
    return QueryTracker(QueryTrackerOptions(**kw))


E1, E2 = torch.eye(8)[0], torch.eye(8)[1]


def test_detections_drop_unconfident_empty_and_duplicate_queries():
    seg = _frame([(0, 2, 2, E1), (3, 2, 3, E1), (4, 20, 20, E2)])
    seg["pred_logits"][0, 3, 0] = 4.0  # a weaker duplicate of query 0 (IoU 30/42 > 0.7)
    opts = QueryTrackerOptions(dedup_iou=0.7)
    assert detections(seg["pred_logits"][0], seg["pred_masks"][0], opts).tolist() in ([0, 4], [4, 0])
    assert sorted(detections(seg["pred_logits"][0], seg["pred_masks"][0],
                             QueryTrackerOptions(dedup_iou=1.0)).tolist()) == [0, 3, 4]


def test_identities_follow_objects_when_query_slots_swap():
    tracker, state = _tracker(), None
    ids = []
    for t in range(6):
        # the two objects move right; from frame 3 on the segmenter's queries 0 and 1 swap objects
        a, b = (0, 1) if t < 3 else (1, 0)
        seg = _frame([(a, 4, 2 + 2 * t, E1), (b, 20, 2 + 2 * t, E2)])
        out, state = tracker.step(seg, state)
        by_query = dict(zip(out["track_ids"][0].tolist(), out["pred_masks"][0].argmax(1).amax(-1).tolist()))
        ids.append(out["track_ids"][0].tolist())
        top_track = [i for i in out["track_ids"][0].tolist()
                     if bool((out["pred_masks"][0, out["track_ids"][0].tolist().index(i), 4] > 0).any())]
        assert top_track == [0], (t, by_query)  # the top object keeps track id 0 whichever query draws it
    assert all(sorted(i) == [0, 1] for i in ids)


def test_a_hidden_object_sleeps_and_is_reidentified_where_its_motion_puts_it():
    tracker, state = _tracker(sleep_frames=2, reid_radius=0.3), None
    for t in range(3):
        _, state = tracker.step(_frame([(0, 12, 2 + 2 * t, E1)]), state)
    for t in range(3, 8):  # hidden for 5 frames
        out, state = tracker.step(_frame([]), state)
        assert out["track_ids"].numel() == 0
    assert int(state.missing[0]) == 5
    out, state = tracker.step(_frame([(2, 12, 2 + 2 * 8, E1)]), state)  # back on its path, another query
    assert out["track_ids"][0].tolist() == [0] and state.next_id == 1
    # a look-alike far from the predicted position is a new object, not the sleeper
    tracker, state2 = _tracker(sleep_frames=2, reid_radius=0.1), None
    for t in range(3):
        _, state2 = tracker.step(_frame([(0, 12, 2 + 2 * t, E1)]), state2)
    for _ in range(4):
        _, state2 = tracker.step(_frame([]), state2)
    out, state2 = tracker.step(_frame([(1, 2, 24, E1)]), state2)
    assert out["track_ids"][0].tolist() == [1]


def test_tracks_die_after_kill_frames_and_state_stays_bounded():
    tracker, state = _tracker(kill_frames=3, sleep_frames=1), None
    _, state = tracker.step(_frame([(0, 4, 4, E1)]), state)
    for _ in range(4):
        _, state = tracker.step(_frame([]), state)
    assert state.num_tracks == 0


def test_mask_geometry_helpers():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, 1:3, 1:3] = True
    masks[1, 5:7, 4:6] = True
    assert mask_centres(masks).tolist() == [[1.5, 1.5], [5.5, 4.5]]
    moved = shift_masks(masks, torch.tensor([[2.0, 3.0], [-5.0, 0.0]]))
    assert moved[0, 3:5, 4:6].all() and int(moved[0].sum()) == 4
    assert moved[1, 0:2, 4:6].all() and int(moved[1].sum()) == 4

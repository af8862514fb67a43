"""PGT parts: switches, gated memory, gated reference, association, lifecycle, bounded state, denoising."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _tracker_fakes import TINY, tiny_cfg, single_thread  # noqa: F401 (autouse fixture)
from spvis.errors import ConfigError
from spvis.modeling.pgt.association import associate, mask_iou
from spvis.modeling.pgt.gate import ProgressiveReferenceGate
from spvis.modeling.pgt.lifecycle import NO_TRACK, LifecycleRules, TrackBook
from spvis.modeling.pgt.memory import TrackMemory
from spvis.modeling.pgt.noise import QueryNoiser
from spvis.modeling.tracker import build_tracker

ALL_PGT = dict(MEMORY=True, PROGRESSIVE_REF=True, CLIP_ASSOCIATION=True, LIFECYCLE=True, CLIP_LEN=3,
               MEMORY_SCORE_THR=0.0, BIRTH_SCORE_THR=0.0)


def _rules(**kw) -> LifecycleRules:
    base = dict(enabled=True, birth_score_thr=0.5, sleep_frames=2, kill_frames=5, reid_sim_thr=0.8,
                assoc_sim_thr=0.5)
    base.update(kw)
    return LifecycleRules(**base)


def test_switches_add_only_the_gate_parameters():
    base = set(build_tracker(tiny_cfg()).state_dict())
    full = set(build_tracker(tiny_cfg(**ALL_PGT)).state_dict())
    assert full - base == {"ref_gate.proj.weight", "ref_gate.proj.bias"} and base <= full


def test_pgt_parts_need_memory():
    with pytest.raises(ConfigError, match="MEMORY"):
        build_tracker(tiny_cfg(LIFECYCLE=True))


def test_stable_embedding_is_a_quality_gated_ema():
    q1 = torch.tensor([[[1.0, 0.0]]])  # (Q=1, B=1, C=2)
    memory = TrackMemory.empty(3, q1, rate=0.2, sim_gate=0.5)
    memory.update(q1, torch.tensor([[False]]))
    assert not memory.stable_valid.any() and not memory.fifo_valid.any()
    memory.update(q1, torch.tensor([[True]]), torch.tensor([[0.3]]))
    torch.testing.assert_close(memory.stable, q1)  # the first confident frame sets m
    q2 = torch.tensor([[[0.0, 1.0]]])  # cos(q2, m) = 0 < 0.5: another object took the slot, m unchanged
    memory.update(q2, torch.tensor([[True]]), torch.tensor([[1.0]]))
    torch.testing.assert_close(memory.stable, q1)
    q3 = torch.tensor([[[1.0, 1.0]]])  # cos = 0.707: m moves by rate * score = 0.2 * 0.5 = 0.1 towards q3
    memory.update(q3, torch.tensor([[True]]), torch.tensor([[0.5]]))
    torch.testing.assert_close(memory.stable, torch.tensor([[[1.0, 0.1]]]))
    for _ in range(30):  # a long steady track converges to its query
        memory.update(q3, torch.tensor([[True]]), torch.tensor([[1.0]]))
    torch.testing.assert_close(memory.stable, q3, atol=2e-3, rtol=0)
    assert memory.fifo_valid.sum() == 3


def test_gate_falls_back_to_previous_without_memory_and_starts_near_it():
    gate = ProgressiveReferenceGate(4)
    prev, stable = torch.randn(3, 1, 4), torch.randn(3, 1, 4)
    valid = torch.tensor([[True], [False], [True]])
    ref = gate(prev, stable, valid)
    torch.testing.assert_close(ref[1], prev[1])
    g = torch.sigmoid(torch.tensor(4.0))
    torch.testing.assert_close(ref[0], g * prev[0] + (1 - g) * stable[0])


def test_association_follows_swapped_slots_and_rejects_strangers():
    tracks = torch.eye(3)[:2]  # two tracks
    slots = torch.stack([torch.eye(3)[1], torch.eye(3)[0], torch.eye(3)[2]])  # slots 0/1 swapped
    masks = torch.zeros(3, 4, dtype=torch.bool)
    labels = torch.zeros(3, dtype=torch.long)
    pairs = associate(tracks, masks[:2], labels[:2], slots, masks, labels, sim_thr=0.5)
    assert pairs == [(0, 1), (1, 0)]
    strangers = torch.stack([torch.eye(3)[2]] * 3)
    assert associate(tracks, masks[:2], labels[:2], strangers, masks, labels, 0.5) == [(0, None), (1, None)]
    iou = mask_iou(torch.tensor([[1, 1, 0, 0]]).bool(), torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]]).bool())
    torch.testing.assert_close(iou, torch.tensor([[1 / 3, 0.0]]))


def _frame(book, memory, visible, embeds, scores=None):
    q = len(visible)
    book.update(memory, 0, np.array(visible), np.ones(q) if scores is None else np.array(scores),
                np.zeros(q, np.int64), embeds)
    memory.update(embeds.unsqueeze(1), torch.as_tensor(np.array(visible) & (book.slot_ids >= 0)).unsqueeze(1))
    return book.slot_ids.copy()


def test_lifecycle_birth_sleep_reid_and_death():
    embeds = torch.eye(4)[:3]  # 3 slots, distinct directions
    memory = TrackMemory.empty(4, embeds.unsqueeze(1))
    book = TrackBook(3, _rules())
    ids = _frame(book, memory, [True, False, False], embeds)
    assert ids.tolist() == [0, NO_TRACK, NO_TRACK]  # birth only where visible
    _frame(book, memory, [False, False, False], embeds)
    ids = _frame(book, memory, [False, False, False], embeds)
    assert ids[0] == NO_TRACK and [t.track_id for t in book.sleeping] == [0]  # asleep after 2 misses
    moved = torch.stack([embeds[1], embeds[0], embeds[2]])  # the object comes back in slot 1
    ids = _frame(book, memory, [False, True, False], moved)
    assert ids.tolist() == [NO_TRACK, 0, NO_TRACK] and not book.sleeping  # re-identified, same id
    ids = _frame(book, memory, [False, True, True], moved)
    assert ids[2] == 1  # a stranger is a new track
    for _ in range(8):
        ids = _frame(book, memory, [False, False, False], moved)
    assert ids.tolist() == [NO_TRACK] * 3 and not book.sleeping  # both died after KILL_FRAMES


def test_low_scores_do_not_start_tracks():
    embeds = torch.eye(2)
    memory = TrackMemory.empty(2, embeds.unsqueeze(1))
    book = TrackBook(2, _rules())
    ids = _frame(book, memory, [True, True], embeds, scores=[0.9, 0.2])
    assert ids.tolist() == [0, NO_TRACK]


def test_full_pgt_state_is_bounded_and_ids_are_track_ids():
    torch.manual_seed(0)
    # strict association and no revival: rejected tracks sleep and their slots get new ids
    tracker = build_tracker(tiny_cfg(**{**ALL_PGT, "ASSOC_SIM_THR": 0.999, "REID_SIM_THR": 1.5})).eval()
    q, c = TINY["Q"], TINY["C"]
    state, sizes = None, set()
    seen = set()
    with torch.no_grad():
        for t in range(40):
            embeds = torch.randn(1, q, c)
            out, state = tracker.step(embeds, torch.randn(1, c, 4, 4), state)
            sizes.add((tuple(state.last_output.shape), tuple(state.memory.fifo.shape), tuple(state.memory.stable.shape)))
            assert len(state.books[0].sleeping) <= 4 * q
            ids = out["track_ids"][0]
            live = ids[ids >= 0].tolist()
            assert len(live) == len(set(live))  # a track holds one slot at most
            seen.update(live)
    assert len(sizes) == 1
    assert max(seen) >= q  # random queries: identities are born beyond the slot range


def test_baseline_ids_are_slots():
    tracker = build_tracker(tiny_cfg()).eval()
    with torch.no_grad():
        out, _ = tracker.step(torch.randn(2, TINY["Q"], TINY["C"]), torch.randn(2, TINY["C"], 4, 4))
    assert out["track_ids"].tolist() == [list(range(TINY["Q"]))] * 2


def test_noiser_modes_and_bookkeeping():
    gen = torch.Generator().manual_seed(0)
    cur = torch.randn(5, 2, 8)
    noisy, idx = QueryNoiser("rs", 1.0, gen)(cur)
    torch.testing.assert_close(noisy, torch.stack([cur[idx[b], b] for b in range(2)], 1))
    noisy, idx = QueryNoiser("wa", 1.0, gen)(cur)
    assert noisy.shape == cur.shape and idx.shape == (2, 5)
    for b in range(2):
        for s in range(5):
            own = (noisy[s, b] - cur[s, b]).norm()
            # the bookkeeping index names the query that dominates the blend
            assert own <= (noisy[s, b] - cur[int(idx[b, s]), b]).norm() + 1e-6 or int(idx[b, s]) != s
    assert not QueryNoiser("none", 1.0).should_noise()
    with pytest.raises(ConfigError, match="NOISE_MODE"):
        QueryNoiser("bogus", 0.5)


def test_training_noise_changes_identity_only_in_training():
    tracker = build_tracker(tiny_cfg())
    embeds = torch.randn(2, 1, TINY["Q"], TINY["C"])
    feats = torch.randn(1, 2, TINY["C"], 4, 4)
    tracker.eval()
    with torch.no_grad():
        clean, _ = tracker(embeds.transpose(0, 1), feats)
    tracker.train()
    torch.manual_seed(3)
    noisy, _ = tracker(embeds.transpose(0, 1), feats, noise_ratio=1.0)  # the tracker stage passes its schedule
    assert len(noisy["aux_outputs"]) == 1  # 2 layers: one aux set in training
    torch.testing.assert_close(noisy["pred_logits"][:, 0], clean["pred_logits"][:, 0])  # frame 0 never noised
    assert not torch.allclose(noisy["pred_logits"][:, 1], clean["pred_logits"][:, 1])


def test_reassociation_repairs_a_slot_swap_and_moves_memory():
    embeds = torch.eye(3)  # tracks 0, 1, 2 in slots 0, 1, 2 with distinct stable embeddings
    memory = TrackMemory.empty(2, embeds.unsqueeze(1))
    memory.update(embeds.unsqueeze(1), torch.ones(3, 1, dtype=torch.bool))
    book = TrackBook(3, _rules(enabled=False))
    masks = torch.zeros(3, 4, dtype=torch.bool)
    labels = torch.zeros(3, dtype=torch.long)
    swapped = embeds[[1, 0, 2]]  # propagation swapped the objects of slots 0 and 1
    book.reassociate(memory, 0, masks, labels, swapped, masks, labels)
    assert book.slot_ids.tolist() == [1, 0, 2]
    torch.testing.assert_close(memory.stable[:, 0], swapped)  # each memory followed its track
    drifted = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # slot 0 now holds a stranger
    book.reassociate(memory, 0, masks, labels, drifted, masks, labels)
    assert book.slot_ids.tolist() == [3, 1, 2]  # track 0 rejected; without a lifecycle slot 0 gets a fresh id

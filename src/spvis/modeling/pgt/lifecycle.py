"""Track identities for one clip (PGT parts 3-4): track ids that are not query slots.

A slot holds at most one track. Tracks are born from free, confidently visible slots; a track whose slot
has not been visible for SLEEP_FRAMES falls asleep (keeping its stable embedding); a free slot that becomes
visible is first compared with sleeping tracks (Hungarian on cosine) and revives one above REID_SIM_THR
(re-identification); sleeping tracks die after KILL_FRAMES missing frames. Without the lifecycle switch
every slot always holds a track (ids start at arange(Q)) and only clip association can move them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from spvis.modeling.pgt.association import REJECTED_COST, associate
from spvis.modeling.pgt.memory import TrackMemory

NO_TRACK = -1
MAX_SLEEPING_PER_SLOT = 4  # bounds the sleeping pool at 4 * Q tracks (oldest dropped first)


@dataclass
class SleepingTrack:
    track_id: int
    embed: Tensor  # (C,)
    label: int
    missing: int  # frames since last visible


@dataclass
class LifecycleRules:
    enabled: bool
    birth_score_thr: float
    sleep_frames: int
    kill_frames: int
    reid_sim_thr: float
    assoc_sim_thr: float


class TrackBook:
    """Slot -> track id bookkeeping for one clip (batch element); bounded in size."""

    def __init__(self, num_slots: int, rules: LifecycleRules):
        self.rules = rules
        self.slot_ids = np.full(num_slots, NO_TRACK, np.int64) if rules.enabled else np.arange(num_slots)
        self.next_id = 0 if rules.enabled else num_slots
        self.missing = np.zeros(num_slots, np.int64)
        self.sleeping: list[SleepingTrack] = []

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _put_to_sleep(self, track_id: int, embed: Tensor, label: int, missing: int) -> None:
        if not self.rules.enabled:
            return  # without a lifecycle a lost track simply ends
        self.sleeping.append(SleepingTrack(track_id, embed.detach().clone(), label, missing))
        limit = MAX_SLEEPING_PER_SLOT * len(self.slot_ids)
        if len(self.sleeping) > limit:
            self.sleeping = self.sleeping[-limit:]

    def reassociate(
        self, memory: TrackMemory, batch_index: int, prev_masks: Tensor, prev_labels: Tensor,
        cur_embeds: Tensor, cur_masks: Tensor, cur_labels: Tensor,
    ) -> None:
        """Clip boundary: move tracks with a stable embedding to the slot that now carries them.

        prev_masks, cur_masks (Q, P) bool; prev_labels, cur_labels (Q,); cur_embeds (Q, C). Two host transfers
        (which slots have a memory and their labels; then the association costs), none per slot.
        """
        b = batch_index
        host = torch.stack([memory.stable_valid[:, b].long(), prev_labels.long()]).cpu().numpy()  # (2, Q)
        has_memory, prev_labels_host = host[0].astype(bool), host[1]
        live = np.flatnonzero((self.slot_ids != NO_TRACK) & has_memory)
        if live.size == 0:
            return
        fixed = (self.slot_ids != NO_TRACK) & ~has_memory  # young tracks stay where they are
        candidates = np.flatnonzero(~fixed)
        live_t = torch.as_tensor(live, device=cur_embeds.device)
        cand_t = torch.as_tensor(candidates, device=cur_embeds.device)
        pairs = associate(
            memory.stable[live_t, b], prev_masks[live_t], prev_labels[live_t],
            cur_embeds[cand_t], cur_masks[cand_t], cur_labels[cand_t], self.rules.assoc_sim_thr,
        )
        num_slots = len(self.slot_ids)
        new_ids = np.where(fixed, self.slot_ids, NO_TRACK)
        source = np.arange(num_slots)
        new_missing = np.where(fixed, self.missing, 0)
        for row, col in pairs:
            old_slot = int(live[row])
            if col is None:
                self._put_to_sleep(int(self.slot_ids[old_slot]), memory.stable[old_slot, b],
                                   int(prev_labels_host[old_slot]), int(self.missing[old_slot]))
                continue
            new_slot = int(candidates[col])
            new_ids[new_slot] = self.slot_ids[old_slot]
            new_missing[new_slot] = self.missing[old_slot]
            source[new_slot] = old_slot
        receives = new_ids != NO_TRACK
        emptied = np.flatnonzero(~receives & ~fixed)
        memory.permute_slots(b, torch.as_tensor(source, device=memory.stable.device))
        for slot in emptied:
            memory.reset_slot(int(slot), b)
            if not self.rules.enabled:
                new_ids[slot] = self._new_id()  # every slot holds a track when there is no lifecycle
        self.slot_ids, self.missing = new_ids, new_missing

    def update(self, memory: TrackMemory, batch_index: int, visible: np.ndarray, scores: np.ndarray,
               labels: np.ndarray, cur_embeds: Tensor, stable_valid: np.ndarray | None = None) -> None:
        """Advance one frame: sleep, death, re-identification and birth. visible/scores/labels (Q,) on the host;
        ``stable_valid`` (Q,) = ``memory.stable_valid[:, batch_index]`` on the host (read here when None: the
        tracker passes it, brought over with the other per-slot values in one transfer). No per-slot sync; a
        frame with both newborn slots and sleeping tracks makes one more transfer (their similarities)."""
        if not self.rules.enabled:
            return
        b, rules = batch_index, self.rules
        if stable_valid is None:
            stable_valid = memory.stable_valid[:, b].cpu().numpy()
        held = self.slot_ids != NO_TRACK
        self.missing = np.where(held & ~visible, self.missing + 1, 0)
        for slot in np.flatnonzero(held & (self.missing >= rules.sleep_frames)):
            embed = memory.stable[slot, b] if stable_valid[slot] else cur_embeds[slot]
            self._put_to_sleep(int(self.slot_ids[slot]), embed, int(labels[slot]), int(self.missing[slot]))
            self.slot_ids[slot] = NO_TRACK
            self.missing[slot] = 0
        for track in self.sleeping:
            track.missing += 1
        self.sleeping = [t for t in self.sleeping if t.missing <= rules.kill_frames]
        newborn = np.flatnonzero((self.slot_ids == NO_TRACK) & visible & (scores >= rules.birth_score_thr))
        if newborn.size == 0:
            return
        revived: dict[int, int] = {}
        if self.sleeping:
            sleepers = torch.stack([t.embed for t in self.sleeping])  # (S, C)
            candidates = cur_embeds[torch.as_tensor(newborn, device=cur_embeds.device)]  # (N, C)
            sims = F.cosine_similarity(candidates.unsqueeze(1), sleepers.unsqueeze(0), dim=-1)
            sims = torch.nan_to_num(sims, nan=-1.0).float().cpu().numpy()  # (N, S): one transfer
            # pairs under the threshold are gated out before solving (they must not displace good pairs)
            cost = np.where(sims >= rules.reid_sim_thr, 1 - sims, np.float32(REJECTED_COST))
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if float(sims[r, c]) >= rules.reid_sim_thr:
                    revived[int(newborn[r])] = int(c)
        for slot in newborn:
            slot = int(slot)
            if slot in revived:
                track = self.sleeping[revived[slot]]
                self.slot_ids[slot] = track.track_id
                memory.install(slot, b, track.embed)
            else:
                self.slot_ids[slot] = self._new_id()
                memory.reset_slot(slot, b)
        taken = set(revived.values())
        self.sleeping = [t for i, t in enumerate(self.sleeping) if i not in taken]

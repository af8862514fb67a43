"""PGT association on the segmenter's queries (TEST.TRACKER=pgt): tracks that are not query slots.

MinVIS makes query slot s instance s for the whole video, so its tracks are only as stable as the segmenter's
slots; a segmenter trained for minutes lets them drift (its queries swap objects after a crossing or an
occlusion), and every swap splits two tracks. Here identities live in tracks, and the segmenter's confident
queries are per-frame detections:

1. detections: queries whose best class probability reaches DET_SCORE_THR with a non-empty mask; a detection
   whose mask overlaps a higher-scoring one by DEDUP_IOU or more is a duplicate and dropped;
2. association (Hungarian) of live and sleeping tracks to detections on
   ``(1 - cos(stable embedding, query)) + IOU_WEIGHT * (1 - IoU(propagated mask, query mask))``: the track's last
   mask is shifted by its velocity (motion; MOTION) before the IoU, so that look-alikes are told apart by where
   they are going. A live track may take a detection its propagated mask overlaps or whose embedding is at least
   ASSOC_SIM_THR similar; a sleeping track (missing SLEEP_FRAMES or more) is re-identified only above
   REID_SIM_THR and within REID_RADIUS of where its motion puts it;
3. progressive memory: a matched track's stable embedding moves towards the query by MEMORY_RATE x score,
   only when the query is at least MEMORY_SIM_GATE similar to it (an occluded, corrupted view does not
   overwrite the track's identity);
4. lifecycle: unmatched detections above BIRTH_SCORE_THR start tracks; tracks die after KILL_FRAMES missing.

Every frame a matched track emits its detection's class logits and mask logits, so the output per frame is
exactly the segmenter's (per-frame quality is kept); a track that is not seen emits nothing that frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from spvis.modeling.pgt.snap import mask_iou_matrix

GATED = 1e6  # cost of a pair the gates forbid
SLEEPER_PENALTY = 0.5  # a live track wins a detection over a sleeping one of equal cost


@dataclass(frozen=True)
class QueryTrackerOptions:
    det_score_thr: float = 0.3
    dedup_iou: float = 0.7
    birth_score_thr: float = 0.5
    iou_weight: float = 1.0
    motion: bool = True
    assoc_sim_thr: float = 0.5
    reid_sim_thr: float = 0.6
    reid_radius: float = 0.25  # fraction of the frame diagonal
    sleep_frames: int = 3
    kill_frames: int = 60
    memory_rate: float = 0.15
    memory_sim_gate: float = 0.5
    appearance: str = "query"
    appearance_weight: float = 1.0

    @classmethod
    def from_config(cls, cfg) -> "QueryTrackerOptions":
        p = cfg.MODEL.TRACKER.PGT
        return cls(det_score_thr=p.DET_SCORE_THR, dedup_iou=p.DEDUP_IOU, birth_score_thr=p.BIRTH_SCORE_THR,
                   iou_weight=p.IOU_WEIGHT, motion=p.MOTION, assoc_sim_thr=p.ASSOC_SIM_THR,
                   reid_sim_thr=p.REID_SIM_THR, reid_radius=p.REID_RADIUS, sleep_frames=p.SLEEP_FRAMES,
                   kill_frames=p.KILL_FRAMES, memory_rate=p.MEMORY_RATE, memory_sim_gate=p.MEMORY_SIM_GATE,
                   appearance=p.APPEARANCE, appearance_weight=p.APPEARANCE_WEIGHT)


@dataclass
class QueryTrackState:
    """The tracks of one video (N of them, bounded by the lifecycle; nothing grows with the frame count)."""

    frame_index: int = -1
    next_id: int = 0
    ids: list[int] = field(default_factory=list)
    stable: Tensor | None = None  # (N, C) unit-norm stable embeddings
    masks: Tensor | None = None  # (N, h, w) bool, last seen masks
    centres: Tensor | None = None  # (N, 2) (y, x) in mask pixels at the last sighting
    velocity: Tensor | None = None  # (N, 2) pixels per frame
    missing: Tensor | None = None  # (N,) int64 frames since the last sighting

    @property
    def num_tracks(self) -> int:
        return len(self.ids)


def mask_centres(masks: Tensor) -> Tensor:
    """(N, h, w) bool -> (N, 2) float (y, x) centroids (0 for an empty mask)."""
    h, w = masks.shape[-2:]
    m = masks.float()
    area = m.sum((-1, -2)).clamp(min=1.0)
    ys = torch.arange(h, dtype=torch.float32, device=masks.device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=masks.device).view(1, 1, w)
    return torch.stack([(m * ys).sum((-1, -2)) / area, (m * xs).sum((-1, -2)) / area], -1)


def shift_masks(masks: Tensor, offsets: Tensor) -> Tensor:
    """Each (h, w) bool mask moved by its integer (dy, dx) offset (pixels leaving the frame are dropped)."""
    out = torch.zeros_like(masks)
    h, w = masks.shape[-2:]
    for i, (dy, dx) in enumerate(offsets.round().long().tolist()):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, dst_y, dst_x] = masks[i, src_y, src_x]
    return out


def appearance(seg: dict, kind: str) -> Tensor:
    """Per-query appearance (Q, C) of batch element 0: the decoder embedding (``query``), or the mask features
    averaged inside the query's soft mask (``pooled``): what the object looks like, whichever query found it."""
    if kind == "query":
        return seg["pred_embds"][0].float()
    weights = seg["pred_masks"][0].float().sigmoid()  # (Q, h, w)
    features = seg["mask_features"][0].float()  # (Cm, h, w)
    pooled = torch.einsum("qhw,chw->qc", weights, features)
    return pooled / weights.sum((-1, -2)).clamp(min=1e-6)[:, None]


def detections(logits: Tensor, masks: Tensor, opts: QueryTrackerOptions) -> Tensor:
    """Indices of the queries that are detections: confident, non-empty, not a duplicate. logits (Q, K+1),
    masks (Q, h, w) logits -> (D,) int64, highest score first."""
    scores = logits.float().softmax(-1)[:, :-1].amax(-1)  # (Q,)
    binary = masks > 0
    candidates = torch.nonzero((scores >= opts.det_score_thr) & binary.flatten(1).any(1)).flatten()
    candidates = candidates[torch.argsort(scores[candidates], descending=True)]
    if candidates.numel() < 2 or opts.dedup_iou >= 1:
        return candidates
    iou = mask_iou_matrix(binary[candidates], binary[candidates])  # (D, D)
    keep: list[int] = []
    for i in range(candidates.numel()):
        if all(float(iou[i, j]) < opts.dedup_iou for j in keep):
            keep.append(i)
    return candidates[torch.as_tensor(keep, dtype=torch.long, device=candidates.device)]


class QueryTracker:
    """``step(seg, state) -> (outputs, state)`` for one frame (batch 1) of segmenter outputs."""

    def __init__(self, opts: QueryTrackerOptions):
        self.opts = opts

    @torch.no_grad()
    def step(self, seg: dict, state: QueryTrackState | None = None) -> tuple[dict, QueryTrackState]:
        """seg: pred_logits (1, Q, K+1), pred_masks (1, Q, h, w), pred_embds (1, Q, C) -> outputs of the tracks
        seen on this frame (pred_logits (1, M, K+1), pred_masks (1, M, h, w), track_ids (1, M)) and the state."""
        opts = self.opts
        state = state or QueryTrackState()
        state.frame_index += 1
        logits, masks = seg["pred_logits"][0], seg["pred_masks"][0]
        embeds = appearance(seg, opts.appearance)  # (Q, C)
        h, w = masks.shape[-2:]
        det = detections(logits, masks, opts)  # (D,)
        det_masks = masks[det] > 0  # (D, h, w)
        det_embeds = F.normalize(embeds[det], dim=-1)  # (D, C)
        det_scores = logits[det].float().softmax(-1)[:, :-1].amax(-1)  # (D,)
        det_centres = mask_centres(det_masks)  # (D, 2)
        if state.stable is None:
            c = embeds.shape[-1]
            state.stable = embeds.new_zeros(0, c)
            state.masks = masks.new_zeros(0, h, w, dtype=torch.bool)
            state.centres = embeds.new_zeros(0, 2)
            state.velocity = embeds.new_zeros(0, 2)
            state.missing = torch.zeros(0, dtype=torch.long, device=embeds.device)
        pairs = self._associate(state, det_masks, det_embeds, det_centres, (h, w))
        matched_tracks = {t for t, _ in pairs}
        matched_dets = {d for _, d in pairs}
        for t, d in pairs:
            self._update(state, t, d, det_embeds, det_masks, det_centres, det_scores)
        unmatched = torch.ones(state.num_tracks, dtype=torch.bool, device=embeds.device)
        if matched_tracks:
            unmatched[torch.as_tensor(sorted(matched_tracks), device=embeds.device)] = False
        state.missing = torch.where(unmatched, state.missing + 1, state.missing)
        emitted = [(state.ids[t], int(det[d])) for t, d in pairs]
        for d in range(det.numel()):  # births
            if d not in matched_dets and float(det_scores[d]) >= opts.birth_score_thr:
                self._birth(state, d, det_embeds, det_masks, det_centres)
                emitted.append((state.ids[-1], int(det[d])))
        self._kill(state)
        emitted.sort()
        ids = torch.as_tensor([i for i, _ in emitted], dtype=torch.long, device=embeds.device)
        queries = torch.as_tensor([q for _, q in emitted], dtype=torch.long, device=embeds.device)
        out = {"pred_logits": seg["pred_logits"][:, queries], "pred_masks": seg["pred_masks"][:, queries],
               "pred_embds": seg["pred_embds"][:, queries], "track_ids": ids[None]}
        return out, state

    # ------------------------------------------------------------------ association
    def _associate(self, state: QueryTrackState, det_masks: Tensor, det_embeds: Tensor, det_centres: Tensor,
                   size: tuple[int, int]) -> list[tuple[int, int]]:
        """(track row, detection row) pairs, Hungarian on the gated cost."""
        opts = self.opts
        if state.num_tracks == 0 or det_embeds.shape[0] == 0:
            return []
        steps = (state.missing + 1).float()[:, None]  # frames since the last sighting
        predicted = state.centres + state.velocity * steps if opts.motion else state.centres  # (N, 2)
        propagated = shift_masks(state.masks, state.velocity * steps) if opts.motion else state.masks
        sim = state.stable @ det_embeds.t()  # (N, D) cosine (unit vectors)
        iou = mask_iou_matrix(propagated, det_masks)  # (N, D)
        cost = opts.appearance_weight * (1 - sim) + opts.iou_weight * (1 - iou)
        sleeping = (state.missing >= opts.sleep_frames)[:, None]  # (N, 1)
        diagonal = float(np.hypot(*size))
        distance = torch.cdist(predicted, det_centres) / diagonal  # (N, D)
        live_ok = (iou > 0) | (sim >= opts.assoc_sim_thr)
        sleep_ok = (sim >= opts.reid_sim_thr) & (distance <= opts.reid_radius * steps.clamp(max=4) / 4 + 0.05)
        allowed = torch.where(sleeping, sleep_ok, live_ok)
        cost = torch.where(sleeping, cost + SLEEPER_PENALTY, cost)
        cost = torch.where(allowed, cost, torch.full_like(cost, GATED)).cpu().numpy()
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < GATED]

    def _update(self, state: QueryTrackState, t: int, d: int, det_embeds: Tensor, det_masks: Tensor,
                det_centres: Tensor, det_scores: Tensor) -> None:
        opts = self.opts
        sim = float(state.stable[t] @ det_embeds[d])
        if sim >= opts.memory_sim_gate:  # progressive: only as far as the new view deserves
            rate = opts.memory_rate * float(det_scores[d])
            state.stable[t] = F.normalize((1 - rate) * state.stable[t] + rate * det_embeds[d], dim=0)
        steps = float(state.missing[t]) + 1
        step_velocity = (det_centres[d] - state.centres[t]) / steps
        state.velocity[t] = 0.5 * state.velocity[t] + 0.5 * step_velocity
        state.centres[t] = det_centres[d]
        state.masks[t] = det_masks[d]
        state.missing[t] = 0

    def _birth(self, state: QueryTrackState, d: int, det_embeds: Tensor, det_masks: Tensor,
               det_centres: Tensor) -> None:
        state.ids.append(state.next_id)
        state.next_id += 1
        state.stable = torch.cat([state.stable, det_embeds[d:d + 1]])
        state.masks = torch.cat([state.masks, det_masks[d:d + 1]])
        state.centres = torch.cat([state.centres, det_centres[d:d + 1]])
        state.velocity = torch.cat([state.velocity, det_centres.new_zeros(1, 2)])
        state.missing = torch.cat([state.missing, state.missing.new_zeros(1)])

    def _kill(self, state: QueryTrackState) -> None:
        alive = state.missing <= self.opts.kill_frames
        if bool(alive.all()):
            return
        keep = torch.nonzero(alive).flatten()
        state.ids = [state.ids[i] for i in keep.tolist()]
        state.stable, state.masks = state.stable[keep], state.masks[keep]
        state.centres, state.velocity, state.missing = state.centres[keep], state.velocity[keep], state.missing[keep]

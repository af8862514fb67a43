"""The DVIS referring tracker (reference §2) with the Progressive Tracker (PGT) parts behind switches.

Per frame: align the current segmenter queries to the track slots (MinVIS matching, official gather
quirk), then 6 layers of Referring Cross-Attention (identity = aligned query / previous layer,
reference = previous frame's final output, memory = current queries) -> self-attention -> FFN, then
``decoder_norm`` and the class / mask heads. Parameter names are the official ``tracker.*`` keys.
PGT (MODEL.TRACKER.PGT): track memory, gated reference, clip association, lifecycle (track ids that are
not slots). Joint Feature-Preserving parts (MODEL.TRACKER.SIM / RCP) act on the last layer's output before
the heads: SIM grounds each slot in the current frame inside its previous-frame mask (gate 0 = identity),
then the causal RCP compensates it from the slot's bounded history. With every switch off the outputs are
exactly DVIS's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from spvis.config.node import CfgNode
from spvis.errors import ConfigError
from spvis.modeling.layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from spvis.modeling.pgt.gate import ProgressiveReferenceGate
from spvis.modeling.pgt.lifecycle import LifecycleRules, TrackBook
from spvis.modeling.pgt.matching import (ALIGNMENTS, SlotMasks, confident_masks, gather_slots, match_batch,
                                         remember_slot_masks)
from spvis.modeling.pgt.memory import TrackMemory
from spvis.modeling.pgt.noise import QueryNoiser
from spvis.modeling.rcp import CausalRCPState, CausalRefinementCompensator
from spvis.modeling.sim import SpatialInteractionModule, build_sim


@dataclass
class PGTOptions:
    """The PGT switches and thresholds (MODEL.TRACKER.PGT); all off = DVIS."""

    memory: bool = False
    memory_size: int = 10
    memory_score_thr: float = 0.5
    memory_rate: float = 0.15
    memory_sim_gate: float = 0.5
    progressive_ref: bool = False
    clip_association: bool = False
    clip_len: int = 5
    assoc_sim_thr: float = 0.5
    lifecycle: bool = False
    birth_score_thr: float = 0.5
    sleep_frames: int = 3
    kill_frames: int = 60
    reid_sim_thr: float = 0.6

    @property
    def uses_track_books(self) -> bool:
        """Whether identities are kept in track books (else track id = slot index)."""
        return self.clip_association or self.lifecycle


@dataclass
class TrackerState:
    """What one frame hands to the next. Fixed size: nothing grows with the number of frames."""

    frame_index: int
    last_output: Tensor  # (Q, B, C) final-layer output of the previous frame (before decoder_norm)
    last_aligned: Tensor  # (Q, B, C) previous frame's segmenter queries in slot order
    memory: TrackMemory | None = None
    books: list[TrackBook] = field(default_factory=list)
    last_masks: Tensor | None = None  # (B, Q, h*w) bool, PGT clip association only
    last_labels: Tensor | None = None  # (B, Q) int64
    sim_guide: Tensor | None = None  # (B, Q, h, w) bool previous-frame tracker masks, SIM only
    slot_masks: SlotMasks | None = None  # each slot's last confident segmenter mask and label, ALIGN_MASK_WEIGHT
    rcp: CausalRCPState | None = None  # bounded FIFO (B, N, Q, C) + stable (B, Q, C), RCP only

    def detached(self) -> "TrackerState":
        """Stop-gradient copy, used between consecutive training clips."""
        rcp = self.rcp
        if rcp is not None:
            rcp = replace(rcp, fifo=rcp.fifo.detach(), stable=rcp.stable.detach())
        return replace(
            self,
            last_output=self.last_output.detach(),
            last_aligned=self.last_aligned.detach(),
            memory=None if self.memory is None else self.memory.detached(),
            rcp=rcp,
        )


class ReferringTracker(nn.Module):
    """DVIS ReferringTracker; ``step`` runs one frame, ``frame_forward`` the self-referring pass."""

    def __init__(
        self,
        *,
        hidden_dim: int,
        num_heads: int,
        dim_feedforward: int,
        num_layers: int,
        num_classes: int,
        mask_dim: int,
        pre_norm: bool = False,
        noise_mode: str = "none",
        noise_ratio: float = 0.5,
        pgt: PGTOptions | None = None,
        sim: SpatialInteractionModule | None = None,
        rcp: CausalRefinementCompensator | None = None,
        alignment: str = "dvis",
        align_mask_weight: float = 0.0,
        align_motion: bool = False,
    ):
        super().__init__()
        if alignment not in ALIGNMENTS:
            raise ConfigError(f"MODEL.TRACKER.ALIGNMENT: unknown alignment {alignment!r} (choose {sorted(ALIGNMENTS)})")
        self.alignment = alignment
        self.align_mask_weight = float(align_mask_weight)
        self.align_motion = bool(align_motion)
        self.num_layers = num_layers
        self.num_classes = num_classes
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, num_heads, normalize_before=pre_norm) for _ in range(num_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, num_heads, normalize_before=pre_norm) for _ in range(num_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(hidden_dim, dim_feedforward, normalize_before=pre_norm) for _ in range(num_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.noiser = QueryNoiser(noise_mode, noise_ratio)
        self.pgt = pgt or PGTOptions()
        needs_memory = self.pgt.progressive_ref or self.pgt.uses_track_books
        if needs_memory and not self.pgt.memory:
            raise ConfigError(
                "MODEL.TRACKER.PGT: PROGRESSIVE_REF, CLIP_ASSOCIATION and LIFECYCLE need MEMORY: True"
            )
        # Created only when switched on, so the DVIS baseline has exactly the official keys.
        self.ref_gate = ProgressiveReferenceGate(hidden_dim) if self.pgt.progressive_ref else None
        self.sim = sim
        self.rcp = rcp

    # ------------------------------------------------------------------ layers
    def _layer(self, j: int, identity: Tensor, reference: Tensor, memory: Tensor) -> Tensor:
        """One RCA -> self-attention -> FFN layer. All (Q, B, C)."""
        out = self.transformer_cross_attention_layers[j](reference, memory, identity=identity)
        out = self.transformer_self_attention_layers[j](out)
        return self.transformer_ffn_layers[j](out)

    def _heads(self, outputs: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """outputs (L, Q, B, C), mask_features (B, Cm, h, w) -> logits (L, B, Q, K+1), masks (L, B, Q, h, w),
        normed (L, Q, B, C)."""
        normed = self.decoder_norm(outputs)
        logits = self.class_embed(normed).transpose(1, 2)
        mask_embeds = self.mask_embed(normed)  # (L, Q, B, Cm)
        masks = torch.einsum("lqbc,bchw->lbqhw", mask_embeds, mask_features)
        return logits, masks, normed

    def frame_forward(self, frame_embeds: Tensor) -> Tensor:
        """Self-referring pass over every frame (the DVIS refiner's frame memory).

        frame_embeds (B, T, Q, C) -> (B, T, Q, C) = decoder_norm(layers with ID = Ref = previous output).
        """
        batch, frames, num_queries, channels = frame_embeds.shape
        memory = frame_embeds.permute(2, 0, 1, 3).reshape(num_queries, batch * frames, channels)
        out = memory
        for j in range(self.num_layers):
            out = self._layer(j, out, out, memory)
        out = self.decoder_norm(out)
        return out.reshape(num_queries, batch, frames, channels).permute(1, 2, 0, 3)

    # ------------------------------------------------------------------ one frame
    def step(
        self, frame_embeds: Tensor, mask_features: Tensor, state: TrackerState | None = None,
        noise_ratio: float | None = None, frame_masks: Tensor | None = None, frame_logits: Tensor | None = None,
    ) -> tuple[dict, TrackerState]:
        """Track one frame. frame_embeds (B, Q, C), mask_features (B, Cm, h, w); ``state`` None = new video.
        ``noise_ratio``: probability of the training-time identity noise (None = MODEL.TRACKER.NOISE_RATIO).
        ``frame_masks`` / ``frame_logits``: the segmenter's mask logits (B, Q, h, w) and class logits (B, Q, K+1);
        with MODEL.TRACKER.ALIGN_MASK_WEIGHT > 0 the alignment also prefers the query whose mask overlaps the slot's
        last confident mask (``pgt.association.mask_iou``), moved by the slot's velocity with ALIGN_MOTION.

        Returns ({pred_logits (B, Q, K+1), pred_masks (B, Q, h, w), pred_embds (B, Q, C), aux_outputs,
        match_indices (B, Q), track_ids (B, Q)}, new state).
        """
        cur = frame_embeds.transpose(0, 1)  # (Q, B, C)
        num_queries, batch, _ = cur.shape
        first = state is None
        use_masks = self.align_mask_weight > 0 and frame_masks is not None and frame_logits is not None
        frame = confident_masks(frame_masks, frame_logits) if use_masks else None
        if first:
            indices = torch.arange(num_queries, device=cur.device).expand(batch, -1)
            identity = cur
            aligned = cur
        else:
            indices = match_batch(state.last_aligned, cur, self.alignment, state.slot_masks, frame,
                                  self.align_mask_weight, self.align_motion)  # (B, Q)
            if self.training and self.noiser.should_noise(noise_ratio):
                identity, indices = self.noiser(cur)
            else:
                identity = gather_slots(cur, indices)
            aligned = gather_slots(cur, indices)
        reference = None if first else self._reference(state)
        out, logits, masks, normed, rcp_extras, rcp_state = self._network(identity, reference, cur, mask_features,
                                                                          state)
        result = {
            "pred_logits": logits[-1],
            "pred_masks": masks[-1],
            "pred_embds": normed[-1].transpose(0, 1),
            "aux_outputs": [{"pred_logits": lg, "pred_masks": mk} for lg, mk in zip(logits[:-1], masks[:-1])],
            "match_indices": indices,
            # the attention query every layer used (None on a video's first frame): DVIS++ contrastive loss
            "pred_references": None if first else reference.transpose(0, 1),  # (B, Q, C)
            **rcp_extras,
        }
        new_state = TrackerState(
            frame_index=0 if first else state.frame_index + 1,
            last_output=out,
            last_aligned=aligned,
            memory=None if first else state.memory,
            books=[] if first else state.books,
            last_masks=None if first else state.last_masks,
            last_labels=None if first else state.last_labels,
            sim_guide=None if self.sim is None else (masks[-1].detach() > 0),  # (B, Q, h, w) bool
            rcp=rcp_state,
            slot_masks=None if frame is None else remember_slot_masks(None if first else state.slot_masks, frame,
                                                                       indices),
        )
        result["track_ids"] = self._update_identities(new_state, out, logits[-1], masks[-1])
        return result, new_state

    def _network(self, identity: Tensor, reference: Tensor | None, cur: Tensor, mask_features: Tensor,
                 state: TrackerState | None) -> tuple[Tensor, Tensor, Tensor, Tensor, dict, CausalRCPState | None]:
        """The network part of one frame (layers, SIM / RCP, heads); the one seam an exported graph replaces
        (``spvis.export``). identity, cur (Q, B, C); reference (Q, B, C), None on a video's first frame;
        mask_features (B, Cm, h, w).

        Returns (last-layer output (Q, B, C), logits (L', B, Q, K+1), masks (L', B, Q, h, w), normed (L', Q, B, C),
        RCP extras, new RCP state); L' = num_layers in training, else 1 (the last layer).
        """
        layer_outputs = []
        out = identity
        for j in range(self.num_layers):
            # frame 0: ID = Ref = previous layer (the queries at j = 0); later: Ref = last frame's output
            out = self._layer(j, out, out if reference is None else reference, cur)
            layer_outputs.append(out)
        out, rcp_extras, rcp_state = self._preserve_features(out, mask_features, state)
        layer_outputs[-1] = out
        stacked = torch.stack(layer_outputs if self.training else layer_outputs[-1:])  # (L', Q, B, C)
        logits, masks, normed = self._heads(stacked, mask_features)
        return out, logits, masks, normed, rcp_extras, rcp_state

    def _preserve_features(
        self, out: Tensor, mask_features: Tensor, state: TrackerState | None
    ) -> tuple[Tensor, dict, CausalRCPState | None]:
        """SIM then causal RCP on the last layer's output (Q, B, C); identity (no extras) when both are off.

        Returns (output (Q, B, C), {rcp_compensated, rcp_memory} (B, Q, C) when RCP is on, new RCP state).
        """
        if self.sim is None and self.rcp is None:
            return out, {}, None
        queries = out.transpose(0, 1)  # (B, Q, C)
        if self.sim is not None:
            guide = None if state is None else state.sim_guide  # previous frame's mask of each slot
            if guide is not None and guide.shape[-2:] != mask_features.shape[-2:]:
                guide = None  # frame size changed: fall back to attending everywhere
            queries = self.sim(queries, mask_features, guide)["embeds"]
        if self.rcp is None:
            return queries.transpose(0, 1), {}, None
        previous = None if state is None else state.rcp
        if previous is None:
            previous = self.rcp.initial_state(queries)
        with torch.no_grad():  # confidence gating the stable embedding: the pre-RCP class score
            scores = self.class_embed(self.decoder_norm(queries)).softmax(-1)[..., :-1].amax(-1)  # (B, Q)
        compensated, rcp_state = self.rcp.step(queries, previous, scores)
        extras = {"rcp_compensated": compensated, "rcp_memory": previous.stable}  # (B, Q, C) each
        return compensated.transpose(0, 1), extras, rcp_state

    def _reference(self, state: TrackerState) -> Tensor:
        """The reference for every layer: the last output, or the PGT gated blend with memory."""
        if self.ref_gate is None or state.memory is None:
            return state.last_output
        return self.ref_gate(state.last_output, state.memory.stable, state.memory.stable_valid)

    @torch.no_grad()
    def _update_identities(self, state: TrackerState, out: Tensor, logits: Tensor, masks: Tensor) -> Tensor:
        """PGT memory, clip association and lifecycle; returns track ids (B, Q) (-1 = no live track)."""
        batch, num_queries = logits.shape[:2]
        if not self.pgt.memory:
            return torch.arange(num_queries, device=logits.device).expand(batch, -1)
        opts = self.pgt
        out = out.detach()  # (Q, B, C)
        probs = logits.detach().softmax(-1)[..., :-1]  # (B, Q, K)
        scores, labels = probs.max(-1)
        binary = (masks.detach() > 0).flatten(2)  # (B, Q, h*w)
        visible = (scores >= opts.memory_score_thr) & binary.any(-1)  # (B, Q)
        if state.memory is None:
            state.memory = TrackMemory.empty(opts.memory_size, out, rate=opts.memory_rate,
                                             sim_gate=opts.memory_sim_gate)
        if opts.uses_track_books and not state.books:
            rules = LifecycleRules(opts.lifecycle, opts.birth_score_thr, opts.sleep_frames, opts.kill_frames,
                                   opts.reid_sim_thr, opts.assoc_sim_thr)
            state.books = [TrackBook(num_queries, rules) for _ in range(batch)]
        boundary = opts.clip_association and state.frame_index > 0 and state.frame_index % opts.clip_len == 0
        if boundary and state.last_masks is not None:
            for b, book in enumerate(state.books):
                book.reassociate(state.memory, b, state.last_masks[b], state.last_labels[b],
                                 out[:, b], binary[b], labels[b])
        if state.books and self.pgt.lifecycle:
            # every clip's per-slot values in one host transfer (labels < 2^24 are exact in float32)
            host = torch.stack([visible.float(), scores.float(), labels.float(),
                                state.memory.stable_valid.t().float()], 1).cpu().numpy()  # (B, 4, Q)
            for b, book in enumerate(state.books):
                book.update(state.memory, b, host[b, 0] > 0, host[b, 1], host[b, 2].astype(np.int64), out[:, b],
                            stable_valid=host[b, 3] > 0)
        confident = visible.t().clone()  # (Q, B)
        if state.books:
            held = torch.stack([torch.as_tensor(book.slot_ids >= 0) for book in state.books])
            confident &= held.t().to(confident.device)
        state.memory.update(out, confident, scores.t())
        if opts.clip_association:
            state.last_masks, state.last_labels = binary, labels
        if not state.books:
            return torch.arange(num_queries, device=logits.device).expand(batch, -1)
        return torch.stack([torch.as_tensor(book.slot_ids) for book in state.books]).to(logits.device)

    # ------------------------------------------------------------------ whole clip
    def forward(self, frame_embeds: Tensor, mask_features: Tensor, state: TrackerState | None = None,
                noise_ratio: float | None = None) -> tuple[dict, TrackerState]:
        """Track a clip frame by frame. frame_embeds (B, T, Q, C), mask_features (B, T, Cm, h, w); ``noise_ratio``
        as in ``step`` (the tracker stage passes its scheduled value).

        Returns per-frame outputs stacked on a T axis (pred_logits (B, T, Q, K+1), pred_masks
        (B, Q, T, h, w), pred_embds (B, T, Q, C), match_indices / track_ids (B, T, Q), aux_outputs with
        the same layout, pred_references: list of T (B, Q, C) or None) and the state after the last frame
        (pass it back to continue the video).
        """
        per_frame = []
        for t in range(frame_embeds.shape[1]):
            out, state = self.step(frame_embeds[:, t], mask_features[:, t], state, noise_ratio)
            per_frame.append(out)
        return stack_frame_outputs(per_frame), state


def stack_frame_outputs(per_frame: list[dict]) -> dict:
    """Stack per-frame ``step`` outputs on a time axis (masks as (B, Q, T, h, w), the criterion layout)."""
    def stack(outs: list[dict]) -> dict:
        return {
            "pred_logits": torch.stack([o["pred_logits"] for o in outs], 1),
            "pred_masks": torch.stack([o["pred_masks"] for o in outs], 2),
        }
    result = stack(per_frame)
    result["pred_embds"] = torch.stack([o["pred_embds"] for o in per_frame], 1)
    # per frame (B, Q, C) or None (first frame of a video): a list, since frame 0 has no reference
    result["pred_references"] = [o["pred_references"] for o in per_frame]
    result["match_indices"] = torch.stack([o["match_indices"] for o in per_frame], 1)
    result["track_ids"] = torch.stack([o["track_ids"] for o in per_frame], 1)
    for key in ("rcp_compensated", "rcp_memory"):  # RCP on: (B, T, Q, C), the memory each frame saw
        if key in per_frame[0]:
            result[key] = torch.stack([o[key] for o in per_frame], 1)
    num_aux = len(per_frame[0]["aux_outputs"])
    result["aux_outputs"] = [stack([o["aux_outputs"][i] for o in per_frame]) for i in range(num_aux)]
    return result


def pgt_options_from_cfg(cfg: CfgNode) -> PGTOptions:
    """Read MODEL.TRACKER.PGT into a PGTOptions."""
    p = cfg.MODEL.TRACKER.PGT
    return PGTOptions(
        memory=p.MEMORY, memory_size=p.MEMORY_SIZE, memory_score_thr=p.MEMORY_SCORE_THR,
        memory_rate=p.MEMORY_RATE, memory_sim_gate=p.MEMORY_SIM_GATE,
        progressive_ref=p.PROGRESSIVE_REF, clip_association=p.CLIP_ASSOCIATION, clip_len=p.CLIP_LEN,
        assoc_sim_thr=p.ASSOC_SIM_THR, lifecycle=p.LIFECYCLE, birth_score_thr=p.BIRTH_SCORE_THR,
        sleep_frames=p.SLEEP_FRAMES, kill_frames=p.KILL_FRAMES, reid_sim_thr=p.REID_SIM_THR,
    )


def build_tracker(cfg: CfgNode, tracker_class: type[ReferringTracker] = ReferringTracker) -> ReferringTracker:
    """The tracker from the config (random init; weights are loaded by the caller). ``tracker_class``: a subclass
    that replaces the network seam (``spvis.export.runtime`` runs an exported graph there)."""
    dec = cfg.MODEL.DECODER
    if cfg.MODEL.PIXEL_DECODER.MASK_DIM != dec.HIDDEN_DIM:
        # DVIS's tracker mask_embed outputs HIDDEN_DIM channels and dots them with mask_features.
        raise ConfigError(
            f"MODEL.PIXEL_DECODER.MASK_DIM ({cfg.MODEL.PIXEL_DECODER.MASK_DIM}) must equal "
            f"MODEL.DECODER.HIDDEN_DIM ({dec.HIDDEN_DIM}) for the tracker"
        )
    return tracker_class(
        hidden_dim=dec.HIDDEN_DIM,
        num_heads=dec.NHEADS,
        dim_feedforward=dec.DIM_FEEDFORWARD,
        num_layers=cfg.MODEL.TRACKER.DECODER_LAYERS,
        num_classes=cfg.MODEL.NUM_CLASSES,
        mask_dim=cfg.MODEL.PIXEL_DECODER.MASK_DIM,
        pre_norm=dec.PRE_NORM,
        noise_mode=cfg.MODEL.TRACKER.NOISE_MODE,
        noise_ratio=cfg.MODEL.TRACKER.NOISE_RATIO,
        pgt=pgt_options_from_cfg(cfg),
        sim=build_sim(cfg.MODEL.TRACKER, hidden_dim=dec.HIDDEN_DIM, mask_dim=cfg.MODEL.PIXEL_DECODER.MASK_DIM,
                      nheads=dec.NHEADS),
        rcp=rcp_from_cfg(cfg),
        alignment=cfg.MODEL.TRACKER.ALIGNMENT,
        align_mask_weight=cfg.MODEL.TRACKER.ALIGN_MASK_WEIGHT,
        align_motion=cfg.MODEL.TRACKER.ALIGN_MOTION,
    )


def rcp_from_cfg(cfg: CfgNode) -> CausalRefinementCompensator | None:
    """The causal RCP of MODEL.TRACKER (None when MODEL.TRACKER.RCP is off)."""
    tracker = cfg.MODEL.TRACKER
    if not tracker.RCP:
        return None
    return CausalRefinementCompensator(cfg.MODEL.DECODER.HIDDEN_DIM, memory_size=tracker.RCP_MEMORY_SIZE,
                                       alpha_init=tracker.RCP_ALPHA_INIT)


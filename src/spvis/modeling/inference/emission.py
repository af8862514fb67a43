"""One tracked frame on the device, packed for a single host transfer.

Per frame the host needs, for every query slot: its track id, its class logits (the per-video summary), its best
class and probability (the frame's result) and its mask at the frame's resolution (the result's RLE and the
overlay). ``emit_frame`` writes all of it into one uint8 buffer on the device, of a size known without looking at
the values (Q slots, whatever their state), so ``TrackedFrame.to_host`` is one transfer and nothing before it
waits for the device. The masks are stored column-major ((Q, W, H), the layout pycocotools encodes without a
copy) and, off the CPU, bit-packed (8x fewer bytes over the bus; the host unpacks only the rows it reads).

Buffer layout: ``float64 (Q, META + K+1)`` = [track id, score, label, mask non-empty, logits...] (float64 holds
int64 ids below 2^53 and float32 values exactly), then the masks: ``bool (Q, W, H)`` or ``uint8 (Q, ceil(W*H/8))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spvis.modeling.postprocess import claim_weights, mask_logits_to_frame
from spvis.modeling.preprocessing import PreparedFrames

META_COLUMNS = 4  # track id, score, label, non-empty; the K+1 logits follow
# Slots upsampled to full resolution at once: bounds the float buffer to MASK_CHUNK x H x W x 4 bytes
# (100 slots of a 1080p frame at once would be ~830 MB).
MASK_CHUNK = 16
_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)  # np.packbits' default (big-endian) bit order


def pack_bits(bits: Tensor) -> Tensor:
    """bool (N, P) -> uint8 (N, ceil(P / 8)), the layout of ``np.packbits(..., axis=1)``."""
    padded = torch.nn.functional.pad(bits.view(torch.uint8), (0, (-bits.shape[1]) % 8))
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=bits.device)
    return (padded.view(bits.shape[0], -1, 8) * weights).sum(-1, dtype=torch.uint8)


@dataclass
class HostFrame:
    """A TrackedFrame on the host (numpy), every slot, in slot order."""

    frame_index: int
    frame_size: tuple[int, int]  # (H, W)
    track_ids: np.ndarray  # (Q,) int64, -1 = the slot holds no track
    scores: np.ndarray  # (Q,) float32
    labels: np.ndarray  # (Q,) int64
    nonempty: np.ndarray  # (Q,) bool: the slot's mask has a pixel
    logits: np.ndarray  # (Q, K+1) float32
    mask_data: np.ndarray  # (Q, W, H) bool, or (Q, ceil(W*H/8)) uint8 when packed
    packed: bool

    def column_major_masks(self, rows: np.ndarray) -> np.ndarray:
        """bool (n, W, H) C-contiguous masks of the slots ``rows`` (indices or a bool (Q,) selection)."""
        height, width = self.frame_size
        if not self.packed:
            if rows.dtype == np.bool_ and rows.all():
                return self.mask_data  # every slot: no copy
            return self.mask_data[rows]
        bits = np.unpackbits(self.mask_data[rows], axis=1, count=width * height)
        return bits.view(np.bool_).reshape(-1, width, height)

    def masks(self, rows: np.ndarray) -> np.ndarray:
        """bool (n, H, W) C-contiguous masks of the slots ``rows`` (for overlays and FrameResult)."""
        return np.ascontiguousarray(self.column_major_masks(rows).transpose(0, 2, 1))


@dataclass
class TrackedFrame:
    """One frame's tracks on the model's device; fixed size (Q slots), nothing in it waited for the device."""

    frame_index: int
    frame_size: tuple[int, int]  # (H, W) original frame size
    track_ids: Tensor  # (Q,) int64, -1 = the slot holds no track
    logits: Tensor  # (Q, K+1) float32 class logits
    scores: Tensor  # (Q,) float32 best class probability, the no-object column left out
    labels: Tensor  # (Q,) int64 contiguous class of that probability
    masks: Tensor  # (Q, H, W) bool at the frame's resolution (a transposed view of column-major storage)
    buffer: Tensor  # uint8 (bytes,): the packed meta + masks (module docstring)
    packed: bool

    def to_host(self) -> HostFrame:
        """Everything in one device-to-host transfer."""
        data = self.buffer.cpu().numpy()
        num_slots, num_columns = self.logits.shape
        meta_bytes = num_slots * (META_COLUMNS + num_columns) * 8
        meta = data[:meta_bytes].view(np.float64).reshape(num_slots, META_COLUMNS + num_columns)
        height, width = self.frame_size
        masks = data[meta_bytes:].reshape(num_slots, -1)
        if not self.packed:
            masks = masks.view(np.bool_).reshape(num_slots, width, height)
        return HostFrame(
            frame_index=self.frame_index, frame_size=self.frame_size, track_ids=meta[:, 0].astype(np.int64),
            scores=meta[:, 1].astype(np.float32), labels=meta[:, 2].astype(np.int64), nonempty=meta[:, 3] > 0,
            logits=meta[:, META_COLUMNS:].astype(np.float32), mask_data=masks, packed=self.packed,
        )


def emit_frame(track_ids: Tensor, logits: Tensor, mask_logits: Tensor, prepared: PreparedFrames, frame_index: int,
               *, pack: bool | None = None, exclusive: bool = False) -> TrackedFrame:
    """Build a TrackedFrame from one frame's slot outputs: track_ids (Q,), logits (Q, K+1), mask_logits (Q, h, w)
    at the network's mask resolution; ``prepared`` gives the sizes that undo the preprocessing. ``pack`` (default:
    off the CPU) bit-packs the masks. Scores and labels are the softmax's best class without no-object, in float32.
    ``exclusive`` (TEST.EXCLUSIVE_MASKS): a pixel several slots' masks claim stays only in the one with the highest
    frame score x mask probability (``postprocess.exclusive_masks``; slots without a track claim nothing)."""
    device = logits.device
    pack = device.type != "cpu" if pack is None else pack
    logits = logits.float()
    scores, labels = logits.softmax(-1)[:, :-1].max(-1)  # (Q,), (Q,)
    num_slots, num_columns = logits.shape
    height, width = prepared.frame_size
    meta_bytes = num_slots * (META_COLUMNS + num_columns) * 8
    row_bytes = -(-width * height // 8) if pack else width * height
    buffer = torch.empty(meta_bytes + num_slots * row_bytes, dtype=torch.uint8, device=device)
    if pack:
        column_major = torch.empty((num_slots, width, height), dtype=torch.bool, device=device)
    else:  # written in place: the host reads these bytes without a copy
        column_major = buffer[meta_bytes:].view(torch.bool).view(num_slots, width, height)
    if exclusive:  # running best claim per pixel over the chunks: (W, H) column-major like the masks
        best_claim = torch.full((width, height), -1.0, device=device)
        winner = torch.full((width, height), -1, dtype=torch.int64, device=device)
    for start in range(0, num_slots, MASK_CHUNK):
        frame_logits = mask_logits_to_frame(mask_logits[start:start + MASK_CHUNK], prepared.padded_size,
                                            prepared.image_size, prepared.frame_size)  # (n, H, W) float32
        torch.gt(frame_logits.transpose(1, 2), 0, out=column_major[start:start + MASK_CHUNK])
        if exclusive:
            claims = claim_weights(frame_logits, scores[start:start + MASK_CHUNK]).transpose(1, 2)  # (n, W, H)
            claims[track_ids[start:start + MASK_CHUNK] < 0] = -1.0
            chunk_best, chunk_winner = claims.max(0)  # (W, H): the first of equal claims, as argmax over all
            better = chunk_best > best_claim
            best_claim = torch.where(better, chunk_best, best_claim)
            winner = torch.where(better, chunk_winner + start, winner)
    if exclusive:  # a pixel in dispute stays in the winner's mask only (an undisputed one has its mask as winner)
        for start in range(0, num_slots, MASK_CHUNK):
            slots = torch.arange(start, min(start + MASK_CHUNK, num_slots), device=device)[:, None, None]
            column_major[start:start + MASK_CHUNK] &= (winner == slots) | (winner < 0)
    nonempty = column_major.flatten(1).any(1)  # (Q,)
    if pack:
        buffer[meta_bytes:].view(num_slots, row_bytes).copy_(pack_bits(column_major.flatten(1)))
    meta = buffer[:meta_bytes].view(torch.float64).view(num_slots, META_COLUMNS + num_columns)
    columns = [track_ids.unsqueeze(1), scores.unsqueeze(1), labels.unsqueeze(1), nonempty.unsqueeze(1), logits]
    torch.cat([c.to(torch.float64) for c in columns], dim=1, out=meta)
    return TrackedFrame(frame_index=frame_index, frame_size=prepared.frame_size, track_ids=track_ids, logits=logits,
                        scores=scores, labels=labels, masks=column_major.transpose(1, 2), buffer=buffer, packed=pack)

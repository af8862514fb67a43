"""Transformer building blocks shared by the segmenter decoder, the tracker and the refiner.

Parameter names follow the official Mask2Former/DVIS checkpoints (reference §8): a self-attention
layer is ``self_attn`` (nn.MultiheadAttention) + ``norm``; a cross-attention layer is
``multihead_attn`` + ``norm``; an FFN is ``linear1``/``linear2`` + ``norm``; an MLP is ``layers.{i}``.
Sequences are (L, B, C) as nn.MultiheadAttention expects without ``batch_first``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _with_pos(tensor: Tensor, pos: Tensor | None) -> Tensor:
    return tensor if pos is None else tensor + pos


class SelfAttentionLayer(nn.Module):
    """Self-attention + residual + LayerNorm (post-norm by default, as the official configs)."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def forward(
        self,
        tgt: Tensor,  # (L, B, C)
        *,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        query_pos: Tensor | None = None,
    ) -> Tensor:
        if self.normalize_before:
            x = self.norm(tgt)
            q = k = _with_pos(x, query_pos)
            out = self.self_attn(q, k, value=x, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
            return tgt + self.dropout(out)
        q = k = _with_pos(tgt, query_pos)
        out = self.self_attn(q, k, value=tgt, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
        return self.norm(tgt + self.dropout(out))


class CrossAttentionLayer(nn.Module):
    """Cross-attention + residual + LayerNorm.

    ``identity`` (default: ``tgt``) is the residual term; passing a different tensor gives DVIS's
    Referring Cross-Attention ``LayerNorm(ID + MHA(query=Ref, key=Mem, value=Mem))`` with ``tgt`` = Ref.
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def forward(
        self,
        tgt: Tensor,  # (Lq, B, C) attention query (the reference in RCA)
        memory: Tensor,  # (Lk, B, C)
        *,
        identity: Tensor | None = None,  # (Lq, B, C) residual term; defaults to tgt
        value: Tensor | None = None,  # (Lk, B, C) defaults to memory
        memory_mask: Tensor | None = None,  # (B*heads, Lq, Lk) bool, True = blocked
        memory_key_padding_mask: Tensor | None = None,
        pos: Tensor | None = None,
        query_pos: Tensor | None = None,
    ) -> Tensor:
        residual = tgt if identity is None else identity
        value = memory if value is None else value
        if self.normalize_before:
            q = _with_pos(self.norm(tgt), query_pos)
            out = self.multihead_attn(
                q, _with_pos(memory, pos), value=value, attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask,
            )[0]
            return residual + self.dropout(out)
        out = self.multihead_attn(
            _with_pos(tgt, query_pos), _with_pos(memory, pos), value=value, attn_mask=memory_mask,
            key_padding_mask=memory_key_padding_mask,
        )[0]
        return self.norm(residual + self.dropout(out))


class FFNLayer(nn.Module):
    """linear1 -> ReLU -> linear2 + residual + LayerNorm."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0, normalize_before: bool = False):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def forward(self, tgt: Tensor) -> Tensor:
        if self.normalize_before:
            return tgt + self.dropout(self.linear2(F.relu(self.linear1(self.norm(tgt)))))
        return self.norm(tgt + self.dropout(self.linear2(F.relu(self.linear1(tgt)))))


class MLP(nn.Module):
    """A plain MLP with ReLU between layers (``layers.{i}`` as in the official checkpoints)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


def reset_transformer_parameters(module: nn.Module) -> None:
    """Xavier-uniform init of every matrix parameter, as Mask2Former does for its decoder layers."""
    for parameter in module.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter)

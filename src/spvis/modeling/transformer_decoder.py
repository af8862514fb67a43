"""Masked-attention transformer decoder (DVIS's VideoMultiScaleMaskedTransformerDecoder_dvis), per frame.

Queries attend to one pixel-decoder level per layer (round-robin, lowest resolution first); each
cross-attention only sees positions the previous prediction's mask covers (sigmoid >= 0.5), and a
query whose mask covers nothing sees everything. Frames are independent: (N = B*T) is the batch.
Names follow the official ``sem_seg_head.predictor`` keys (reference §8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spvis.modeling.layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from spvis.modeling.pixel_decoder import c2_xavier_fill
from spvis.modeling.position_encoding import PositionEmbeddingSine


class MaskedTransformerDecoder(nn.Module):
    """Queries -> class logits, mask logits and normalised embeddings, with auxiliary predictions."""

    def __init__(self, *, in_channels: int, mask_dim: int, num_classes: int, hidden_dim: int = 256,
                 num_queries: int = 100, nheads: int = 8, dim_feedforward: int = 2048, dec_layers: int = 9,
                 pre_norm: bool = False, enforce_input_project: bool = False, num_feature_levels: int = 3,
                 reid_branch: bool = False, reid_hidden_dim: int = 256, num_reid_head_layers: int = 3):
        super().__init__()
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.num_feature_levels = num_feature_levels
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden_dim, nheads, normalize_before=pre_norm) for _ in range(dec_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden_dim, nheads, normalize_before=pre_norm) for _ in range(dec_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(hidden_dim, dim_feedforward, normalize_before=pre_norm) for _ in range(dec_layers))
        for layer_list in (self.transformer_self_attention_layers, self.transformer_cross_attention_layers,
                           self.transformer_ffn_layers):
            for parameter in layer_list.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_uniform_(parameter)
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)  # content
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # positional
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                conv = nn.Conv2d(in_channels, hidden_dim, kernel_size=1)
                c2_xavier_fill(conv)
                self.input_proj.append(conv)
            else:
                self.input_proj.append(nn.Sequential())
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        # DVIS++: a re-identification head whose output is appended to the query embeddings (-> 2C)
        self.reid_embed = MLP(hidden_dim, reid_hidden_dim, hidden_dim, num_reid_head_layers) \
            if reid_branch and num_reid_head_layers > 0 else None
        if self.reid_embed is not None:
            for layer in self.reid_embed.layers:
                c2_xavier_fill(layer)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # very old checkpoints call the content queries "static_query"
        old = prefix + "static_query.weight"
        if old in state_dict:
            state_dict[prefix + "query_feat.weight"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, features: list[Tensor], mask_features: Tensor) -> dict:
        """features: num_feature_levels maps (N, C, H_l, W_l), stride 32 first; mask_features (N, Cm, h, w)."""
        n = mask_features.shape[0]
        sources, positions, sizes = [], [], []
        for level in range(self.num_feature_levels):
            x = features[level]
            sizes.append(x.shape[-2:])
            positions.append(self.pe_layer(x).flatten(2).permute(2, 0, 1))  # (HW, N, C)
            src = self.input_proj[level](x).flatten(2) + self.level_embed.weight[level][None, :, None]
            sources.append(src.permute(2, 0, 1))  # (HW, N, C)
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, n, -1)  # (Q, N, C)
        output = self.query_feat.weight.unsqueeze(1).expand(-1, n, -1)

        # In eval mode the intermediate predictions only feed the next attention mask, so their masks are
        # computed directly at that level's size from pre-resized mask features: bilinear resizing is linear,
        # so resize(embed . features) == embed . resize(features) (same result up to float rounding, ~10x
        # fewer MACs than full stride-4 masks for every layer). Training keeps full aux masks for the losses.
        full_aux = self.training
        resized_features: dict[tuple[int, int], Tensor] = {}
        class_list, mask_list = [], []
        logits, masks, attn_mask, _ = self._predict(output, mask_features, sizes[0], full_aux, resized_features)
        class_list.append(logits)
        mask_list.append(masks)
        embeds = None
        for index in range(self.num_layers):
            level = index % self.num_feature_levels
            # a query whose mask blocks every position may look everywhere
            attn_mask = attn_mask & ~attn_mask.all(-1, keepdim=True)
            output = self.transformer_cross_attention_layers[index](
                output, sources[level], memory_mask=attn_mask, pos=positions[level], query_pos=query_pos)
            output = self.transformer_self_attention_layers[index](output, query_pos=query_pos)
            output = self.transformer_ffn_layers[index](output)
            last = index == self.num_layers - 1
            logits, masks, attn_mask, embeds = self._predict(
                output, mask_features, None if last else sizes[(index + 1) % self.num_feature_levels],
                full_aux or last, resized_features)
            class_list.append(logits)
            mask_list.append(masks)
        if embeds is None:  # zero layers: the embeddings of the initial prediction
            embeds = self.decoder_norm(output).transpose(0, 1)
        aux = [{"pred_logits": c} if m is None else {"pred_logits": c, "pred_masks": m}
               for c, m in zip(class_list[:-1], mask_list[:-1])]
        out = {
            "pred_logits": class_list[-1],  # (N, Q, K+1)
            "pred_masks": mask_list[-1],  # (N, Q, h, w)
            "pred_embds": embeds,  # (N, Q, C)
            "pred_embds_without_norm": output.transpose(0, 1),  # (N, Q, C) last layer before decoder_norm
            "aux_outputs": aux,  # eval mode: pred_logits only
        }
        if self.reid_embed is not None:  # DVIS++: embeddings become [normed, reid] (N, Q, 2C)
            reid = self.reid_embed(embeds)
            out["pred_reid_embed"] = reid
            out["pred_embds"] = torch.cat([embeds, reid], dim=-1)
            out["pred_embds_without_norm"] = torch.cat([out["pred_embds_without_norm"], reid], dim=-1)
        return out

    def _predict(self, output: Tensor, mask_features: Tensor, attn_size, full_masks: bool,
                 resized_features: dict) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor]:
        """Heads on the current queries -> (logits (N, Q, K+1), masks (N, Q, h, w) or None when not
        full_masks, attention mask (N*heads, Q, HW) for the next level or None when attn_size is None,
        normalised embeddings (N, Q, C))."""
        decoded = self.decoder_norm(output).transpose(0, 1)  # (N, Q, C)
        logits = self.class_embed(decoded)
        mask_embed = self.mask_embed(decoded)
        masks = torch.einsum("nqc,nchw->nqhw", mask_embed, mask_features) if full_masks else None
        attn_mask = None
        if attn_size is not None:
            with torch.no_grad():
                if masks is not None:
                    small = F.interpolate(masks.detach(), size=attn_size, mode="bilinear", align_corners=False)
                else:
                    key = tuple(attn_size)
                    if key not in resized_features:
                        resized_features[key] = F.interpolate(mask_features, size=key, mode="bilinear",
                                                              align_corners=False)
                    small = torch.einsum("nqc,nchw->nqhw", mask_embed.detach(), resized_features[key])
                blocked = small.sigmoid().flatten(2) < 0.5  # (N, Q, HW)
                attn_mask = blocked.unsqueeze(1).expand(-1, self.num_heads, -1, -1).flatten(0, 1)
        return logits, masks, attn_mask, decoded

"""MaskFormerHead (``sem_seg_head``): the pixel decoder followed by the masked-attention decoder."""

from __future__ import annotations

from torch import Tensor, nn

from spvis.modeling.backbone import ShapeSpec
from spvis.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from spvis.modeling.transformer_decoder import MaskedTransformerDecoder


class MaskFormerHead(nn.Module):
    """``forward(features) -> {pred_logits, pred_masks, pred_embds, mask_features, aux_outputs}`` per frame."""

    def __init__(self, pixel_decoder: MSDeformAttnPixelDecoder, predictor: MaskedTransformerDecoder):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> "MaskFormerHead":
        pcfg, dcfg = cfg.MODEL.PIXEL_DECODER, cfg.MODEL.DECODER
        shapes = {name: shape for name, shape in input_shape.items() if name in pcfg.IN_FEATURES}
        pixel_decoder = MSDeformAttnPixelDecoder(
            shapes, conv_dim=pcfg.CONV_DIM, mask_dim=pcfg.MASK_DIM, norm=pcfg.NORM,
            transformer_in_features=tuple(pcfg.DEFORMABLE_IN_FEATURES), enc_layers=pcfg.ENC_LAYERS,
            enc_ffn=pcfg.ENC_FFN, n_heads=pcfg.NHEADS, n_points=pcfg.NPOINTS, common_stride=pcfg.COMMON_STRIDE,
        )
        predictor = MaskedTransformerDecoder(
            in_channels=pcfg.CONV_DIM, mask_dim=pcfg.MASK_DIM, num_classes=cfg.MODEL.NUM_CLASSES,
            hidden_dim=dcfg.HIDDEN_DIM, num_queries=dcfg.NUM_QUERIES, nheads=dcfg.NHEADS,
            dim_feedforward=dcfg.DIM_FEEDFORWARD, dec_layers=dcfg.DEC_LAYERS, pre_norm=dcfg.PRE_NORM,
            enforce_input_project=dcfg.ENFORCE_INPUT_PROJ, reid_branch=dcfg.REID_BRANCH,
            reid_hidden_dim=dcfg.REID_HIDDEN_DIM, num_reid_head_layers=dcfg.NUM_REID_HEAD_LAYERS,
        )
        return cls(pixel_decoder, predictor)

    def forward(self, features: dict[str, Tensor]) -> dict:
        mask_features, multi_scale = self.pixel_decoder(features)  # (N, Cm, h, w), 3 maps
        out = self.predictor(multi_scale, mask_features)
        out["mask_features"] = mask_features
        out["multi_scale_features"] = multi_scale
        return out

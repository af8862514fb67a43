"""The segmenter stage's query contrastive loss (MODEL.LOSS.QUERY_CONTRAST_WEIGHT): low when each instance's
query embedding is nearest to its own query in the other frame, high when two instances' queries are swapped."""

from __future__ import annotations

import torch

from spvis.modeling.stages.segmenter_stage import query_contrast_loss


def _clip(num_queries: int = 6, dim: int = 8):
    torch.manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(num_queries, dim), dim=-1) * 5
    present = torch.tensor([[True, True], [True, True], [True, False]])  # instance 2 leaves after frame 0
    # frame 0: instances 0, 1, 2 in queries 1, 3, 4; frame 1: instances 0, 1 in queries 1, 3
    indices = [(torch.tensor([1, 3, 4]), torch.tensor([0, 1, 2])), (torch.tensor([3, 1]), torch.tensor([1, 0]))]
    return base, present, indices


def test_loss_is_low_for_consistent_embeddings_and_high_for_swapped_ones():
    base, present, indices = _clip()
    same = torch.stack([base, base])  # (T=2, Q, C): each query keeps its embedding
    swapped = same.clone()
    swapped[1, [1, 3]] = swapped[1, [3, 1]]  # the two tracked instances' embeddings exchanged in frame 1
    targets = [{"present": present}]
    low = query_contrast_loss(same, indices, targets, clip_len=2)
    high = query_contrast_loss(swapped, indices, targets, clip_len=2)
    assert low < 0.5 < 2.0 < high


def test_only_instances_present_in_both_frames_count_and_gradients_flow():
    base, present, indices = _clip()
    embeds = torch.stack([base, base]).requires_grad_()
    loss = query_contrast_loss(embeds, indices, [{"present": present}], clip_len=2)
    loss.backward()
    grad = embeds.grad.abs().sum(-1)  # (T, Q)
    assert grad[0, 1] > 0 and grad[0, 3] > 0 and grad[1, 1] > 0 and grad[1, 3] > 0  # both directions
    apart = torch.tensor([[True, False], [False, True], [True, False]])  # no instance in both frames
    apart_indices = [(torch.tensor([1, 4]), torch.tensor([0, 1])), (torch.tensor([3]), torch.tensor([0]))]
    assert float(query_contrast_loss(embeds, apart_indices, [{"present": apart}], clip_len=2)) == 0.0

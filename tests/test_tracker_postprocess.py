"""VIS top-k post-processing reproduces the official DVIS_online results of the reference bundle."""

from __future__ import annotations

import numpy as np
import torch

from _tracker_fakes import single_thread  # noqa: F401 (autouse fixture)
from spvis.modeling.postprocess import class_probabilities, masks_to_original, topk_instances, vis_topk


def _load(test_data_dir):
    return dict(np.load(test_data_dir / "dvis_official_tiny" / "outputs.npz"))


def test_online_topk_matches_official(test_data_dir):
    out = _load(test_data_dir)
    scores, labels, ids = vis_topk(torch.from_numpy(out["final_online_cls_in"]), max_num=10)
    ours = {(int(i), int(l)): float(s) for s, l, i in zip(scores, labels, ids)}
    official = {
        (int(i), int(l)): float(s)
        for s, l, i in zip(out["final_online_scores"], out["final_online_labels"], out["final_online_ids"])
    }
    assert ours.keys() == official.keys()
    for key, value in official.items():
        assert abs(ours[key] - value) < 1e-5


def test_offline_rule_takes_elementwise_max_with_aux(test_data_dir):
    out = _load(test_data_dir)
    scores, labels, ids = vis_topk(torch.from_numpy(out["final_offline_cls_in"]), 10,
                                   aux_logits=torch.from_numpy(out["final_offline_aux_cls_in"]))
    ours = sorted(zip(ids.tolist(), labels.tolist()))
    official = sorted(zip(out["final_offline_ids"].tolist(), out["final_offline_labels"].tolist()))
    assert ours == official
    np.testing.assert_allclose(np.sort(scores.numpy()), np.sort(out["final_offline_scores"]), atol=1e-5)


def test_masks_match_official_online_masks(test_data_dir):
    out = _load(test_data_dir)
    ids = torch.from_numpy(out["final_online_ids"])
    logits = torch.from_numpy(out["trk_masks"]).transpose(0, 1)[ids]  # (10, T, h, w)
    masks = masks_to_original(logits, (128, 192), (128, 192), (128, 192)).numpy()
    differing = int((masks != out["final_online_masks"].astype(bool)).sum())
    assert masks.shape == out["final_online_masks"].shape
    assert differing <= 60  # README: 53 pixels sit within 1e-4 of the threshold


def test_same_query_can_take_several_classes():
    probs = class_probabilities(torch.tensor([[4.0, 3.9, -5.0], [-5.0, -5.0, 5.0]]))
    scores, labels, ids = topk_instances(probs, 2)
    assert sorted(zip(ids.tolist(), labels.tolist())) == [(0, 0), (0, 1)]
    assert torch.all(scores > 0.4)


def test_padding_is_cropped_before_resizing():
    logits = torch.full((1, 8, 8), -1.0)
    logits[:, :, 4:] = 1.0  # the right half (the padding) is positive
    masks = masks_to_original(logits, (32, 32), (32, 16), (10, 5))
    assert masks.shape == (1, 10, 5) and not masks.any()


def test_no_instances_give_empty_masks():
    masks = masks_to_original(torch.zeros(0, 8, 8), (32, 32), (30, 32), (15, 16))
    assert masks.shape == (0, 15, 16) and masks.dtype == torch.bool


def test_offline_score_combinations():
    """TEST.OFFLINE_SCORE: max (DVIS_offline) lifts a class above either model's confidence on its own
    track only when one of them is sure; min keeps a track over the tracking threshold only when both are."""
    import torch

    from spvis.modeling.postprocess import class_probabilities

    refiner = torch.log(torch.tensor([[0.7, 0.1, 0.2]]))  # K = 2 classes + no-object
    tracker = torch.log(torch.tensor([[0.3, 0.6, 0.1]]))
    torch.testing.assert_close(class_probabilities(refiner, tracker, "max"), torch.tensor([[0.7, 0.6]]))
    torch.testing.assert_close(class_probabilities(refiner, tracker, "min"), torch.tensor([[0.3, 0.1]]))
    torch.testing.assert_close(class_probabilities(refiner, tracker, "mean"), torch.tensor([[0.5, 0.35]]))
    torch.testing.assert_close(class_probabilities(refiner, tracker, "refiner"), torch.tensor([[0.7, 0.1]]))
    torch.testing.assert_close(class_probabilities(refiner, None, "min"), torch.tensor([[0.7, 0.1]]))

"""Tracking metrics on masks equal to TrackEval 1.3.0's YouTubeVIS evaluation (HOTA, CLEAR, Identity).

``evaluate_tracking`` returns ``{"class_avg": {...}, "pooled": {...}}`` (and ``"per_category"`` on
request, each category flagged ``empty`` when it has neither GT nor predictions): class_avg = TrackEval's
``cls_comb_cls_av`` (mean over every GT category, empty ones included as zeros: TrackEval's Evaluator calls
``combine_classes_class_averaged`` with ``ignore_empty_classes=False``), pooled = ``cls_comb_det_av`` (counts
pooled over categories). Counts are integers, rates fractions.
"""

from __future__ import annotations

from spvis.evaluation.ground_truth import GroundTruth
from spvis.evaluation.results_io import ResultTrack
from spvis.evaluation.tracking.clear import clear_class_average, clear_combine_sum, clear_sequence, clear_summary
from spvis.evaluation.tracking.hota import hota_class_average, hota_combine_sum, hota_sequence, hota_summary
from spvis.evaluation.tracking.identity import (identity_class_average, identity_combine_sum, identity_sequence,
                                                identity_summary)
from spvis.evaluation.tracking.sequences import Sequence, build_sequences

__all__ = ["evaluate_tracking", "Sequence", "build_sequences"]


def _summary(hota: dict, clear: dict, identity: dict) -> dict[str, float]:
    return {**hota_summary(hota), **clear_summary(clear), **identity_summary(identity)}


def evaluate_tracking(gt: GroundTruth, results: list[ResultTrack], *, score_threshold: float = 0.5,
                      per_category: bool = False) -> dict:
    """HOTA / CLEAR / Identity of the predictions with score >= ``score_threshold`` (empty masks dropped)."""
    sequences = build_sequences(gt, results, score_threshold)
    # a sequence with neither GT nor predictions adds only zeros to the sums: evaluate one, reuse it
    empty = Sequence("", 0, [], [], [], 0, 0, 0, 0)
    empty_parts = (hota_sequence(empty), clear_sequence(empty), identity_sequence(empty))
    per_class: dict[int, tuple[dict, dict, dict]] = {}
    for cid, seqs in sequences.items():
        parts = [(hota_sequence(s), clear_sequence(s), identity_sequence(s)) for s in seqs] or [empty_parts]
        per_class[cid] = (hota_combine_sum([p[0] for p in parts]), clear_combine_sum([p[1] for p in parts]),
                          identity_combine_sum([p[2] for p in parts]))
    classes = list(per_class.values())
    hotas, clears, identities = [c[0] for c in classes], [c[1] for c in classes], [c[2] for c in classes]
    out = {
        "class_avg": _summary(hota_class_average(hotas), clear_class_average(clears),
                              identity_class_average(identities)),
        "pooled": _summary(hota_combine_sum(hotas), clear_combine_sum(clears), identity_combine_sum(identities)),
    }
    if per_category:
        # "empty": neither GT nor predictions. TrackEval's Evaluator keeps such classes in cls_comb_cls_av with
        # zeros (combine_classes_class_averaged's ignore_empty_classes defaults to False), and so does class_avg
        out["per_category"] = {str(cid): {**_summary(*parts), "empty": _is_empty(parts[2])}
                               for cid, parts in per_class.items()}
    return out


def _is_empty(identity: dict) -> bool:
    return float(identity["IDTP"]) + float(identity["IDFN"]) + float(identity["IDFP"]) == 0

"""Evaluation: official-equal YouTube-VIS/OVIS AP/AR, TrackEval-equal tracking metrics, result files,
and official-equal VIPSeg VPQ / STQ and VSPW mIoU / VC."""

from spvis.evaluation.evaluator import evaluate, evaluate_loaded
from spvis.data.rle import encode_masks
from spvis.evaluation.results_io import load_results, write_results
from spvis.evaluation.vis_evaluator import VISEvaluator
from spvis.evaluation.vps import evaluate_vps
from spvis.evaluation.vss import evaluate_vss

__all__ = ["VISEvaluator", "evaluate", "evaluate_loaded", "encode_masks", "load_results", "write_results", "evaluate_vps",
           "evaluate_vss"]

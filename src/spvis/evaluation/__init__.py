"""Evaluation: official-equal YouTube-VIS/OVIS AP/AR, TrackEval-equal tracking metrics, result files."""

from spvis.evaluation.evaluator import evaluate, evaluate_loaded
from spvis.evaluation.results_io import encode_masks, load_results, write_results

__all__ = ["evaluate", "evaluate_loaded", "encode_masks", "load_results", "write_results"]

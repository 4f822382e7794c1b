"""Evaluating a judge on labelled pairs: reading them, judging, metrics, reports."""

from critic.eval.evaluate import EvalReport, PairRecord, evaluate, evaluate_side_by_side, summarize
from critic.eval.pairs import LabelledPair, LoadedPairs, Predictions, load_labelled_pairs, load_predictions
from critic.eval.reports import write_reports

__all__ = [
    "EvalReport",
    "LabelledPair",
    "LoadedPairs",
    "PairRecord",
    "Predictions",
    "evaluate",
    "evaluate_side_by_side",
    "load_labelled_pairs",
    "load_predictions",
    "summarize",
    "write_reports",
]

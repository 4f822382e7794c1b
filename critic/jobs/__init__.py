"""Cleaning jobs: a judge's verdict on each (chosen, rejected) pair, and what to keep.

:func:`filter_file` (files, checkpoints, resume), :func:`filter_dataset` and
:func:`judge_columns` (``datasets.Dataset``), :func:`filter_rows` (rows in memory);
:class:`Policy` says what to keep; engines run the judge here or on Ray.
"""

from critic.jobs.datasets import DatasetFilterResult, filter_dataset, judge_columns
from critic.jobs.engines import Engine, LocalEngine
from critic.jobs.filejob import filter_file
from critic.jobs.items import Outcome, Rejection, filter_rows
from critic.jobs.policy import Policy, Verdict
from critic.jobs.ray import RayEngine
from critic.jobs.summary import Counts, FilterProgress, FilterSummary, TooManyRejects

__all__ = [
    "Counts",
    "DatasetFilterResult",
    "Engine",
    "FilterProgress",
    "FilterSummary",
    "LocalEngine",
    "Outcome",
    "Policy",
    "RayEngine",
    "Rejection",
    "TooManyRejects",
    "Verdict",
    "filter_dataset",
    "filter_file",
    "filter_rows",
    "judge_columns",
]

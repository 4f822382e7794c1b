"""Cleaning a ``datasets.Dataset`` in memory: judge columns added, or kept/dropped/rejected splits.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from critic.errors import InputError
from critic.io.shapes import Columns
from critic.jobs.checkpoint import OUTPUTS
from critic.jobs.filejob import DEFAULT_CHUNK_SIZE
from critic.jobs.items import DEFAULT_COLUMNS, decide, describe_judge, judge_items, prepare_item, reason_key
from critic.jobs.policy import DEFAULT_POLICY, SCORE_COLUMNS, Policy
from critic.jobs.summary import Counts

logger = logging.getLogger("critic")


CRITIC_COLUMNS = ("critic_status", "critic_reason", "critic_reason_kind", "critic_reason_stage")
JUDGED_COLUMNS = ("critic_label", "critic_p_chosen", "critic_consistent")


def judge_columns(
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = DEFAULT_POLICY,
) -> Callable[[dict[str, list[Any]]], dict[str, list[Any]]]:
    """A function for ``Dataset.map(fn, batched=True)`` that adds the judge's columns.

    Adds ``critic_status`` (``kept``/``dropped``/``rejected``), ``critic_reason``
    (why a row was rejected), ``critic_reason_kind`` (the reason's kind, a
    :class:`~critic.errors.Reason` value), ``critic_reason_stage`` (``input`` or
    ``judge``), ``critic_label``, ``critic_p_chosen``,
    ``critic_consistent`` (and ``critic_relabelled``, with chosen and rejected
    swapped in place, under a relabelling policy; and :data:`SCORE_COLUMNS` for a
    reward judge). Pass ``new_fingerprint=...`` to ``map`` so that ``datasets``
    does not hash the judge (and its model).
    """
    policy = policy.for_judge(describe_judge(judge))
    judged_names = (*JUDGED_COLUMNS, *(SCORE_COLUMNS if policy.reward else ()))

    def add_columns(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        names = list(batch)
        size = len(batch[names[0]]) if names else 0
        rows = [{name: batch[name][index] for name in names} for index in range(size)]
        items = [prepare_item(index + 1, row, columns) for index, row in enumerate(rows)]
        added: dict[str, list[Any]] = {name: [] for name in (*CRITIC_COLUMNS, *judged_names)}
        if policy.relabel:
            added["critic_relabelled"] = []
        changed: dict[str, list[Any]] = {}
        for index, (item, result) in enumerate(zip(items, judge_items(judge, items), strict=True)):
            outcome = decide(item, result, policy)
            record = outcome.record
            added["critic_status"].append(outcome.output)
            added["critic_reason"].append(record.get("reason"))
            added["critic_reason_kind"].append(record.get("kind"))
            added["critic_reason_stage"].append(record.get("stage"))
            for name in judged_names:
                added[name].append(record.get(name))
            if policy.relabel:
                added["critic_relabelled"].append(outcome.relabelled if outcome.output != "rejected" else None)
            if outcome.relabelled:
                if item.candidate is not None and set(item.candidate.row) - set(names):  # a converted row
                    raise InputError("relabelling PandaLM-native rows in a Dataset is not supported; "
                                     "convert them first with critic.io.rows.pandalm_row")
                for name in names:
                    if record.get(name) != rows[index][name]:
                        changed.setdefault(name, list(batch[name]))[index] = record[name]
        return {**changed, **added}

    return add_columns


@dataclass
class DatasetFilterResult:
    """The three parts of a filtered ``datasets.Dataset`` and the job's summary."""

    kept: Any
    dropped: Any
    rejected: Any
    summary: dict[str, Any]


def filter_dataset(
    dataset: Any,
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = DEFAULT_POLICY,
    batch_size: int = DEFAULT_CHUNK_SIZE,
    desc: str | None = "judging",
) -> DatasetFilterResult:
    """Filter a ``datasets.Dataset``: kept and dropped rows with the judge's columns, rejected rows with a reason.

    Counts always add up (checked). For files, resumable jobs and bad input
    lines, use :func:`filter_file`.
    """
    try:
        import datasets
    except ImportError as error:
        from critic.errors import MissingDependencyError

        raise MissingDependencyError("datasets", "data", "filter_dataset") from error
    if not isinstance(dataset, datasets.Dataset):
        raise InputError(f"filter_dataset takes a datasets.Dataset, got {type(dataset).__name__} "
                         "(pick a split of a DatasetDict first)")
    description = describe_judge(judge)
    policy = policy.for_judge(description)
    started = time.monotonic()
    fingerprint = f"critic-filter-{dataset._fingerprint}-{time.time_ns()}"
    mapped = dataset.map(judge_columns(judge, columns=columns, policy=policy), batched=True, batch_size=batch_size,
                         features=_features(datasets, dataset.features, policy), new_fingerprint=fingerprint,
                         load_from_cache_file=False, desc=desc)
    elapsed = time.monotonic() - started
    kept, dropped, rejected = _split(mapped)
    counts = _counts(len(dataset), kept, dropped, rejected, relabel=policy.relabel)
    summary = {
        "judge": description.to_dict(),
        "policy": policy.describe(),
        "counts": counts.to_dict(),
        "elapsed_s": round(elapsed, 3),
        "pairs_per_second": round(counts.judged / elapsed, 3) if elapsed > 0 else None,
    }
    return DatasetFilterResult(kept, dropped, rejected, summary)


def _features(datasets: Any, features: Any, policy: Policy) -> Any:
    """The mapped dataset's features: the input's and the judge's columns."""
    features = features.copy()
    features.update(dict.fromkeys(CRITIC_COLUMNS, datasets.Value("string")))
    features.update({"critic_label": datasets.Value("string"), "critic_p_chosen": datasets.Value("float64"),
                     "critic_consistent": datasets.Value("bool")})
    if policy.reward:
        features.update(dict.fromkeys(SCORE_COLUMNS, datasets.Value("float64")))
    if policy.relabel:
        features["critic_relabelled"] = datasets.Value("bool")
    return features


def _split(mapped: Any) -> tuple[Any, Any, Any]:
    """Kept and dropped rows without the reason columns; rejected rows without the judge's columns."""
    statuses = mapped["critic_status"]
    parts = {name: [index for index, status in enumerate(statuses) if status == name] for name in OUTPUTS}
    judged_only = [name for name in (*JUDGED_COLUMNS, *SCORE_COLUMNS, "critic_relabelled")
                   if name in mapped.column_names]
    kept = mapped.select(parts["kept"]).remove_columns(list(CRITIC_COLUMNS))
    dropped = mapped.select(parts["dropped"]).remove_columns(list(CRITIC_COLUMNS))
    rejected = mapped.select(parts["rejected"]).remove_columns(["critic_status", *judged_only])
    return kept, dropped, rejected


def _counts(rows_in: int, kept: Any, dropped: Any, rejected: Any, *, relabel: bool) -> Counts:
    counts = Counts(rows_in=rows_in, kept=len(kept), dropped=len(dropped), rejected=len(rejected))
    counts.check()
    counts.relabelled = sum(bool(value) for value in kept["critic_relabelled"]) if relabel else 0
    stages = rejected["critic_reason_stage"]
    counts.judged = len(kept) + len(dropped) + sum(stage == "judge" for stage in stages)
    counts.consistent = sum(bool(value) for part in (kept, dropped) for value in part["critic_consistent"])
    keys = [reason_key(kind, stage) for kind, stage in zip(rejected["critic_reason_kind"], stages, strict=True)]
    counts.reasons = Counter(keys)
    for key, reason in zip(keys, rejected["critic_reason"], strict=True):
        counts.examples.setdefault(key, reason)
    return counts

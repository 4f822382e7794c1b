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
from critic.io.rows import Columns
from critic.jobs.checkpoint import OUTPUTS
from critic.jobs.filejob import DEFAULT_CHUNK_SIZE
from critic.jobs.items import DEFAULT_COLUMNS, decide, judge_items, prepare_item, reason_kind
from critic.jobs.policy import SCORE_COLUMNS, Policy
from critic.jobs.summary import Counts

logger = logging.getLogger("critic")


CRITIC_COLUMNS = ("critic_status", "critic_reason")


def judge_columns(
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = Policy(),
) -> Callable[[dict[str, list[Any]]], dict[str, list[Any]]]:
    """A function for ``Dataset.map(fn, batched=True)`` that adds the judge's columns.

    Adds ``critic_status`` (``kept``/``dropped``/``rejected``), ``critic_reason``
    (why a row was rejected), ``critic_label``, ``critic_p_chosen``,
    ``critic_consistent`` (and ``critic_relabelled``, with chosen and rejected
    swapped in place, under a relabelling policy; and :data:`SCORE_COLUMNS` for a
    reward judge). Pass ``new_fingerprint=...`` to ``map`` so that ``datasets``
    does not hash the judge (and its model).
    """
    policy = policy.for_judge(judge.describe())
    judged_names = ("critic_label", "critic_p_chosen", "critic_consistent", *(SCORE_COLUMNS if policy.reward else ()))

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
            for name in judged_names:
                added[name].append(record.get(name))
            if policy.relabel:
                added["critic_relabelled"].append(outcome.relabelled if outcome.output != "rejected" else None)
            if outcome.relabelled:
                if item.candidate is not None and set(item.candidate.row) - set(names):  # a converted row
                    raise InputError("relabelling PandaLM-native rows in a Dataset is not supported; "
                                     "convert them first with critic.data.pandalm_row")
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
    policy: Policy = Policy(),
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
    policy = policy.for_judge(judge.describe())
    features = dataset.features.copy()
    features.update({
        "critic_status": datasets.Value("string"),
        "critic_reason": datasets.Value("string"),
        "critic_label": datasets.Value("string"),
        "critic_p_chosen": datasets.Value("float64"),
        "critic_consistent": datasets.Value("bool"),
    })
    if policy.reward:
        features.update(dict.fromkeys(SCORE_COLUMNS, datasets.Value("float64")))
    if policy.relabel:
        features["critic_relabelled"] = datasets.Value("bool")
    started = time.monotonic()
    fingerprint = f"critic-filter-{dataset._fingerprint}-{time.time_ns()}"
    mapped = dataset.map(judge_columns(judge, columns=columns, policy=policy), batched=True, batch_size=batch_size,
                         features=features, new_fingerprint=fingerprint, load_from_cache_file=False, desc=desc)
    elapsed = time.monotonic() - started
    statuses = mapped["critic_status"]
    parts = {name: [index for index, status in enumerate(statuses) if status == name] for name in OUTPUTS}
    judge_columns_only = [name for name in ("critic_label", "critic_p_chosen", "critic_consistent",
                                            *SCORE_COLUMNS, "critic_relabelled") if name in mapped.column_names]
    kept = mapped.select(parts["kept"]).remove_columns(["critic_status", "critic_reason"])
    dropped = mapped.select(parts["dropped"]).remove_columns(["critic_status", "critic_reason"])
    rejected = mapped.select(parts["rejected"]).remove_columns(["critic_status", *judge_columns_only])
    counts = Counts(rows_in=len(dataset), kept=len(kept), dropped=len(dropped), rejected=len(rejected))
    counts.check()
    counts.relabelled = sum(bool(value) for value in kept["critic_relabelled"]) if policy.relabel else 0
    counts.judged = len(kept) + len(dropped) + sum(reason.startswith("judge: ") for reason in rejected["critic_reason"])
    counts.consistent = sum(bool(value) for part in (kept, dropped) for value in part["critic_consistent"])
    counts.reasons = Counter(reason_kind(reason) for reason in rejected["critic_reason"])
    summary = {
        "judge": dict(judge.describe()),
        "policy": policy.describe(),
        "counts": counts.to_dict(),
        "elapsed_s": round(elapsed, 3),
        "pairs_per_second": round(counts.judged / elapsed, 3) if elapsed > 0 else None,
    }
    return DatasetFilterResult(kept, dropped, rejected, summary)

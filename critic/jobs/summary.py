"""Counting a job's rows and summarising it: counts, progress, the summary written at the end.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from critic.errors import CriticError, InputError
from critic.jobs.items import Outcome
from critic.judges import JudgeDescription

logger = logging.getLogger("critic")


class TooManyRejects(InputError):
    """More input rows were rejected than ``max_rejects`` allows; the job stopped."""


@dataclass
class Counts:
    """Rows so far. ``rows_in == kept + dropped + rejected`` always; ``relabelled`` is part of ``kept``.

    ``reasons`` counts the rejections by kind (the :class:`~critic.errors.Reason`
    value, after ``"judge: "`` when the judge failed on the pair); ``examples``
    holds the first message of each kind, for tables.
    """

    rows_in: int = 0
    kept: int = 0
    dropped: int = 0
    rejected: int = 0
    relabelled: int = 0
    judged: int = 0
    consistent: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.rows_in += 1
        setattr(self, outcome.output, getattr(self, outcome.output) + 1)
        self.relabelled += outcome.relabelled
        self.judged += outcome.judged
        self.consistent += outcome.consistent
        if outcome.rejection is not None:
            key = outcome.rejection.key
            self.reasons[key] += 1
            self.examples.setdefault(key, outcome.rejection.reason)

    def check(self) -> None:
        if self.rows_in != self.kept + self.dropped + self.rejected:
            raise CriticError(
                f"counts do not add up: {self.rows_in} rows in, but {self.kept} kept + {self.dropped} dropped "
                f"+ {self.rejected} rejected = {self.kept + self.dropped + self.rejected}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in ("rows_in", "kept", "dropped", "rejected", "relabelled",
                                                         "judged", "consistent")}
        data["rejected_by_reason"] = dict(self.reasons.most_common())
        data["reason_examples"] = {key: self.examples[key] for key in data["rejected_by_reason"]
                                   if key in self.examples}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        values = {key: int(data[key]) for key in ("rows_in", "kept", "dropped", "rejected", "relabelled", "judged",
                                                   "consistent")}
        return cls(**values, reasons=Counter(data.get("rejected_by_reason", {})),
                   examples=dict(data.get("reason_examples", {})))


@dataclass(frozen=True)
class FilterProgress:
    """Passed to the ``progress`` callback after every chunk (and once at the start)."""

    rows_done: int
    total: int | None
    kept: int
    dropped: int
    rejected: int
    elapsed_s: float


@dataclass
class FilterSummary:
    """What a job did; ``summary.json`` holds :meth:`to_dict`."""

    input: str
    format: str
    output_dir: str
    judge: JudgeDescription
    engine: str
    policy: dict[str, Any]
    counts: Counts
    elapsed_s: float
    files: dict[str, str]
    resumed: bool = False
    complete: bool = True

    @property
    def pairs_per_second(self) -> float | None:
        return self.counts.judged / self.elapsed_s if self.elapsed_s > 0 else None

    def rates(self) -> dict[str, float | None]:
        total = self.counts.rows_in
        rate = (lambda n: n / total) if total else (lambda n: None)
        judged = self.counts.judged
        return {
            "kept": rate(self.counts.kept),
            "dropped": rate(self.counts.dropped),
            "rejected": rate(self.counts.rejected),
            "kept_of_judged": self.counts.kept / judged if judged else None,
            "consistent_of_judged": self.counts.consistent / judged if judged else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "format": self.format,
            "output_dir": self.output_dir,
            "judge": self.judge.to_dict(),
            "engine": self.engine,
            "policy": self.policy,
            "counts": self.counts.to_dict(),
            "rates": self.rates(),
            "elapsed_s": round(self.elapsed_s, 3),
            "pairs_per_second": None if self.pairs_per_second is None else round(self.pairs_per_second, 3),
            "files": self.files,
            "resumed": self.resumed,
            "complete": self.complete,
        }


    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, resumed: bool | None = None) -> FilterSummary:
        """The summary :meth:`to_dict` wrote (``summary.json``); ``resumed`` overrides the recorded one."""
        return cls(
            input=str(data["input"]),
            format=str(data["format"]),
            output_dir=str(data["output_dir"]),
            judge=JudgeDescription.from_dict(data["judge"]),
            engine=str(data["engine"]),
            policy=dict(data["policy"]),
            counts=Counts.from_dict(data["counts"]),
            elapsed_s=float(data["elapsed_s"]),
            files={str(key): str(value) for key, value in data["files"].items()},
            resumed=bool(data["resumed"]) if resumed is None else resumed,
            complete=bool(data["complete"]),
        )


def _top_reasons(counts: Counts, limit: int = 3) -> str:
    return "; ".join(f"{kind}: {count}" for kind, count in counts.reasons.most_common(limit))


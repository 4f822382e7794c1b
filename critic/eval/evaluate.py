"""Evaluating a judge on labelled pairs: per-pair records, then a report.

``evaluate(judge, pairs)`` runs any :class:`~critic.judges.PairwiseJudge` over
:class:`~critic.eval.pairs.LabelledPair` objects and summarises the per-pair records
with :mod:`critic.eval.metrics`, overall and per subset.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from critic.errors import CriticError, InputError
from critic.eval.metrics import (
    F1,
    LABELS,
    Accuracy,
    Agreement,
    FailedAs,
    GroupAccuracy,
    Rate,
    TiePolicy,
    accuracy,
    agreement_table,
    group_accuracy,
    macro_f1,
)
from critic.eval.bias import (
    Calibration,
    LengthBias,
    calibration,
    first_shown_win_rate,
    leaning_accuracy,
    length_bias,
    position_consistency,
)
from critic.eval.pairs import LabelledPair, Predictions
from critic.eval.rewardbench import SectionScore, section_scores
from critic.eval.rewardbench2 import TIES, RewardBench2Scores, rewardbench2_scores
from critic.judges import JudgeDescription
from critic.judges.each import chunked, judged_in_place
from critic.types import Label, Preference

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from critic.judges import PairwiseJudge

logger = logging.getLogger("critic")


GOLD, JUDGE = "gold", "judge"


@dataclass(frozen=True)
class PairRecord:
    """One judged pair. ``prediction``/``p_a`` are ``None`` when the judgment failed (see ``error``).

    ``outcomes`` are the per-order outcomes (original responses), ``shown`` the
    per-order verdict letters as shown; lengths are in characters. ``group``
    and ``answers`` are the pair's :class:`~critic.eval.pairs.LabelledPair`'s;
    ``scores`` a reward judge's two scores (RewardBench 2's Ties score reads them).
    """

    key: str
    subset: str | None
    gold: Label
    prediction: Label | None
    p_a: float | None
    consistent: bool | None
    outcomes: tuple[Label, ...]
    shown: tuple[str, ...]
    length_a: int
    length_b: int
    flipped: bool = False
    error: str | None = None
    group: str | None = None
    answers: tuple[int, int] | None = None  # a group's pair: (chosen index, rejected index), see LabelledPair
    scores: tuple[float, float] | None = None  # a reward judge's scores of the two responses, as shown

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def record_for(item: LabelledPair, result: Preference | CriticError) -> PairRecord:
    """The record of one judged pair (``result`` is the judge's preference or its error)."""
    lengths = len(item.pair.response_a), len(item.pair.response_b)
    if isinstance(result, CriticError):
        return PairRecord(item.key, item.subset, item.label, None, None, None, (), (), *lengths,
                          flipped=item.flipped, error=str(result), group=item.group, answers=item.answers)
    first = result.orders[0] if len(result.orders) == 1 else None
    scores = None
    if first is not None and first.score_a is not None and first.score_b is not None:
        scores = (float(first.score_a), float(first.score_b))
    return PairRecord(item.key, item.subset, item.label, result.label, result.p_a, result.consistent,
                      tuple(o.outcome for o in result.orders), tuple(o.verdict for o in result.orders), *lengths,
                      flipped=item.flipped, group=item.group, answers=item.answers, scores=scores)


def judge_pairs(
    judge: PairwiseJudge,
    pairs: Iterable[LabelledPair],
    *,
    chunk_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> list[PairRecord]:
    """Judge every pair (``chunk_size`` at a time, so the backend can batch); a failure costs one pair."""
    records: list[PairRecord] = []
    for chunk in chunked(pairs, chunk_size):
        results = judged_in_place([item.pair for item in chunk], judge.compare_each)
        records.extend(record_for(item, result) for item, result in zip(chunk, results, strict=True))
        if on_progress is not None:
            on_progress(len(chunk))
    failed = sum(1 for r in records if r.error is not None)
    if failed:
        logger.warning("%d of %d pair(s) could not be judged; they count as failed, not as guesses",
                       failed, len(records))
    return records


def predictions_from_records(name: str, records: Sequence[PairRecord], *, source: str = "") -> Predictions:
    """A judged run's labels as another judge's :class:`Predictions` (keyed, and oriented, like the input).

    Records of flipped pairs are flipped back, so :func:`align` lines them up
    with any other run on the same pairs.
    """
    swap: dict[Label | None, Label | None] = {"A": "B", "B": "A"}
    labels = {r.key: swap.get(r.prediction, r.prediction) if r.flipped else r.prediction for r in records}
    return Predictions(name, source, "prediction", labels)


def align(predictions: Predictions, records: Sequence[PairRecord]) -> list[Label | None]:
    """``predictions`` as a column aligned with ``records`` (a missing key is a failed prediction)."""
    swap: dict[Label | None, Label | None] = {"A": "B", "B": "A"}
    column = [predictions.labels.get(r.key) for r in records]
    return [swap.get(label, label) if r.flipped else label for label, r in zip(column, records, strict=True)]


@dataclass(frozen=True)
class SliceReport:
    """Every metric for one slice of the pairs (``overall`` or a subset)."""

    name: str
    n: int
    predicted: Mapping[str, int]  # label counts, "failed" included
    accuracy: Accuracy  # all pairs; a gold tie is matched by a predicted tie (strict) or half (half)
    accuracy_decided: Accuracy  # only pairs whose gold label has a winner
    leaning: Rate  # p_a leans towards the gold winner (see metrics.leaning_accuracy)
    consistency: Rate
    first_shown_wins: Rate
    length: LengthBias
    calibration: Calibration
    f1: F1 | None = None  # macro-F1 over the labels present in gold or predictions (see class_f1)
    groups: GroupAccuracy | None = None  # only when some pair has a group (RewardBench 2 rows)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "predicted": dict(self.predicted),
                "accuracy": self.accuracy.to_dict(), "accuracy_decided": self.accuracy_decided.to_dict(),
                "f1": None if self.f1 is None else self.f1.to_dict(),
                "groups": None if self.groups is None else self.groups.to_dict(),
                "p_a_leans_to_winner": self.leaning.to_dict(),
                "position_consistency": self.consistency.to_dict(), "first_shown_wins": self.first_shown_wins.to_dict(),
                "length_bias": self.length.to_dict(), "calibration": self.calibration.to_dict()}


@dataclass(frozen=True)
class OtherJudge:
    """Another judge's predictions against the same gold labels."""

    name: str
    source: str
    accuracy: Accuracy
    accuracy_decided: Accuracy
    f1: F1 | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "accuracy": self.accuracy.to_dict(),
                "accuracy_decided": self.accuracy_decided.to_dict(),
                "f1": None if self.f1 is None else self.f1.to_dict()}


@dataclass(frozen=True)
class EvalReport:
    """The whole evaluation; ``to_dict`` is what ``report.json`` holds."""

    judge: JudgeDescription
    source: str
    tie_policy: TiePolicy
    overall: SliceReport
    subsets: tuple[SliceReport, ...] = ()
    sections: tuple[SectionScore, ...] = ()
    other_judges: tuple[OtherJudge, ...] = ()
    agreement: tuple[Agreement, ...] = ()
    skipped_rows: tuple[str, ...] = ()
    seconds: float | None = None
    records: tuple[PairRecord, ...] = field(default=(), repr=False)
    failed_as: FailedAs = "wrong"
    rewardbench2: RewardBench2Scores | None = None  # RewardBench 2's subset and overall scores, when its rows are in

    @property
    def rewardbench2_score(self) -> float | None:
        """RewardBench 2's overall score as its leaderboard shows it (the mean of its six subsets), else None."""
        return None if self.rewardbench2 is None else self.rewardbench2.overall

    @property
    def rewardbench_score(self) -> float | None:
        """The mean of the four RewardBench sections (its current leaderboard's Score); None unless all four."""
        scores = [s.score for s in self.sections if s.score is not None]
        return sum(scores) / 4 if len(scores) == 4 else None

    def to_dict(self, *, include_records: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "judge": self.judge.to_dict(), "source": self.source, "tie_policy": self.tie_policy,
            "failed_as": self.failed_as, "seconds": self.seconds,
            "overall": self.overall.to_dict(), "subsets": [s.to_dict() for s in self.subsets],
            "sections": [vars(s) | {"subsets": list(s.subsets)} for s in self.sections],
            "rewardbench_score": self.rewardbench_score,
            "rewardbench2": None if self.rewardbench2 is None else self.rewardbench2.to_dict(),
            "other_judges": [o.to_dict() for o in self.other_judges],
            "agreement": [a.to_dict() for a in self.agreement],
            "skipped_rows": {"count": len(self.skipped_rows), "first": list(self.skipped_rows[:20])},
        }
        if include_records:
            data["records"] = [r.to_dict() for r in self.records]
        return data


def class_f1(predictions: Sequence[Label | None], gold: Sequence[Label], *, failed_as: FailedAs = "wrong") -> F1:
    """Macro-F1 over the labels (A, B, tie) that occur in ``gold`` or in the predictions as read.

    A label neither side uses is left out rather than scored 0 (on RewardBench,
    whose gold labels hold no ties, a judge that never says tie is not marked
    down for it). With all three labels present (PandaLM) this is scikit-learn's
    ``f1_score(average="macro")`` on the same labels.
    """
    read = {"tie" if p is None and failed_as == "tie" else p for p in predictions} | set(gold)
    return macro_f1(predictions, gold, labels=[label for label in LABELS if label in read], failed_as=failed_as)


def slice_report(
    name: str,
    records: Sequence[PairRecord],
    *,
    tie_policy: TiePolicy = "strict",
    failed_as: FailedAs = "wrong",
    bins: int = 10,
) -> SliceReport:
    """All metrics over ``records``."""
    gold = [r.gold for r in records]
    predictions = [r.prediction for r in records]
    p_a = [r.p_a for r in records]
    counts = Counter(r.prediction or "failed" for r in records)
    grouped = any(r.group is not None for r in records)
    # RewardBench 2's Ties rows (and any row of several correct answers): every correct answer must win
    all_win = {r.group for r in records if r.answers is not None and (r.answers[0] > 0 or r.subset == TIES)}
    return SliceReport(
        name=name,
        n=len(records),
        predicted={label: counts.get(label, 0) for label in ("A", "B", "tie", "failed")},
        accuracy=accuracy(predictions, gold, tie_policy=tie_policy, failed_as=failed_as),
        accuracy_decided=accuracy(predictions, gold, tie_policy=tie_policy, failed_as=failed_as, decided_only=True),
        leaning=leaning_accuracy(p_a, gold),
        consistency=position_consistency([r.outcomes for r in records]),
        first_shown_wins=first_shown_win_rate([r.shown for r in records]),
        length=length_bias([r.length_a for r in records], [r.length_b for r in records], predictions, gold, p_a),
        calibration=calibration(p_a, gold, bins=bins),
        f1=class_f1(predictions, gold, failed_as=failed_as),
        groups=group_accuracy(predictions, gold, [r.group for r in records],
                              all_must_win=[r.group in all_win for r in records]) if grouped else None,
    )


def summarize(
    records: Sequence[PairRecord],
    *,
    judge: JudgeDescription | Mapping[str, Any] | None = None,
    source: str = "",
    others: Sequence[Predictions] = (),
    tie_policy: TiePolicy = "strict",
    failed_as: FailedAs = "wrong",
    bins: int = 10,
    skipped_rows: Sequence[str] = (),
    seconds: float | None = None,
) -> EvalReport:
    """The report for judged ``records``, overall and per subset, with other judges' agreement.

    ``judge`` is the judge's :meth:`describe` (a plain mapping is read as a
    ``"custom"`` judge's description). ``tie_policy`` and ``failed_as`` score
    every accuracy and macro-F1 in it, other judges' included (see :func:`~critic.eval.metrics.accuracy`).
    """
    policies: dict[str, Any] = {"tie_policy": tie_policy, "failed_as": failed_as}
    names = sorted({r.subset for r in records if r.subset is not None})
    subsets = tuple(slice_report(name, [r for r in records if r.subset == name], bins=bins, **policies)
                    for name in names)
    gold = [r.gold for r in records]
    columns: dict[str, list[Label | None]] = {GOLD: list(gold), JUDGE: [r.prediction for r in records]}
    other_reports = []
    for other in others:
        column = align(other, records)
        columns[other.name] = column
        other_reports.append(OtherJudge(other.name, other.source, accuracy(column, gold, **policies),
                                        accuracy(column, gold, decided_only=True, **policies),
                                        class_f1(column, gold, failed_as=failed_as)))
    return EvalReport(
        judge=describe_judge(judge),
        source=source,
        tie_policy=tie_policy,
        failed_as=failed_as,
        overall=slice_report("overall", records, bins=bins, **policies),
        subsets=subsets,
        sections=section_scores(subsets),
        other_judges=tuple(other_reports),
        agreement=agreement_table(columns),
        skipped_rows=tuple(skipped_rows),
        seconds=seconds,
        records=tuple(records),
        rewardbench2=rewardbench2_scores(records),
    )


def describe_judge(judge: JudgeDescription | Mapping[str, Any] | None) -> JudgeDescription:
    """A :class:`JudgeDescription` from a description, a plain mapping (kind ``"custom"`` unless given) or None."""
    if isinstance(judge, JudgeDescription):
        return judge
    return JudgeDescription.from_dict({"kind": "custom", **dict(judge or {})})


class EvalOptions(TypedDict, total=False):
    """The keyword options of :func:`evaluate` (those of :func:`evaluate_side_by_side`)."""

    others: Sequence[Predictions]
    tie_policy: TiePolicy
    failed_as: FailedAs
    bins: int
    source: str
    skipped_rows: Sequence[str]
    chunk_size: int
    on_progress: Callable[[int], None] | None


def evaluate(judge: PairwiseJudge, pairs: Iterable[LabelledPair], **options: Unpack[EvalOptions]) -> EvalReport:
    """Judge ``pairs`` and report: ``judge_pairs`` then ``summarize`` (any :class:`PairwiseJudge`).

    ``options`` are those of :func:`evaluate_side_by_side`.
    """
    return evaluate_side_by_side({JUDGE: judge}, pairs, **options)[JUDGE]


def evaluate_side_by_side(
    judges: Mapping[str, PairwiseJudge],
    pairs: Iterable[LabelledPair],
    *,
    others: Sequence[Predictions] = (),
    tie_policy: TiePolicy = "strict",
    failed_as: FailedAs = "wrong",
    bins: int = 10,
    source: str = "",
    skipped_rows: Sequence[str] = (),
    chunk_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, EvalReport]:
    """Evaluate several judges (of any kind) on the same pairs: one full report per judge, by name.

    Each judge judges the pairs once. Each report lists the other judges of the
    call (by their names) among its ``other_judges``, beside ``others``, so their
    accuracy and the agreement between every two judges (Cohen's kappa, in
    ``agreement``) appear in every report.
    """
    if len(judges) < 1:
        raise InputError("evaluate_side_by_side needs at least one judge")
    items = list(pairs)
    runs: dict[str, tuple[list[PairRecord], float]] = {}
    for name, judge in judges.items():
        started = time.perf_counter()
        records = judge_pairs(judge, items, chunk_size=chunk_size, on_progress=on_progress)
        runs[name] = (records, time.perf_counter() - started)
        logger.info("%s: judged %d pairs in %.1f s", name, len(records), runs[name][1])
    reports = {}
    for name, (records, seconds) in runs.items():
        peers = [predictions_from_records(peer, peer_records, source=f"judge {peer}")
                 for peer, (peer_records, _) in runs.items() if peer != name]
        reports[name] = summarize(records, judge=judges[name].describe(), source=source, others=[*peers, *others],
                                  tie_policy=tie_policy, failed_as=failed_as, bins=bins, skipped_rows=skipped_rows,
                                  seconds=seconds)
    return reports

"""Evaluating a judge on labelled pairs: per-pair records, then a report.

``evaluate(judge, pairs)`` runs any :class:`~critic.judge.PairwiseJudge` over
:class:`LabelledPair` objects and summarises the per-pair records with
:mod:`critic.metrics`, overall and per subset. Inputs come from
:func:`load_labelled_pairs` (PandaLM's three-annotator rows, rows with an
explicit label, and every chosen/rejected shape :mod:`critic.data` reads) and
other judges' predictions from :func:`load_predictions`.

RewardBench sections. RewardBench rows carry a ``subset`` (``alpacaeval-easy``,
``hep-go``, ...). Its paper reports four sections, and :data:`SUBSET_MAPPING`
and :data:`EXAMPLE_COUNTS` are copied from ``rewardbench/constants.py`` in
allenai/reward-bench. As there (``calculate_scores_per_section``), a section
score is the mean of its subsets' accuracies weighted by ``EXAMPLE_COUNTS``;
``math-prm`` is weighted 984 (it has 447 pairs) so that math and the six
HumanEvalPack languages (6 x 164) count equally in ``reasoning``. Only subsets
present in the data enter a section. The RewardBench score is the mean of the
four section scores, given only when all four are present.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from critic.errors import CriticError, InputError, ModelError
from critic.judge import PairwiseJudge
from critic.metrics import (
    Accuracy,
    Agreement,
    Calibration,
    LengthBias,
    Rate,
    TiePolicy,
    accuracy,
    agreement_table,
    calibration,
    first_shown_win_rate,
    leaning_accuracy,
    length_bias,
    position_consistency,
)
from critic.types import Label, Pair, Preference

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("critic")

SUBSET_MAPPING: dict[str, tuple[str, ...]] = {
    "chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "chat-hard": ("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"),
    "safety": ("refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"),
    "reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "math-prm": 984, "refusals-dangerous": 100,
    "refusals-offensive": 100, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "xstest-should-refuse": 250,
    "xstest-should-respond": 154, "donotanswer": 136, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
    "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}
GOLD, JUDGE = "gold", "judge"

# Each loader returns a label or None; None = the value says nothing usable ("garbage").
_A = {"1", "a", "response_a", "model_a", "response1"}
_B = {"2", "b", "response_b", "model_b", "response2"}
_TIE = {"0", "tie", "c", "tie (bothbad)", "both", "neither", "draw"}
PREDICTION_FIELDS = ("gpt_result", "pandalm_result", "prediction", "predicted", "winner", "preference",
                     "verdict", "label", "result")


def normalize_label(value: Any) -> Label | None:
    """A label from a loose value: 1/"A"/"response_a" -> A, 2/"B" -> B, 0/"Tie"/"C" -> tie, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    return "A" if key in _A else "B" if key in _B else "tie" if key in _TIE else None


def majority_label(votes: Sequence[int]) -> Label:
    """PandaLM annotators' majority (1 -> A, 2 -> B, 0 -> tie); a three-way split is a tie."""
    top, count = Counter(votes).most_common(1)[0]
    if count * 2 <= len(votes):
        return "tie"
    return normalize_label(top) or "tie"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class LabelledPair:
    """A pair and its gold label. ``flipped``: shown with the chosen response second (see loader)."""

    key: str
    pair: Pair
    label: Label
    subset: str | None = None
    flipped: bool = False


@dataclass(frozen=True)
class LoadedPairs:
    pairs: tuple[LabelledPair, ...]
    skipped: tuple[str, ...]  # one reason per row that could not be used


def load_labelled_pairs(
    location: str | Path, *, limit: int | None = None, format: str | None = None, split: str | None = None
) -> LoadedPairs:
    """Read labelled pairs from the first ``limit`` rows of a file or dataset (formats: :mod:`critic.data`).

    - PandaLM rows (``instruction``, ``input``, ``response1``, ``response2``,
      ``annotator1..3``): response1 is A; gold is the annotators' majority, and
      ties stay ties.
    - ``prompt``/``response_a``/``response_b`` with a ``label`` (A/B/tie and
      the spellings :func:`normalize_label` reads): kept in their order.
    - chosen/rejected rows (strings or message lists, e.g. RewardBench with its
      ``subset``): the chosen response is shown first on even pairs and second
      on odd ones, so that a judge that always answers "A" scores 50%, not 100%.
    A row without a usable label is skipped with its reason.
    """
    from critic.data import open_source, prepare_row

    pairs: list[LabelledPair] = []
    skipped: list[str] = []
    for seen, (number, row) in enumerate(open_source(location, format=format, split=split).rows(), start=1):
        if limit is not None and seen > limit:
            break
        try:
            if isinstance(row, CriticError):
                raise row
            if not isinstance(row, Mapping):
                raise InputError(f"a row must be an object, got {type(row).__name__}")
            key = str(row.get("id", row.get("idx", number)))
            subset = row.get("subset") if isinstance(row.get("subset"), str) else None
            if "annotator1" in row and "response1" in row:
                pairs.append(_pandalm_pair(row, key))
            elif "label" in row and "response_a" in row:
                pairs.append(_labelled_ab_pair(row, key, subset))
            else:
                candidate = prepare_row(row)
                if candidate.shape == "ab":
                    raise InputError("no 'label' saying which response is better")
                flipped = len(pairs) % 2 == 1
                pair = candidate.pair.swapped() if flipped else candidate.pair
                pairs.append(LabelledPair(key, pair, "B" if flipped else "A", subset, flipped))
        except CriticError as error:
            skipped.append(f"row {number}: {error}")
    if skipped:
        logger.warning("%d row(s) skipped; first: %s", len(skipped), skipped[0])
    return LoadedPairs(tuple(pairs), tuple(skipped))


def _pandalm_pair(row: Mapping[str, Any], key: str) -> LabelledPair:
    votes = [row.get(f"annotator{i}") for i in (1, 2, 3)]
    if any(isinstance(v, bool) or v not in (0, 1, 2) for v in votes):
        raise InputError(f"annotators must say 0 (tie), 1 or 2, got {votes}")
    extra = row.get("input") or ""
    prompt = row.get("instruction", "") + (f"\n\n{extra}" if extra else "")  # the input belongs to the prompt
    # PandaLM's testset-v1.json stores six answers "True" as JSON true (idx 157-164): read them back as text.
    responses = [str(value) if isinstance(value, bool) else value
                 for value in (row.get("response1"), row.get("response2"))]
    return LabelledPair(key, Pair(prompt, *responses), majority_label(votes))  # type: ignore[arg-type]


def _labelled_ab_pair(row: Mapping[str, Any], key: str, subset: str | None) -> LabelledPair:
    label = normalize_label(row["label"])
    if label is None:
        raise InputError(f"label {row['label']!r} is not A, B or tie")
    return LabelledPair(key, Pair.from_mapping(row), label, subset)


@dataclass(frozen=True)
class Predictions:
    """Another judge's labels by pair key; ``None`` where its answer was unusable."""

    name: str
    source: str
    field: str
    labels: Mapping[str, Label | None]


def load_predictions(
    name: str, location: str | Path, *, field: str | None = None, key: str | None = None
) -> Predictions:
    """Read another judge's predictions: rows with a key (``idx``, ``id``, else the row number) and a label field.

    ``field`` defaults to the first of :data:`PREDICTION_FIELDS` present. Labels
    are read with :func:`normalize_label`: PandaLM's 0/1/2 and GPT's "1"/"2"/"Tie"
    work as they are; anything else (GPT's "garbage") is a failed prediction.
    """
    from critic.data import open_source

    labels: dict[str, Label | None] = {}
    for number, row in open_source(location).rows():
        if not isinstance(row, Mapping):
            raise InputError(f"'{location}' row {number}: not an object")
        if field is None:
            field = next((f for f in PREDICTION_FIELDS if f in row), None)
            if field is None:
                raise InputError(f"'{location}' has none of the prediction fields {', '.join(PREDICTION_FIELDS)}; "
                                 f"name one with NAME=PATH#FIELD (present: {', '.join(sorted(map(str, row)))})")
        pair_key = row.get(key) if key else row.get("idx", row.get("id", number))
        labels[str(pair_key)] = normalize_label(row.get(field))
    return Predictions(name, str(location), field or "", labels)


def companion_files(location: str | Path) -> dict[str, Path]:
    """Other judges' prediction files beside an input: ``<judge>-<input name>`` (PandaLM's layout).

    Beside PandaLM's ``testset-v1.json`` these are ``gpt-3.5-turbo-testset-v1.json``
    and ``pandalm-7b-testset-v1.json``, named ``gpt-3.5-turbo`` and ``pandalm-7b``.
    """
    path = Path(location)
    if not path.is_file():
        return {}
    suffix = f"-{path.name}"
    return {p.name[: -len(suffix)]: p for p in sorted(path.parent.glob(f"*{suffix}")) if p != path}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PairRecord:
    """One judged pair. ``prediction``/``p_a`` are ``None`` when the judgment failed (see ``error``).

    ``outcomes`` are the per-order outcomes (original responses), ``shown`` the
    per-order verdict letters as shown; lengths are in characters.
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

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def record_for(item: LabelledPair, result: Preference | CriticError) -> PairRecord:
    """The record of one judged pair (``result`` is the judge's preference or its error)."""
    lengths = len(item.pair.response_a), len(item.pair.response_b)
    if isinstance(result, CriticError):
        return PairRecord(item.key, item.subset, item.label, None, None, None, (), (), *lengths,
                          flipped=item.flipped, error=str(result))
    return PairRecord(item.key, item.subset, item.label, result.label, result.p_a, result.consistent,
                      tuple(o.outcome for o in result.orders), tuple(o.verdict for o in result.orders), *lengths,
                      flipped=item.flipped)


def judge_pairs(
    judge: PairwiseJudge,
    pairs: Iterable[LabelledPair],
    *,
    chunk_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> list[PairRecord]:
    """Judge every pair (``chunk_size`` at a time, so the backend can batch); a failure costs one pair."""
    items = list(pairs)
    records: list[PairRecord] = []
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        results = judge.compare_each([item.pair for item in chunk])
        if len(results) != len(chunk):
            raise ModelError(f"the judge returned {len(results)} results for {len(chunk)} pairs")
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


# --------------------------------------------------------------------------- reports


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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "predicted": dict(self.predicted),
                "accuracy": self.accuracy.to_dict(), "accuracy_decided": self.accuracy_decided.to_dict(),
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "accuracy": self.accuracy.to_dict(),
                "accuracy_decided": self.accuracy_decided.to_dict()}


@dataclass(frozen=True)
class SectionScore:
    """A RewardBench section: accuracies of its present subsets, weighted by ``EXAMPLE_COUNTS``."""

    name: str
    score: float | None
    subsets: tuple[str, ...]
    n: int


@dataclass(frozen=True)
class EvalReport:
    """The whole evaluation; ``to_dict`` is what ``report.json`` holds."""

    judge: Mapping[str, Any]
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

    @property
    def rewardbench_score(self) -> float | None:
        scores = [s.score for s in self.sections if s.score is not None]
        return sum(scores) / 4 if len(scores) == 4 else None

    def to_dict(self, *, include_records: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "judge": dict(self.judge), "source": self.source, "tie_policy": self.tie_policy, "seconds": self.seconds,
            "overall": self.overall.to_dict(), "subsets": [s.to_dict() for s in self.subsets],
            "sections": [vars(s) | {"subsets": list(s.subsets)} for s in self.sections],
            "rewardbench_score": self.rewardbench_score,
            "other_judges": [o.to_dict() for o in self.other_judges],
            "agreement": [a.to_dict() for a in self.agreement],
            "skipped_rows": {"count": len(self.skipped_rows), "first": list(self.skipped_rows[:20])},
        }
        if include_records:
            data["records"] = [r.to_dict() for r in self.records]
        return data


def slice_report(
    name: str, records: Sequence[PairRecord], *, tie_policy: TiePolicy = "strict", bins: int = 10
) -> SliceReport:
    """All metrics over ``records``."""
    gold = [r.gold for r in records]
    predictions = [r.prediction for r in records]
    p_a = [r.p_a for r in records]
    counts = Counter(r.prediction or "failed" for r in records)
    return SliceReport(
        name=name,
        n=len(records),
        predicted={label: counts.get(label, 0) for label in ("A", "B", "tie", "failed")},
        accuracy=accuracy(predictions, gold, tie_policy=tie_policy),
        accuracy_decided=accuracy(predictions, gold, tie_policy=tie_policy, decided_only=True),
        leaning=leaning_accuracy(p_a, gold),
        consistency=position_consistency([r.outcomes for r in records]),
        first_shown_wins=first_shown_win_rate([r.shown for r in records]),
        length=length_bias([r.length_a for r in records], [r.length_b for r in records], predictions, gold, p_a),
        calibration=calibration(p_a, gold, bins=bins),
    )


def section_scores(subsets: Sequence[SliceReport]) -> tuple[SectionScore, ...]:
    """RewardBench's four sections from per-subset accuracies (empty when no RewardBench subset is present)."""
    accuracies = {s.name: s.accuracy.accuracy for s in subsets if s.accuracy.accuracy is not None}
    sizes = {s.name: s.n for s in subsets}
    sections = []
    for section, members in SUBSET_MAPPING.items():
        present = [m for m in members if m in accuracies]
        if not present:
            continue
        weight = sum(EXAMPLE_COUNTS[m] for m in present)
        score = sum(accuracies[m] * EXAMPLE_COUNTS[m] for m in present) / weight
        sections.append(SectionScore(section, score, tuple(present), sum(sizes[m] for m in present)))
    return tuple(sections)


def summarize(
    records: Sequence[PairRecord],
    *,
    judge: Mapping[str, Any] | None = None,
    source: str = "",
    others: Sequence[Predictions] = (),
    tie_policy: TiePolicy = "strict",
    bins: int = 10,
    skipped_rows: Sequence[str] = (),
    seconds: float | None = None,
) -> EvalReport:
    """The report for judged ``records``, overall and per subset, with other judges' agreement."""
    names = sorted({r.subset for r in records if r.subset is not None})
    subsets = tuple(slice_report(name, [r for r in records if r.subset == name], tie_policy=tie_policy, bins=bins)
                    for name in names)
    gold = [r.gold for r in records]
    columns: dict[str, list[Label | None]] = {GOLD: list(gold), JUDGE: [r.prediction for r in records]}
    other_reports = []
    for other in others:
        column = align(other, records)
        columns[other.name] = column
        other_reports.append(OtherJudge(other.name, other.source, accuracy(column, gold, tie_policy=tie_policy),
                                        accuracy(column, gold, tie_policy=tie_policy, decided_only=True)))
    return EvalReport(
        judge=dict(judge or {}),
        source=source,
        tie_policy=tie_policy,
        overall=slice_report("overall", records, tie_policy=tie_policy, bins=bins),
        subsets=subsets,
        sections=section_scores(subsets),
        other_judges=tuple(other_reports),
        agreement=agreement_table(columns),
        skipped_rows=tuple(skipped_rows),
        seconds=seconds,
        records=tuple(records),
    )


class EvalOptions(TypedDict, total=False):
    """The keyword options of :func:`evaluate` (those of :func:`evaluate_side_by_side`)."""

    others: Sequence[Predictions]
    tie_policy: TiePolicy
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
                                  tie_policy=tie_policy, bins=bins, skipped_rows=skipped_rows, seconds=seconds)
    return reports

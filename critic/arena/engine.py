"""``critic arena --engine ray``: the arena's judge, spread over a pool of Ray actors.

The cleaning job's :class:`~critic.jobs.ray.RayEngine` does not fit an arena: it streams the
rows of an input file through the filter's row shapes and brings back the filter's verdict
columns (label, P(chosen), consistency, scores), while an arena judges pairs it built itself
(MT-Bench's second turns with each model's own history among them) and keeps every order's
verdict, probability and format mass. So the pool here is a judge: :class:`RayJudges` has
``compare_each`` and ``describe``, and the one judging path (:mod:`critic.judges.each`) calls
it chunk by chunk, as it calls a local judge. Each call splits its pairs evenly over the
actors; each actor's judge (built once by ``judge_factory``) judges its share, and the
results travel in ``critic serve``'s wire format (:func:`critic.wire.result_object`
there, :func:`critic.wire.read_results` here), errors with their class and kind.

Ray is imported only when this engine runs (``pip install 'critic[ray]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from critic.errors import CriticError, InputError, MissingDependencyError
from critic.judges.base import as_pair
from critic.judges.description import JudgeDescription
from critic.judges.each import read_each
from critic.types import Pair, Preference


class RayJudges:
    """``compare_each`` over ``actors`` Ray actors, each holding one judge built by ``judge_factory()``."""

    name = "ray"

    def __init__(self, judge_factory: Callable[[], Any], *, actors: int = 2, cpus_per_actor: float = 1.0,
                 gpus_per_actor: float = 0.0, address: str | None = None) -> None:
        if actors < 1:
            raise InputError("the Ray engine needs at least one actor")
        ray = _ray(actors, cpus_per_actor, address)
        actor = ray.remote(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor or None)(_JudgeActor)
        self._ray = ray
        self._actors = [actor.remote(judge_factory) for _ in range(actors)]
        self._description: JudgeDescription = ray.get(self._actors[0].describe.remote())

    def describe(self) -> JudgeDescription:
        return self._description

    def compare_each(self, pairs: Iterable[Any]) -> list[Preference | CriticError]:
        """One result per pair, in order; each actor judges an even share."""
        from critic.wire import read_results

        checked = read_each(enumerate(pairs), lambda numbered: as_pair(numbered[1], numbered[0]))
        valid = [pair for pair in checked if isinstance(pair, Pair)]
        share = -(-len(valid) // len(self._actors)) if valid else 0
        slices = [valid[start:start + share] for start in range(0, len(valid), share)] if share else []
        answers = self._ray.get([actor.judge.remote(part) for actor, part in zip(self._actors, slices, strict=False)])
        judged = iter(read_results({"results": [item for answer in answers for item in answer]}, len(valid)))
        return [item if isinstance(item, CriticError) else next(judged) for item in checked]

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []


class _JudgeActor:
    """One judge on a Ray worker; answers in critic serve's wire format."""

    def __init__(self, judge_factory: Callable[[], Any]) -> None:
        self._judge = judge_factory()

    def describe(self) -> JudgeDescription:
        description: JudgeDescription = self._judge.describe()
        return description

    def judge(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        from critic.wire import result_object

        return [result_object(result) for result in self._judge.compare_each(pairs)]


def _ray(actors: int, cpus_per_actor: float, address: str | None) -> Any:
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError("ray[data]", "ray", "the Ray engine (--engine ray)") from error
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:  # as the cleaning job's engine starts a local instance: enough logical CPUs, actors at nice 0
            cpus = max(os.cpu_count() or 1, int(actors * cpus_per_actor + 0.999) + 1)
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                     _system_config={"worker_niceness": 0})
    return ray

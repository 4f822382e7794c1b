"""``--engine ray``: the same cleaning job, with the judging spread over Ray Data actors.

One read task streams the input through the same reader and row-shape code as
the local engine, in chunks; an actor pool (each actor builds one judge with
``judge_factory``: one per GPU on a cluster) judges the chunks; the driver gets
the chunks back in input order and does everything else exactly as the local
engine does (policy, outputs, checkpoints, counts). So the kept, dropped and
rejected rows are the same, and a job started with one engine can be resumed
with the other.

Rows travel as plain Arrow columns: the row number and the row's JSON text (or,
for a row that could not be read, its reason and raw text); results come back as
columns (label, probability, consistency, scores, or the error and its kind).
The actors and the driver shape the rows with the same code.

Ray is imported only when this engine runs (``pip install 'critic[ray]'``).
On a cluster, call ``ray.init(address=...)`` yourself first (or pass
``address``); otherwise a local Ray instance is started.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from critic.errors import InputError, MissingDependencyError, Reason
from critic.io.readers import RowError
from critic.io.shapes import Columns
from critic.io.source import InputSource
from critic.io.writers import dumps_row
from critic.jobs.items import Item, Rejection, Result, describe_judge, judge_items, prepare_item
from critic.judges.each import chunked
from critic.jobs.policy import Verdict
from critic.judges import JudgeDescription

logger = logging.getLogger("critic")

JudgeFactory = Callable[[], Any]
READ_BLOCK_BYTES = 8 << 20  # the read task hands its rows on in blocks of about this size
READ_CPUS = 0.25  # the CPU share the read task asks for


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("ray[data]", "ray", "the Ray engine (--engine ray)") from error
    return ray


class RayEngine:
    """Judges on a pool of Ray actors, each holding one judge built by ``judge_factory()``.

    Args:
        judge_factory: a picklable zero-argument callable returning a judge
            (``functools.partial(Judge.from_pretrained, "demo")``, say).
        actors: how many actors (judges) to run.
        cpus_per_actor / gpus_per_actor: Ray resources each actor asks for
            (``gpus_per_actor=1`` on a GPU cluster).
        address: a Ray cluster to join (``"auto"``, ``"ray://..."``); when Ray is
            not initialised and no address is given, a local instance starts
            with enough logical CPUs for the actors and the read task.
        describe: the judge's ``describe()``, when known without building a judge;
            otherwise one judge is built on the driver once to ask.
        prepare: called once on the driver before the actors start, for work every
            actor would otherwise do at once (converting the demo model's GGUF into
            the cached folder vLLM reads, say: ``functools.partial(engine_source, "demo")``).
    """

    name = "ray"

    def __init__(
        self,
        judge_factory: JudgeFactory,
        *,
        actors: int = 2,
        cpus_per_actor: float = 1.0,
        gpus_per_actor: float = 0.0,
        address: str | None = None,
        describe: JudgeDescription | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        if actors < 1:
            raise InputError("the Ray engine needs at least one actor")
        self.judge_factory = judge_factory
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = gpus_per_actor
        self.address = address
        self._describe = describe
        self.prepare = prepare

    def describe(self) -> JudgeDescription:
        if self._describe is None:
            self._describe = describe_judge(self.judge_factory())
        return self._describe

    def _init(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                # A read task needs a CPU beside the actors, or the job waits forever
                # (on a 2-core machine, two 1-CPU actors would take them all).
                # Ray starts its workers at nice 15; here the judges are the whole point of the
                # instance, and at nice 15 they starve behind any other busy process.
                cpus = max(os.cpu_count() or 1, int(self.actors * self.cpus_per_actor + 0.999) + 2)
                ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False, _system_config={"worker_niceness": 0})
        return ray

    def judged_chunks(
        self, source: InputSource, columns: Columns, *, skip: int, chunk_size: int
    ) -> Iterator[list[tuple[Item, Result]]]:
        if self.prepare is not None:
            self.prepare()
        ray = self._init()
        from ray.data import ActorPoolStrategy

        # The read task asks for another CPU share than an actor: Ray Data would otherwise fuse it into the
        # actor pool, and a single actor would then read and judge everything. A small share, so that it
        # fits beside an actor on a node (a 1-CPU node with a 0.75-CPU actor has 0.25 left).
        read_cpus = READ_CPUS if self.cpus_per_actor != READ_CPUS else READ_CPUS / 2
        dataset = ray.data.read_datasource(_RowsDatasource(source, columns, skip, chunk_size),
                                           override_num_blocks=1, num_cpus=read_cpus)
        # One read task streams the whole input; its output is cut into blocks of one chunk each,
        # so the actors share the chunks, and the results come back in input order.
        dataset = _asking_cpus(dataset.repartition(target_num_rows_per_block=chunk_size), read_cpus)
        judged = dataset.map_batches(
            _JudgeActor,
            fn_constructor_args=(self.judge_factory, columns),
            compute=ActorPoolStrategy(size=self.actors),
            batch_size=chunk_size,
            batch_format="pyarrow",
            num_cpus=self.cpus_per_actor,
            num_gpus=self.gpus_per_actor or None,
            zero_copy_batch=True,
        )
        context = judged.context  # this job's own copy: the caller's Ray Data settings stay as they are
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.target_max_block_size = READ_BLOCK_BYTES
        pending: list[tuple[Item, Result]] = []
        for batch in judged.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
            pending.extend(zip(decode_items(batch, columns), decode_results(batch), strict=True))
            while len(pending) >= chunk_size:  # the same chunk boundaries as the local engine
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        if pending:
            yield pending


def _asking_cpus(dataset: Any, cpus: float) -> Any:
    """``dataset`` whose last step (the repartition) asks for ``cpus`` CPUs, not the whole CPU Ray Data gives it.

    On a cluster whose CPUs the actors hold (one 0.75-CPU actor on each 1-CPU node, say) a task asking for a
    whole CPU is never scheduled and the job waits forever. Ray Data's ``repartition`` takes no resource
    arguments, so they are set on its plan step; a Ray without that step leaves Ray Data's default.
    """
    step = getattr(getattr(dataset, "_logical_plan", None), "dag", None)
    remote_args = getattr(step, "ray_remote_args", None)
    if isinstance(remote_args, dict):
        remote_args.setdefault("num_cpus", cpus)
    return dataset


def encode_rows(rows: Sequence[tuple[int, Any]], columns: Columns) -> Any:
    """A block of input rows: ``number``, ``row`` (its JSON text), ``unread`` (a :class:`RowError`'s reason)."""
    import pyarrow as pa

    texts: list[bytes | None] = []
    unread: list[bytes | None] = []
    for number, row in rows:
        if isinstance(row, RowError):
            rejection = prepare_item(number, row, columns)
            texts.append(None)
            unread.append(dumps_row({"reason": rejection.rejection.reason,  # type: ignore[union-attr]
                                     "kind": rejection.rejection.kind.value,  # type: ignore[union-attr]
                                     "raw": rejection.raw}))
        else:
            texts.append(dumps_row(row))  # lone surrogates are written as escapes: the text reads back the same
            unread.append(None)
    return pa.table({
        "number": pa.array([number for number, _ in rows], type=pa.int64()),
        "row": pa.array(texts, type=pa.large_binary()),
        "unread": pa.array(unread, type=pa.large_binary()),
    })


def decode_items(batch: Any, columns: Columns) -> list[Item]:
    """The items of a block made by :func:`encode_rows` (rows shaped again, as the read task saw them)."""
    items = []
    for number, text, unread in zip(batch.column("number").to_pylist(), batch.column("row").to_pylist(),
                                    batch.column("unread").to_pylist(), strict=True):
        if text is not None:
            items.append(prepare_item(number, json.loads(text), columns))
        else:
            data = json.loads(unread)
            items.append(Item(number, None, Rejection(data["reason"], Reason(data["kind"]), "input"), data["raw"]))
    return items


RESULT_TYPES = {"label": "string", "p_chosen": "float64", "consistent": "bool_", "score_chosen": "float64",
                "score_rejected": "float64", "error": "large_string", "error_kind": "string"}


def encode_results(results: Sequence[Result]) -> dict[str, Any]:
    """The judge's results as plain columns (``None`` where they do not apply)."""
    import pyarrow as pa

    values: dict[str, list[Any]] = {name: [] for name in RESULT_TYPES}
    for result in results:
        row = dict.fromkeys(RESULT_TYPES)
        if isinstance(result, Verdict):
            row.update(label=result.label, p_chosen=result.p_chosen, consistent=result.consistent,
                       score_chosen=result.score_chosen, score_rejected=result.score_rejected)
        elif isinstance(result, Rejection):
            row.update(error=result.reason, error_kind=result.kind.value)
        for name, value in row.items():
            values[name].append(value)
    return {name: pa.array(column, type=getattr(pa, RESULT_TYPES[name])()) for name, column in values.items()}


def decode_results(batch: Any) -> list[Result]:
    names = list(RESULT_TYPES)
    results: list[Result] = []
    for label, p_chosen, consistent, score_chosen, score_rejected, error, kind in zip(
            *(batch.column(name).to_pylist() for name in names), strict=True):
        if error is not None:
            results.append(Rejection(error, Reason(kind), "judge"))
        elif label is not None:
            results.append(Verdict(label, p_chosen, consistent, score_chosen, score_rejected))
        else:
            results.append(None)
    return results


class _RowsDatasource:
    """One read task that streams the input's rows, as plain columns, in blocks of ``chunk_size``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Subclass Ray's Datasource lazily, so that importing this module does not import Ray.
        from ray.data import Datasource, ReadTask
        from ray.data.block import BlockMetadata

        class RowsDatasource(Datasource):
            def __init__(self, source: InputSource, columns: Columns, skip: int, chunk_size: int) -> None:
                self.source, self.columns, self.skip, self.chunk_size = source, columns, skip, chunk_size

            def estimate_inmemory_data_size(self) -> int | None:
                return None

            def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                               data_context: Any = None) -> list[Any]:
                source, columns, skip, size = self.source, self.columns, self.skip, self.chunk_size

                def read() -> Iterator[Any]:
                    for rows in chunked(source.rows(skip=skip), size):
                        yield encode_rows(rows, columns)

                metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None)
                return [ReadTask(read, metadata)]

            def get_name(self) -> str:
                return "CriticRows"

        return RowsDatasource(*args, **kwargs)


class _JudgeActor:
    """A Ray actor holding one judge; judges a block of rows and adds the result columns."""

    def __init__(self, judge_factory: JudgeFactory, columns: Columns) -> None:
        self.judge = judge_factory()
        self.columns = columns

    def __call__(self, batch: Any) -> Any:
        results = judge_items(self.judge, decode_items(batch, self.columns))
        for name, column in encode_results(results).items():
            batch = batch.append_column(name, column)
        return batch

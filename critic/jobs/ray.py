"""``--engine ray``: the same cleaning job, with the judging spread over Ray Data actors.

One read task streams the input through the same reader and row-shape code as
the local engine, in chunks; an actor pool (each actor builds one judge with
``judge_factory``: one per GPU on a cluster) judges the chunks; the driver gets
the chunks back in input order and does everything else exactly as the local
engine does (policy, outputs, checkpoints, counts). So the kept, dropped and
rejected rows are the same, and a job started with one engine can be resumed
with the other.

Ray is imported only when this engine runs (``pip install 'critic[ray]'``).
On a cluster, call ``ray.init(address=...)`` yourself first (or pass
``address``); otherwise a local Ray instance is started.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from critic.errors import InputError, MissingDependencyError
from critic.io.rows import Columns
from critic.io.source import InputSource
from critic.jobs.items import Item, chunked, iter_items, judge_items
from critic.jobs.policy import Verdict

logger = logging.getLogger("critic")

JudgeFactory = Callable[[], Any]
READ_BLOCK_BYTES = 8 << 20  # the read task hands its rows on in blocks of about this size


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
        describe: dict[str, Any] | None = None,
    ) -> None:
        if actors < 1:
            raise InputError("the Ray engine needs at least one actor")
        self.judge_factory = judge_factory
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = gpus_per_actor
        self.address = address
        self._describe = describe

    def describe(self) -> dict[str, Any]:
        if self._describe is None:
            self._describe = dict(self.judge_factory().describe())
        return dict(self._describe)

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
    ) -> Iterator[list[tuple[Item, Verdict | str | None]]]:
        ray = self._init()
        from ray.data import ActorPoolStrategy

        # The read task asks for less CPU than an actor: Ray Data would otherwise fuse it into the
        # actor pool, and a single actor would then read and judge everything.
        read_cpus = 0.5 if self.cpus_per_actor != 0.5 else 0.25
        dataset = ray.data.read_datasource(_ItemsDatasource(source, columns, skip, chunk_size),
                                           override_num_blocks=1, num_cpus=read_cpus)
        # One read task streams the whole input; its output is cut into blocks of one chunk each,
        # so the actors share the chunks, and the results come back in input order.
        dataset = dataset.repartition(target_num_rows_per_block=chunk_size)
        judged = dataset.map_batches(
            _JudgeActor,
            fn_constructor_args=(self.judge_factory,),
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
        pending: list[tuple[Item, Verdict | str | None]] = []
        for batch in judged.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
            for item, result in zip(batch.column("item").to_pylist(), batch.column("result").to_pylist(), strict=True):
                pending.append((pickle.loads(item), pickle.loads(result)))
            while len(pending) >= chunk_size:  # the same chunk boundaries as the local engine
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        if pending:
            yield pending


def _block(items: list[Item]) -> Any:
    import pyarrow as pa

    return pa.table({
        "number": pa.array([item.number for item in items], type=pa.int64()),
        "item": pa.array([pickle.dumps(item) for item in items], type=pa.large_binary()),
    })


class _ItemsDatasource:
    """One read task that streams the input's items (rows checked and shaped) in blocks of ``chunk_size``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Subclass Ray's Datasource lazily, so that importing this module does not import Ray.
        from ray.data import Datasource, ReadTask
        from ray.data.block import BlockMetadata

        class ItemsDatasource(Datasource):
            def __init__(self, source: InputSource, columns: Columns, skip: int, chunk_size: int) -> None:
                self.source, self.columns, self.skip, self.chunk_size = source, columns, skip, chunk_size

            def estimate_inmemory_data_size(self) -> int | None:
                return None

            def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                               data_context: Any = None) -> list[Any]:
                source, columns, skip, size = self.source, self.columns, self.skip, self.chunk_size

                def read() -> Iterator[Any]:
                    for chunk in chunked(iter_items(source.rows(skip=skip), columns), size):
                        yield _block(chunk)

                metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None)
                return [ReadTask(read, metadata)]

            def get_name(self) -> str:
                return "CriticRows"

        return ItemsDatasource(*args, **kwargs)


class _JudgeActor:
    """A Ray actor holding one judge; judges a block of items and adds their results."""

    def __init__(self, judge_factory: JudgeFactory) -> None:
        self.judge = judge_factory()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        items = [pickle.loads(data) for data in batch.column("item").to_pylist()]
        results = judge_items(self.judge, items)
        return batch.append_column("result", pa.array([pickle.dumps(result) for result in results],
                                                       type=pa.large_binary()))

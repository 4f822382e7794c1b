"""Building the judges a command asked for, from its option objects, with one line saying so.

A judge is built as ``Judge.from_pretrained(model, **options)`` (``RewardJudge`` for
reward models), or ``FUNCTION(model, **options)`` with ``--judge-factory``. The options
are, for a generative judge: ``template``, ``mode``, ``swap``, ``max_new_tokens``
(the generative settings), ``load`` (a :class:`~critic.options.LoadOptions`) and
``limits`` (a :class:`~critic.options.BatchLimits`); for a reward judge: ``load`` and
``limits``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from typing import Any, Literal

from critic.cli.common import say
from critic.cli.options import CommandOptions
from critic.errors import InputError
from critic.options import BatchLimits, LoadOptions

JudgeKind = Literal["generative", "reward"]


def judge_options(options: CommandOptions, kind: JudgeKind) -> dict[str, Any]:
    """The keyword arguments of ``from_pretrained`` (and of a ``--judge-factory``) for this kind of judge."""
    if kind == "reward":
        return {"load": options.load, "limits": reward_limits(options.limits)}
    settings = options.settings.kwargs() if options.settings is not None else {}
    return {**settings, "load": options.load, "limits": options.limits}


def reward_limits(limits: BatchLimits) -> BatchLimits:
    """A reward model never truncates: a conversation over --max-length fails its row."""
    return dataclasses.replace(limits, overflow="error")


def build_judge(factory: str | None, model: str, options: dict[str, Any], *, kind: JudgeKind = "generative") -> Any:
    """``Judge.from_pretrained(model, **options)`` (``RewardJudge`` for ``kind="reward"``), or
    ``FUNCTION(model, **options)`` for ``--judge-factory MODULE:FUNCTION``."""
    if factory is not None:
        return _from_factory(factory, model, options)
    from critic.judges import Judge, RewardJudge

    loader = RewardJudge.from_pretrained if kind == "reward" else Judge.from_pretrained
    return loader(model, **options)


def judge_factory(factory: str | None, model: str, options: CommandOptions, kind: JudgeKind, *, quiet: bool,
                  where: str = "") -> Callable[[], Any]:
    """Say which model loads, and return a picklable zero-argument callable that builds its judge (Ray actors
    call it too)."""
    if factory is not None:
        _factory_function(factory)  # a bad MODULE:FUNCTION is an error now, not on every actor
    announce(model, kind, factory=factory, quiet=quiet, where=where, load=options.load)
    return functools.partial(build_judge, factory, model, judge_options(options, kind), kind=kind)


def load_judge(factory: str | None, model: str, options: CommandOptions, kind: JudgeKind, *, quiet: bool) -> Any:
    """Say which model loads, then build its judge."""
    return judge_factory(factory, model, options, kind, quiet=quiet)()


def command_judge_factory(args: Any, options: CommandOptions, kind: JudgeKind) -> Callable[[], Any]:
    """The judge a command's flags ask for, as a picklable factory: the `critic serve` server at --judge-url
    (asked now), or --model built here (by --judge-factory where the command has that flag), once per Ray actor
    with --engine ray."""
    if args.judge_url:
        return remote_judge_factory(args, quiet=args.quiet)
    where = f" on {args.ray_actors} Ray actors" if getattr(args, "engine", "local") == "ray" else ""
    return judge_factory(getattr(args, "judge_factory", None), args.model, options, kind, quiet=args.quiet,
                         where=where)


@dataclasses.dataclass(frozen=True)
class FileCommand:
    """What ``judge`` and ``score`` start from: options, the input, its row count (or None) and the judge."""

    options: CommandOptions
    source: Any
    total: int | None
    judge: Any
    rows: Any = ()  # the input's rows, the first one read before the judge loaded


def start_file_command(args: Any, kind: JudgeKind) -> FileCommand:
    """Check everything the user typed (options, input and its first row, output), then load the judge."""
    from critic.cli.common import check_output_file, open_input, rows_to_do
    from critic.cli.options import build_options

    options = build_options(args)
    source = open_input(args)
    check_output_file(args.output, force=args.force, inputs=[source.location])
    rows, total = rows_to_do(source, verb="score" if kind == "reward" else "judge")
    judge = load_judge(None, args.model, options, kind, quiet=args.quiet)
    return FileCommand(options, source, total, judge, rows)


def remote_judge_factory(args: Any, *, quiet: bool) -> Callable[[], Any]:
    """For --judge-url: a picklable factory of the RemoteJudge, its server asked now (so a wrong URL fails first)."""
    from critic.cli.options import unused_with_remote
    from critic.client import RemoteJudge

    unused = unused_with_remote(args)
    if unused:
        say(f"--judge-url {args.judge_url}: the judge there was set up at its start-up, so {', '.join(unused)} "
            "are not used", quiet=False)
    judge = RemoteJudge(args.judge_url)
    say(f"judging with {judge.describe().summary()} at {args.judge_url}", quiet=quiet)
    judge.close()
    return functools.partial(RemoteJudge, args.judge_url)


def announce(model: str, kind: JudgeKind, *, factory: str | None = None, quiet: bool, where: str = "",
             load: LoadOptions | None = None) -> None:
    """``critic: loading demo (generative, transformers backend) ...`` on stderr."""
    via = f", with --judge-factory {factory}" if factory else ""
    on = ""
    if factory is None:  # a model folder or file that is not there: said now, not after "loading ..."
        from critic.backends.loading import MODEL_ALTERNATIVES, resolve_model
        from critic.backends.reward import REWARD_ALTERNATIVES

        resolve_model(model, alternatives=REWARD_ALTERNATIVES if kind == "reward" else MODEL_ALTERNATIVES)
    if load is not None and factory is None:
        from critic.backends.registry import choose_backend

        on = f", {choose_backend(load).name} backend"
    say(f"loading {model} ({kind}{on}{via}){where} ...", quiet=quiet)


def _factory_function(factory: str) -> Callable[..., Any]:
    module_name, _, function_name = factory.partition(":")
    if not module_name or not function_name:
        raise InputError(f"--judge-factory must look like MODULE:FUNCTION, got '{factory}'")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise InputError(f"cannot load --judge-factory '{factory}': {error}") from None
    if not callable(function):
        raise InputError(f"--judge-factory '{factory}' is not a function")
    return function  # type: ignore[no-any-return]


def _from_factory(factory: str, model: str, options: dict[str, Any]) -> Any:
    function = _factory_function(factory)
    try:
        judge = function(model, **options)
    except TypeError as error:
        raise InputError(f"--judge-factory '{factory}' cannot be called as FUNCTION(model, **options): "
                         f"{error}") from None
    if not callable(getattr(judge, "compare_each", None)) or not callable(getattr(judge, "describe", None)):
        raise InputError(f"--judge-factory '{factory}' returned {type(judge).__name__}, which has no "
                         "compare_each(pairs) and describe()")
    return judge

"""The flags every command shares, declared once, and the option objects built from them once.

A command declares the groups it takes (``add_judge_flags``, ``add_load_flags``,
``add_batch_flags``, ``add_input_flags``); :func:`build_options` turns the parsed
arguments into :class:`CommandOptions` (``LoadOptions``, ``BatchLimits``, the
generative settings, ``Columns``), checking every value before any model loads.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.backends.loading import DEFAULT_MODEL, DEMO_ALIAS
from critic.cli.output import DEFAULT_PROGRESS_SECONDS
from critic.errors import InputError
from critic.io.labels import LABEL_SIGNS
from critic.io.shapes import Columns
from critic.options import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_SERVER_CONCURRENCY,
    DEFAULT_SERVER_TIMEOUT_S,
    DTYPES,
    OVERFLOW_POLICIES,
    BatchLimits,
    LoadOptions,
    ServerOptions,
)
from critic.templates import DEFAULT_TEMPLATE
from critic.types import MODES, Mode, Pair

FORMATS = ("jsonl", "json", "parquet", "csv", "hf", "hub")
PAIR_FIELDS = ("prompt", "chosen", "rejected", "response_a", "response_b", "label", "reference", "history")
JUDGE_FIELDS = ("prompt", "chosen", "rejected", "response_a", "response_b", "reference", "history")
SCORE_FIELDS = ("messages", "prompt", "response", "history")
_FIELD_HELP = {
    "prompt": "the question", "chosen": "the preferred answer", "rejected": "the other answer",
    "response_a": "the first answer", "response_b": "the second answer", "label": "the gold label (A/B/tie)",
    "reference": "a reference answer (reference-guided templates)", "history": "earlier turns (a message list)",
    "messages": "a whole conversation ending in the answer", "response": "the answer to score",
}


@dataclass(frozen=True)
class GenerativeSettings:
    """How a generative judge reads its model: ``Judge.from_pretrained``'s own keyword arguments."""

    template: str = DEFAULT_TEMPLATE
    mode: Mode = "score"
    swap: bool = True
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CommandOptions:
    """Everything a command passes down, built once from its flags (a group it lacks is ``None``)."""

    load: LoadOptions = LoadOptions()
    limits: BatchLimits = BatchLimits()
    settings: GenerativeSettings | None = None
    columns: Columns = Columns()


def _whole_number(minimum: int, wording: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {value}")
        return value

    return parse


at_least_one = _whole_number(1, "at least 1")
zero_or_more = _whole_number(0, "0 or more")


def non_negative_seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def add_file_flags(parser: Any, inputs: str) -> None:
    """INPUT, -o FILE, --force and --quiet, as judge and score take them."""
    parser.add_argument("input", type=Path, help=f"{inputs}; '-' reads JSONL from stdin")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="output file: JSON lines, or Parquet when FILE ends in .parquet; written to a "
                             "temporary file and renamed into place at the end, so an earlier FILE is replaced "
                             "only by a finished run (default: JSON lines on stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    add_quiet_flags(parser)


def add_quiet_flags(parser: Any) -> None:
    """--quiet and --progress-every, as every command that judges rows takes them."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress, no loading line and no summary on stderr (errors are still said)")
    parser.add_argument("--progress-every", type=non_negative_seconds, default=DEFAULT_PROGRESS_SECONDS,
                        metavar="SECONDS", help="when stderr is not a terminal (a log file), a progress line "
                                                f"every SECONDS (default: {DEFAULT_PROGRESS_SECONDS:g})")


def add_model_flag(parser: Any, *, default: str = DEFAULT_MODEL, help: str | None = None) -> None:
    parser.add_argument("--model", default=default,
                        help=help or f"hub id, local folder, .gguf file, or '{DEMO_ALIAS}' (default: {default})")


def add_judge_flags(parser: argparse.ArgumentParser, *, model_default: str = DEFAULT_MODEL,
                    model_help: str | None = None) -> None:
    """--model, --template, --mode, --no-swap, --max-new-tokens."""
    group = parser.add_argument_group("judge")
    add_model_flag(group, default=model_default, help=model_help)
    group.add_argument("--template", default=DEFAULT_TEMPLATE,
                       help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE}; see 'critic templates')")
    group.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    group.add_argument("--no-swap", action="store_true", help="judge one order only (no position-swap debiasing)")
    group.add_argument("--max-new-tokens", type=at_least_one, default=DEFAULT_MAX_NEW_TOKENS, metavar="N",
                       help=f"generation budget in generate mode (default: {DEFAULT_MAX_NEW_TOKENS})")


JUDGE_KINDS = ("generative", "reward")


def add_judge_kind_flags(parser: argparse.ArgumentParser, *, flag: str = "--judge",
                         reward: str = "a scalar reward model (RewardJudge) scores each answer on its own",
                         into: Any = None) -> None:
    """The judge flags of a command that judges with a generative or a reward model: :func:`add_judge_flags`
    (--model's help naming the reward model's default too), then FLAG generative|reward and --judge-factory,
    in ``into`` (a group; default: the parser's own options). ``reward`` says what the reward model does there."""
    from critic.backends.reward import DEFAULT_REWARD_MODEL

    add_judge_flags(parser, model_help=f"the judge model: hub id, local folder, .gguf file, or '{DEMO_ALIAS}' "
                                       f"(default: {DEFAULT_MODEL}; with {flag} reward, the reward model, default "
                                       f"{DEFAULT_REWARD_MODEL})")
    into = parser if into is None else into
    into.add_argument(flag, choices=JUDGE_KINDS, default="generative",
                      help=f"generative (default): a critic model judges both orders; reward: {reward} (the "
                           "--template, --mode, --no-swap and --max-new-tokens flags do not apply)")
    into.add_argument("--judge-factory", metavar="MODULE:FUNCTION",
                      help="advanced: build the judge with FUNCTION(model, **options) instead of "
                           f"Judge.from_pretrained (RewardJudge.from_pretrained with {flag} reward). options are "
                           "template, mode, swap, max_new_tokens (generative only), load (a critic.options."
                           "LoadOptions) and limits (a critic.options.BatchLimits); it must return an object with "
                           "compare_each(pairs) and describe() (a critic.PairwiseJudge)")


def use_reward_model(args: argparse.Namespace, *, flag: str = "--judge") -> None:
    """With FLAG reward: the generative judge's default --model means the reward model's default (unless the
    judge is served at --judge-url, which loads no model here); --overflow truncate is refused."""
    from critic.backends.reward import DEFAULT_REWARD_MODEL

    if args.model == DEFAULT_MODEL and not getattr(args, "judge_url", None):
        args.model = DEFAULT_REWARD_MODEL
    if args.overflow != "error":
        raise InputError("--overflow truncate shortens a generative judge's prompt; a reward model never cuts what "
                         "it scores (a conversation over --max-length fails its row). Drop --overflow with "
                         f"{flag} reward")


# The flags of a served model (--backend server), each with the ServerOptions field it fills.
SERVER_FLAGS = {"base_url": "--base-url", "api_key_env": "--api-key-env", "served_model": "--served-model",
                "max_concurrency": "--max-concurrency", "timeout": "--timeout", "tokenizer": "--tokenizer"}


def add_load_flags(parser: argparse.ArgumentParser) -> None:
    """--backend, --device, --dtype, --trust-remote-code, and where a served model is (--base-url and its flags)."""
    from critic.backends.registry import backend_choices

    group = parser.add_argument_group("loading")
    group.add_argument("--backend", choices=backend_choices(), default="auto",
                       help="what runs the model (default: auto, vllm when installed and on CUDA, else transformers; "
                            "server: a model served elsewhere, at --base-url)")
    group.add_argument("--device", help="cpu, cuda, cuda:N, mps or xpu (default: cuda when available, else cpu)")
    group.add_argument("--dtype", help=f"{', '.join(DTYPES)} (default: bf16 on CUDA, fp32 on CPU)")
    group.add_argument("--trust-remote-code", action="store_true",
                       help="run the model repository's own code (only for models you trust)")
    group.add_argument("--base-url", metavar="URL",
                       help="with --backend server: the server's root, e.g. http://127.0.0.1:8000; --model then "
                            "names the judge whose tokenizer critic reads here (or give --tokenizer)")
    group.add_argument("--api-key-env", metavar="NAME",
                       help="with --base-url: the environment variable holding the server's API key (the key is "
                            "read when the backend starts and never written anywhere)")
    group.add_argument("--served-model", metavar="NAME",
                       help="with --base-url: the model's name on the server (default: the one it lists)")
    group.add_argument("--max-concurrency", type=at_least_one, metavar="N",
                       help=f"with --base-url: requests in flight at most (default: {DEFAULT_SERVER_CONCURRENCY})")
    group.add_argument("--timeout", type=float, metavar="S",
                       help=f"with --base-url: seconds one request may take (default: {DEFAULT_SERVER_TIMEOUT_S:g})")
    group.add_argument("--tokenizer", metavar="NAME_OR_PATH",
                       help="with --base-url: the tokenizer to build prompts with (default: --model's)")


def add_batch_flags(parser: argparse.ArgumentParser, *, overflow: bool = True) -> None:
    """--batch-size, --max-batch-tokens, --max-length (and --overflow for generative judges)."""
    group = parser.add_argument_group("batching")
    group.add_argument("--batch-size", type=at_least_one, default=DEFAULT_MAX_BATCH_SIZE, metavar="N",
                       help=f"prompts per forward pass at most (default: {DEFAULT_MAX_BATCH_SIZE})")
    group.add_argument("--max-batch-tokens", type=at_least_one, default=DEFAULT_MAX_BATCH_TOKENS, metavar="N",
                       help=f"padded tokens per forward pass at most (default: {DEFAULT_MAX_BATCH_TOKENS})")
    group.add_argument("--max-length", type=at_least_one, metavar="N",
                       help="longest prompt in tokens (default: the model's context length)")
    if overflow:
        group.add_argument("--overflow", choices=OVERFLOW_POLICIES, default="error",
                           help="a generative judge's prompt over --max-length: fail that pair with a reason "
                                "(default), or shorten both responses in the middle behind a visible marker")


def add_input_flags(parser: argparse.ArgumentParser, *, fields: Sequence[str] = PAIR_FIELDS,
                    limit_help: str = "read the first N input rows only") -> None:
    """--format, --split, --limit and one --X-field flag per column in ``fields``."""
    group = parser.add_argument_group("input")
    group.add_argument("--format", choices=FORMATS, help="input format (default: from the file name)")
    group.add_argument("--split", help="split of a saved or hub DatasetDict")
    group.add_argument("--limit", type=at_least_one, metavar="N", help=limit_help)
    defaults = {field.name: field.default for field in dataclasses.fields(Columns)}
    for name in fields:
        default = defaults.get(name, name)
        group.add_argument(f"--{name.replace('_', '-')}-field", default=default, metavar="NAME",
                           help=f"column holding {_FIELD_HELP[name]} (default: {default})")
    if "label" in fields:
        group.add_argument("--label-sign", choices=LABEL_SIGNS,
                           help="read numeric labels as signed strengths (-3..3): negative-is-a (a negative number "
                                "means the first answer is better, 0 a tie) or negative-is-b (default: only 1/2/0 "
                                "are labels, except HelpSteer2's preference_strength, read negative-is-a)")


def add_engine_flags(parser: argparse.ArgumentParser, *, ray: str) -> None:
    """--engine local|ray and the Ray pool's flags; ``ray`` says how this command shares the work among the actors."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help=f"local: judge in this process; ray: {ray} (default: local)")
    group.add_argument("--ray-address", help="Ray cluster to join (default: start a local one)")
    group.add_argument("--ray-actors", type=at_least_one, default=2, help="judges (actors) in the pool (default: 2)")
    group.add_argument("--ray-cpus-per-actor", type=float, default=1.0)
    group.add_argument("--ray-gpus-per-actor", type=float, default=0.0, help="1 on a GPU cluster")


def add_remote_flag(parser: argparse.ArgumentParser) -> None:
    """--judge-url: a judge served by `critic serve` instead of a model loaded here."""
    parser.add_argument("--judge-url", metavar="URL",
                        help="judge with the `critic serve` server at URL instead of loading a model here (the "
                             "model, loading and batching flags are then not used; the API key is read from "
                             "CRITIC_API_KEY)")
    parser.set_defaults(command_parser=parser)


# The flags a judge served elsewhere does not read: its model, template and loading were chosen at its start-up.
REMOTE_UNUSED = ("model", "template", "mode", "no_swap", "max_new_tokens", "backend", "device", "dtype",
                 "trust_remote_code", *SERVER_FLAGS, "batch_size", "max_batch_tokens", "max_length", "overflow",
                 "judge_factory")


def unused_with_remote(args: argparse.Namespace) -> list[str]:
    """The flags given (set to other than their default) that --judge-url leaves unused, as typed."""
    parser = getattr(args, "command_parser", None)
    given = vars(args)
    if parser is None:
        return []
    return [f"--{name.replace('_', '-')}" for name in REMOTE_UNUSED
            if name in given and given[name] != parser.get_default(name)]


SAMPLE_PAIR = Pair("What is 2+2?", "4", "5", reference="4")


def build_options(args: argparse.Namespace) -> CommandOptions:
    """The option objects of the groups this command declared, each checked (device, sizes, template)."""
    given = vars(args)
    load = LoadOptions()
    if "device" in given:
        # LoadOptions checks the backend's name, the device, and --base-url against --backend when built.
        load = LoadOptions(device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                           backend=args.backend, server=server_options(given))
        from critic.backends.registry import choose_backend

        choose_backend(load)  # --backend vllm without vLLM installed: the install hint now, not after loading
        if load.server is not None:
            load.server.read_api_key()  # an unset --api-key-env variable is said now (the key is not kept)
    limits = BatchLimits()
    if "batch_size" in given:
        limits = BatchLimits(max_batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens,
                             max_length=args.max_length, overflow=given.get("overflow", "error"))
    settings = None
    if "template" in given and "no_swap" in given:
        from critic.templates import load_template

        # A bad template is one sentence now, not after the model has loaded: parse it, and render it once
        # on a small pair (a loop or an expression too big to render fails every pair alike).
        load_template(args.template).render(SAMPLE_PAIR)
        settings = GenerativeSettings(template=args.template, mode=args.mode, swap=not args.no_swap,
                                      max_new_tokens=args.max_new_tokens)
    return CommandOptions(load=load, limits=limits, settings=settings, columns=_columns(given))


def server_options(given: dict[str, Any]) -> ServerOptions | None:
    """The :class:`ServerOptions` of --base-url and its flags (``None`` without --base-url); a flag of a served
    model given without --base-url is an error, not ignored."""
    values = {field: given[field] for field in SERVER_FLAGS if given.get(field) is not None}
    if "base_url" not in values:
        if values:
            flags = ", ".join(SERVER_FLAGS[field] for field in values)
            several = len(values) > 1
            raise InputError(f"{flags} only {'apply' if several else 'applies'} to a served model: give --base-url "
                             f"URL (with --backend server), or leave {'them' if several else 'it'} out")
        return None
    return ServerOptions(**values)


def _columns(given: dict[str, Any]) -> Columns:
    """The --X-field flags this command declared; the columns it has no flag for keep their defaults."""
    names = [field.name for field in dataclasses.fields(Columns) if field.name != "label_sign"]
    return Columns(**{name: given[f"{name}_field"] for name in names if f"{name}_field" in given},
                   label_sign=given.get("label_sign"))


def policy_from_args(args: argparse.Namespace) -> Any:
    """The filter :class:`~critic.jobs.policy.Policy` from --min-p, --min-margin, --relabel."""
    from critic.jobs.policy import Policy

    return Policy(min_p=args.min_p, relabel=args.relabel, min_margin=args.min_margin)

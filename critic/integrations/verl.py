"""verl's reward loop: critic as the custom reward function of a generative reward model.

verl (verl-project/verl, ``verl/experimental/reward_loop/``) serves the reward model
as vLLM or SGLang servers behind its router and calls, for every rollout, the
custom reward function named in ``reward.custom_reward_function`` as

    await compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...,
                        reward_router_address="host:port", reward_model_tokenizer=<the RM's tokenizer>,
                        **reward.custom_reward_function.reward_kwargs)

(``NaiveRewardManager.run_single``). :func:`compute_score` is that function: it
judges the rollout (``solution_str``) against the reference (``ground_truth``, or
the ``extra_info`` field named by ``critic_reference_field``) for the question in
``extra_info[critic_prompt_field]``, in both orders, through the router, with
critic's template and critic's token ids (the server backend,
:class:`critic.backends.server.ServerBackend`, built from the reward model's
tokenizer verl hands over). It returns verl's dict: ``score`` is the probability
that the rollout beats the reference, debiased over both orders, in [0, 1].

verl builds one array per key from the first rollout's dict, so every rollout
gets the same keys: ``score``, ``critic_p_a`` (= score), ``critic_label`` (``A``:
the rollout won in both orders, ``B``: the reference did, ``tie``, or ``failed``),
``critic_consistent`` (1.0 when both orders agreed), ``critic_failed`` (1.0 when
the rollout could not be judged; its score is then ``critic_failed_score``,
default 0, as ``critic serve``'s ``/get_reward`` does, since verl has no slot for
a missing reward) and ``critic_error`` (the reason, else ``""``).

:func:`compute_score_batch` is the same for verl's ``batch`` reward manager
(``verl/workers/reward_manager/batch.py``), which calls its function
synchronously with lists (``data_sources``, ``solution_strs``, ``ground_truths``,
``extra_infos``) and no router: the server's address comes from
``critic_base_url``.

Settings are ``reward_kwargs`` prefixed ``critic_`` (see :class:`VerlSettings`); an
unknown one is an :class:`~critic.errors.InputError`. docs/notes/verl.md has the
config lines.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from critic.backends.encoder import PromptEncoder
from critic.backends.server import ServerBackend, http_client
from critic.errors import CriticError, InputError, Reason
from critic.integrations.trl import completion_text
from critic.judges.each import judged_in_place, read_each
from critic.judges.generative import Judge
from critic.options import DEFAULT_SERVER_CONCURRENCY, DEFAULT_SERVER_RETRIES, DEFAULT_SERVER_TIMEOUT_S, ServerOptions
from critic.types import Mode, Pair, Preference

logger = logging.getLogger("critic")

__all__ = ["VerlSettings", "compute_score", "compute_score_batch"]

PREFIX = "critic_"


@dataclass(frozen=True)
class VerlSettings:
    """critic's settings in verl's ``reward_kwargs`` (each key written with the ``critic_`` prefix).

    Args:
        template: the judge template (a built-in name or a ``.jinja`` path).
        mode: ``score`` (default), ``constrained`` or ``generate``.
        max_new_tokens: the generation budget in ``generate`` mode.
        prompt_field: the ``extra_info`` field holding the question (verl's gsm8k data: ``question``).
        reference_field: the ``extra_info`` field holding the reference answer; ``None``: ``ground_truth``.
        failed_score: the score of a rollout that could not be judged (flagged in ``critic_failed``).
        tokenizer: the judge's tokenizer (hub id, folder); ``None``: the ``reward_model_tokenizer`` verl passes.
        base_url: the server (``http://host:port``) when verl passes no router (the batch manager).
        served_model: as :class:`critic.ServerOptions`.
        dialect: as :class:`critic.ServerOptions`.
        max_concurrency: as :class:`critic.ServerOptions`.
        timeout: as :class:`critic.ServerOptions`.
        retries: as :class:`critic.ServerOptions`.
    """

    template: str = "skywork-critic"
    mode: Mode = "score"
    max_new_tokens: int = 2048
    prompt_field: str = "question"
    reference_field: str | None = None
    failed_score: float = 0.0
    tokenizer: str | None = None
    base_url: str | None = None
    served_model: str | None = None
    dialect: str = "auto"
    max_concurrency: int = DEFAULT_SERVER_CONCURRENCY
    timeout: float = DEFAULT_SERVER_TIMEOUT_S
    retries: int = DEFAULT_SERVER_RETRIES

    def __post_init__(self) -> None:
        if not isinstance(self.failed_score, (int, float)) or not math.isfinite(self.failed_score):
            raise InputError(f"critic_failed_score must be a finite number, got {self.failed_score!r}")
        if not isinstance(self.prompt_field, str) or not self.prompt_field:
            raise InputError(f"critic_prompt_field must name an extra_info field, got {self.prompt_field!r}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> VerlSettings:
        """The settings in verl's ``reward_kwargs``; anything else is an :class:`InputError` naming the choices."""
        known = {f"{PREFIX}{field.name}": field.name for field in fields(cls)}
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise InputError(f"unknown reward_kwargs {', '.join(unknown)} for critic.integrations.verl; "
                             f"use {', '.join(sorted(known))}")
        return cls(**{known[key]: value for key, value in kwargs.items()})

    def server(self, address: str) -> ServerOptions:
        url = address if address.startswith(("http://", "https://")) else f"http://{address}"
        return ServerOptions(url, served_model=self.served_model, tokenizer=self.tokenizer, dialect=self.dialect,
                             max_concurrency=self.max_concurrency, timeout=self.timeout, retries=self.retries)


async def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    reward_router_address: str | None = None,
    reward_model_tokenizer: Any = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """verl's custom reward function: the rollout judged against the reference through verl's router.

    See the module doc for what it reads and returns. Settings that are wrong for
    every rollout (an unknown ``critic_`` key, no router and no ``critic_base_url``)
    raise; a rollout that cannot be judged gets ``critic_failed`` = 1 and its reason.
    """
    settings = VerlSettings.from_kwargs(reward_kwargs)
    judge = _judge(settings, _address(settings, reward_router_address), reward_model_tokenizer)
    item = read_each([(solution_str, ground_truth, extra_info)], lambda row: _pair(settings, *row))
    if isinstance(item[0], CriticError):
        return _result(item[0], settings)
    results = await judge.acompare_each([item[0]])
    return _result(results[0], settings)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None],
    **reward_kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`compute_score` for verl's ``batch`` reward manager: every rollout of a batch in one judge call.

    Needs ``critic_base_url`` (the manager passes no router) and, unless the
    manager passes ``reward_model_tokenizer``, ``critic_tokenizer``.
    """
    tokenizer = reward_kwargs.pop("reward_model_tokenizer", None)
    address = reward_kwargs.pop("reward_router_address", None)
    settings = VerlSettings.from_kwargs(reward_kwargs)
    if not len(solution_strs) == len(ground_truths) == len(extra_infos):
        raise InputError(f"got {len(solution_strs)} rollouts, {len(ground_truths)} ground truths and "
                         f"{len(extra_infos)} extra_infos; verl passes one of each per rollout")
    judge = _judge(settings, _address(settings, address), tokenizer)
    items = read_each(zip(solution_strs, ground_truths, extra_infos, strict=True), lambda row: _pair(settings, *row))
    results = judged_in_place(items, judge.compare_each)
    return [_result(result, settings) for result in results]


# --- pieces ---------------------------------------------------------------------------------------

_judges: dict[tuple[Any, ...], Judge] = {}
_judges_lock = threading.Lock()


def _address(settings: VerlSettings, router: str | None) -> str:
    address = router or settings.base_url
    if not address:
        raise InputError("critic's verl reward needs the reward model's server: verl passes reward_router_address "
                         "when reward.reward_model.enable is true; otherwise set critic_base_url in reward_kwargs")
    return address


def _judge(settings: VerlSettings, address: str, tokenizer: Any) -> Judge:
    """One judge per router, tokenizer and settings, kept for the worker's life (its connections are reused)."""
    key = (address, settings, id(tokenizer))
    with _judges_lock:
        judge = _judges.get(key)
        if judge is None:
            judge = _judges[key] = _new_judge(settings, address, tokenizer)
    return judge


def _new_judge(settings: VerlSettings, address: str, tokenizer: Any) -> Judge:
    server = settings.server(address)
    if server.tokenizer is not None:
        encoder = PromptEncoder.from_pretrained(server.tokenizer)
    elif tokenizer is not None:
        encoder = PromptEncoder(tokenizer, generation_config=_generation_config(tokenizer))
    else:
        raise InputError("critic needs the judge's tokenizer to build its token ids: verl passes "
                         "reward_model_tokenizer when reward.reward_model.model_path is set; otherwise set "
                         "critic_tokenizer in reward_kwargs")
    client = http_client(server)
    name = server.tokenizer or str(getattr(tokenizer, "name_or_path", "") or "verl reward model")
    backend = ServerBackend(encoder, client, dialect=server.dialect, served_model=server.served_model, name=name)
    return Judge(backend, template=settings.template, mode=settings.mode, swap=True,
                 max_new_tokens=settings.max_new_tokens, model_name=name)


def _generation_config(tokenizer: Any) -> Any:
    """The judge's generation config from the tokenizer's folder (its end-of-turn ids), or None."""
    location = getattr(tokenizer, "name_or_path", None)
    if not location:
        return None
    try:
        from transformers import GenerationConfig

        return GenerationConfig.from_pretrained(location)
    except (OSError, ValueError):
        return None


def _pair(settings: VerlSettings, solution: Any, ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Pair:
    """The rollout (response A) against the reference (response B) for the row's question."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    question = info.get(settings.prompt_field)
    if not isinstance(question, str) or not question:
        raise InputError(f"extra_info has no question in '{settings.prompt_field}' (it has "
                         f"{', '.join(sorted(map(str, info))) or 'no fields'}); set critic_prompt_field to the field "
                         "that holds it", kind=Reason.MISSING_FIELD)
    reference = ground_truth if settings.reference_field is None else info.get(settings.reference_field)
    where = "ground_truth" if settings.reference_field is None else f"extra_info['{settings.reference_field}']"
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        reference = str(reference)  # verl's math sets keep numeric answers as numbers
    if reference is None or reference == "":
        raise InputError(f"the row has no reference answer in {where}", kind=Reason.MISSING_FIELD)
    if not isinstance(solution, str):
        raise InputError(f"solution_str must be text, got {type(solution).__name__}", kind=Reason.WRONG_TYPE)
    return Pair(question, solution, completion_text(reference))


def _result(result: Preference | CriticError, settings: VerlSettings) -> dict[str, Any]:
    if isinstance(result, CriticError):
        logger.warning("verl reward: a rollout could not be judged (%s); score %s", result, settings.failed_score)
        return {"score": float(settings.failed_score), "critic_p_a": float(settings.failed_score),
                "critic_label": "failed", "critic_consistent": 0.0, "critic_failed": 1.0, "critic_error": str(result)}
    return {"score": result.p_a, "critic_p_a": result.p_a, "critic_label": result.label,
            "critic_consistent": 1.0 if result.consistent else 0.0, "critic_failed": 0.0, "critic_error": ""}

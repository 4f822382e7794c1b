"""``POST /get_reward``: OpenRLHF's remote reward-model protocol, unchanged on the wire.

OpenRLHF (``--remote_rm_url http://host:port/get_reward``) posts
``{"query": [...], "prompts": [...], "labels": [...]}``: each query is the
prompt followed by the policy's response, decoded from the policy's token ids
(its chat markup and end-of-turn text included), each prompt is that query's
prompt part (the dataset's conversation through the policy's chat template)
and each label the dataset's label (here: a reference answer). It reads
``rewards`` (and ``scores``, ``extra_logs``) back.

The response is the query after its prompt (when no prompt is given: after the
query's last assistant header, or the whole query); a query that does not
contain its prompt fails alone (no guess at where the response starts). The
policy's markup is then taken off (:mod:`critic.serve.policy_text`): the
response loses its trailing end-of-turn text, and the prompt becomes the user's
question and the earlier turns (the policy's system prompt is left out), so the
judge sees the clean pair. A reward judge scores the conversation (history,
user: question, assistant: response): reward = its score. A generative judge
compares the response with the label, the reference answer: reward =
P(response is better than the reference), debiased over both orders; a query
without a label (OpenRLHF sends ``""`` without ``--label_key``) is refused with
422, and the reason is in the status line too, where OpenRLHF's log shows it. A
query the judge cannot judge (too long, an unreadable verdict) gets the server's
``failed_reward`` (default 0) and ``extra_logs.critic_failed`` = 1.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from critic.errors import CriticError, InputError, Reason
from critic.judges.each import ajudged_in_place
from critic.serve.policy_text import read_prompt, split_transcript, strip_end_of_turn
from critic.serve.protocol import HTTPProblem, RewardRequest
from critic.types import Message, Pair, Preference, conversation

if TYPE_CHECKING:
    from critic.serve.app import Service

logger = logging.getLogger("critic")


UNLABELLED = ("a generative judge turns a response into a reward by comparing it with a reference answer in "
              "'labels'; start OpenRLHF with --label_key naming a column of reference answers, or serve a reward "
              "model (critic serve --kind reward)")


def split_query(query: str, prompt: str | None) -> tuple[str, str] | CriticError:
    """``(prompt, response)``: the response is what follows the prompt in the query."""
    if not prompt:
        return split_transcript(query) or ("", query)
    start = query.find(prompt)
    if start < 0:
        return InputError("the query does not contain its prompt, so where the response starts is unknown; send "
                          "each query as its prompt followed by the response", kind=Reason.MISSING_FIELD)
    return prompt, query[start + len(prompt):]


def clean_parts(query: str, prompt: str | None) -> tuple[tuple[Message, ...], str, str] | CriticError:
    """``(history, question, response)`` of one query, without the policy's markup (see the module docs)."""
    split = split_query(query, prompt)
    if isinstance(split, CriticError):
        return split
    history, question = read_prompt(split[0])
    return history, question, strip_end_of_turn(split[1])


async def _judged_where_split(kind: str, items: list[Any], service: Service,
                              disconnected: Callable[[], Awaitable[None]]) -> list[Any]:
    """The judge's results for the items that are not already errors; the errors stay in their places."""
    return await ajudged_in_place(items, lambda valid: service.judged(kind, valid, disconnected))


async def get_reward(request: RewardRequest, service: Service,
                     disconnected: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    prompts = request.prompts or (None,) * len(request.queries)
    parts = [clean_parts(query, prompt) for query, prompt in zip(request.queries, prompts, strict=True)]
    results: list[Any]
    if service.reward:
        conversations = [part if isinstance(part, CriticError) else conversation(part[1], part[2], part[0])
                         for part in parts]
        results = await _judged_where_split("score", conversations, service, disconnected)
        rewards = [None if isinstance(result, CriticError) else float(result) for result in results]
    else:
        missing = [index for index, label in enumerate(request.labels) if not label]
        if missing:
            raise HTTPProblem(422, f"{UNLABELLED} (query {missing[0]} has no label; {len(missing)} of "
                                   f"{len(request.labels)} lack one)", field=f"labels[{missing[0]}]")
        pairs = [part if isinstance(part, CriticError) else Pair(part[1], part[2], label or "", history=part[0])
                 for part, label in zip(parts, request.labels, strict=True)]
        results = await _judged_where_split("compare", pairs, service, disconnected)
        rewards = [result.p_a if isinstance(result, Preference) else None for result in results]
    service.count("/get_reward", results)
    failed = [reward is None for reward in rewards]
    if any(failed):
        first = next(result for result in results if isinstance(result, CriticError))
        logger.warning("get_reward: %d of %d queries could not be judged (first: %s); reward %s",
                       sum(failed), len(failed), first, service.settings.failed_reward)
    given = [service.settings.failed_reward if reward is None else reward for reward in rewards]
    return {"rewards": given, "scores": given, "extra_logs": {"critic_failed": [float(f) for f in failed]}}

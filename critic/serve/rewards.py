"""``POST /get_reward``: OpenRLHF's remote reward-model protocol, unchanged on the wire.

OpenRLHF (``--remote_rm_url http://host:port/get_reward``) posts
``{"query": [...], "prompts": [...], "labels": [...]}``: each query is the
prompt followed by the policy's response, as its template wrote them, each
prompt is that query's prompt part and each label the dataset's label (here: a
reference answer). It reads ``rewards`` (and ``scores``, ``extra_logs``) back.

The response is the query after its prompt (the query itself when no prompt is
given); a query that does not contain its prompt fails alone (no guess at where
the response starts). A reward judge scores the conversation (user: prompt, assistant:
response) directly: reward = its score. A generative judge compares the
response with the label, the reference answer: reward = P(response is better
than the reference), debiased over both orders; a generative judge refuses a
query without a label (422: it has nothing to compare against). A query the
judge cannot judge (too long, an unreadable verdict) gets the server's
``failed_reward`` (default 0) and ``extra_logs.critic_failed`` = 1.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from critic.errors import CriticError, InputError, Reason
from critic.judges.each import ajudged_in_place
from critic.serve.protocol import HTTPProblem, parse_get_reward
from critic.types import Pair, Preference, conversation

if TYPE_CHECKING:
    from critic.serve.app import Service

logger = logging.getLogger("critic")


def split_query(query: str, prompt: str | None) -> tuple[str, str] | CriticError:
    """``(prompt, response)``: the response is what follows the prompt in the query."""
    if not prompt:
        return "", query
    start = query.find(prompt)
    if start < 0:
        return InputError("the query does not contain its prompt, so where the response starts is unknown; send "
                          "each query as its prompt followed by the response", kind=Reason.MISSING_FIELD)
    return prompt, query[start + len(prompt):]


async def _judged_where_split(kind: str, items: list[Any], service: Service,
                              disconnected: Callable[[], Awaitable[None]]) -> list[Any]:
    """The judge's results for the items that are not already errors; the errors stay in their places."""
    return await ajudged_in_place(items, lambda valid: service.judged(kind, valid, disconnected))


async def get_reward(data: Any, service: Service, disconnected: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    request = parse_get_reward(data, service.settings)
    prompts = request.prompts or (None,) * len(request.queries)
    split = [split_query(query, prompt) for query, prompt in zip(request.queries, prompts, strict=True)]
    results: list[Any]
    if service.reward:
        conversations = [part if isinstance(part, CriticError) else conversation(*part) for part in split]
        results = await _judged_where_split("score", conversations, service, disconnected)
        rewards = [None if isinstance(result, CriticError) else float(result) for result in results]
    else:
        missing = [index for index, label in enumerate(request.labels) if not label]
        if missing:
            raise HTTPProblem(422, f"a generative judge turns a response into a reward by comparing it with the "
                                   f"reference answer in 'labels'; query {missing[0]} has none ({len(missing)} of "
                                   f"{len(request.labels)} lack one). Send labels, or serve a reward model "
                                   "(--kind reward)", field=f"labels[{missing[0]}]")
        pairs = [part if isinstance(part, CriticError) else Pair(part[0], part[1], label or "")
                 for part, label in zip(split, request.labels, strict=True)]
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

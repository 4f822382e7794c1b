"""Request bodies -> compact typed requests: the server's side of the wire format (:mod:`critic.wire`).

A request that cannot be read is an :class:`HTTPProblem` with the status, the
field and the reason: a body that is not JSON (invalid, not UTF-8, a number
Python will not read: more than 4300 digits, ``NaN``/``Infinity`` or a float
that overflows, nesting deeper than the parser goes) 400; a missing field, a
wrong type or a field the endpoint does not know 422; too many items, a text
over the length limit or a body too big 413. A pair that is well formed but
fails when judged (too long for the model, an unreadable verdict) is not a
problem of the request: it gets its own ``error`` object in the response, the
other pairs are judged. The parsed requests hold only what the judge needs
(pairs, conversations, texts), never the body.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critic.errors import InputError, Reason
from critic.serve.settings import ServeSettings
from critic.types import Message, Pair, check_messages
from critic.wire import PAIR_FIELDS, PAIR_HISTORIES, PAIR_TEXTS, problem_object

# What the server's judge is and how it reads: chosen when it starts, never by a request.
START_UP_ONLY = ("model", "template", "mode", "swap", "max_new_tokens", "trust_remote_code")
COMPARE_FIELDS = ("pairs",)
SCORE_FIELDS = ("conversations",)
RANK_FIELDS = ("prompt", "responses", "reference", "history")
REWARD_FIELDS = ("query", "prompts", "labels")


class HTTPProblem(Exception):
    """A request the server refuses: ``status``, the ``field`` at fault (if one), the reason, and the kind of
    problem when it is one item's text (a :class:`~critic.errors.Reason`)."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, kind: Reason | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.headers = headers or {}
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return problem_object(self.status, self.message, self.field, self.kind)


@dataclass(frozen=True)
class CompareRequest:
    pairs: tuple[Pair, ...]
    ids: tuple[str | int | float | None, ...]  # each pair's "id" when it had one (echoed back), else None


@dataclass(frozen=True)
class ScoreRequest:
    conversations: tuple[tuple[Message, ...], ...]


@dataclass(frozen=True)
class RankRequest:
    prompt: str
    responses: tuple[str, ...]
    reference: str | None
    history: tuple[Message, ...]


@dataclass(frozen=True)
class RewardRequest:
    """OpenRLHF's ``/get_reward`` body: ``query`` (prompt + response, as the policy's template wrote them),
    ``prompts`` (the prompt part of each query) and ``labels`` (a reference answer each, or empty)."""

    queries: tuple[str, ...]
    prompts: tuple[str, ...] | None
    labels: tuple[str | None, ...]


def parse_json(body: bytes) -> Any:
    """The body as JSON, or 400 (never an exception of another kind: the body is the client's to get wrong)."""
    try:
        return json.loads(body, parse_constant=_non_finite, parse_float=_finite_float)
    except UnicodeDecodeError as error:
        raise HTTPProblem(400, f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise HTTPProblem(400, f"the body is not valid JSON: {error.msg} (line {error.lineno}, column "
                               f"{error.colno})") from None
    except RecursionError:
        raise HTTPProblem(400, "the body nests lists or objects too deeply to read; no request needs more than a "
                               "few levels") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise HTTPProblem(400, f"the body holds an integer of more than {sys.get_int_max_str_digits()} digits, "
                               "which the server does not read; send shorter numbers (or the id as a string)") from None


def _non_finite(name: str) -> Any:
    raise HTTPProblem(400, f"the body holds {name}, which is not a JSON number; send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise HTTPProblem(400, f"the number {text[:40]} is too large for a float; send finite numbers only")
    return value


def parse_compare(data: Any, settings: ServeSettings) -> CompareRequest:
    """``{"pairs": [{"prompt", "response_a", "response_b", "reference"?, "history"?, "id"?}, ...]}``."""
    items = _items(data, "pairs", COMPARE_FIELDS, settings, "/v1/compare")
    pairs, ids = [], []
    for index, item in enumerate(items):
        field = f"pairs[{index}]"
        if not isinstance(item, dict):
            raise HTTPProblem(422, f"must be an object, got {_type(item)}", field=field)
        _known(item, PAIR_FIELDS, field, "a pair")
        values: dict[str, Any] = {name: _text(item, name, field, settings) for name in PAIR_TEXTS}
        values["reference"] = _text(item, "reference", field, settings, optional=True)
        for name in PAIR_HISTORIES:
            values[name] = _messages(item.get(name) or (), f"{field}.{name}", settings)
        try:
            pairs.append(Pair(**values))
        except InputError as error:  # a lone surrogate: the text itself is unusable
            raise HTTPProblem(422, str(error), field=field, kind=error.kind) from None
        ids.append(_pair_id(item.get("id"), f"{field}.id", settings))
    return CompareRequest(tuple(pairs), tuple(ids))


def parse_score(data: Any, settings: ServeSettings) -> ScoreRequest:
    """``{"conversations": [[{"role", "content"}, ...], ...]}``, each ending with the answer scored."""
    items = _items(data, "conversations", SCORE_FIELDS, settings, "/v1/score")
    conversations = []
    for index, item in enumerate(items):
        field = f"conversations[{index}]"
        messages = _messages(item, field, settings)
        if not messages or messages[-1]["role"] != "assistant":
            raise HTTPProblem(422, "must end with an assistant message: a reward model scores the last response",
                              field=field)
        conversations.append(messages)
    return ScoreRequest(tuple(conversations))


def parse_rank(data: Any, settings: ServeSettings) -> RankRequest:
    """``{"prompt", "responses": [...], "reference"?, "history"?}``: a GRPO group of answers to one prompt."""
    responses = _items(data, "responses", RANK_FIELDS, settings, "/v1/rank")
    if len(responses) < 2 and data.get("reference") is None:
        raise HTTPProblem(422, "needs at least 2 responses to rank (or 1 with a reference)", field="responses")
    if len(responses) * (len(responses) - 1) // 2 > settings.max_pairs_per_request and data.get("reference") is None:
        raise HTTPProblem(413, f"{len(responses)} responses make {len(responses) * (len(responses) - 1) // 2} "
                               f"pairs, over the limit of {settings.max_pairs_per_request} pairs per request; "
                               "send fewer responses or a reference", field="responses")
    texts = []
    for index, value in enumerate(responses):
        texts.append(_checked_text(value, f"responses[{index}]", settings))
    return RankRequest(
        prompt=_text(data, "prompt", None, settings),
        responses=tuple(texts),
        reference=_text(data, "reference", None, settings, optional=True),
        history=_messages(data.get("history") or (), "history", settings),
    )


def parse_get_reward(data: Any, settings: ServeSettings) -> RewardRequest:
    """OpenRLHF's body: ``query`` (required), ``prompts`` and ``labels`` (lists of the same length, optional)."""
    queries = _items(data, "query", REWARD_FIELDS, settings, "/get_reward")
    checked = [_checked_text(value, f"query[{index}]", settings) for index, value in enumerate(queries)]
    prompts = _parallel(data, "prompts", len(checked), settings, nullable=False)
    labels = _parallel(data, "labels", len(checked), settings, nullable=True)
    return RewardRequest(tuple(checked), None if prompts is None else tuple(prompts),  # type: ignore[arg-type]
                         tuple(labels) if labels is not None else (None,) * len(checked))


def _items(data: Any, name: str, fields: Sequence[str], settings: ServeSettings, endpoint: str) -> Sequence[Any]:
    if not isinstance(data, dict):
        raise HTTPProblem(422, f"the body must be a JSON object with '{name}', got {_type(data)}")
    chosen = next((key for key in START_UP_ONLY if key in data), None)
    if chosen is not None:
        flag = "--" + chosen.replace("_", "-")
        raise HTTPProblem(422, f"the judge's {chosen} is chosen when the server starts (critic serve {flag}), never "
                               "by a request; leave it out", field=chosen)
    _known(data, fields, None, f"the body of {endpoint}")
    if name not in data:
        raise HTTPProblem(422, f"missing field '{name}'", field=name)
    items = data[name]
    if not isinstance(items, list):
        raise HTTPProblem(422, f"must be a list, got {_type(items)}", field=name)
    if len(items) > settings.max_pairs_per_request:
        raise HTTPProblem(413, f"{len(items)} items, over the limit of {settings.max_pairs_per_request} per request; "
                               "split the request", field=name)
    return items


def _known(data: dict[str, Any], fields: Sequence[str], parent: str | None, what: str) -> None:
    """422 for the first key of ``data`` that is not one of ``fields``: a request never means more than it says."""
    unknown = next((key for key in data if key not in fields), None)
    if unknown is not None:
        field = f"{parent}.{unknown}" if parent else str(unknown)
        raise HTTPProblem(422, f"unknown field '{unknown}': {what} takes {', '.join(fields)}; the judge and how it "
                               "reads are set when the server starts", field=field)


def _pair_id(value: Any, field: str, settings: ServeSettings) -> str | int | float | None:
    """A pair's ``id``, echoed back: a string, a number or null (numbers are finite: the parser refused others)."""
    if value is None or isinstance(value, (int, float)):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return _checked_text(value, field, settings)
    raise HTTPProblem(422, f"must be a string or a number, got {_type(value)}", field=field)


def _parallel(data: dict[str, Any], name: str, count: int, settings: ServeSettings,
              *, nullable: bool) -> list[str | None] | None:
    values = data.get(name)
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != count:
        got = f"{len(values)} items" if isinstance(values, list) else _type(values)
        raise HTTPProblem(422, f"must be a list of {count} items, one per query, got {got}", field=name)
    return [None if value is None and nullable else _checked_text(value, f"{name}[{index}]", settings)
            for index, value in enumerate(values)]


def _text(item: dict[str, Any], name: str, parent: str | None, settings: ServeSettings,
          *, optional: bool = False) -> Any:
    field = f"{parent}.{name}" if parent else name
    if name not in item or item[name] is None:
        if optional:
            return None
        raise HTTPProblem(422, "missing field" if name not in item else "must be a string, got null", field=field)
    return _checked_text(item[name], field, settings)


def _checked_text(value: Any, field: str, settings: ServeSettings) -> str:
    if not isinstance(value, str):
        raise HTTPProblem(422, f"must be a string, got {_type(value)}", field=field)
    if len(value) > settings.max_text_chars:
        raise HTTPProblem(413, f"{len(value)} characters, over the limit of {settings.max_text_chars}", field=field,
                          kind=Reason.TOO_LONG)
    return value


MESSAGE_KEYS = ("role", "content")


def _messages(value: Any, field: str, settings: ServeSettings) -> tuple[Message, ...]:
    try:
        messages = check_messages(value, field)
    except InputError as error:
        raise HTTPProblem(422, str(error), field=field, kind=error.kind) from None
    for index, (message, checked) in enumerate(zip(value, messages, strict=True)):
        # A message's other keys (name, tool_calls, ...) would change what the judge should read, and the
        # judge's templates only show role and content: refused, never dropped.
        extra = next((key for key in message if key not in MESSAGE_KEYS), None)
        if extra is not None:
            raise HTTPProblem(422, f"unknown field '{extra}': a message takes role and content only",
                              field=f"{field}[{index}].{extra}")
        _checked_text(checked["content"], f"{field}[{index}].content", settings)
    return messages


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)

"""Request bodies -> typed requests, and results -> JSON: the server's wire format, in one place.

A request that cannot be read is an :class:`HTTPProblem` with the status, the
field and the reason: invalid JSON 400, a missing field or a wrong type 422,
too many items, a text over the length limit or a body too big 413. A pair that
is well formed but fails when judged (too long for the model, an unreadable
verdict) is not a problem of the request: it gets its own ``error`` object in
the response, the other pairs are judged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critic.errors import CriticError, InputError, Reason
from critic.serve.settings import ServeSettings
from critic.types import Message, Pair, Preference, check_messages

PAIR_TEXTS = ("prompt", "response_a", "response_b")
PAIR_HISTORIES = ("history", "history_a", "history_b", "reference_history")
# What the server's judge is and how it reads: chosen when it starts, never by a request.
START_UP_ONLY = ("model", "template", "mode", "swap", "max_new_tokens", "trust_remote_code")


class HTTPProblem(Exception):
    """A request the server refuses: ``status``, the ``field`` at fault (if one) and the reason."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        problem: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.field is not None:
            problem["field"] = self.field
        return {"error": problem}


@dataclass(frozen=True)
class CompareRequest:
    pairs: tuple[Pair, ...]
    ids: tuple[Any, ...]  # each pair's "id" when it had one (echoed back), else None


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
    """The body as JSON, or 400."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise HTTPProblem(400, f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise HTTPProblem(400, f"the body is not valid JSON: {error.msg} (line {error.lineno}, column "
                               f"{error.colno})") from None


def parse_compare(data: Any, settings: ServeSettings) -> CompareRequest:
    """``{"pairs": [{"prompt", "response_a", "response_b", "reference"?, "history"?, "id"?}, ...]}``."""
    items = _items(data, "pairs", settings)
    pairs, ids = [], []
    for index, item in enumerate(items):
        field = f"pairs[{index}]"
        if not isinstance(item, dict):
            raise HTTPProblem(422, f"must be an object, got {_type(item)}", field=field)
        values: dict[str, Any] = {name: _text(item, name, field, settings) for name in PAIR_TEXTS}
        values["reference"] = _text(item, "reference", field, settings, optional=True)
        for name in PAIR_HISTORIES:
            values[name] = _messages(item.get(name) or (), f"{field}.{name}", settings)
        try:
            pairs.append(Pair(**values))
        except InputError as error:  # a lone surrogate: the text itself is unusable
            raise HTTPProblem(422, str(error), field=field) from None
        ids.append(item.get("id"))
    return CompareRequest(tuple(pairs), tuple(ids))


def parse_score(data: Any, settings: ServeSettings) -> ScoreRequest:
    """``{"conversations": [[{"role", "content"}, ...], ...]}``, each ending with the answer scored."""
    items = _items(data, "conversations", settings)
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
    responses = _items(data, "responses", settings)
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
    queries = _items(data, "query", settings)
    checked = [_checked_text(value, f"query[{index}]", settings) for index, value in enumerate(queries)]
    prompts = _parallel(data, "prompts", len(checked), settings, nullable=False)
    labels = _parallel(data, "labels", len(checked), settings, nullable=True)
    return RewardRequest(tuple(checked), None if prompts is None else tuple(prompts),  # type: ignore[arg-type]
                         tuple(labels) if labels is not None else (None,) * len(checked))


def error_object(error: CriticError) -> dict[str, Any]:
    """A failed item's ``error``: its class, its kind (a :class:`~critic.errors.Reason` name) and the message."""
    return {"type": type(error).__name__, "kind": error.kind.name.lower(), "message": str(error)}


def result_object(result: Preference | CriticError, pair_id: Any = None) -> dict[str, Any]:
    """One pair's answer: the fields of a ``critic judge`` output line (:meth:`Preference.to_dict`), or ``error``."""
    record: dict[str, Any] = {} if pair_id is None else {"id": pair_id}
    if isinstance(result, CriticError):
        record["error"] = error_object(result)
    else:
        record.update(result.to_dict())
    return record


def rebuild_error(data: Any) -> CriticError:
    """The :class:`CriticError` subclass an ``error`` object names, with its kind (the client's side)."""
    from critic import errors

    if not isinstance(data, dict):
        return CriticError(f"the server reported an error it did not describe: {data!r}")
    message = str(data.get("message", "the server gave no reason"))
    cls = getattr(errors, str(data.get("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, CriticError)) or cls is errors.MissingDependencyError:
        cls = CriticError
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    if cls is errors.VerdictError:
        error.reason, error.text = message.split(":", 1)[0], ""  # type: ignore[attr-defined]
    try:
        error.kind = Reason[str(data.get("kind", "other")).upper()]
    except KeyError:
        error.kind = Reason.OTHER
    return error


def _items(data: Any, name: str, settings: ServeSettings) -> Sequence[Any]:
    if not isinstance(data, dict):
        raise HTTPProblem(422, f"the body must be a JSON object with '{name}', got {_type(data)}")
    chosen = next((key for key in START_UP_ONLY if key in data), None)
    if chosen is not None:
        flag = "--" + chosen.replace("_", "-")
        raise HTTPProblem(422, f"the judge's {chosen} is chosen when the server starts (critic serve {flag}), never "
                               "by a request; leave it out", field=chosen)
    if name not in data:
        raise HTTPProblem(422, f"missing field '{name}'", field=name)
    items = data[name]
    if not isinstance(items, list):
        raise HTTPProblem(422, f"must be a list, got {_type(items)}", field=name)
    if len(items) > settings.max_pairs_per_request:
        raise HTTPProblem(413, f"{len(items)} items, over the limit of {settings.max_pairs_per_request} per request; "
                               "split the request", field=name)
    return items


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
        raise HTTPProblem(413, f"{len(value)} characters, over the limit of {settings.max_text_chars}", field=field)
    return value


def _messages(value: Any, field: str, settings: ServeSettings) -> tuple[Message, ...]:
    try:
        messages = check_messages(value, field)
    except InputError as error:
        raise HTTPProblem(422, str(error), field=field) from None
    for index, message in enumerate(messages):
        _checked_text(message["content"], f"{field}[{index}].content", settings)
    return messages


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)

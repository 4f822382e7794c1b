"""The wire format shared by ``critic serve`` and :class:`critic.client.RemoteJudge`, in one neutral place.

Both sides import it; neither imports the other. It holds what crosses the wire:

- a pair as ``/v1/compare`` reads it (:func:`pair_object`, its fields :data:`PAIR_FIELDS`),
- one pair's answer (:func:`result_object`): the fields of a ``critic judge`` output line, or an
  ``error`` object (:func:`error_object`), read back by :func:`read_results`,
  :func:`preference_from_dict` and :func:`rebuild_error`,
- a refused request's body (:func:`problem_object`: ``{"error": {"status", "message", "field"?}}``)
  and its one-line summary in the :data:`ERROR_HEADER` header (:func:`problem_header`),
- the environment variable that holds the API key (:data:`API_KEY_ENV`).
"""

from __future__ import annotations

from typing import Any

from critic.errors import CriticError, ModelError, Reason
from critic.types import OrderJudgment, Pair, Preference

API_KEY_ENV = "CRITIC_API_KEY"
ERROR_HEADER = "X-Critic-Error"  # a refusal's message on one line, for clients that log only headers/status
PAIR_TEXTS = ("prompt", "response_a", "response_b")
PAIR_HISTORIES = ("history", "history_a", "history_b", "reference_history")
PAIR_FIELDS = (*PAIR_TEXTS, "reference", *PAIR_HISTORIES, "id")  # every key a pair object may have
HEADER_CHARS = 300  # the longest ERROR_HEADER value (and reason phrase) sent


def pair_object(pair: Pair) -> dict[str, Any]:
    """A pair as ``/v1/compare`` reads it (empty fields left out)."""
    data: dict[str, Any] = {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b}
    if pair.reference is not None:
        data["reference"] = pair.reference
    for name in PAIR_HISTORIES:
        if getattr(pair, name):
            data[name] = [dict(message) for message in getattr(pair, name)]
    return data


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


def problem_object(status: int, message: str, field: str | None = None,
                   kind: Reason | None = None) -> dict[str, Any]:
    """A refused request's body: ``{"error": {"status", "message", "field"?, "kind"?}}``.

    ``kind`` (a :class:`~critic.errors.Reason` name) is given when the refusal is about one item's text.
    """
    problem: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        problem["field"] = field
    if kind is not None:
        problem["kind"] = kind.name.lower()
    return {"error": problem}


def problem_header(message: str, field: str | None = None) -> str:
    """The refusal on one printable ASCII line (for :data:`ERROR_HEADER` and the HTTP reason phrase)."""
    text = f"{field}: {message}" if field else message
    text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= HEADER_CHARS else text[: HEADER_CHARS - 3] + "..."


def read_problem(data: Any) -> tuple[str | None, str | None, Reason | None]:
    """``(message, field, kind)`` of a refused request's body; ``None`` for what it does not say."""
    problem = data.get("error") if isinstance(data, dict) else None
    if not isinstance(problem, dict):
        return None, None, None
    message, field, kind = problem.get("message"), problem.get("field"), problem.get("kind")
    return (None if message is None else str(message), None if field is None else str(field),
            Reason.__members__.get(str(kind).upper()) if kind is not None else None)


def read_results(answer: dict[str, Any], expected: int) -> list[Preference | CriticError]:
    """``/v1/compare``'s results as preferences and errors (the error's class and kind as on the server)."""
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise ModelError(f"the judge server returned {got} results for {expected} pairs")
    return [rebuild_error(item["error"]) if "error" in item else preference_from_dict(item) for item in results]


def preference_from_dict(data: dict[str, Any]) -> Preference:
    """The :class:`Preference` that :meth:`Preference.to_dict` wrote."""
    orders = tuple(OrderJudgment(**order) for order in data["orders"])
    return Preference(data["label"], float(data["p_a"]), data["consistent"], orders)


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

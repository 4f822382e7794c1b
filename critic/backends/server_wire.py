"""What the server backends send and read: the wire dialects, as request bodies and pure readers.

Every body carries critic's token ids (never text), so the server reads exactly
what the local backends feed their models. Three dialects:

``vllm``    vLLM's OpenAI-compatible ``POST /v1/completions`` with ``prompt`` = ids
            and, to score, ``logprobs: 0`` plus ``logprob_token_ids`` = the verdict
            letters' ids: their full-vocabulary log-probabilities, whatever their rank
            (``logprobs`` must be present; its value is then ignored). Reward models:
            vLLM's pooling ``POST /classify`` with ``use_activation: false`` (the raw logit).
``openai``  the same endpoint with top-k log-probabilities only (``logprobs: k``), for a
            server without ``logprob_token_ids`` (an older vLLM, another engine's
            OpenAI API). A letter outside the top k has an unknown probability: that
            prompt fails with a reason, never a guess. Letters inside the top k get
            their exact full-vocabulary probability, so ``format_mass`` is the mass
            the letters really have.
``sglang``  SGLang's native ``POST /generate`` with ``input_ids``, ``token_ids_logprob``
            = the letters' ids, answered in ``meta_info.output_token_ids_logprobs``
            (``[logprob, token_id, text]`` per listed id and output position).

Log-probabilities come back keyed by token id (``return_tokens_as_token_ids``
makes vLLM write keys as ``token_id:N``), so no token text is ever matched.
Every reader checks the answer's shape and raises :class:`ServerError` with what
was missing, so a server that answers something else fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from critic.backends._http import ServerError

Dialect = Literal["vllm", "openai", "sglang"]
DIALECTS: tuple[Dialect, ...] = ("vllm", "openai", "sglang")
# How many top log-probabilities the openai dialect asks for (vLLM's default cap, --max-logprobs, is 20).
TOP_K = 20
TOKEN_ID_KEY = "token_id:"


# --- OpenAI-compatible completions (vLLM) ------------------------------------------------------------


def completions_score_body(prompts: Sequence[Sequence[int]], letters: Sequence[int], *, model: str | None,
                           full_vocabulary: bool, top_k: int = TOP_K) -> dict[str, Any]:
    """One greedy step after each prompt, with the letters' log-probabilities (see the module doc)."""
    body: dict[str, Any] = {"prompt": [list(ids) for ids in prompts], "max_tokens": 1, "temperature": 0,
                            "return_tokens_as_token_ids": True, "return_token_ids": True}
    if full_vocabulary:
        body.update(logprobs=0, logprob_token_ids=list(letters))
    else:
        body["logprobs"] = top_k
    return _with_model(body, model)


def completions_generate_body(prompts: Sequence[Sequence[int]], *, max_tokens: int, stop_ids: Sequence[int],
                              model: str | None) -> dict[str, Any]:
    """Greedy generation from each prompt to the end of turn; the new tokens' ids come back (``return_token_ids``)."""
    body = {"prompt": [list(ids) for ids in prompts], "max_tokens": max_tokens, "temperature": 0,
            "stop_token_ids": list(stop_ids), "skip_special_tokens": False, "return_token_ids": True,
            "return_tokens_as_token_ids": True}
    return _with_model(body, model)


def completions_choices(answer: Any, count: int) -> list[dict[str, Any]]:
    """The answer's ``choices``, one per prompt, in prompt order (by ``index``)."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or len(choices) != count or not all(isinstance(c, dict) for c in choices):
        got = len(choices) if isinstance(choices, list) else "no"
        raise ServerError(f"the server returned {got} completion choices for {count} prompts")
    try:
        ordered = sorted(choices, key=lambda choice: int(choice["index"]))
    except (KeyError, TypeError, ValueError):
        raise ServerError("the server's completion choices carry no 'index'") from None
    if [int(choice["index"]) for choice in ordered] != list(range(count)):
        raise ServerError(f"the server's completion choices are not indexed 0..{count - 1}")
    return ordered


def completion_logprobs(choice: Mapping[str, Any], spellings: Mapping[str, int] | None = None) -> dict[int, float]:
    """The first generated position's log-probabilities by token id.

    vLLM keys them ``token_id:N``. A server that ignores ``return_tokens_as_token_ids``
    keys them by token text; such a key counts only when it is in ``spellings``
    (text -> id for texts exactly one token of the vocabulary decodes to), and is
    otherwise left out: a letter it might have been then has no log-probability,
    which is an error upstream, not a guess.
    """
    logprobs = choice.get("logprobs")
    top = logprobs.get("top_logprobs") if isinstance(logprobs, dict) else None
    if not isinstance(top, list) or not top or not isinstance(top[0], dict):
        raise ServerError("the server returned no log-probabilities (choices[].logprobs.top_logprobs)")
    by_id: dict[int, float] = {}
    for key, value in top[0].items():
        if isinstance(key, str) and key.startswith(TOKEN_ID_KEY):
            by_id[int(key[len(TOKEN_ID_KEY):])] = float(value)
        elif spellings is not None and key in spellings:
            by_id[spellings[key]] = float(value)
    return by_id


def keyed_by_text(answer: Any) -> bool:
    """Whether a completions answer keys its log-probabilities by token text (no ``token_id:N`` keys)."""
    try:
        choice = completions_choices(answer, len(answer["choices"]))[0]
        top = choice["logprobs"]["top_logprobs"][0]
    except (KeyError, IndexError, TypeError, ServerError):
        return False
    return bool(top) and not any(str(key).startswith(TOKEN_ID_KEY) for key in top)


def completion_token_ids(choice: Mapping[str, Any]) -> list[int]:
    """The generated token ids (``return_token_ids``; else read from ``token_id:N`` tokens of the logprobs)."""
    ids = choice.get("token_ids")
    if isinstance(ids, list) and all(isinstance(token, int) for token in ids):
        return list(ids)
    logprobs = choice.get("logprobs")
    tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
    if isinstance(tokens, list) and all(isinstance(t, str) and t.startswith(TOKEN_ID_KEY) for t in tokens):
        return [int(token[len(TOKEN_ID_KEY):]) for token in tokens]
    raise ServerError("the server returned no generated token ids (choices[].token_ids); critic decodes ids itself "
                      "and never reads a server's text")


def has_letter_logprobs(answer: Any, letters: Sequence[int]) -> bool:
    """Whether a probe answer (one prompt, ``logprobs: 0`` + ``logprob_token_ids``) lists every letter."""
    try:
        found = completion_logprobs(completions_choices(answer, 1)[0])
    except ServerError:
        return False
    return all(letter in found for letter in letters)


# --- vLLM pooling (reward models) ---------------------------------------------------------------------


def classify_body(conversations: Sequence[Sequence[int]], *, model: str | None) -> dict[str, Any]:
    """Each conversation's ids through the classifier, the raw logit asked for (no sigmoid)."""
    return _with_model({"input": [list(ids) for ids in conversations], "use_activation": False}, model)


def classify_scores(answer: Any, count: int) -> list[float]:
    """One score per input, in input order: ``data[i].probs``, a one-label classifier's single value."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count or not all(isinstance(item, dict) for item in data):
        got = len(data) if isinstance(data, list) else "no"
        raise ServerError(f"the server returned {got} classifications for {count} inputs")
    scores: list[float] = []
    for position, item in enumerate(sorted(data, key=lambda item: int(item.get("index", 0)))):
        probs = item.get("probs")
        if int(item.get("index", position)) != position or not isinstance(probs, list) or len(probs) != 1:
            raise ServerError("the server's classification is not one value per input (a one-label reward model "
                              f"is needed; got {str(probs)[:80]})")
        scores.append(float(probs[0]))
    return scores


# --- SGLang native /generate ----------------------------------------------------------------------


def sglang_score_body(prompts: Sequence[Sequence[int]], letters: Sequence[int]) -> dict[str, Any]:
    """One greedy step after each prompt, with the letters' full-vocabulary log-probabilities."""
    return {"input_ids": [list(ids) for ids in prompts],
            "sampling_params": {"max_new_tokens": 1, "temperature": 0},
            "return_logprob": True, "logprob_start_len": -1,
            "token_ids_logprob": [list(letters) for _ in prompts]}


def sglang_generate_body(prompts: Sequence[Sequence[int]], *, max_tokens: int,
                         stop_ids: Sequence[int]) -> dict[str, Any]:
    """Greedy generation from each prompt to the end of turn."""
    return {"input_ids": [list(ids) for ids in prompts],
            "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0, "stop_token_ids": list(stop_ids),
                                "skip_special_tokens": False}}


def sglang_outputs(answer: Any, count: int) -> list[dict[str, Any]]:
    """The per-prompt outputs of a batched ``/generate`` (a list, in prompt order)."""
    if count == 1 and isinstance(answer, dict):
        answer = [answer]
    if not isinstance(answer, list) or len(answer) != count or not all(isinstance(item, dict) for item in answer):
        got = len(answer) if isinstance(answer, list) else "no"
        raise ServerError(f"the server returned {got} outputs for {count} prompts")
    return answer


def sglang_logprobs(output: Mapping[str, Any]) -> dict[int, float]:
    """The first output position's listed log-probabilities by token id."""
    meta = output.get("meta_info")
    positions = meta.get("output_token_ids_logprobs") if isinstance(meta, dict) else None
    if not isinstance(positions, list) or not positions or not isinstance(positions[0], list):
        raise ServerError("the server returned no meta_info.output_token_ids_logprobs (SGLang's token_ids_logprob)")
    by_id: dict[int, float] = {}
    for entry in positions[0]:
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            raise ServerError(f"unexpected log-probability entry {entry!r} (SGLang writes [logprob, token_id, text])")
        by_id[int(entry[1])] = float(entry[0])
    return by_id


def sglang_token_ids(output: Mapping[str, Any]) -> list[int]:
    """The generated token ids (``output_ids``)."""
    ids = output.get("output_ids")
    if not isinstance(ids, list) or not all(isinstance(token, int) for token in ids):
        raise ServerError("the server returned no output_ids; critic decodes ids itself and never reads a "
                          "server's text")
    return list(ids)


def _with_model(body: dict[str, Any], model: str | None) -> dict[str, Any]:
    if model is not None:
        body["model"] = model
    return body

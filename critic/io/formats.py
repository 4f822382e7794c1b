"""The public formats people bring, read into pairs: HH-RLHF transcripts, MT-Bench human judgments, and the
check that refuses a message list serialized into a text field.

- Anthropic HH-RLHF: ``chosen`` and ``rejected`` are whole transcripts,
  ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; each is split at its last
  ``"\\n\\nAssistant:"`` (:func:`split_transcript`), and what comes before must be
  the same conversation in both (:func:`transcript_messages` reads it).
- MT-Bench human judgments (``lmsys/mt_bench_human_judgments``, FastChat's
  ``fastchat/llm_judge/compute_agreement.py``): ``question_id``, ``model_a``,
  ``model_b``, ``winner``, ``judge``, ``turn`` and the two conversations
  ``conversation_a`` / ``conversation_b`` (:func:`mt_bench_pair`).
- Arena (``lmarena-ai/arena-human-preference-55k``): ``prompt``, ``response_a``
  and ``response_b`` are lists of turns, one string per turn, stored as
  JSON-encoded text in its CSV (``'["What is 17 + 25?"]'``) or as lists in
  Parquet/datasets (:func:`arena_pair`); the label is its one-hot
  ``winner_model_a`` / ``winner_model_b`` / ``winner_tie`` columns
  (:func:`critic.io.labels.one_hot_label`).
- A text field holding ``[{"role": "user", "content": ...}]`` as JSON or Python
  repr text (UltraFeedback exported to CSV) is refused (:func:`check_not_serialized`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from critic.errors import InputError, Reason
from critic.types import Message, Pair, check_messages

if TYPE_CHECKING:
    from critic.io.shapes import Columns

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"

_TURN = re.compile(r"\n\n(Human|Assistant):")

MT_BENCH_FIELDS = ("conversation_a", "conversation_b")

SERIALIZED_LIMIT = 1 << 20  # longer text is not parsed to look for a serialized list

_ROLE_KEY = re.compile(r"""["']role["']\s*:""")


def is_transcript(value: Any) -> bool:
    """Whether ``value`` is an HH-RLHF transcript (text starting with ``"\\n\\nHuman:"``)."""
    return isinstance(value, str) and value.startswith(HUMAN)


def split_transcript(text: str, field: str) -> tuple[str, str]:
    """``(conversation before the answer, answer)``: ``text`` split at its last ``"\\n\\nAssistant:"``.

    The answer loses the one space that follows the marker. Raises
    :class:`InputError` (kind ``BAD_MESSAGES``) when there is no such marker.
    """
    at = text.rfind(ASSISTANT)
    if at < 0:
        raise InputError(f"field '{field}' is an HH-RLHF transcript without a '\\n\\nAssistant:' turn to answer",
                         kind=Reason.BAD_MESSAGES)
    answer = text[at + len(ASSISTANT) :]
    return text[:at], answer[1:] if answer.startswith(" ") else answer


def transcript_messages(text: str, field: str) -> tuple[Message, ...]:
    """The turns of an HH-RLHF conversation (Human -> user, Assistant -> assistant), checked.

    It must start with a Human turn, alternate, and end with a Human turn (the
    question the answer replies to); otherwise :class:`InputError` (kind ``BAD_MESSAGES``).
    """
    parts = _TURN.split(text)
    if parts[0] != "" or len(parts) < 3:
        raise InputError(f"field '{field}' is not an HH-RLHF transcript: it must start with '\\n\\nHuman:'",
                         kind=Reason.BAD_MESSAGES)
    messages: list[Message] = []
    for index in range(1, len(parts), 2):
        speaker, content = parts[index], parts[index + 1]
        expected = "Human" if len(messages) % 2 == 0 else "Assistant"
        if speaker != expected:
            raise InputError(f"field '{field}': turn {len(messages) + 1} of the transcript is '{speaker}:' where "
                             f"'{expected}:' was expected (turns must alternate, starting with Human)",
                             kind=Reason.BAD_MESSAGES)
        text = content[1:] if content.startswith(" ") else content
        if speaker == "Human":
            messages.append({"role": "user", "content": text})
        else:
            messages.append({"role": "assistant", "content": text})
    if messages[-1]["role"] != "user":
        raise InputError(f"field '{field}': the transcript's last turn before the answer must be Human's",
                         kind=Reason.BAD_MESSAGES)
    return check_messages(messages, f"field '{field}'")


def hh_pair(chosen: str, rejected: str, names: tuple[str, str], reference: str | None) -> Pair:
    """The pair two HH-RLHF transcripts show: the shared conversation, then each transcript's last answer."""
    (before, first), (other, second) = split_transcript(chosen, names[0]), split_transcript(rejected, names[1])
    if before != other:
        at = next((i for i, (x, y) in enumerate(zip(before, other, strict=False)) if x != y),
                  min(len(before), len(other)))
        raise InputError(f"fields '{names[0]}' and '{names[1]}' are HH-RLHF transcripts that do not share the "
                         f"conversation before the last answer (they differ at character {at})",
                         kind=Reason.BAD_MESSAGES)
    messages = transcript_messages(before, names[0])
    return Pair(messages[-1]["content"], first, second, reference=reference, history=messages[:-1])


def is_mt_bench_row(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` is an MT-Bench human judgment (two conversations, one per model)."""
    return all(name in row for name in MT_BENCH_FIELDS)


def mt_bench_pair(row: Mapping[str, Any]) -> Pair:
    """The pair an MT-Bench judgment row shows, for its ``turn``.

    Turn 1: the first question and each model's first answer. Turn 2: the second
    question and each model's second answer, with each model's own first turn
    (question 1 and that model's answer) as ``history_a`` / ``history_b``.
    A row without ``turn`` is turn 1.
    """
    turn = row.get("turn", 1)
    if isinstance(turn, bool) or turn not in (1, 2):
        raise InputError(f"field 'turn' must be 1 or 2, got {turn!r}", kind=Reason.WRONG_TYPE)
    conversations = [check_messages(row[name], f"field '{name}'") for name in MT_BENCH_FIELDS]
    question, answer = 2 * turn - 2, 2 * turn - 1
    for name, messages in zip(MT_BENCH_FIELDS, conversations, strict=True):
        roles = [m["role"] for m in messages[: answer + 1]]
        if roles != ["user", "assistant"] * turn:
            raise InputError(f"field '{name}' must hold user/assistant turns up to turn {turn}, got roles "
                             f"{', '.join(roles) or 'none'}", kind=Reason.BAD_MESSAGES)
    first, second = conversations
    for index in range(0, answer, 2):
        if first[index]["content"] != second[index]["content"]:
            raise InputError(f"fields 'conversation_a' and 'conversation_b' ask different questions at message "
                             f"{index}", kind=Reason.BAD_MESSAGES)
    pair = Pair(first[question]["content"], first[answer]["content"], second[answer]["content"])
    if turn == 1:
        return pair
    return Pair(pair.prompt, pair.response_a, pair.response_b, history_a=first[:2], history_b=second[:2])


def arena_pair(values: list[Any], names: tuple[str, str, str], history: tuple[Message, ...] = ()) -> Pair | None:
    """The pair of an Arena row whose prompt and two responses are lists of turns; ``None`` when they are not.

    ``values`` are the prompt, response_a and response_b fields as stored: each
    a list of strings, or text holding one as JSON. All three must be such
    lists (otherwise the row is plain text: ``None``), with one entry per turn.
    One turn: the pair is that question and the two answers. Several turns:
    the last question and each model's last answer, with each model's own
    earlier turns (the questions and *its* answers) as ``history_a`` /
    ``history_b``, as MT-Bench's second turn is read (:func:`mt_bench_pair`).
    A null turn (Arena records one where a model gave no answer) or lists of
    different lengths are an :class:`InputError`.
    """
    turns = [_turn_list(value) for value in values]
    if any(t is None for t in turns):
        return None
    prompts, first, second = (t for t in turns if t is not None)
    lengths = {len(prompts), len(first), len(second)}
    if len(lengths) != 1:
        counts = ", ".join(f"'{name}' {len(t)}" for name, t in zip(names, (prompts, first, second), strict=True))
        raise InputError(f"an Arena row needs one answer per turn in each response; turns: {counts}",
                         kind=Reason.BAD_MESSAGES)
    for name, column in zip(names, (prompts, first, second), strict=True):
        for number, text in enumerate(column, start=1):
            if text is None:
                raise InputError(f"field '{name}' turn {number} of {len(column)} is null (no text was recorded); "
                                 "the row cannot be judged", kind=Reason.MISSING_FIELD)
    if len(prompts) == 1:
        return Pair(prompts[0], first[0], second[0], history=history)

    def conversation(answers: list[str]) -> tuple[Message, ...]:
        messages: list[Message] = list(history)
        for question, answer in zip(prompts[:-1], answers[:-1], strict=True):
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return tuple(messages)

    return Pair(prompts[-1], first[-1], second[-1], history_a=conversation(first), history_b=conversation(second))


def _turn_list(value: Any) -> list[Any] | None:
    """``value`` as a non-empty list of turns (strings or nulls): a list, or text holding one as JSON; else None."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.startswith("[") and text.endswith("]")) or len(text) > SERIALIZED_LIMIT * 64:
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if isinstance(value, list) and value and all(isinstance(t, str) or t is None for t in value):
        return value
    return None


def check_not_serialized(value: str, field: str) -> str:
    """``value``, unless it is a message list written as text (JSON or Python repr): then :class:`InputError`.

    Only text that starts with ``[``, ends with ``]``, names a ``role`` key and is
    at most :data:`SERIALIZED_LIMIT` characters long is parsed (``json.loads``,
    then ``ast.literal_eval``, which evaluates literals only).
    """
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")) or len(text) > SERIALIZED_LIMIT:
        return value
    if not _ROLE_KEY.search(text[:2000]):
        return value
    parsed = _parse_literal(text)
    if isinstance(parsed, list) and parsed and all(isinstance(m, Mapping) and "role" in m and "content" in m
                                                   for m in parsed):
        raise InputError(f"field '{field}' looks like a serialized message list ({len(parsed)} message(s) written "
                         "as text, as a CSV export writes them), not an answer; load the original format "
                         "(JSON, Parquet or the dataset) so that it is read as a list", kind=Reason.BAD_MESSAGES)
    return value


def _parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


# --------------------------------------------------------------------------- fields every shape reads


def required(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        present = ", ".join(sorted(map(str, row))[:12]) or "none"
        raise InputError(f"missing field '{name}' (present: {present})", kind=Reason.MISSING_FIELD)
    value = row[name]
    if value is None:
        raise InputError(f"field '{name}' is null", kind=Reason.MISSING_FIELD)
    return value


def required_string(row: Mapping[str, Any], name: str) -> str:
    value = required(row, name)
    if not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string, got {type_name(value)}", kind=Reason.WRONG_TYPE)
    return check_not_serialized(value, name)


def optional_string(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string or null, got {type_name(value)}", kind=Reason.WRONG_TYPE)
    return value


def history_of(row: Mapping[str, Any], c: Columns) -> tuple[Message, ...]:
    value = row.get(c.history)
    return () if value is None else check_messages(value, f"field '{c.history}'")


def prompt_and_history(row: Mapping[str, Any], c: Columns) -> tuple[str, tuple[Message, ...]]:
    """The prompt string and the history; a prompt given as a message list ends with the user's question."""
    prompt = row.get(c.prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) for m in prompt):
        messages = check_messages(prompt, f"field '{c.prompt}'")
        if messages[-1]["role"] != "user":
            raise InputError(f"field '{c.prompt}' must end with a user message, not {messages[-1]['role']!r}",
                             kind=Reason.BAD_MESSAGES)
        return messages[-1]["content"], (*history_of(row, c), *messages[:-1])
    return required_string(row, c.prompt), history_of(row, c)


def shared_conversation(
    row: Mapping[str, Any], c: Columns, chosen: list, rejected: list
) -> tuple[str, tuple[Message, ...]]:
    """Message-list rows: the prompt and history both lists share before their answers (or from the prompt column)."""
    checked_chosen = check_messages(chosen, f"field '{c.chosen}'")
    checked_rejected = check_messages(rejected, f"field '{c.rejected}'")
    for name, messages in ((c.chosen, checked_chosen), (c.rejected, checked_rejected)):
        if not messages or messages[-1]["role"] != "assistant":
            raise InputError(f"field '{name}' must end with an assistant message (the answer)",
                             kind=Reason.BAD_MESSAGES)
    shared, other = list(checked_chosen[:-1]), list(checked_rejected[:-1])
    if shared != other:
        at = next((i for i, (x, y) in enumerate(zip(shared, other, strict=False)) if x != y),
                  min(len(shared), len(other)))
        raise InputError(
            f"fields '{c.chosen}' and '{c.rejected}' do not share the conversation before the answer "
            f"(they differ at message {at})",
            kind=Reason.BAD_MESSAGES,
        )
    if not shared:
        prompt = row.get(c.prompt)
        if isinstance(prompt, str):
            return prompt, ()
        if not isinstance(prompt, list):
            raise InputError(
                f"fields '{c.chosen}' and '{c.rejected}' hold only the answer and there is no '{c.prompt}' "
                "string or message list to give the question",
                kind=Reason.MISSING_FIELD,
            )
        shared = list(check_messages(prompt, f"field '{c.prompt}'"))
    if not shared or shared[-1]["role"] != "user":
        last = repr(shared[-1]["role"]) if shared else "nothing"
        raise InputError(f"the conversation before the answer must end with a user message, not {last}",
                         kind=Reason.BAD_MESSAGES)
    return shared[-1]["content"], tuple(shared[:-1])


def type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)

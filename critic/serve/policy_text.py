"""The policy's chat markup, read off the text OpenRLHF sends to ``/get_reward``.

OpenRLHF builds a query from the policy's own token ids: the prompt is the
dataset's conversation through the *policy's* chat template (with its system
prompt and the assistant header), and the query is
``tokenizer.decode(prompt ids + response ids, skip_special_tokens=False)``, so
the response ends with the policy's end-of-turn text (``<|im_end|>``,
``<|eot_id|>``, ``</s>``...). The judge should see what a person would: the
user's question and the answer's words. This module takes the markup off, and
nothing else:

- :func:`read_prompt`: a prompt in ChatML (``<|im_start|>role\\n...<|im_end|>``)
  or Llama 3 (``<|begin_of_text|>``, ``<|start_header_id|>role<|end_header_id|>\\n\\n...<|eot_id|>``)
  markup, ending with the assistant header the template adds for generation
  (for ChatML, optionally followed by an empty ``<think>\\n\\n</think>\\n\\n``),
  becomes its last user message (the question) and the earlier user and
  assistant turns (the history); system messages are left out (the policy's
  instructions, not the user's question). Any other prompt (plain text, another
  template, markup that does not parse as a whole) is the question as it is.
- :func:`strip_end_of_turn`: the end-of-turn and end-of-text markers in
  :data:`END_MARKERS` at the end of a response are removed (repeatedly, with
  any whitespace between them); the response's own text, markers inside it
  included, is kept as written.
- :func:`split_transcript`: a query sent without its prompt is cut after its
  last assistant header when the part before it reads as a prompt above.
"""

from __future__ import annotations

import re
from typing import cast

from critic.types import Message

END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>",
               "<end_of_turn>", "<eos>", "<|end|>")
ROLES = ("system", "user", "assistant")

_CHATML_TURN = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>\n?", re.DOTALL)
_CHATML_OPEN = re.compile(r"<\|im_start\|>assistant\n(?:<think>\n\n</think>\n\n)?")
_LLAMA3_TURN = re.compile(r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
                          re.DOTALL)
_LLAMA3_OPEN = re.compile(r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n")
_TEMPLATES = ((None, _CHATML_TURN, _CHATML_OPEN), ("<|begin_of_text|>", _LLAMA3_TURN, _LLAMA3_OPEN))


def read_prompt(prompt: str) -> tuple[tuple[Message, ...], str]:
    """``(history, question)`` of a prompt as a chat template wrote it; a prompt in no known markup is the question."""
    for start, turn, opening in _TEMPLATES:
        turns = _turns(prompt, start, turn, opening)
        if turns is not None:
            history = tuple(message for message in turns[:-1] if message["role"] != "system")
            return history, turns[-1]["content"]
    return (), prompt


def split_transcript(query: str) -> tuple[str, str] | None:
    """``(prompt, response)``: the query cut after its last generation opening, when what precedes reads as a prompt."""
    for start, turn, opening in _TEMPLATES:
        for match in reversed(list(opening.finditer(query))):
            if _turns(query[: match.end()], start, turn, opening) is not None:
                return query[: match.end()], query[match.end():]
    return None


def strip_end_of_turn(response: str) -> str:
    """``response`` without the end-of-turn markers (:data:`END_MARKERS`) at its end."""
    while True:
        trimmed = response.rstrip()
        marker = next((marker for marker in END_MARKERS if trimmed.endswith(marker)), None)
        if marker is None:
            return response
        response = trimmed[: -len(marker)]


def _turns(prompt: str, start: str | None, turn: re.Pattern[str], opening: re.Pattern[str]) -> list[Message] | None:
    """The messages of a prompt made only of ``turn``s then the generation ``opening``, ending with a user turn."""
    position = 0
    if start is not None:
        if not prompt.startswith(start):
            return None
        position = len(start)
    messages: list[Message] = []
    while (match := turn.match(prompt, position)) is not None:
        messages.append(cast(Message, {"role": match.group(1), "content": match.group(2)}))
        position = match.end()
    if opening.fullmatch(prompt, position) is None or not messages or messages[-1]["role"] != "user":
        return None
    return messages

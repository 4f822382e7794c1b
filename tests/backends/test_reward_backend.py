"""The transformers reward scorer: one BOS, batch equality, pooling, context limit, batching, loading decisions.

The models here are tiny and randomly initialised (``critic.testing.tiny_reward_model``) over the
in-process tiny tokenizer: the mechanics are real, the scores are meaningless numbers.
"""

from __future__ import annotations

import logging

import pytest

from critic import ModelError
from critic.backends import loading
from critic.backends.reward import (
    DEMO_REFUSAL,
    RewardScorer,
    TransformersRewardScorer,
    check_reward_config,
    reward_attention,
)
from critic.backends.encoder import PromptEncoder
from critic.errors import InputError, Reason
from critic.options import BatchLimits, LoadOptions
from critic.testing import tiny_reward_model
from tests.backends.test_engine import out_of_memory_above
from tests.conftest import shared_path

CPU = LoadOptions(device="cpu")

LLAMA3_BOS = 128000
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
]
# Different lengths (so padding matters), with and without history.
CONVERSATIONS = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [{"role": "user", "content": "Name a prime. " * 12}, {"role": "assistant", "content": "7"}],
    CONVERSATION,
    [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time, " * 20}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ],
]


@pytest.fixture(scope="module")
def llama3_folder():
    return shared_path("fixtures", "llama3-tokenizer")


def llama3_tokenizer(folder, *, bos_in_template: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not bos_in_template:
        # What the Skywork-Reward cards did to their Llama-3.1 template.
        assert "bos_token + " in tokenizer.chat_template
        tokenizer.chat_template = tokenizer.chat_template.replace("bos_token + ", "")
    return tokenizer


@pytest.fixture(scope="module")
def demo_tokenizer(demo_backend):
    return demo_backend.tokenizer


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):  # the in-process tokenizer: these mechanics tests load no demo model
    return tiny_reward_model(tiny_tokenizer)


def test_single_bos_when_the_template_writes_it(llama3_folder):
    tokenizer = llama3_tokenizer(llama3_folder, bos_in_template=True)
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert tokenizer(text)["input_ids"][:2] == [LLAMA3_BOS, LLAMA3_BOS]  # the naive way doubles it
    ids = PromptEncoder(tokenizer).conversation_ids(CONVERSATION)
    assert ids.count(LLAMA3_BOS) == 1 and ids[0] == LLAMA3_BOS
    assert ids == tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]


def test_single_bos_when_the_template_omits_it(llama3_folder):
    tokenizer = llama3_tokenizer(llama3_folder, bos_in_template=False)
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    ids = PromptEncoder(tokenizer).conversation_ids(CONVERSATION)
    assert ids.count(LLAMA3_BOS) == 1 and ids[0] == LLAMA3_BOS
    assert ids == tokenizer(text)["input_ids"]  # the card's way: render, then tokenise once


def test_single_bos_where_tokenize_true_gives_none(llama3_folder):
    with_bos = llama3_tokenizer(llama3_folder, bos_in_template=True)
    without = llama3_tokenizer(llama3_folder, bos_in_template=False)
    direct = without.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]
    assert LLAMA3_BOS not in direct
    ids = PromptEncoder(without).conversation_ids(CONVERSATION)
    assert ids == [LLAMA3_BOS] + direct
    assert ids == PromptEncoder(with_bos).conversation_ids(CONVERSATION)  # the template's choice changes nothing


def test_chatml_template_is_left_as_written(demo_tokenizer):
    # SmolLM2 calls <|im_start|> its BOS; the template writes it once and the tokenizer adds none.
    direct = demo_tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True)["input_ids"]
    assert PromptEncoder(demo_tokenizer).conversation_ids(CONVERSATION) == direct


def test_tokenizer_without_bos_gets_none():
    class NoBos:
        bos_token_id = None

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["content"] for m in messages)

        def get_added_vocab(self):
            return {}

        def __call__(self, text, add_special_tokens):
            return {"input_ids": [len(part) for part in text.split("|")]}

    assert PromptEncoder(NoBos()).conversation_ids(CONVERSATION) == [9, 12, 1]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_batched_scores_equal_one_at_a_time(tiny_model, tiny_tokenizer, padding_side):
    scorer = TransformersRewardScorer(tiny_model, tiny_tokenizer, limits=BatchLimits(3), padding_side=padding_side)
    batched = scorer.score(CONVERSATIONS)
    alone = [scorer.score([conversation])[0] for conversation in CONVERSATIONS]
    assert all(isinstance(value, float) for value in batched)
    assert batched == pytest.approx(alone, abs=1e-3)
    assert max(alone) - min(alone) > 1e-2  # distinct scores, so a wrong pooling position would show


def test_padding_side_does_not_change_scores(tiny_model, tiny_tokenizer):
    right = TransformersRewardScorer(tiny_model, tiny_tokenizer, padding_side="right").score(CONVERSATIONS)
    left = TransformersRewardScorer(tiny_model, tiny_tokenizer, padding_side="left").score(CONVERSATIONS)
    assert right == pytest.approx(left, abs=1e-3)


def test_score_is_read_at_the_last_token_when_pad_is_eos(llama3_folder):
    import torch

    tokenizer = llama3_tokenizer(llama3_folder, bos_in_template=True)
    model = tiny_reward_model(tokenizer)
    assert model.config.pad_token_id == tokenizer.eos_token_id  # <|eot_id|>, which ends every turn
    ids = PromptEncoder(tokenizer).conversation_ids(CONVERSATION)
    assert ids[-1] == tokenizer.eos_token_id
    with torch.no_grad():
        # The model's own forward pools the last position when given embeddings...
        last = model(inputs_embeds=model.get_input_embeddings()(torch.tensor([ids]))).logits[0, 0].item()
        # ...but given ids it takes the last token that is not pad_token_id: one too early here.
        by_pad_id = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    scorer = TransformersRewardScorer(model, tokenizer, limits=BatchLimits(4))
    scores = scorer.score([CONVERSATION, CONVERSATIONS[3], CONVERSATIONS[0]])
    assert scores[0] == pytest.approx(last, abs=1e-4)
    assert abs(by_pad_id - last) > 1e-4
    assert scorer._forward_alone(ids) == pytest.approx(last, abs=1e-4)  # the fallback for unknown heads


def test_conversation_longer_than_the_context_fails_alone(tiny_tokenizer):
    model = tiny_reward_model(tiny_tokenizer, max_position_embeddings=64)
    scorer = TransformersRewardScorer(model, tiny_tokenizer)
    assert scorer.max_length == 64
    results = scorer.score([CONVERSATIONS[0], CONVERSATIONS[3], CONVERSATIONS[2]])
    assert isinstance(results[0], float) and isinstance(results[2], float)
    assert isinstance(results[1], InputError) and results[1].kind is Reason.TOO_LONG
    assert "longer than the model's context of 64 tokens" in str(results[1])
    capped = TransformersRewardScorer(model, tiny_tokenizer, limits=BatchLimits(max_length=10))
    assert isinstance(capped.score([CONVERSATIONS[0]])[0], InputError) and capped.max_length == 10
    assert "context of 10 tokens" in str(capped.score([CONVERSATIONS[0]])[0])
    assert TransformersRewardScorer(model, tiny_tokenizer, limits=BatchLimits(max_length=10**6)).max_length == 64


def test_scorer_satisfies_the_protocol(tiny_model, tiny_tokenizer):
    assert isinstance(TransformersRewardScorer(tiny_model, tiny_tokenizer), RewardScorer)


def gemma2_config():
    from transformers import Gemma2Config

    return Gemma2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, head_dim=16, num_labels=1)


def test_gemma2_gets_eager_attention_never_sdpa(monkeypatch, caplog):
    from transformers import LlamaConfig

    config = gemma2_config()
    assert config.model_type == "gemma2"
    assert reward_attention(config, "cpu") == "eager"
    assert reward_attention(config, "cuda") == "eager"  # no flash-attn here
    assert reward_attention(LlamaConfig(), "cpu") == "sdpa"
    with caplog.at_level(logging.WARNING, logger="critic"):
        assert reward_attention(config, "cpu", "sdpa") == "sdpa"  # asked for explicitly: obeyed, with a warning
    assert "soft-capping" in caplog.text
    import critic.backends.loading

    monkeypatch.setattr(critic.backends.loading.importlib.util, "find_spec", lambda name: object())
    assert reward_attention(config, "cuda") == "flash_attention_2"


def test_attention_is_decided_from_the_config_before_any_weights(tmp_path, monkeypatch):
    gemma2_config().save_pretrained(tmp_path)  # a config, no weights, no tokenizer
    seen = {}

    def fake_load_model(source, model_class, **options):
        seen.update(options)
        raise ModelError("stop here")

    monkeypatch.setattr(loading, "load_tokenizer", lambda source, **options: None)
    monkeypatch.setattr(loading, "load_model", fake_load_model)
    with pytest.raises(ModelError, match="stop here"):
        TransformersRewardScorer.from_pretrained(str(tmp_path), load=CPU)
    assert seen["attn_implementation"] == "eager"


def test_models_that_are_not_one_label_classifiers_are_refused(tmp_path):
    from transformers import LlamaConfig

    with pytest.raises(ModelError, match=r"num_labels=2.*exactly one"):
        check_reward_config(LlamaConfig(num_labels=2, architectures=["LlamaForSequenceClassification"]), "m")
    with pytest.raises(ModelError, match="is a LlamaForCausalLM, not a reward model"):
        check_reward_config(LlamaConfig(num_labels=1, architectures=["LlamaForCausalLM"]), "m")
    # Checked from the config, before the (absent) weights are looked for.
    LlamaConfig(num_labels=3, architectures=["LlamaForSequenceClassification"]).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="num_labels=3"):
        TransformersRewardScorer.from_pretrained(str(tmp_path), load=CPU)


def test_demo_is_refused_with_the_reason():
    with pytest.raises(ModelError) as caught:
        TransformersRewardScorer.from_pretrained("demo")
    assert str(caught.value) == DEMO_REFUSAL
    assert "no reward model ships offline" in DEMO_REFUSAL and "meaningless" in DEMO_REFUSAL


@pytest.mark.parametrize("model", ["/no/such/reward/folder", "no-such-org/no-such-reward-model"])
def test_missing_or_unreachable_model_is_one_clear_error(model):
    # HF_HUB_OFFLINE=1 (conftest) makes the hub unreachable, as on a machine with no network.
    with pytest.raises(ModelError) as caught:
        TransformersRewardScorer.from_pretrained(model, load=CPU)
    message = str(caught.value)
    assert model in message and "reward model" in message
    assert "'demo' is a generative model and cannot score" in message


def test_saved_model_loads_by_path_and_scores_the_same(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    loaded = TransformersRewardScorer.from_pretrained(str(tmp_path), load=CPU)
    expected = TransformersRewardScorer(tiny_model, tiny_tokenizer).score(CONVERSATIONS)
    assert loaded.score(CONVERSATIONS) == pytest.approx(expected, abs=1e-5)
    assert loaded.model.config._attn_implementation == "sdpa"


def test_batches_follow_the_limits_longest_first(tiny_model, tiny_tokenizer):
    scorer = TransformersRewardScorer(tiny_model, tiny_tokenizer, limits=BatchLimits(2, max_batch_tokens=200))
    batches = []
    forward = scorer._forward

    def recording(sequences):
        batches.append([len(ids) for ids in sequences])
        return forward(sequences)

    scorer._forward = recording  # type: ignore[method-assign]
    scores = scorer.score(CONVERSATIONS)
    assert scores == pytest.approx(TransformersRewardScorer(tiny_model, tiny_tokenizer).score(CONVERSATIONS), abs=1e-4)
    assert sorted(width for batch in batches for width in batch) == sorted(
        len(scorer.conversation_ids(conversation)) for conversation in CONVERSATIONS)
    for batch in batches:
        assert len(batch) <= 2 and (len(batch) == 1 or len(batch) * max(batch) <= 200)
    assert [max(batch) for batch in batches] == sorted((max(batch) for batch in batches), reverse=True)


def test_out_of_memory_halves_the_batch_and_loses_nothing(tiny_model, tiny_tokenizer, caplog):
    scorer = TransformersRewardScorer(tiny_model, tiny_tokenizer, limits=BatchLimits(16))
    expected = scorer.score(CONVERSATIONS)
    with out_of_memory_above(tiny_model.model, 1) as completed, caplog.at_level(logging.WARNING, logger="critic"):
        scores = scorer.score(CONVERSATIONS)
    assert scores == pytest.approx(expected, abs=1e-4)
    assert completed == [1] * len(CONVERSATIONS)  # every conversation scored exactly once, alone
    assert "retrying them in two halves" in caplog.text


def test_out_of_memory_on_one_conversation_fails_that_conversation_only(tiny_model, tiny_tokenizer):
    import torch

    scorer = TransformersRewardScorer(tiny_model, tiny_tokenizer, limits=BatchLimits(1))
    limit = len(scorer.conversation_ids(CONVERSATIONS[0]))

    def hook(module, args, kwargs):
        if kwargs["input_ids"].shape[1] > limit:
            raise torch.cuda.OutOfMemoryError("simulated")

    handle = tiny_model.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        results = scorer.score([CONVERSATIONS[0], CONVERSATIONS[3]])
    finally:
        handle.remove()
    assert isinstance(results[0], float)
    assert isinstance(results[1], ModelError) and "out of GPU memory on a single conversation" in str(results[1])


def test_text_the_tokenizer_cannot_take_fails_only_its_conversation(tiny_model, tiny_tokenizer, monkeypatch):
    scorer = TransformersRewardScorer(tiny_model, tiny_tokenizer)
    original = tiny_tokenizer.apply_chat_template

    def fussy(conversation, **options):
        if any("UNREADABLE" in message["content"] for message in conversation):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, Tuple[InputSequence, InputSequence]]")
        return original(conversation, **options)

    monkeypatch.setattr(tiny_tokenizer, "apply_chat_template", fussy)
    broken = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "UNREADABLE"}]
    results = scorer.score([CONVERSATIONS[0], broken, CONVERSATIONS[1]])
    assert isinstance(results[0], float) and isinstance(results[2], float)
    assert isinstance(results[1], InputError) and results[1].kind is Reason.BAD_TEXT
    assert "tokenizer could not read this conversation" in str(results[1])


def test_limits_are_checked_like_the_judges(tiny_model, tiny_tokenizer):
    with pytest.raises(InputError, match="max_batch_size must be a whole number of at least 1"):
        BatchLimits(max_batch_size=0)
    with pytest.raises(InputError, match="overflow='truncate'"):
        TransformersRewardScorer(tiny_model, tiny_tokenizer, limits=BatchLimits(overflow="truncate"))
    with pytest.raises(InputError, match="overflow='truncate'"):
        TransformersRewardScorer.from_pretrained("/no/such/reward/model", limits=BatchLimits(overflow="truncate"))

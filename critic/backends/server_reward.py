"""The server backend for reward models: conversations scored by a vLLM pooling server (``--backend server``).

The server runs the reward model with ``vllm serve MODEL --runner pooling``
(``python -m critic.backends.vllm_serve`` here); critic keeps its tokenizer and
sends each conversation's token ids (:meth:`PromptEncoder.encode_conversations`:
one BOS, the same length limit and per-conversation errors as the local
scorers) to ``POST /classify`` with ``use_activation: false``, so the score is the
raw logit the transformers scorer gives, not vLLM's sigmoid of it.

Each conversation is its own HTTP request (at most ``max_concurrency`` in flight;
the server batches concurrent requests itself), so a failure costs that
conversation alone. SGLang's reward API is not spoken: ``dialect`` must be
``auto`` or ``vllm``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from critic.backends._http import HttpClient
from critic.backends.encoder import EncodingScorer, PromptEncoder, scored_in_place
from critic.backends.reward import REWARD_ALTERNATIVES, check_reward_model
from critic.backends.server import cap_max_length, find_model, http_client, served_options
from critic.backends.server_wire import classify_body, classify_scores
from critic.errors import CriticError, InputError
from critic.options import BatchLimits, LoadOptions
from critic.types import Message

logger = logging.getLogger("critic")


class ServerRewardScorer(EncodingScorer):
    """Scores conversations with a reward model behind a vLLM pooling server (see the module doc)."""

    kind = "server"

    def __init__(self, encoder: PromptEncoder, client: HttpClient, *, served_model: str | None = None,
                 name: str = "") -> None:
        self.encoder = encoder
        self.client = client
        self.served_model = served_model
        self.name = name
        self._connected = False

    @classmethod
    def from_pretrained(cls, model: str, *, load: LoadOptions = LoadOptions(),
                        limits: BatchLimits = BatchLimits()) -> ServerRewardScorer:
        """A scorer for the reward model ``model`` served at ``load.server.base_url`` (its tokenizer read here)."""
        server = served_options(load)
        if server.dialect not in ("auto", "vllm"):
            raise InputError(f"a reward model is scored through vLLM's /classify; dialect '{server.dialect}' "
                             "(--dialect) has no reward endpoint critic speaks. Use --dialect auto or vllm")
        tokenizer_name = server.tokenizer or model
        check_reward_model(tokenizer_name, limits)
        encoder = PromptEncoder.from_pretrained(tokenizer_name, trust_remote_code=load.trust_remote_code,
                                                max_length=limits.max_length, alternatives=REWARD_ALTERNATIVES)
        scorer = cls(encoder, http_client(server), served_model=server.served_model, name=model)
        scorer.connect()
        return scorer

    def connect(self) -> None:
        """Find the served model's name and context once (the context caps ``max_length``)."""
        self.client.call(self.aconnect())

    async def aconnect(self) -> None:
        if self._connected:
            return
        served, length, _ = await find_model(self.client, self.served_model, "vllm")
        self.served_model = served
        cap_max_length(self.encoder, length)
        self._connected = True
        logger.info("scoring through %s: model %s, context %s", self.client.base_url, served, length)

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        return self.client.call(self.ascore(conversations))

    async def ascore(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        await self.aconnect()  # first: the server's context caps what encoding lets through
        encoded = self.encoder.encode_conversations(conversations)
        scores = await asyncio.gather(*(self._one(ids) for ids in encoded if isinstance(ids, list)))
        return scored_in_place(encoded, scores)

    async def _one(self, ids: list[int]) -> float | CriticError:
        try:
            answer = await self.client.post("/classify", classify_body([ids], model=self.served_model))
            return classify_scores(answer, 1)[0]
        except CriticError as error:
            return error

    def close(self) -> None:
        """Close the HTTP connections (the server keeps running)."""
        self.client.close()

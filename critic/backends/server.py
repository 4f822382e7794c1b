"""The server backend: a generative judge whose model runs behind a server (``--backend server``).

critic keeps the judge model's tokenizer here (:class:`PromptEncoder`, the
encoder every backend uses) and sends the server token ids only, so the server
reads exactly the ids the local backends feed their models: the chat template's
own markers as control tokens, judged text as plain text, one BOS, ``[[``
prefilled. The wire formats are in :mod:`critic.backends.server_wire`:

score       one greedy step per prompt; the verdict letters' log-probabilities
            over the full vocabulary (vLLM's ``logprob_token_ids``, SGLang's
            ``token_ids_logprob``). On a server without them (the ``openai``
            dialect), top-k log-probabilities: a letter outside the top k fails
            that prompt with a reason.
constrained the score step's argmax, written as the verdict (``[[A]]``): the letter
            a constrained step would force, without asking the server for
            constrained decoding.
generate    greedy decoding from the same ids to the end-of-turn ids; the new
            ids come back and are decoded and parsed as on the local backends.

What the server is, is found once, on first use (:meth:`ServerBackend.connect`):
the dialect (``auto``: SGLang when it answers ``/get_model_info`` and not
``/v1/models``, else vLLM's completions with ``logprob_token_ids`` when a probe
shows them, else top-k), the served model's name (the one the server lists,
unless ``served_model`` names it) and its context length, which caps the
encoder's ``max_length`` so an over-long prompt fails here, with critic's reason.

Requests: the two orders of a pair (a *family*, grouped as the transformers
backend groups them) go to the server in one HTTP request, and families are sent
in the order of their token ids, so pairs that share a question are in flight
together and the server's prefix cache computes shared prefixes once. At most
``max_concurrency`` HTTP requests are in flight; a busy or unreachable server is
asked again with backoff (:mod:`critic.backends._http`); a request that fails for
good fails its own prompts only, each with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critic.backends._batching import common_prefix_length, find_families
from critic.backends._http import HttpClient, ServerError
from critic.backends._overflow import pair_key
from critic.backends.base import BackendOutput, VerdictRequest
from critic.backends.encoder import EncodingBackend, PromptEncoder
from critic.backends.server_wire import (
    TOP_K,
    Dialect,
    completion_logprobs,
    completion_token_ids,
    completions_choices,
    completions_generate_body,
    completions_score_body,
    has_letter_logprobs,
    sglang_generate_body,
    sglang_logprobs,
    sglang_outputs,
    sglang_score_body,
    sglang_token_ids,
)
from critic.errors import CriticError, InputError, ModelError
from critic.options import BatchLimits, LoadOptions, ServerOptions

logger = logging.getLogger("critic")

# Prompts in one HTTP request at most: a pair's two orders, or a few pairs sharing a question.
FAMILY_SIZE = 8


@dataclass(frozen=True)
class ServerInfo:
    """What :meth:`ServerBackend.connect` found: how to talk to the server and what it serves."""

    dialect: Dialect
    served_model: str | None
    max_model_len: int | None

    @property
    def full_vocabulary(self) -> bool:
        """Whether the letters' log-probabilities are asked for by id (else: top-k)."""
        return self.dialect != "openai"


class ServerBackend(EncodingBackend):
    """Judges requests through a model server (see the module doc).

    Args:
        encoder: the judge model's prompt encoder (its tokenizer; no weights).
        client: the server's HTTP client.
        dialect: ``"auto"`` (found once) or one of :data:`~critic.backends.server_wire.DIALECTS`.
        served_model: the name the server knows the model by; ``None``: the one it lists.
        name: the model's name, for logs and descriptions.
        top_k: how many top log-probabilities the ``openai`` dialect asks for.
    """

    kind = "server"

    def __init__(self, encoder: PromptEncoder, client: HttpClient, *, dialect: str = "auto",
                 served_model: str | None = None, name: str = "", top_k: int = TOP_K) -> None:
        self.encoder = encoder
        self.client = client
        self.dialect = dialect
        self.served_model = served_model
        self.name = name
        self.top_k = top_k
        self.info: ServerInfo | None = None
        self._spellings: dict[str, int] | None = None

    @classmethod
    def from_pretrained(cls, model: str, *, load: LoadOptions = LoadOptions(), limits: BatchLimits = BatchLimits(),
                        share_prefix: bool = True) -> ServerBackend:
        """A backend for the judge ``model`` served at ``load.server.base_url``; connects once to find the server.

        ``model`` (or ``load.server.tokenizer``) names the tokenizer critic builds ids
        with. ``share_prefix`` is the server's business (its prefix cache) and ignored.
        """
        server = served_options(load)
        encoder = PromptEncoder.from_pretrained(server.tokenizer or model, trust_remote_code=load.trust_remote_code,
                                                max_length=limits.max_length, overflow=limits.overflow)
        backend = cls(encoder, http_client(server), dialect=server.dialect, served_model=server.served_model,
                      name=model)
        backend.connect()
        return backend

    # --- finding out what the server is ------------------------------------------------------------

    def connect(self) -> ServerInfo:
        """What the server is (found once, remembered); :class:`ServerError` when it cannot be reached."""
        return self.client.call(self.aconnect())

    async def aconnect(self) -> ServerInfo:
        if self.info is None:
            self.info = await self._detect()
            cap_max_length(self.encoder, self.info.max_model_len)
            logger.info("judging through %s: %s dialect, model %s, context %s", self.client.base_url,
                        self.info.dialect, self.info.served_model or "(the server's)", self.info.max_model_len)
        return self.info

    async def _detect(self) -> ServerInfo:
        served, length, dialect = await find_model(self.client, self.served_model, self.dialect)
        if dialect == "auto":
            letters = self.encoder.letter_ids(("A", "B"))
            body = completions_score_body([self.encoder.verdict_tokens.opening], letters, model=served,
                                          full_vocabulary=True)
            answer = await self.client.post("/v1/completions", body)
            dialect = "vllm" if has_letter_logprobs(answer, letters) else "openai"
            if dialect == "openai":
                logger.warning("the server at %s gives no log-probabilities by token id (logprob_token_ids): "
                               "verdict letters are read from its top-k log-probabilities, and a pair whose "
                               "letter is not among them fails", self.client.base_url)
        return ServerInfo(dialect, served, length)  # type: ignore[arg-type]

    # --- judging ---------------------------------------------------------------------------------

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        return self.client.call(self.arun(requests))

    async def arun(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        try:
            info = await self.aconnect()
        except CriticError as error:  # unreachable, or not the server asked for: every request says why
            return [BackendOutput(error=error) for _ in requests]
        prompts = self.encoder.fit(requests)
        outputs: list[BackendOutput | None] = [p if isinstance(p, BackendOutput) else None for p in prompts]
        todo = [index for index, prompt in enumerate(prompts) if not isinstance(prompt, BackendOutput)]
        ids: list[list[int]] = [prompts[index] for index in todo]  # type: ignore[misc]
        families = find_families(ids, [pair_key(requests[index]) for index in todo], max_members=FAMILY_SIZE)
        # Families that share a question sit next to each other in id order, so they are in flight together.
        families.sort(key=lambda family: ids[family.members[0]])
        answers = await asyncio.gather(*(
            self._family(info, [requests[todo[m]] for m in family.members], [ids[m] for m in family.members])
            for family in families))
        for family, answer in zip(families, answers, strict=True):
            for member, output in zip(family.members, answer, strict=True):
                outputs[todo[member]] = output
        return outputs  # type: ignore[return-value]  # every place is filled

    async def _family(self, info: ServerInfo, requests: list[VerdictRequest],
                      ids: list[list[int]]) -> list[BackendOutput]:
        """One HTTP request per kind of step in the family; a request that fails fails its prompts alone."""
        outputs: list[BackendOutput | None] = [None] * len(requests)
        steps: dict[tuple[str, int], list[int]] = {}
        for index, request in enumerate(requests):
            kind = ("generate", request.max_new_tokens) if request.mode == "generate" else ("score", 1)
            steps.setdefault(kind, []).append(index)
        for (step, max_tokens), members in steps.items():
            chosen = [requests[i] for i in members]
            try:
                if step == "generate":
                    answers = await self._generate(info, [ids[i] for i in members], max_tokens)
                else:
                    answers = await self._score(info, chosen, [ids[i] for i in members])
            except CriticError as error:
                answers = [BackendOutput(error=error)] * len(members)
            for index, output in zip(members, answers, strict=True):
                outputs[index] = output
        return outputs  # type: ignore[return-value]

    async def _score(self, info: ServerInfo, requests: list[VerdictRequest],
                     ids: list[list[int]]) -> list[BackendOutput]:
        letters = sorted({letter for request in requests for letter in request.verdicts})
        letter_ids = self.encoder.letter_ids(letters)
        if info.dialect == "sglang":
            outputs = sglang_outputs(await self.client.post("/generate", sglang_score_body(ids, letter_ids)), len(ids))
            logprobs = [_each(sglang_logprobs, output) for output in outputs]
        else:
            body = completions_score_body(ids, letter_ids, model=info.served_model,
                                          full_vocabulary=info.full_vocabulary, top_k=self.top_k)
            choices = completions_choices(await self.client.post("/v1/completions", body), len(ids))
            spellings = None if info.full_vocabulary else self._letter_spellings()
            logprobs = [_each(read_ids_then(completion_logprobs), choice, sent, spellings)
                        for choice, sent in zip(choices, ids, strict=True)]
        return [self._verdict(request, found, info) for request, found in zip(requests, logprobs, strict=True)]

    def _verdict(self, request: VerdictRequest, found: dict[int, float] | CriticError,
                 info: ServerInfo) -> BackendOutput:
        if isinstance(found, CriticError):
            return BackendOutput(error=found)
        try:
            probs = self.encoder.letter_probs(found, request.verdicts)
        except ModelError as error:
            if info.full_vocabulary:
                return BackendOutput(error=error)
            missing = [letter for letter, token in zip(request.verdicts, self.encoder.letter_ids(request.verdicts),
                                                       strict=True) if token not in found]
            return BackendOutput(error=ModelError(
                f"verdict letter(s) {', '.join(missing)} not among the server's top log-probabilities, so their "
                "probability is unknown; this server gives no log-probabilities by token id (logprob_token_ids). "
                "Use a vLLM server (or --dialect sglang for SGLang's native API) for full-vocabulary probabilities"))
        if request.mode == "constrained":
            return BackendOutput(text=self.encoder.verdict_text(max(probs, key=probs.__getitem__)))
        return BackendOutput(letter_probs=probs)

    async def _generate(self, info: ServerInfo, ids: list[list[int]], max_tokens: int) -> list[BackendOutput]:
        stops = self.encoder.stop_ids
        if info.dialect == "sglang":
            body = sglang_generate_body(ids, max_tokens=max_tokens, stop_ids=stops)
            generated = [_each(sglang_token_ids, output)
                         for output in sglang_outputs(await self.client.post("/generate", body), len(ids))]
        else:
            body = completions_generate_body(ids, max_tokens=max_tokens, stop_ids=stops, model=info.served_model)
            choices = completions_choices(await self.client.post("/v1/completions", body), len(ids))
            generated = [_each(read_ids_then(completion_token_ids), choice, sent)
                         for choice, sent in zip(choices, ids, strict=True)]
        return [BackendOutput(error=tokens) if isinstance(tokens, CriticError)
                else BackendOutput(text=self.encoder.generated_text(tokens)) for tokens in generated]

    def _letter_spellings(self) -> dict[str, int]:
        """Text -> id for each verdict letter whose text no other token of the vocabulary decodes to.

        For a server that keys top-k log-probabilities by token text: such a key is
        read as a letter only when the text names exactly one token (found once).
        """
        if self._spellings is None:
            letters = {self.encoder.decode([token]): token for token in self.encoder.verdict_tokens.letters.values()}
            seen: dict[str, int] = {}
            for token in range(len(self.encoder.tokenizer)):
                text = self.encoder.decode([token])
                if text in letters:
                    seen[text] = seen.get(text, 0) + 1
            self._spellings = {text: token for text, token in letters.items() if seen.get(text) == 1}
        return self._spellings

    def close(self) -> None:
        """Close the HTTP connections (the server keeps running)."""
        self.client.close()


def served_options(load: LoadOptions) -> ServerOptions:
    """``load.server``, or an :class:`InputError` saying how to give it."""
    if load.server is None:
        raise InputError("the server backend needs the server's address: --base-url URL (in Python, "
                         "LoadOptions(backend='server', server=ServerOptions(base_url=URL)))")
    return load.server


def cap_max_length(encoder: PromptEncoder, context: int | None) -> None:
    """Cap the encoder's ``max_length`` at the server's context, so an over-long prompt fails here, with a reason."""
    if context is not None:
        encoder.max_length = min(encoder.max_length, context) if encoder.max_length else context


def http_client(server: ServerOptions) -> HttpClient:
    """The HTTP client ``server`` describes (its API key read from the environment now)."""
    return HttpClient(server.base_url, api_key=server.read_api_key(), timeout=server.timeout,
                      retries=server.retries, max_concurrency=server.max_concurrency)


async def find_model(client: HttpClient, served_model: str | None, dialect: str) -> tuple[str | None, int | None, str]:
    """The served model's name, its context length (None: not said) and the dialect (``auto`` if still open).

    ``GET /v1/models`` (vLLM, OpenAI-compatible servers); a server without it that
    answers SGLang's ``GET /get_model_info`` is SGLang.
    """
    try:
        listing = await client.get("/v1/models")
    except ServerError as error:
        if dialect not in ("auto", "sglang") or error.status is None:
            raise
        await client.get("/get_model_info")  # raises when this is no SGLang server either
        return served_model, None, "sglang"
    models = [item for item in listing.get("data", []) if isinstance(item, dict)] if isinstance(listing, dict) else []
    names = [str(item.get("id")) for item in models]
    if served_model is None:
        if len(names) != 1:
            raise InputError(f"the server at {client.base_url} serves {len(names)} models ({', '.join(names)}); "
                             "name one with --served-model")
        served_model = names[0]
    elif served_model not in names:
        raise InputError(f"the server at {client.base_url} serves no model named '{served_model}' (it serves "
                         f"{', '.join(names) or 'none'}); check --served-model")
    length = next((item.get("max_model_len") for item in models if item.get("id") == served_model), None)
    return served_model, int(length) if isinstance(length, int) else None, dialect


def read_ids_then(read: Any) -> Any:
    """``read(choice, *rest)`` after checking that the server read the ids critic sent (``prompt_token_ids``).

    vLLM echoes the prompt's ids when asked (``return_token_ids``); a server, proxy or
    router that tokenised again, or changed the ids, fails the prompt instead of
    judging something else. A server that echoes nothing is taken at its word.
    """

    def checked(choice: Any, sent: list[int], *rest: Any) -> Any:
        echoed = choice.get("prompt_token_ids")
        if echoed is not None and list(echoed) != list(sent):
            raise ServerError(f"the server read {len(echoed)} token ids where critic sent {len(sent)} (they differ "
                              f"from position {common_prefix_length(echoed, sent)}): it did not take the prompt as "
                              "token ids. Point --base-url at the model server itself")
        return read(choice, *rest)

    return checked


def _each(read: Any, *values: Any) -> Any:
    """``read(*values)``, or the :class:`CriticError` it raised: one malformed answer fails its own prompt."""
    try:
        return read(*values)
    except CriticError as error:
        return error

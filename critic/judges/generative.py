"""The judge: pairs in, debiased preferences out.

For each pair it renders the template in both presentation orders, asks its
backend for verdicts, reads them (probabilities in ``score`` mode, parsed
verdict tokens otherwise) and merges the two orders.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from critic.backends.base import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    Backend,
    BackendOutput,
    VerdictRequest,
)
from critic.backends.loading import DEFAULT_MODEL
from critic.errors import CriticError, InputError, ModelError, VerdictError
from critic.merge import merge_orders, order_from_letter_probs, order_from_verdict
from critic.templates import DEFAULT_TEMPLATE, JudgeTemplate, load_template
from critic.types import MODES, Mode, Order, OrderJudgment, Pair, Preference
from critic.verdicts import parse_verdict

if TYPE_CHECKING:
    import torch

    from critic.backends._overflow import Overflow

logger = logging.getLogger("critic")

DEFAULT_MAX_NEW_TOKENS = 2048
PairLike = Pair | Mapping[str, Any]


@runtime_checkable
class PairwiseJudge(Protocol):
    """What jobs (cleaning, evaluation) need from a judge of either kind."""

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]: ...

    def describe(self) -> dict[str, Any]: ...


class Judge:
    """A pairwise judge over any :class:`~critic.backends.base.Backend`.

    Args:
        backend: what runs the model (``TransformersBackend``, ``FakeBackend``, ...).
        template: a built-in template name, a ``.jinja`` path, or a loaded template.
        mode: ``"score"`` (default), ``"constrained"`` or ``"generate"``.
        swap: judge both presentation orders and merge them (default True).
        max_new_tokens: generation budget in ``generate`` mode.
        model_name: recorded for reports.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        template: str | JudgeTemplate = DEFAULT_TEMPLATE,
        mode: Mode = "score",
        swap: bool = True,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        model_name: str = "",
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
        if max_new_tokens < 1:
            raise InputError("max_new_tokens must be at least 1")
        self.backend = backend
        self.template = template if isinstance(template, JudgeTemplate) else load_template(template)
        self.mode: Mode = mode
        self.swap = swap
        self.max_new_tokens = max_new_tokens
        self.model_name = model_name

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        template: str | JudgeTemplate = DEFAULT_TEMPLATE,
        mode: Mode = "score",
        swap: bool = True,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        overflow: Overflow = "error",
        share_prefix: bool = True,
    ) -> Judge:
        """Load a generative judge: a hub id, a local folder, a ``.gguf`` file, or ``"demo"``.

        ``batch_size`` caps the prompts per forward pass and ``max_batch_tokens``
        the padded tokens per pass; prompts are sorted by length to waste little.
        A prompt longer than ``max_length`` (default: the model's context) fails
        that pair with an :class:`InputError` unless ``overflow="truncate"``,
        which shortens both responses in the middle behind a visible marker.
        ``share_prefix`` computes the common start of a pair's two orders once.
        """
        from critic.backends.transformers import TransformersBackend

        backend = TransformersBackend.from_pretrained(
            model,
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            max_batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_length=max_length,
            overflow=overflow,
            share_prefix=share_prefix,
        )
        return cls(backend, template=template, mode=mode, swap=swap, max_new_tokens=max_new_tokens, model_name=model)

    def describe(self) -> dict[str, Any]:
        """What this judge is, for reports and summaries."""
        return {
            "kind": "generative",
            "model": self.model_name,
            "template": self.template.name,
            "mode": self.mode,
            "swap": self.swap,
        }

    def compare(self, prompt: str, response_a: str, response_b: str, *, reference: str | None = None) -> Preference:
        """Judge one pair: is ``response_a`` or ``response_b`` the better answer to ``prompt``?"""
        return self.compare_batch([Pair(prompt, response_a, response_b, reference)])[0]

    def compare_batch(self, pairs: Iterable[PairLike]) -> list[Preference]:
        """Judge many pairs at once (batched on the backend); results keep the input order.

        Raises the first error met (a :class:`VerdictError` names the pair's index).
        """
        results = self.compare_each(pairs)
        for result in results:
            if isinstance(result, CriticError):
                raise result
        return results  # type: ignore[return-value]

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """Like :meth:`compare_batch`, but a pair that fails yields its error in place.

        For long jobs: one unreadable verdict costs one pair, not the batch.
        """
        checked = [_as_pair(pair, index) for index, pair in enumerate(pairs)]
        orders: tuple[Order, ...] = ("ab", "ba") if self.swap else ("ab",)
        requests = [self._request(pair, order) for pair in checked for order in orders]
        judged = self._judge_requests(requests, orders * len(checked))
        results: list[Preference | CriticError] = []
        for index in range(len(checked)):
            per_order = judged[index * len(orders) : (index + 1) * len(orders)]
            failure = next((item for item in per_order if isinstance(item, CriticError)), None)
            if failure is not None:
                results.append(_with_pair_index(failure, index))
            else:
                results.append(merge_orders(per_order))  # type: ignore[arg-type]
        return results

    def _request(self, pair: Pair, order: Order, *, mode: Mode | None = None, prefill: str = "") -> VerdictRequest:
        shown = pair if order == "ab" else pair.swapped()
        return VerdictRequest(
            pair=shown,
            template=self.template,
            mode=mode or self.mode,
            max_new_tokens=self.max_new_tokens,
            prefill=prefill,
        )

    def _judge_requests(
        self, requests: Sequence[VerdictRequest], orders: Sequence[Order]
    ) -> list[OrderJudgment | CriticError]:
        outputs = self._run(requests)
        judged: list[OrderJudgment | CriticError] = []
        to_force: list[int] = []
        for index, (request, order, output) in enumerate(zip(requests, orders, outputs, strict=True)):
            try:
                judged.append(self._read(request, order, output))
            except VerdictError as error:
                if self.mode == "generate" and self.template.explanation_first and error.reason == "no verdict":
                    to_force.append(index)
                judged.append(error)
            except CriticError as error:
                judged.append(error)
        if to_force:
            logger.info("%d explanation(s) ended without a verdict; forcing one by the constrained step", len(to_force))
            forced_requests = [
                dataclasses.replace(requests[i], mode="constrained", prefill=outputs[i].text or "")
                for i in to_force
            ]
            for index, output in zip(to_force, self._run(forced_requests), strict=True):
                explanation = outputs[index].text or ""
                try:
                    verdict = self._parse(output.text, requests[index])
                    text = explanation + (output.text or "")
                    judged[index] = order_from_verdict(orders[index], verdict, text=text, forced=True)
                except VerdictError as error:
                    judged[index] = error
        return judged

    def _run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        if not requests:
            return []
        outputs = self.backend.run(requests)
        if len(outputs) != len(requests):
            raise ModelError(f"the backend returned {len(outputs)} outputs for {len(requests)} requests")
        return outputs

    def _read(self, request: VerdictRequest, order: Order, output: BackendOutput) -> OrderJudgment:
        if output.error is not None:
            raise output.error
        if request.mode == "score":
            if output.letter_probs is None:
                raise ModelError("the backend returned no letter probabilities in score mode")
            missing = [letter for letter in request.verdicts if letter not in output.letter_probs]
            if missing:
                raise ModelError(f"the backend returned no probability for verdict letter(s) {', '.join(missing)}")
            probs = {letter: float(output.letter_probs[letter]) for letter in request.verdicts}
            if any(not 0.0 <= value <= 1.0 for value in probs.values()):
                raise ModelError(f"the backend returned letter probabilities outside [0, 1]: {probs}")
            if sum(probs.values()) <= 0.0:
                raise VerdictError(
                    "no verdict", f"letter probabilities {probs}", "the model put no probability on any verdict letter"
                )
            return order_from_letter_probs(order, probs, format_mass=sum(probs.values()))
        verdict = self._parse(output.text, request)
        return order_from_verdict(order, verdict, text=output.text if request.mode == "generate" else None)

    def _parse(self, text: str | None, request: VerdictRequest) -> str:
        if text is None:
            raise ModelError(f"the backend returned no text in {request.mode} mode")
        # A constrained verdict is one token by construction: anything else is a broken constraint.
        return parse_verdict(text, allow_tie="C" in request.verdicts, strict=request.mode == "constrained")


def _as_pair(pair: PairLike, index: int) -> Pair:
    if isinstance(pair, Pair):
        return pair
    try:
        return Pair.from_mapping(pair)
    except InputError as error:
        raise InputError(f"pair {index}: {error}") from error


def _with_pair_index(error: CriticError, index: int) -> CriticError:
    error.pair_index = index
    if sys.version_info >= (3, 11):  # notes show in tracebacks without changing the message
        error.add_note(f"while judging pair {index}")
    return error

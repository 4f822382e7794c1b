"""The judge: pairs in, debiased preferences out.

For each pair it renders the template in both presentation orders, asks its
backend for verdicts, reads them (probabilities in ``score`` mode, parsed
verdict tokens otherwise) and merges the two orders.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from critic.backends.base import Backend, BackendOutput, VerdictRequest, backend_kind, close_runner, run_async
from critic.backends.loading import DEFAULT_MODEL
from critic.errors import CriticError, InputError, ModelError, VerdictError
from critic.judges.base import BaseJudge, Steps, adrive, drive
from critic.judges.description import JudgeDescription
from critic.merge import merge_orders, order_from_letter_probs, order_from_verdict
from critic.options import DEFAULT_MAX_NEW_TOKENS, BatchLimits, LoadOptions
from critic.templates import DEFAULT_TEMPLATE, JudgeTemplate, load_template
from critic.types import MODES, Mode, Order, OrderJudgment, Pair, Preference
from critic.verdicts import parse_verdict

logger = logging.getLogger("critic")

__all__ = ["DEFAULT_MODEL", "Judge"]

# A second turn answered in two different conversations (history_a, history_b) is judged, as FastChat does
# (run_judge_pair(..., multi_turn=True)), with the multi-turn variant of the MT-Bench template in use.
MULTI_TURN_TEMPLATES = {"mt-bench": "mt-bench-multi-turn", "mt-bench-math": "mt-bench-math-multi-turn"}


class Judge(BaseJudge):
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
        _check_settings(mode, max_new_tokens)
        self.backend = backend
        self.template = template if isinstance(template, JudgeTemplate) else load_template(template)
        self.mode: Mode = mode
        self.swap = swap
        self.max_new_tokens = max_new_tokens
        self.model_name = model_name
        self._multi_turn: JudgeTemplate | None = None

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        template: str | JudgeTemplate = DEFAULT_TEMPLATE,
        mode: Mode = "score",
        swap: bool = True,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        load: LoadOptions = LoadOptions(),
        limits: BatchLimits = BatchLimits(),
        share_prefix: bool = True,
    ) -> Judge:
        """Load a generative judge: a hub id, a local folder, a ``.gguf`` file, or ``"demo"``.

        ``load`` says what runs the model (``load.backend``: a name registered in
        :mod:`critic.backends.registry`, or ``"auto"``), where and how (a served
        model's address is ``load.server``: then ``model`` names the judge whose
        tokenizer critic reads here); ``limits`` caps the prompts and padded
        tokens per forward pass and the prompt length (a longer prompt fails its
        pair unless ``limits.overflow == "truncate"``, which shortens both
        responses in the middle behind a visible marker).
        ``share_prefix`` computes the common start of a pair's two orders once.
        The template and mode are checked before the model loads.
        """
        from critic.backends.registry import generative_backend

        _check_settings(mode, max_new_tokens)
        loaded_template = template if isinstance(template, JudgeTemplate) else load_template(template)
        backend = generative_backend(model, load=load, limits=limits, share_prefix=share_prefix)
        return cls(backend, template=loaded_template, mode=mode, swap=swap, max_new_tokens=max_new_tokens,
                   model_name=model)

    def describe(self) -> JudgeDescription:
        """What this judge is, for reports and summaries."""
        return JudgeDescription(
            kind="generative",
            model=self.model_name,
            backend=backend_kind(self.backend),
            template=self.template.name,
            mode=self.mode,
            swap=self.swap,
        )

    def close(self) -> None:
        """Close the backend (stop a vLLM engine, an HTTP client); the judge cannot judge afterwards."""
        close_runner(self.backend)

    def _judge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        return drive(self._judging(pairs), self._run)

    async def _ajudge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        return await adrive(self._judging(pairs), self._arun)

    def _judging(self, pairs: Sequence[Pair]) -> Steps[list[VerdictRequest], list[BackendOutput],
                                                       list[Preference | CriticError]]:
        """The judging step, written once for the sync and async paths: it yields each batch of requests."""
        orders: tuple[Order, ...] = ("ab", "ba") if self.swap else ("ab",)
        requests = [self._request(pair, order) for pair in pairs for order in orders]
        judged = yield from self._judge_requests(requests, orders * len(pairs))
        results: list[Preference | CriticError] = []
        for index in range(len(pairs)):
            per_order = judged[index * len(orders) : (index + 1) * len(orders)]
            failure = next((item for item in per_order if isinstance(item, CriticError)), None)
            results.append(failure if failure is not None else merge_orders(per_order))  # type: ignore[arg-type]
        return results

    def _request(self, pair: Pair, order: Order, *, mode: Mode | None = None, prefill: str = "") -> VerdictRequest:
        shown = pair if order == "ab" else pair.swapped()
        return VerdictRequest(
            pair=shown,
            template=self._template_for(shown),
            mode=mode or self.mode,
            max_new_tokens=self.max_new_tokens,
            prefill=prefill,
        )

    def _template_for(self, pair: Pair) -> JudgeTemplate:
        """The template in use, or its multi-turn variant for a pair of two conversations (MT-Bench's turn 2)."""
        two = bool(pair.history_a or pair.history_b) and not {"history_a", "history_b"} & self.template.fields
        if not two or self.template.name not in MULTI_TURN_TEMPLATES:
            return self.template  # a template that cannot show two conversations says so when it renders
        if self._multi_turn is None:
            self._multi_turn = load_template(MULTI_TURN_TEMPLATES[self.template.name])
        return self._multi_turn

    def _judge_requests(
        self, requests: Sequence[VerdictRequest], orders: Sequence[Order]
    ) -> Steps[list[VerdictRequest], list[BackendOutput], list[OrderJudgment | CriticError]]:
        outputs = (yield list(requests)) if requests else []
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
            forced_outputs = yield forced_requests
            for index, output in zip(to_force, forced_outputs, strict=True):
                explanation = outputs[index].text or ""
                try:
                    verdict = self._parse(output.text, requests[index])
                    text = explanation + (output.text or "")
                    judged[index] = order_from_verdict(orders[index], verdict, text=text, forced=True)
                except VerdictError as error:
                    judged[index] = error
        return judged

    def _run(self, requests: list[VerdictRequest]) -> list[BackendOutput]:
        return _checked_outputs(self.backend.run(requests), requests)

    async def _arun(self, requests: list[VerdictRequest]) -> list[BackendOutput]:
        return _checked_outputs(await run_async(self.backend, requests), requests)

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



def _checked_outputs(outputs: list[BackendOutput], requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
    if len(outputs) != len(requests):
        raise ModelError(f"the backend returned {len(outputs)} outputs for {len(requests)} requests")
    return outputs


def _check_settings(mode: str, max_new_tokens: object) -> None:
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a whole number of at least 1, got {max_new_tokens!r}")

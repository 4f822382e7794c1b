"""Judges for the server's tests: deterministic by text, optionally held at a gate."""

from __future__ import annotations

import threading
import time
import zlib

from critic import Judge, RewardJudge
from critic.backends.base import BackendOutput, VerdictRequest
from critic.errors import CriticError, Reason
from critic.testing import FakeBackend, FakeScorer, letter_output

WAIT_S = 30.0  # the longest a gated judge waits to be let through


def p_first(request: VerdictRequest) -> float:
    """P(first shown wins), a fixed function of the two texts shown: the same pair gets the same answer anywhere."""
    seed = zlib.crc32(f"{request.pair.prompt}\x00{request.pair.response_a}\x00{request.pair.response_b}".encode())
    return 0.05 + 0.9 * (seed % 1000) / 1000


def respond(request: VerdictRequest) -> BackendOutput:
    if "TOO LONG" in request.pair.response_a + request.pair.response_b:
        return BackendOutput(error=CriticError("prompt of 99999 tokens is over the limit", kind=Reason.TOO_LONG))
    if "BOOM" in request.pair.prompt:
        raise RuntimeError("the backend crashed")
    return letter_output(p_first(request))


class Gate:
    """Holds every judge call until opened; ``entered`` is set when a call is waiting at it."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()

    def __call__(self, request: VerdictRequest) -> BackendOutput:
        self.entered.set()
        if not self.open.wait(WAIT_S):
            raise RuntimeError("the test never opened the gate")
        return respond(request)


def text_judge(gate: Gate | None = None) -> Judge:
    return Judge(FakeBackend(gate or respond), model_name="fake-text")


def reward_judge() -> RewardJudge:
    return RewardJudge(FakeScorer(lambda messages: len(messages[-1]["content"]) / 10.0), model_name="fake-reward")


class HeldAfter(Gate):
    """Answers the first ``count`` judge requests (each order of a pair is one), then holds the others at the gate."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.left = count
        self.lock = threading.Lock()

    def __call__(self, request: VerdictRequest) -> BackendOutput:
        with self.lock:
            self.left -= 1
            free = self.left >= 0
        return respond(request) if free else super().__call__(request)


def slow_judge(seconds_per_pair: float, gate: Gate | None = None) -> Judge:
    """The text judge, taking ``seconds_per_pair`` per pair (its two orders), after ``gate`` lets it through:
    more work than a budget holds."""

    def slow(request: VerdictRequest) -> BackendOutput:
        if gate is not None:
            gate(request)
        time.sleep(seconds_per_pair / 2)
        return respond(request)

    return Judge(FakeBackend(slow), model_name="fake-text")

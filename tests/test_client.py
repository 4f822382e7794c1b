"""RemoteJudge and the async remote reward against a real server on 127.0.0.1 (fake judges)."""

from __future__ import annotations

import asyncio
import pickle
import socket

import httpx
import pytest

import critic.client
from critic.client import RemoteJudge
from critic.errors import CriticError, InputError, ModelError, Reason
from critic.integrations.trl import AsyncRemoteJudgeReward, JudgeReward
from critic.serve import ServeSettings, create_app
from critic.types import Pair

from .serve.fakes import text_judge
from .serve.support import serving

PAIRS = [Pair("q", "a", "b"), Pair("q", "TOO LONG", "b"), Pair("q2", "c", "d", reference="r",
                                                               history=({"role": "user", "content": "hi"},
                                                                        {"role": "assistant", "content": "yo"}))]


@pytest.fixture(scope="module")
def url():
    with serving(create_app(text_judge(), ServeSettings(api_key="key", max_pairs_per_request=2))) as url:
        yield url


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(critic.client, "BACKOFF_S", 0.01)
    monkeypatch.setattr(critic.client, "MAX_BACKOFF_S", 0.02)


def test_the_same_api_and_results_as_the_local_judge(url):
    local, remote = text_judge(), RemoteJudge(url, api_key="key")
    assert remote.describe() == local.describe()
    assert remote.compare("q", "a", "b") == local.compare("q", "a", "b")
    got, want = remote.compare_each([*PAIRS, {"prompt": "q"}]), local.compare_each([*PAIRS, {"prompt": "q"}])
    assert got[0] == want[0] and got[2] == want[2]  # 4 pairs over 2 requests of at most 2 (the server's limit)
    assert isinstance(got[1], CriticError) and got[1].kind is Reason.TOO_LONG and got[1].pair_index == 1
    assert str(got[1]) == str(want[1])
    assert isinstance(got[3], InputError) and got[3].kind is Reason.MISSING_FIELD  # never sent
    with pytest.raises(CriticError, match="over the limit") as raised:
        remote.compare_batch(PAIRS)
    assert raised.value.pair_index == 1
    again = pickle.loads(pickle.dumps(remote))  # for Ray actors
    assert again.compare("q", "a", "b") == local.compare("q", "a", "b")
    remote.close()


def test_a_wrong_key_is_an_input_error_saying_so(url):
    with pytest.raises(InputError, match="401: a valid 'Authorization: Bearer <key>' header is required"):
        RemoteJudge(url, api_key="wrong").describe()


def test_a_busy_server_is_retried_with_backoff(url):
    inner = create_app(text_judge())
    busy = {"left": 2}

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and busy["left"]:
            busy["left"] -= 1
            await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"0")]})
            await send({"type": "http.response.body", "body": b'{"error": {"status": 503, "message": "busy"}}'})
            return
        await inner(scope, receive, send)

    app.state = inner.state  # what the server reads its settings and metrics from
    with serving(app) as busy_url:
        assert RemoteJudge(busy_url, retries=2).compare("q", "a", "b") == text_judge().compare("q", "a", "b")
        busy["left"] = 2
        with pytest.raises(ModelError, match="503: busy"):
            RemoteJudge(busy_url, retries=1).compare("q", "a", "b")


def test_a_server_that_is_not_there_is_retried_then_a_model_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelError, match="cannot reach the judge server"):
        RemoteJudge(f"http://127.0.0.1:{port}", retries=2).describe()
    with pytest.raises(InputError, match="http://"):
        RemoteJudge("localhost:8000")


def test_the_async_remote_reward_is_what_trl_awaits_and_matches_the_local_reward(url):
    is_async_callable = pytest.importorskip("trl.trainer.utils").is_async_callable
    reward = AsyncRemoteJudgeReward(RemoteJudge(url, api_key="key"), name="remote_critic")
    assert is_async_callable(reward) and reward.__name__ == "remote_critic"
    prompts = ["q", [{"role": "user", "content": "q2"}]]
    completions = ["a", [{"role": "assistant", "content": "TOO LONG"}]]
    kwargs = {"reference": ["b", "b"], "trainer_state": None}
    got = asyncio.run(reward(prompts, completions, **kwargs))
    want = JudgeReward(text_judge())(prompts, completions, **kwargs)
    assert got == want and got[1] is None and reward.failures == 1
    with pytest.raises(InputError, match="RemoteJudge"):
        AsyncRemoteJudgeReward(text_judge())
    assert httpx.get(f"{url}/health").status_code == 200

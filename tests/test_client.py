"""RemoteJudge and the async remote reward against a real server on 127.0.0.1 (fake judges)."""

from __future__ import annotations

import asyncio
import json
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


def test_a_pair_the_server_refuses_for_its_size_fails_alone_with_its_reason_and_the_rest_is_judged():
    """413 naming one pair (a text over the server's limit): that pair fails (InputError, too long for the model),
    the rest of its chunk is sent again; nothing else fails and nothing is raised."""
    long = Pair("q", "x" * 200, "b")
    pairs = [Pair("q", "a", "b"), long, Pair("q", "c", "d"), Pair("q", "e", "f"), long]
    with serving(create_app(text_judge(), ServeSettings(max_text_chars=100, max_pairs_per_request=3))) as url:
        got = RemoteJudge(url).compare_each(pairs)
        async_got = asyncio.run(RemoteJudge(url).acompare_each(pairs))
    want = text_judge().compare_each(pairs)
    for results in (got, async_got):
        assert [results[i] for i in (0, 2, 3)] == [want[i] for i in (0, 2, 3)]
        for index in (1, 4):
            assert isinstance(results[index], InputError) and results[index].kind is Reason.TOO_LONG
            assert results[index].pair_index == index
            assert str(results[index]) == ("the judge server refused its response_a (413): 200 characters, over the "
                                           "limit of 100")


def test_a_body_over_the_servers_limit_is_split_until_the_pair_that_does_not_fit_fails_alone():
    pairs = [Pair("q", f"answer {i}", "b") for i in range(6)]
    big = Pair("q", "y" * 1000, "b")
    # the 7 pairs are one chunk, over 1000 bytes with the big pair in it: halved until it is alone
    with serving(create_app(text_judge(), ServeSettings(max_body_bytes=1000, max_pairs_per_request=8,
                                                        max_text_chars=10_000))) as url:
        got = RemoteJudge(url).compare_each([*pairs[:3], big, *pairs[3:]])
    assert [result for index, result in enumerate(got) if index != 3] == text_judge().compare_each(pairs)
    assert isinstance(got[3], InputError) and got[3].kind is Reason.TOO_LONG and "413" in str(got[3])


def test_a_422_naming_one_pair_fails_that_pair_alone_and_any_other_refusal_is_raised():
    inner = create_app(text_judge())

    async def app(scope, receive, send):
        """The real app, but a pair whose prompt says REFUSE is refused as a server of another version would."""
        if scope["type"] == "http" and scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            data = json.loads(body)
            refused = [i for i, pair in enumerate(data["pairs"]) if pair["prompt"] == "REFUSE"]
            if refused or data["pairs"][0]["prompt"] == "ALL":
                field = f"pairs[{refused[0]}].prompt" if refused else None
                problem = {"error": {"status": 422, "message": "not for this server", "field": field}}
                await send({"type": "http.response.start", "status": 422, "headers": []})
                await send({"type": "http.response.body", "body": json.dumps(problem).encode()})
                return

            replayed = []

            async def replay():  # the body once, then the connection's own messages (its disconnect)
                if replayed:
                    return await receive()
                replayed.append(True)
                return {"type": "http.request", "body": body, "more_body": False}

            await inner(scope, replay, send)
            return
        await inner(scope, receive, send)

    app.state = inner.state
    pairs = [Pair("q", "a", "b"), Pair("REFUSE", "a", "b"), Pair("q2", "c", "d")]
    with serving(app) as url:
        got = RemoteJudge(url).compare_each(pairs)
        assert got[0] == text_judge().compare("q", "a", "b") and got[2] == text_judge().compare("q2", "c", "d")
        assert isinstance(got[1], InputError) and got[1].pair_index == 1
        assert str(got[1]) == "the judge server refused its prompt (422): not for this server"
        with pytest.raises(InputError, match="422: not for this server"):  # no pair named: the request's fault
            RemoteJudge(url).compare_each([Pair("ALL", "a", "b")])

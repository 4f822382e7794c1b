"""`critic serve` (flags checked before loading, SIGTERM finishes what is in flight) and `--judge-url`."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from critic import Judge, cli
from critic.serve import ServeSettings, create_app
from critic.testing import FakeBackend

from ..jobs.support import generated_lines, outputs, read_jsonl
from ..serve.support import serving
from .fakes import FACTORY

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 120.0
PAIR = {"prompt": "q", "response_a": "good answer", "response_b": "bad answer"}


def test_a_taken_port_and_bad_limits_fail_before_the_model_loads(loaders, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--model", "demo", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "demo", "--max-wait-ms", "-1"]) == 2
    assert "max_wait_ms must be 0 or more" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "demo", "--shutdown-timeout", "-1"]) == 2
    assert "shutdown_timeout_s must be 0 or more" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "demo", "--header-timeout", "0"]) == 2
    assert "header_timeout_s must be more than 0" in capsys.readouterr().err
    assert cli.main(["serve", "--kind", "reward", "--overflow", "truncate"]) == 2
    assert "Drop --overflow with --kind reward" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "demo", "--port", "70000"]) == 2
    assert not loaders["generative"].calls and not loaders["reward"].calls


def start_server(*extra: str) -> tuple[subprocess.Popen, str, list[str]]:
    """`critic serve --port 0` in a subprocess; its URL from the one line it prints, and its stderr lines so far
    (the list grows as it writes)."""
    process = subprocess.Popen([sys.executable, "-m", "critic.cli", "serve", "--port", "0", *extra], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "CRITIC_API_KEY": ""})
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    threading.Thread(target=lambda: [(lines.put(line), log.append(line)) for line in process.stderr],
                     daemon=True).start()
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if " at http://" in line:
            return process, "http://" + line.split(" at http://", 1)[1].split()[0], log
    process.kill()
    raise AssertionError("critic serve did not say where it listens")


def queue_depth(url: str) -> int:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    line = next(line for line in lines if line.startswith("critic_queue_depth "))
    return int(float(line.split()[1]))


@pytest.mark.slow
def test_sigterm_with_more_accepted_work_than_the_budget_answers_each_request_200_or_a_json_503_and_exits_0():
    """Each request takes 0.5 s and 12 are accepted; SIGTERM leaves 1 s: the ones that fit get 200, the others a
    JSON 503 with Retry-After (never a 500, never a dropped connection), and the server exits 0."""
    process, url, log = start_server("--judge-factory", FACTORY, "--model", "slow:0.5", "--max-batch-pairs", "1",
                                     "--shutdown-timeout", "1")
    try:
        assert url.startswith("http://127.0.0.1:")

        def post():
            try:
                return httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=60)
            except httpx.HTTPError as error:
                return error

        with ThreadPoolExecutor(12) as pool:
            sent = [pool.submit(post) for _ in range(12)]
            deadline = time.monotonic() + 30
            while queue_depth(url) < 9:  # 1 judging, the others waiting
                assert time.monotonic() < deadline, "the requests never queued up"
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in sent]
        assert all(isinstance(answer, httpx.Response) for answer in answers), answers  # none dropped
        statuses = sorted(answer.status_code for answer in answers)
        assert set(statuses) == {200, 503}, statuses
        for answer in answers:
            if answer.status_code == 200:
                assert answer.json()["results"][0]["label"] == "A"
            else:
                assert answer.json()["error"]["status"] == 503 and int(answer.headers["retry-after"]) >= 1
        assert process.wait(timeout=60) == 0  # a requested stop, every request answered: success
        assert not any("Traceback" in line or "CancelledError" in line for line in log), "".join(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def remote():
    judge = Judge(FakeBackend.prefer(lambda text: text.startswith("good")), model_name="fake-good")
    with serving(create_app(judge)) as url:
        yield url


def test_filter_with_judge_url_gives_the_outputs_of_the_same_judge_in_process(tmp_path, remote, capsys):
    source = generated_lines(tmp_path / "in.jsonl", 40)
    local = ["filter", str(source), "-o", str(tmp_path / "local"), "--judge-factory", FACTORY, "--model", "fast"]
    assert cli.main(local) == 1  # a broken input line is rejected: exit 1
    capsys.readouterr()
    assert cli.main(["filter", str(source), "-o", str(tmp_path / "remote"), "--judge-url", remote,
                     "--model", "ignored", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "--model, --device are not used" in err and "judging with fake-good · skywork-critic" in err
    assert outputs(tmp_path / "remote") == outputs(tmp_path / "local")


def test_eval_with_judge_url(tmp_path, remote, capsys):
    rows = [{"id": i, "prompt": f"q{i}", "response_a": "good" if i % 2 else "bad",
             "response_b": "bad" if i % 2 else "good", "label": "A" if i % 2 else "B"} for i in range(4)]
    source = tmp_path / "labelled.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert cli.main(["eval", str(source), "-o", str(tmp_path / "report"), "--judge-url", remote, "--quiet",
                     "--no-figure"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["overall"]["accuracy"]["accuracy"] == 1.0 and len(read_jsonl(tmp_path / "report" /
                                                                               "pairs.jsonl")) == 4


def test_eval_with_judge_url_fails_only_the_pair_the_server_refuses_as_too_long(tmp_path, capsys):
    """One answer over the server's --max-text-chars: that pair fails with the server's reason, every other pair
    is judged and the report is written (it aborted the whole evaluation with exit 2 before)."""
    rows = [{"id": i, "prompt": f"q{i}", "response_a": "good" if i % 2 else "bad",
             "response_b": "bad" if i % 2 else "good", "label": "A" if i % 2 else "B"} for i in range(6)]
    rows[3]["response_a"] = "good" + "x" * 2000
    source = tmp_path / "labelled.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    judge = Judge(FakeBackend.prefer(lambda text: text.startswith("good")), model_name="fake-good")
    with serving(create_app(judge, ServeSettings(max_text_chars=1000))) as url:
        code = cli.main(["eval", str(source), "-o", str(tmp_path / "report"), "--judge-url", url, "--quiet",
                         "--no-figure"])
    assert code == 1, capsys.readouterr().err  # some rows failed: 1, not the usage/input error (2) it was
    records = read_jsonl(tmp_path / "report" / "pairs.jsonl")
    failed = [record for record in records if record["error"] is not None]
    assert len(records) == 6 and len(failed) == 1
    assert failed[0]["error"] == ("the judge server refused its response_a (413): 2004 characters, over the limit of "
                                  "1000")
    assert all(record["prediction"] == record["gold"] for record in records if record["error"] is None)


def test_a_judge_url_with_nothing_there_fails_in_one_line(tmp_path, capsys, monkeypatch):
    import critic.client

    monkeypatch.setattr(critic.client, "BACKOFF_S", 0.01)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = generated_lines(tmp_path / "in.jsonl", 4)
    code = cli.main(["filter", str(source), "-o", str(tmp_path / "out"), "--judge-url", f"http://127.0.0.1:{port}"])
    assert code == 2 and "cannot reach the judge server" in capsys.readouterr().err

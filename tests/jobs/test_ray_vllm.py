"""``critic filter --engine ray --backend vllm`` on a two-node Ray cluster made on this machine writes the same
bytes as the local engine with ``--backend vllm``.

The cluster is two ``ray start --block`` processes (a head, and a node joined to it by address) in their own
process groups and temp dir: the teardown stops exactly these two (SIGTERM makes each stop its own Ray
processes), never a machine-wide ``ray stop``. Each node has one CPU and each actor asks for 0.75, so the two
actors (two vLLM engines) sit on different nodes. Few rows, one chunk per actor, every wait bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .support import OUTPUT_NAMES

pytest.importorskip("ray", reason="the Ray engine needs ray[data] (pip install 'critic[ray]')")
pytest.importorskip("vllm", reason="the vLLM backend needs vllm (pip install 'critic[vllm]')")

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
PANDALM_ROWS = (614, 86, 140, 157)  # two short pairs, a tie (rejected before judging), boolean responses
CHUNK = 2  # two chunks: one per actor
START_SECONDS = 120  # bound on a node's start-up
CLI_SECONDS = 480  # bound on one `critic filter` (engine start-ups take 40-100 s each on this CPU)
# What the nodes (so the actors) and the drivers run with. Token authentication (Ray's default for a new
# cluster; the token is ~/.ray/auth_token) is said explicitly: a driver joining by address needs it said.
# TORCHDYNAMO_DISABLE stays as the tests set it: the engine builder keeps it from vLLM's engine process.
NODE_ENV = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
            "TRANSFORMERS_VERBOSITY": "error", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_env() -> dict[str, str]:
    return {**{key: value for key, value in os.environ.items() if not key.startswith("RAY_")}, **NODE_ENV}


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--num-cpus", "1", "--disable-usage-stats", *args],
                                stdout=out, stderr=subprocess.STDOUT, env=node_env(), start_new_session=True)


def stop_nodes(nodes: list[subprocess.Popen]) -> None:
    """SIGTERM to each node's ``ray start --block`` (each stops its own Ray processes), then their groups."""
    for node in nodes:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(timeout=45)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)  # anything of this node's group still running


ALIVE_NODES = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
               "print(sum(1 for node in ray.nodes() if node['Alive']))")


def wait_for_nodes(address: str, count: int, nodes: list[subprocess.Popen], logs: list[Path]) -> None:
    """Until the cluster at ``address`` has ``count`` live nodes, asked by a short-lived driver (bounded)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        for node, log in zip(nodes, logs, strict=True):
            if node.poll() is not None:
                pytest.fail(f"a Ray node exited at start-up ({node.returncode}):\n{log.read_text()[-2000:]}")
        try:
            asked = subprocess.run([sys.executable, "-c", ALIVE_NODES, address], capture_output=True, text=True,
                                   env=node_env(), timeout=60)
            if asked.returncode == 0 and int(asked.stdout.split()[-1]) >= count:
                return
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the Ray cluster at {address} did not reach {count} nodes in {START_SECONDS} s")
        time.sleep(2)


@pytest.fixture(scope="module")
def two_node_cluster():
    """The address of a head and one joined node, both on this machine and stopped at the end."""
    temp = Path(tempfile.mkdtemp(prefix="critic-ray-"))  # short: Ray's socket paths must stay under 108 bytes
    address = f"127.0.0.1:{free_port()}"
    logs = [temp / "head.log", temp / "node.log"]
    nodes = [start_node(["--head", "--port", address.split(":")[1], "--temp-dir", str(temp / "ray"),
                         "--include-dashboard", "false", "--system-config", json.dumps({"worker_niceness": 0})],
                        logs[0])]
    try:
        wait_for_nodes(address, 1, nodes, logs[:1])
        nodes.append(start_node(["--address", address], logs[1]))
        wait_for_nodes(address, 2, nodes, logs)
        yield address
    finally:
        stop_nodes(nodes)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def pandalm_file(tmp_path_factory):
    from ..conftest import shared_path

    data = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    by_idx = {row["idx"]: row for row in data}
    path = tmp_path_factory.mktemp("pandalm") / "pandalm.json"
    path.write_text(json.dumps([by_idx[idx] for idx in PANDALM_ROWS]), encoding="utf-8")
    return path


def critic_filter(*args: str) -> None:
    """``critic filter`` in its own process (as a user runs it; the Ray driver leaves nothing in this one)."""
    command = [sys.executable, "-m", "critic.cli", "filter", *args, "--model", "demo", "--backend", "vllm",
               "--device", "cpu", "--chunk-size", str(CHUNK), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, env=node_env(), timeout=CLI_SECONDS)
    # One of the four rows (no annotator majority) is rejected by design, so the job ends with status 1.
    assert done.returncode == 1, done.stderr[-3000:]


@pytest.mark.model
def test_ray_engine_on_two_nodes_with_vllm_writes_the_same_bytes_as_the_local_engine(
        tmp_path, two_node_cluster, pandalm_file):
    critic_filter(str(pandalm_file), "-o", str(tmp_path / "local"))
    critic_filter(str(pandalm_file), "-o", str(tmp_path / "ray"), "--engine", "ray", "--ray-address", two_node_cluster,
                  "--ray-actors", "2", "--ray-cpus-per-actor", "0.75")
    for name in OUTPUT_NAMES:
        local, distributed = ((tmp_path / run / f"{name}.jsonl").read_bytes() for run in ("local", "ray"))
        assert distributed == local, name
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("local", "ray")]
    assert summaries[0]["counts"] == summaries[1]["counts"]
    assert summaries[1]["counts"]["rows_in"] == 4 and summaries[1]["counts"]["judged"] == 3
    assert summaries[0]["judge"]["backend"] == "vllm"
    assert summaries[1]["judge"] == summaries[0]["judge"]  # the driver records the backend its actors run

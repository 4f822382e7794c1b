"""The Ray engine: rows and results travel as plain Arrow columns, and a job on a local Ray cluster of two
CPU actors writes the same bytes as the local engine."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from critic.errors import Reason
from critic.io.shapes import Columns
from critic.jobs.engines import LocalEngine
from critic.jobs.filejob import filter_file
from critic.jobs.items import Rejection, prepare_item
from critic.jobs.policy import Verdict
from critic.options import LoadOptions

from .support import generated_lines, outputs, ray_good_judge, read_jsonl

pa = pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[2]
RAY_SLICE = (614, 86, 140, 157)  # two short pairs (one per actor), a tie (rejected), boolean responses (read as text)


def test_rows_and_results_travel_as_plain_columns_and_come_back_the_same():
    from critic.io.readers import RowError
    from critic.jobs.ray import decode_items, decode_results, encode_results, encode_rows

    rows = [(1, {"prompt": "café 🙂", "chosen": "good", "rejected": "bad", "n": 1.5, "tags": ["x", None]}),
            (2, RowError("line 2 is not valid JSON (Expecting value at column 3)", '{"prompt": ')),
            (3, json.loads('{"prompt": "\\ud800", "chosen": "good", "rejected": "bad"}')),
            (5, {"nonsense": 1})]
    block = encode_rows(rows, Columns())
    assert block.column_names == ["number", "row", "unread"]
    assert {str(field.type) for field in block.schema} == {"int64", "large_binary"}  # no pickles anywhere
    expected = [prepare_item(number, row, Columns()) for number, row in rows]
    assert decode_items(block, Columns()) == expected
    results = [Verdict("A", 0.25, True), None, Rejection("judge: too long", Reason.TOO_LONG, "judge"),
               Verdict("tie", 0.5, None, 1.0, 1.0)]
    columns = encode_results(results)
    assert {name: str(column.type) for name, column in columns.items()} == {
        "label": "string", "p_chosen": "double", "consistent": "bool", "score_chosen": "double",
        "score_rejected": "double", "error": "large_string", "error_kind": "string"}
    assert decode_results(pa.table(columns)) == results


ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (pip install 'critic[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance; more logical CPUs than the actors take, so the read task always gets one."""
    if ray.is_initialized():
        ray.shutdown()
    env = {"PYTHONPATH": str(ROOT), "TORCHDYNAMO_DISABLE": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    # worker_niceness=0: Ray's default (nice 15) starves the actors on a busy machine (10x slower model loads)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
             object_store_memory=200 * 1024 * 1024, _system_config={"worker_niceness": 0})
    yield
    ray.shutdown()


def ray_engine(factory, actors: int = 2, prepare=None):
    from critic.jobs.ray import RayEngine

    return RayEngine(factory, actors=actors, prepare=prepare)


@pytest.mark.slow
def test_ray_engine_writes_the_same_bytes_as_the_local_engine(tmp_path, local_ray):
    source = generated_lines(tmp_path / "in.jsonl", 300)  # includes unreadable lines
    with source.open("a", encoding="utf-8") as handle:  # and a lone surrogate, and text beyond ASCII
        handle.write('{"id": 300, "prompt": "\\ud800", "chosen": "good", "rejected": "bad"}\n')
        handle.write('{"id": 301, "prompt": "café 🙂", "chosen": "good ü", "rejected": "bad", "n": 1e-7}\n')
    local = filter_file(source, tmp_path / "local", engine=LocalEngine(ray_good_judge()), chunk_size=40)
    prepared = []  # the driver's one-off work before the actors start (the demo model's conversion, say)
    engine = ray_engine(functools.partial(ray_good_judge), prepare=lambda: prepared.append(True))
    distributed = filter_file(source, tmp_path / "ray", engine=engine, chunk_size=40)
    assert distributed.engine == "ray" and distributed.judge == local.judge and prepared == [True]
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("local", "ray")]
    assert summaries[0]["counts"] == summaries[1]["counts"]
    assert summaries[1]["counts"]["rejected_by_reason"] == {"unreadable row": 3, "text the tokenizer cannot take": 1}


class Interrupt:
    """Stops (as Ctrl-C would) on the n+1-th chunk; describes itself as the judge it wraps."""

    def __init__(self, judge, chunks: int) -> None:
        self.judge, self.left = judge, chunks

    def describe(self):
        return self.judge.describe()

    def compare_each(self, pairs):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return self.judge.compare_each(pairs)


@pytest.mark.slow
def test_a_job_interrupted_on_the_local_engine_resumes_on_ray(tmp_path, local_ray):
    source = generated_lines(tmp_path / "in.jsonl", 120)
    filter_file(source, tmp_path / "whole", ray_good_judge(), chunk_size=20)
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, tmp_path / "out", Interrupt(ray_good_judge(), 2), chunk_size=20)
    resumed = filter_file(source, tmp_path / "out", engine=ray_engine(functools.partial(ray_good_judge)),
                          chunk_size=20, resume=True)
    assert resumed.resumed and resumed.complete
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def demo_judge():
    """Each Ray actor loads the demo model itself."""
    from critic import Judge

    return Judge.from_pretrained("demo", load=LoadOptions(device="cpu"))


@pytest.mark.model
def test_ray_engine_with_the_demo_model_keeps_and_drops_the_same_pandalm_rows(tmp_path, local_ray, demo_backend):
    from critic import Judge

    from ..conftest import shared_path

    data = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    by_idx = {row["idx"]: row for row in data}
    source = tmp_path / "pandalm.json"
    source.write_text(json.dumps([by_idx[idx] for idx in RAY_SLICE]), encoding="utf-8")
    local_judge = Judge(demo_backend, model_name="demo")
    filter_file(source, tmp_path / "local", local_judge, chunk_size=1)
    filter_file(source, tmp_path / "ray", engine=ray_engine(demo_judge), chunk_size=1)
    for name in ("kept", "dropped", "rejected"):
        local, distributed = (read_jsonl(tmp_path / run / f"{name}.jsonl") for run in ("local", "ray"))

        def ids(rows):
            return [row.get("idx", row.get("row")) for row in rows]

        assert ids(distributed) == ids(local)
        for mine, theirs in zip(distributed, local, strict=True):
            assert {k: v for k, v in mine.items() if k != "critic_p_chosen"} == \
                   {k: v for k, v in theirs.items() if k != "critic_p_chosen"}
            if "critic_p_chosen" in theirs:
                assert mine["critic_p_chosen"] == pytest.approx(theirs["critic_p_chosen"], abs=1e-4)
    counts = json.loads((tmp_path / "ray" / "summary.json").read_text())["counts"]
    assert counts["rows_in"] == 4 and counts["rejected"] == 1 and counts["judged"] == 3
    assert counts["rejected_by_reason"] == {"no preference (tie)": 1}
    assert counts["reason_examples"] == {"no preference (tie)": "tie: annotators have no majority preference"}

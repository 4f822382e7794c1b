"""The cleaning job as a library: policies, outputs, counts, checkpoints and resume, bad rows, datasets."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from critic import Judge
from critic.backends.base import BackendOutput
from critic.errors import CriticError, InputError
from critic.io.rows import Columns
from critic.jobs.checkpoint import CHECKPOINT_FILE
from critic.jobs.datasets import filter_dataset, judge_columns
from critic.jobs.filejob import filter_file
from critic.jobs.items import filter_rows
from critic.jobs.policy import Policy, Verdict
from critic.jobs.summary import TooManyRejects
from critic.testing import FakeBackend
from critic.types import Preference

ROOT = Path(__file__).resolve().parents[1]


def good_judge(p: float = 0.9) -> Judge:
    """Prefers any answer that starts with 'good', in both orders."""
    return Judge(FakeBackend.prefer(lambda text: text.startswith("good"), p=p), model_name="fake-good")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / f"{name}.jsonl").read_bytes() for name in ("kept", "dropped", "rejected")}


def generated_rows(count: int) -> list[dict]:
    """Half the pairs have the better answer as chosen, a quarter are swapped, a quarter are ties, some are bad."""
    rows = []
    for i in range(count):
        kind = i % 8
        if kind == 7:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": None, "rejected": "x"})
        elif kind in (5, 6):
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"bad {i}", "rejected": f"good {i}"})
        elif kind == 4:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"meh {i}", "rejected": f"meh too {i}"})
        else:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"})
    return rows


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize("verdict, default, min_p_06, relabel, relabel_min_p_06", [
    (Verdict("A", 0.9, True), "keep", "keep", "keep", "keep"),
    (Verdict("B", 0.1, True), "drop", "drop", "relabel", "relabel"),
    (Verdict("A", 0.55, False), "drop", "drop", "drop", "drop"),
    (Verdict("A", 0.65, False), "drop", "keep", "drop", "keep"),
    (Verdict("tie", 0.5, True), "drop", "drop", "drop", "drop"),
    (Verdict("A", 0.9, None), "drop", "keep", "drop", "keep"),
])
def test_policies(verdict, default, min_p_06, relabel, relabel_min_p_06):
    assert Policy().decide(verdict) == default
    assert Policy(min_p=0.6).decide(verdict) == min_p_06
    assert Policy(relabel=True).decide(verdict) == relabel
    assert Policy(min_p=0.6, relabel=True).decide(verdict) == relabel_min_p_06
    with pytest.raises(InputError):
        Policy(min_p=1.5)


def test_filter_rows_streams_outcomes_in_order_with_the_judge_columns():
    rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"},
            {"prompt": "q", "chosen": "bad", "rejected": "good"},
            {"prompt": "q", "chosen": "good"}]
    results = list(filter_rows(rows, good_judge(), policy=Policy(relabel=True), chunk_size=2))
    assert [result.output for result in results] == ["kept", "kept", "rejected"]
    first, second, bad = (result.record for result in results)
    assert first == {**rows[0], "critic_label": "chosen", "critic_p_chosen": pytest.approx(0.9),
                     "critic_consistent": True, "critic_relabelled": False}
    assert second == {"prompt": "q", "chosen": "good", "rejected": "bad", "critic_label": "chosen",
                      "critic_p_chosen": pytest.approx(0.9), "critic_consistent": True, "critic_relabelled": True}
    assert bad == {"row": 3, "reason": "missing field 'rejected' (present: chosen, prompt)", "input": rows[2]}


# --------------------------------------------------------------------------- the file job


def test_filter_file_writes_kept_dropped_rejected_and_a_summary(tmp_path):
    rows = generated_rows(40)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    seen = []
    summary = filter_file(source, tmp_path / "out", good_judge(), chunk_size=16, progress=seen.append)
    kept, dropped, rejected = (read_jsonl(tmp_path / "out" / f"{name}.jsonl")
                               for name in ("kept", "dropped", "rejected"))
    assert [row["id"] for row in kept] == [i for i in range(40) if i % 8 < 4]
    assert [row["id"] for row in dropped] == [i for i in range(40) if i % 8 in (4, 5, 6)]
    assert [row["row"] for row in rejected] == [i + 1 for i in range(40) if i % 8 == 7]
    assert kept[0] == {**rows[0], "critic_label": "chosen", "critic_p_chosen": pytest.approx(0.9),
                       "critic_consistent": True}
    assert dropped[0]["critic_label"] == "tie" and dropped[1]["critic_label"] == "rejected"
    assert rejected[0] == {"row": 8, "reason": "field 'chosen' is null", "input": rows[7]}
    counts = summary.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (40, 20, 15, 5)
    assert [(p.rows_done, p.total) for p in seen] == [(0, 40), (16, 40), (32, 40), (40, 40)]
    written = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert written["counts"]["rows_in"] == 40
    assert written["counts"]["rejected_by_reason"] == {"field 'chosen' is null": 5}
    assert written["judge"] == {"kind": "generative", "model": "fake-good", "template": "skywork-critic",
                                "mode": "score", "swap": True}
    assert written["policy"]["name"] == "consistent" and written["input"] == str(source)
    assert written["rates"]["kept"] == 0.5 and written["pairs_per_second"] > 0 and written["complete"] is True


def test_existing_outputs_are_never_overwritten_without_resume_or_force(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(10))
    first = filter_file(source, tmp_path / "out", good_judge())
    with pytest.raises(InputError, match="already holds outputs.*use --resume to continue that job or --force"):
        filter_file(source, tmp_path / "out", good_judge())
    again = filter_file(source, tmp_path / "out", good_judge(), resume=True)  # complete: nothing to redo
    assert again.counts == first.counts and again.complete
    forced = filter_file(source, tmp_path / "out", good_judge(p=0.6), force=True)
    assert forced.counts.rows_in == 10
    with pytest.raises(InputError, match="cannot resume: the job .* was started with different settings \\(policy"):
        filter_file(source, tmp_path / "out", good_judge(), resume=True, policy=Policy(min_p=0.7))
    with pytest.raises(InputError, match="different settings \\(judge"):
        filter_file(source, tmp_path / "out", Judge(FakeBackend.first_position(), model_name="other"), resume=True)


class CrashAfter:
    """A judge that dies (as a kill would) on its n-th call."""

    def __init__(self, judge, calls: int) -> None:
        self.judge, self.calls = judge, calls

    def describe(self):
        return self.judge.describe()

    def compare_each(self, pairs):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return self.judge.compare_each(pairs)


def test_resume_after_a_crash_cuts_half_written_rows_and_matches_an_uninterrupted_run(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(100))
    filter_file(source, tmp_path / "whole", good_judge(), chunk_size=8)
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, tmp_path / "out", CrashAfter(good_judge(), 5), chunk_size=8)
    checkpoint = json.loads((tmp_path / "out" / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    assert checkpoint["rows_done"] == 40 and not checkpoint["complete"]
    # A crash while writing leaves half a row (and rows past the checkpoint) behind.
    with (tmp_path / "out" / "kept.jsonl").open("ab") as handle:
        handle.write(b'{"id": 999, "prompt": "half a ro')
    with (tmp_path / "out" / "rejected.jsonl").open("ab") as handle:
        handle.write(b'{"row": 41, "reason": "written after the checkpoint"}\n')
    summary = filter_file(source, tmp_path / "out", good_judge(), chunk_size=8, resume=True)
    assert summary.resumed and summary.counts.rows_in == 100
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def test_a_crash_between_writing_rows_and_the_checkpoint_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    import critic.jobs.checkpoint as checkpoint
    import critic.jobs.filejob as filtering

    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(50))
    filter_file(source, tmp_path / "whole", good_judge(), chunk_size=7)
    real_write = filtering._write_json_atomic
    writes = {"left": 4}  # the first checkpoint, three chunks, then a crash before the fourth chunk's checkpoint

    def crashing_write(path, state):
        writes["left"] -= 1
        if writes["left"] < 0:
            raise KeyboardInterrupt
        real_write(path, state)

    monkeypatch.setattr(filtering, "_write_json_atomic", crashing_write)
    monkeypatch.setattr(checkpoint, "_write_json_atomic", crashing_write)
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, tmp_path / "out", good_judge(), chunk_size=7)
    monkeypatch.setattr(filtering, "_write_json_atomic", real_write)
    monkeypatch.setattr(checkpoint, "_write_json_atomic", real_write)
    assert json.loads((tmp_path / "out" / CHECKPOINT_FILE).read_text())["rows_done"] == 21
    assert sum(len(text.splitlines()) for text in outputs(tmp_path / "out").values()) == 28  # the 4th chunk is on disk
    filter_file(source, tmp_path / "out", good_judge(), chunk_size=7, resume=True)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def test_limit_runs_a_sample_and_a_resume_without_it_goes_on_to_the_end(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(60))
    filter_file(source, tmp_path / "whole", good_judge(), chunk_size=16)
    sample = filter_file(source, tmp_path / "out", good_judge(), chunk_size=16, limit=25)
    assert sample.counts.rows_in == 25 and not sample.complete
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["complete"] is False
    rest = filter_file(source, tmp_path / "out", good_judge(), chunk_size=16, resume=True)
    assert rest.counts.rows_in == 60 and rest.complete
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def test_max_rejects_stops_the_job_and_resume_with_a_higher_limit_finishes_it(tmp_path):
    rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"}] * 10 + [{"nonsense": 1}] * 30
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(TooManyRejects, match="stopped after 20 rows: 10 rejected, more than --max-rejects 5 "
                                             "\\(no known row shape: 10\\)"):
        filter_file(source, tmp_path / "out", good_judge(), chunk_size=10, max_rejects=5)
    summary = filter_file(source, tmp_path / "out", good_judge(), chunk_size=10, max_rejects=100, resume=True)
    assert (summary.counts.kept, summary.counts.rejected) == (10, 30)


# --------------------------------------------------------------------------- bad rows


def too_long_or_good(request):
    """A fake model with a 200-character context: longer prompts fail alone, as a real backend reports them."""
    if len(request.pair.prompt) > 200:
        return BackendOutput(error=InputError(f"the pair is too long for the model: {len(request.pair.prompt)} "
                                              "characters > 200"))
    if "unreadable" in request.pair.prompt:
        return BackendOutput(text="I cannot decide.")
    first, second = request.pair.response_a.startswith("good"), request.pair.response_b.startswith("good")
    return BackendOutput(letter_probs={"A": 0.9 if first and not second else 0.1 if second else 0.5,
                                       "B": 0.1 if first and not second else 0.9 if second else 0.5})


BAD_CORPUS = [
    (b'{"prompt": "2+2?", "chosen": "good 4", "rejected": "bad 5"}', "kept", None),
    (b'{"prompt": "2+2?", "chosen": "good 4", "rejected": ', "rejected", "line 2 is not valid JSON (Expecting value"),
    (b'{"prompt": "caf\xe9", "chosen": "good", "rejected": "bad"}', "rejected", "line 3 is not valid UTF-8"),
    (b'{"prompt": "q", "chosen": "good"}', "rejected", "missing field 'rejected'"),
    (b'{"prompt": "q", "chosen": null, "rejected": "bad"}', "rejected", "field 'chosen' is null"),
    (b'{"prompt": 7, "chosen": "good", "rejected": "bad"}', "rejected", "field 'prompt' must be a string, got number"),
    (b'{"prompt": "q", "chosen": ["good"], "rejected": ["bad"]}', "rejected",
     "field 'chosen'[0] must be an object with 'role' and 'content'"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], '
     b'"rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]}', "rejected",
     "do not share the conversation before the answer"),
    (b'[1, 2, 3]', "rejected", "a row must be a JSON object, got list"),
    (b'{"prompt": "' + b"x" * 300 + b'", "chosen": "good", "rejected": "bad"}', "rejected",
     "judge: the pair is too long for the model: 300 characters > 200"),
    (b'{"prompt": "unreadable", "chosen": "good", "rejected": "bad"}', "rejected",
     "judge: the backend returned no letter probabilities in score mode"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}], '
     b'"rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]}', "dropped", None),
]


def test_a_corpus_of_bad_rows_is_rejected_row_by_row_and_the_job_goes_on(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(line for line, _, _ in BAD_CORPUS) + b"\n")
    judge = Judge(FakeBackend(too_long_or_good), model_name="fake-200-chars")
    summary = filter_file(source, tmp_path / "out", judge, chunk_size=5)
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    expected = [(number, reason) for number, (_, where, reason) in enumerate(BAD_CORPUS, start=1)
                if where == "rejected"]
    assert [row["row"] for row in rejected] == [number for number, _ in expected]
    for row, (_, reason) in zip(rejected, expected, strict=True):
        assert row["reason"].startswith(reason) or reason in row["reason"], row
        assert "\n" not in row["reason"]
    assert rejected[0]["input"] == '{"prompt": "2+2?", "chosen": "good 4", "rejected": '  # the raw line
    assert rejected[1]["input"] == '{"prompt": "caf\ufffd", "chosen": "good", "rejected": "bad"}'
    assert rejected[2]["input"] == {"prompt": "q", "chosen": "good"}  # parsed rows come back as they were
    counts = summary.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (12, 1, 1, 10)
    assert counts.rows_in == counts.kept + counts.dropped + counts.rejected
    assert counts.judged == 4  # kept, dropped, and the two the judge could not read


def test_a_chunk_that_fails_as_a_whole_is_judged_pair_by_pair(tmp_path):
    class Picky:
        def describe(self):
            return {"model": "picky"}

        def compare_each(self, pairs):
            if any(pair.prompt == "poison" for pair in pairs):
                raise CriticError("the backend choked on this batch")
            return [Preference("A", 0.8, True, ()) for _ in pairs]

    rows = [{"prompt": "poison" if i == 3 else f"q{i}", "chosen": "a", "rejected": "b"} for i in range(6)]
    summary = filter_file(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", Picky(), chunk_size=6)
    assert (summary.counts.kept, summary.counts.rejected) == (5, 1)
    assert read_jsonl(tmp_path / "out" / "rejected.jsonl")[0] == {
        "row": 4, "reason": "judge: the backend choked on this batch", "input": rows[3]}


# --------------------------------------------------------------------------- memory


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from critic.jobs.filejob import filter_file
    from critic.types import Preference

    class Scripted:  # a scripted judge: chosen wins when its text says so
        def describe(self):
            return {"model": "scripted"}
        def compare_each(self, pairs):
            return [Preference("A" if p.response_a.startswith("good") else "B", 0.9, True, ()) for p in pairs]

    def generate(path, count, kind):
        with open(path, "w") as out:
            out.write("[\\n" if kind == "json" else "")
            for i in range(count):
                row = {"id": i, "prompt": f"question {i} " + "q" * 120,
                       "chosen": ("good " if i % 3 else "bad ") + "a" * 80, "rejected": "other " + "b" * 80}
                out.write(json.dumps(row) + ("," if kind == "json" and i < count - 1 else "") + "\\n")
            out.write("]\\n" if kind == "json" else "")

    kind, small, large, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    suffix = ".json" if kind == "json" else ".jsonl"
    peaks = []
    for count in (small, large):
        path = f"{folder}/in{count}{suffix}"
        generate(path, count, kind)
        summary = filter_file(path, f"{folder}/out{count}", Scripted(), chunk_size=2000)
        assert summary.counts.rows_in == count, summary.counts
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    print(json.dumps({"peaks_kib": peaks}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("kind", ["jsonl", "json"])
def test_memory_stays_flat_whatever_the_input_size(tmp_path, kind):
    """200k rows (~60 MB) after 20k rows: the peak RSS must not grow with the input.

    Holding the 200k rows in memory would take hundreds of MB; streaming keeps the
    growth near zero. The bound (24 MB) is far from both, so the test is not flaky.
    """
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script), kind, "20000", "200000", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    small, large = json.loads(result.stdout.strip().splitlines()[-1])["peaks_kib"]
    input_mb = (tmp_path / f"in200000.{'json' if kind == 'json' else 'jsonl'}").stat().st_size / 1e6
    assert input_mb > 50
    assert (large - small) / 1024 < 24, f"peak RSS grew from {small} KiB to {large} KiB on a {input_mb:.0f} MB input"


# --------------------------------------------------------------------------- datasets.Dataset


def test_filter_dataset_splits_a_dataset_and_counts_add_up():
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": "q1", "chosen": "good", "rejected": "bad"},
            {"prompt": "q2", "chosen": "bad", "rejected": "good"},
            {"prompt": None, "chosen": "good", "rejected": "bad"},
            {"prompt": "q4", "chosen": "meh", "rejected": "meh"}]
    result = filter_dataset(datasets.Dataset.from_list(rows), good_judge(), policy=Policy(relabel=True), batch_size=2,
                            desc=None)
    assert result.kept["prompt"] == ["q1", "q2"]
    assert result.kept["chosen"] == ["good", "good"] and result.kept["critic_relabelled"] == [False, True]
    assert result.kept["critic_p_chosen"] == pytest.approx([0.9, 0.9])
    assert result.dropped["prompt"] == ["q4"] and result.dropped["critic_label"] == ["tie"]
    assert result.rejected["critic_reason"] == ["field 'prompt' is null"]
    assert "critic_label" not in result.rejected.column_names
    counts = result.summary["counts"]
    assert [counts[key] for key in ("rows_in", "kept", "dropped", "rejected", "relabelled")] == [4, 2, 1, 1, 1]


def test_judge_columns_works_with_dataset_map_batched():
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list([
        {"question": "q", "good_one": "good", "bad_one": "bad"},
        {"question": "q", "good_one": "bad", "bad_one": "good"},
    ])
    mapped = dataset.map(judge_columns(good_judge(), columns=Columns(prompt="question", chosen="good_one",
                                                                     rejected="bad_one")),
                         batched=True, new_fingerprint="test-judge-columns")
    assert mapped["critic_status"] == ["kept", "dropped"]
    assert mapped["critic_label"] == ["chosen", "rejected"] and mapped["critic_consistent"] == [True, True]

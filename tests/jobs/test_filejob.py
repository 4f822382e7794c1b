"""The file job: outputs, counts, summary, checkpoints and resume, limits, bad rows, memory."""

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
from critic.jobs.checkpoint import CHECKPOINT_FILE
from critic.jobs.filejob import filter_file
from critic.jobs.policy import Policy
from critic.jobs.summary import TooManyRejects
from critic.judges import JudgeDescription
from critic.testing import FakeBackend
from critic.types import Preference

from .support import generated_rows, good_judge, outputs, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


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
    assert rejected[0] == {"row": 8, "reason": "field 'chosen' is null", "kind": "missing field", "stage": "input",
                           "input": rows[7]}
    counts = summary.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (40, 20, 15, 5)
    assert [(p.rows_done, p.total) for p in seen] == [(0, 40), (16, 40), (32, 40), (40, 40)]
    written = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert written["counts"]["rows_in"] == 40
    assert written["counts"]["rejected_by_reason"] == {"missing field": 5}
    assert written["counts"]["reason_examples"] == {"missing field": "field 'chosen' is null"}
    description = good_judge().describe()
    assert isinstance(summary.judge, JudgeDescription) and summary.judge == description
    assert written["judge"] == description.to_dict()
    assert {"kind": "generative", "model": "fake-good", "template": "skywork-critic", "mode": "score",
            "swap": True}.items() <= written["judge"].items()
    assert written["policy"]["name"] == "consistent" and written["input"] == str(source)
    assert written["rates"]["kept"] == 0.5 and written["pairs_per_second"] > 0 and written["complete"] is True


def test_existing_outputs_are_never_overwritten_without_resume_or_force(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(10))
    first = filter_file(source, tmp_path / "out", good_judge())
    with pytest.raises(InputError, match="already holds outputs.*use --resume to continue that job or --force"):
        filter_file(source, tmp_path / "out", good_judge())
    again = filter_file(source, tmp_path / "out", good_judge(), resume=True)  # complete: nothing to redo
    assert again.counts == first.counts and again.complete and again.judge == first.judge
    forced = filter_file(source, tmp_path / "out", good_judge(p=0.6), force=True)
    assert forced.counts.rows_in == 10
    with pytest.raises(InputError, match="cannot resume: the job .* was started with different settings \\(policy"):
        filter_file(source, tmp_path / "out", good_judge(), resume=True, policy=Policy(min_p=0.7))
    with pytest.raises(InputError, match="different settings \\(judge"):
        filter_file(source, tmp_path / "out", Judge(FakeBackend.first_position(), model_name="other"), resume=True)
    with pytest.raises(InputError, match="either resume or force"):
        filter_file(source, tmp_path / "out", good_judge(), resume=True, force=True)
    with pytest.raises(InputError, match="limit must be 0 or more"):
        filter_file(source, tmp_path / "other", good_judge(), limit=-1)
    assert not (tmp_path / "other").exists()


def test_an_old_checkpoint_version_is_refused_with_a_hint(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(10))
    filter_file(source, tmp_path / "out", good_judge(), limit=4)
    checkpoint = tmp_path / "out" / CHECKPOINT_FILE
    state = json.loads(checkpoint.read_text(encoding="utf-8"))
    checkpoint.write_text(json.dumps(dict(state, version=1)), encoding="utf-8")
    with pytest.raises(InputError, match="has version 1, not 2; use --force to start over"):
        filter_file(source, tmp_path / "out", good_judge(), resume=True)


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
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text(encoding="utf-8"))
    resumed = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert resumed["counts"] == whole["counts"]  # reasons and their examples survive the checkpoint


def test_a_crash_between_writing_rows_and_the_checkpoint_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    import critic.jobs.checkpoint as checkpoint
    import critic.jobs.filejob as filejob

    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(50))
    filter_file(source, tmp_path / "whole", good_judge(), chunk_size=7)
    real_write = filejob.write_json_atomic
    writes = {"left": 4}  # the first checkpoint, three chunks, then a crash before the fourth chunk's checkpoint

    def crashing_write(path, state):
        writes["left"] -= 1
        if writes["left"] < 0:
            raise KeyboardInterrupt
        real_write(path, state)

    monkeypatch.setattr(filejob, "write_json_atomic", crashing_write)
    monkeypatch.setattr(checkpoint, "write_json_atomic", crashing_write)
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, tmp_path / "out", good_judge(), chunk_size=7)
    monkeypatch.setattr(filejob, "write_json_atomic", real_write)
    monkeypatch.setattr(checkpoint, "write_json_atomic", real_write)
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


def test_the_end_of_job_check_reads_no_output_back_and_still_sees_a_changed_folder(tmp_path, monkeypatch):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(30))
    opened = []
    real_open = Path.open

    def recording_open(self, mode="r", *args, **kwargs):
        opened.append((self.name, mode))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    filter_file(source, tmp_path / "out", good_judge(), chunk_size=8)
    outputs_read = [(name, mode) for name, mode in opened
                    if name in {"kept.jsonl", "dropped.jsonl", "rejected.jsonl"} and "r" in mode]
    assert outputs_read == []
    monkeypatch.setattr(Path, "open", real_open)

    def meddle(progress):
        if progress.rows_done == 8:  # someone appends to an output while the job runs
            with real_open(tmp_path / "meddled" / "kept.jsonl", "ab") as handle:
                handle.write(b'{"not": "ours"}\n')

    with pytest.raises(CriticError, match="kept.jsonl is .* bytes but the job wrote .*changed during the job"):
        filter_file(source, tmp_path / "meddled", good_judge(), chunk_size=8, progress=meddle)


# --------------------------------------------------------------------------- bad rows


def too_long_or_good(request):
    """A fake model with a 200-character context: longer prompts fail alone, as a real backend reports them."""
    if len(request.pair.prompt) > 200:
        return BackendOutput(error=InputError(f"the pair is too long for the model: {len(request.pair.prompt)} "
                                              "characters > 200", kind=Reason.TOO_LONG))
    if "unreadable" in request.pair.prompt:
        return BackendOutput(text="I cannot decide.")
    first, second = request.pair.response_a.startswith("good"), request.pair.response_b.startswith("good")
    return BackendOutput(letter_probs={"A": 0.9 if first and not second else 0.1 if second else 0.5,
                                       "B": 0.1 if first and not second else 0.9 if second else 0.5})


from critic.errors import Reason  # noqa: E402

BAD_CORPUS = [
    (b'{"prompt": "2+2?", "chosen": "good 4", "rejected": "bad 5"}', "kept", None, None),
    (b'{"prompt": "2+2?", "chosen": "good 4", "rejected": ', "rejected", "line 2 is not valid JSON (Expecting value",
     "unreadable row"),
    (b'{"prompt": "caf\xe9", "chosen": "good", "rejected": "bad"}', "rejected", "line 3 is not valid UTF-8",
     "unreadable row"),
    (b'{"prompt": "q", "chosen": "good"}', "rejected", "missing field 'rejected'", "missing field"),
    (b'{"prompt": "q", "chosen": null, "rejected": "bad"}', "rejected", "field 'chosen' is null", "missing field"),
    (b'{"prompt": 7, "chosen": "good", "rejected": "bad"}', "rejected", "field 'prompt' must be a string, got number",
     "wrong field type"),
    (b'{"prompt": "q", "chosen": ["good"], "rejected": ["bad"]}', "rejected",
     "field 'chosen'[0] must be an object with 'role' and 'content'", "malformed conversation"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], '
     b'"rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]}', "rejected",
     "do not share the conversation before the answer", "malformed conversation"),
    (b'[1, 2, 3]', "rejected", "a row must be a JSON object, got list", "row is not an object"),
    (b'{"prompt": "' + b"x" * 300 + b'", "chosen": "good", "rejected": "bad"}', "rejected",
     "judge: the pair is too long for the model: 300 characters > 200", "judge: too long for the model"),
    (b'{"prompt": "unreadable", "chosen": "good", "rejected": "bad"}', "rejected",
     "judge: the backend returned no letter probabilities in score mode", "judge: model failure"),
    (b'{"prompt": "caf\\ud800", "chosen": "good", "rejected": "bad"}', "rejected",
     "holds an unpaired UTF-16 surrogate", "text the tokenizer cannot take"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}], '
     b'"rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]}', "dropped",
     None, None),
]


def test_a_corpus_of_bad_rows_is_rejected_row_by_row_with_kinds_and_the_job_goes_on(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(line for line, _, _, _ in BAD_CORPUS) + b"\n")
    judge = Judge(FakeBackend(too_long_or_good), model_name="fake-200-chars")
    summary = filter_file(source, tmp_path / "out", judge, chunk_size=5)
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    expected = [(number, reason, key) for number, (_, where, reason, key) in enumerate(BAD_CORPUS, start=1)
                if where == "rejected"]
    assert [row["row"] for row in rejected] == [number for number, _, _ in expected]
    for row, (_, reason, key) in zip(rejected, expected, strict=True):
        assert row["reason"].startswith(reason) or reason in row["reason"], row
        assert "\n" not in row["reason"]
        assert (f"judge: {row['kind']}" if row["stage"] == "judge" else row["kind"]) == key, row
        assert row["stage"] == ("judge" if key.startswith("judge: ") else "input")
    assert rejected[0]["input"] == '{"prompt": "2+2?", "chosen": "good 4", "rejected": '  # the raw line
    assert rejected[1]["input"] == '{"prompt": "caf\ufffd", "chosen": "good", "rejected": "bad"}'
    assert rejected[2]["input"] == {"prompt": "q", "chosen": "good"}  # parsed rows come back as they were
    assert rejected[-1]["input"] == {"prompt": "caf\ud800", "chosen": "good", "rejected": "bad"}
    counts = summary.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (13, 1, 1, 11)
    assert counts.rows_in == counts.kept + counts.dropped + counts.rejected
    assert counts.judged == 4  # kept, dropped, and the two the judge could not read
    assert counts.reasons["missing field"] == 2 and counts.reasons["malformed conversation"] == 2
    assert counts.examples["missing field"] == "missing field 'rejected' (present: chosen, prompt)"
    assert counts.examples["judge: too long for the model"].startswith("judge: the pair is too long")
    json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))


class SurrogateCrash:
    """A judge that, like a tokenizer, raises an unexpected exception for any chunk holding a lone surrogate."""

    def __init__(self) -> None:
        self.judge = good_judge()

    def describe(self):
        return self.judge.describe()

    def compare_each(self, pairs):
        for pair in pairs:
            (pair.prompt + pair.response_a + pair.response_b).encode("utf-8")  # UnicodeEncodeError
        return self.judge.compare_each(pairs)


def test_a_lone_surrogate_in_any_text_field_is_a_rejection_and_resume_passes_it(tmp_path, monkeypatch):
    lines = [json.dumps({"id": i, "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"})
             for i in range(12)]
    lines[3] = '{"id": 3, "prompt": "\\ud800", "chosen": "good", "rejected": "bad"}'
    lines[6] = '{"id": 6, "prompt": "q", "chosen": "good \\udfff", "rejected": "bad"}'
    lines[9] = ('{"id": 9, "chosen": [{"role": "user", "content": "q\\ud83d"}, {"role": "assistant", '
                '"content": "good"}], "rejected": [{"role": "user", "content": "q\\ud83d"}, '
                '{"role": "assistant", "content": "bad"}]}')
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = filter_file(source, tmp_path / "whole", good_judge(), chunk_size=4)
    assert (summary.counts.kept, summary.counts.rejected) == (9, 3) and summary.complete
    rejected = read_jsonl(tmp_path / "whole" / "rejected.jsonl")
    assert [row["row"] for row in rejected] == [4, 7, 10]
    assert [row["kind"] for row in rejected[:2]] == ["text the tokenizer cannot take"] * 2
    # the message list's check re-labels the kind (critic.io.rows._messages) for now: asked of critic/io
    assert rejected[2]["kind"] in {"text the tokenizer cannot take", "malformed conversation"}
    assert all("surrogate" in row["reason"] and row["stage"] == "input" for row in rejected)
    # Killed on the chunk that holds the first surrogate row, then resumed: it finishes, the same bytes.
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, tmp_path / "out", CrashAfter(good_judge(), 0), chunk_size=4)
    assert filter_file(source, tmp_path / "out", good_judge(), chunk_size=4, resume=True).complete
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")
    # Even if a pair with a surrogate reaches a judge that crashes on it, only that row is lost.
    import critic.io.rows as rows

    monkeypatch.setattr(rows, "Pair", _unchecked_pair(rows.Pair))
    crashed = filter_file(source, tmp_path / "crash", SurrogateCrash(), chunk_size=4)
    assert (crashed.counts.kept, crashed.counts.rejected) == (9, 3) and crashed.complete
    reasons = read_jsonl(tmp_path / "crash" / "rejected.jsonl")
    assert [row["row"] for row in reasons] == [4, 7, 10]
    for row in reasons[:2]:  # the messages of row 10 are checked on their own, before any Pair
        assert row["stage"] == "judge" and row["kind"] == "text the tokenizer cannot take"
        assert row["reason"].startswith("judge: unexpected UnicodeEncodeError")


def _unchecked_pair(pair_type):
    """A Pair that does not check its text (as a judge stack without the check would pass it on)."""
    import dataclasses

    def build(prompt, a, b, reference=None, history=()):
        pair = object.__new__(pair_type)
        for name, value in zip([field.name for field in dataclasses.fields(pair_type)],
                               (prompt, a, b, reference, tuple(history)), strict=False):
            object.__setattr__(pair, name, value)
        return pair

    return build


def test_a_chunk_that_fails_as_a_whole_is_judged_pair_by_pair(tmp_path):
    class Picky:
        def describe(self):
            return JudgeDescription(kind="custom", model="picky")

        def compare_each(self, pairs):
            if any(pair.prompt == "poison" for pair in pairs):
                raise CriticError("the backend choked on this batch")
            return [Preference("A", 0.8, True, ()) for _ in pairs]

    rows = [{"prompt": "poison" if i == 3 else f"q{i}", "chosen": "a", "rejected": "b"} for i in range(6)]
    summary = filter_file(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out", Picky(), chunk_size=6)
    assert (summary.counts.kept, summary.counts.rejected) == (5, 1)
    assert read_jsonl(tmp_path / "out" / "rejected.jsonl")[0] == {
        "row": 4, "reason": "judge: the backend choked on this batch", "kind": "other", "stage": "judge",
        "input": rows[3]}
    assert summary.counts.reasons == {"judge: other": 1}


# --------------------------------------------------------------------------- memory


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from critic.jobs.filejob import filter_file
    from tests.jobs.support import Scripted

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


@pytest.mark.slow
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
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    small, large = json.loads(result.stdout.strip().splitlines()[-1])["peaks_kib"]
    input_mb = (tmp_path / f"in200000.{'json' if kind == 'json' else 'jsonl'}").stat().st_size / 1e6
    assert input_mb > 50
    assert (large - small) / 1024 < 24, f"peak RSS grew from {small} KiB to {large} KiB on a {input_mb:.0f} MB input"


@pytest.mark.model
def test_the_demo_model_job_rejects_a_lone_surrogate_and_finishes(tmp_path, demo_backend):
    lines = ['{"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}',
             '{"prompt": "What is 2+2?\\ud800", "chosen": "4", "rejected": "5"}',
             '{"prompt": "Capital of France?", "chosen": "Paris \\udc00", "rejected": "Rome"}']
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    judge = Judge(demo_backend, model_name="demo")
    summary = filter_file(source, tmp_path / "out", judge, policy=Policy(min_p=0.0))
    assert summary.complete and (summary.counts.kept, summary.counts.rejected) == (1, 2)
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [row["row"] for row in rejected] == [2, 3]
    assert all(row["kind"] == "text the tokenizer cannot take" for row in rejected)
    assert filter_file(source, tmp_path / "out", judge, policy=Policy(min_p=0.0), resume=True).complete


def test_a_saved_dataset_is_loaded_once_per_job_and_counted_without_reading_it(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import critic.io.source as source_module

    datasets.Dataset.from_list(generated_rows(20)).save_to_disk(str(tmp_path / "saved"))
    loads = []
    real_load = source_module.load_hf_disk
    monkeypatch.setattr(source_module, "load_hf_disk", lambda *args: loads.append(args) or real_load(*args))
    seen = []
    summary = filter_file(tmp_path / "saved", tmp_path / "out", good_judge(), chunk_size=8, limit=12,
                          progress=seen.append)
    assert len(loads) == 1 and summary.counts.rows_in == 12 and seen[0].total == 12
    filter_file(tmp_path / "saved", tmp_path / "out", good_judge(), chunk_size=8, resume=True)
    assert len(loads) == 2  # one more job, one more load


class FailingEngine:
    """An engine whose judges never start (Ray actors that cannot load their model)."""

    def __init__(self, judge) -> None:
        self.judge = judge

    def describe(self):
        return self.judge.describe()

    def judged_chunks(self, source, columns, *, skip, chunk_size):
        raise CriticError("the actors could not load the model")
        yield  # a generator, as the real engines are


def test_force_replaces_the_earlier_job_only_once_the_new_one_has_judged_a_chunk(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(20))
    out = tmp_path / "out"
    filter_file(source, out, good_judge(), chunk_size=8)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    with pytest.raises(CriticError, match="could not load the model"):
        filter_file(source, out, engine=FailingEngine(good_judge(p=0.6)), force=True)
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, out, CrashAfter(good_judge(p=0.6), 0), chunk_size=8, force=True)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    # once a chunk is judged the folder is the new job's: killed there, it resumes as the new job
    with pytest.raises(KeyboardInterrupt):
        filter_file(source, out, CrashAfter(good_judge(p=0.6), 1), chunk_size=8, force=True)
    assert not (out / "summary.json").exists()
    assert json.loads((out / CHECKPOINT_FILE).read_text(encoding="utf-8"))["rows_done"] == 8
    resumed = filter_file(source, out, good_judge(p=0.6), chunk_size=8, resume=True)
    filter_file(source, tmp_path / "whole", good_judge(p=0.6), chunk_size=8)
    assert resumed.complete and outputs(out) == outputs(tmp_path / "whole")


def test_resume_needs_a_checkpoint_and_an_input_is_never_an_output(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", generated_rows(10))
    with pytest.raises(InputError, match="there is no job to resume in .*run without --resume"):
        filter_file(source, tmp_path / "never", good_judge(), resume=True)
    assert not (tmp_path / "never").exists()
    filter_file(source, tmp_path / "out", good_judge())
    kept = tmp_path / "out" / "kept.jsonl"
    before = kept.read_bytes()
    with pytest.raises(InputError, match="is an input of this command"):
        filter_file(kept, tmp_path / "out", good_judge(), force=True)
    assert kept.read_bytes() == before

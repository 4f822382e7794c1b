"""critic.eval.pairs: labelled pairs and other judges' predictions, read through critic.io like every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic.errors import CriticError, InputError, Reason
from critic.eval.evaluate import PairRecord, align, summarize
from critic.eval.pairs import companion_files, labelled_pair, load_labelled_pairs, load_predictions
from critic.io.rows import prepare_row
from critic.io.shapes import Columns
from critic.io.source import open_source
from tests.conftest import SHARED, shared_path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pandalm_row(idx, votes, r1="first answer", r2="second answer", extra=""):
    return {"idx": idx, "instruction": "Do it.", "input": extra, "response1": r1, "response2": r2,
            **{f"annotator{i + 1}": vote for i, vote in enumerate(votes)}}


def record(key, gold, prediction="A", *, flipped=False):
    return PairRecord(key, None, gold, prediction, 0.5, True, (prediction, prediction), ("A", "B"), 5, 3,
                      flipped=flipped)


def test_load_pandalm_rows_keeps_ties_and_order(tmp_path):
    path = tmp_path / "panda.json"
    rows = [pandalm_row(0, (1, 1, 0)), pandalm_row(1, (2, 2, 1), extra="ctx"), pandalm_row(2, (0, 0, 2)),
            pandalm_row(3, (1, 2, 1), r1=True)]  # PandaLM stores some answers "True" as JSON true
    path.write_text(json.dumps(rows), encoding="utf-8")
    loaded = load_labelled_pairs(path)
    assert loaded.skipped == ()
    assert [(p.key, p.label, p.flipped, p.row) for p in loaded.pairs] == [
        ("0", "A", False, 1), ("1", "B", False, 2), ("2", "tie", False, 3), ("3", "A", False, 4)]
    assert loaded.pairs[1].pair.prompt == "Do it.\n\nctx"
    assert loaded.pairs[0].pair.response_a == "first answer"
    assert loaded.pairs[3].pair.response_a == "True"


def test_load_chosen_rejected_rows_alternates_the_chosen_side(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good{i}", "rejected": f"bad{i}", "subset": "hep-go"} for i in range(4)]
    loaded = load_labelled_pairs(write_jsonl(tmp_path / "rb.jsonl", rows))
    assert [p.label for p in loaded.pairs] == ["A", "B", "A", "B"]
    for item in loaded.pairs:
        better = item.pair.response_a if item.label == "A" else item.pair.response_b
        assert better.startswith("good") and item.subset == "hep-go"
        assert item.flipped == (item.label == "B")


def test_load_labelled_ab_rows_and_skips_unusable_rows(tmp_path):
    path = tmp_path / "ab.jsonl"
    rows = [
        {"id": "x", "prompt": "q", "response_a": "a", "response_b": "b", "label": "B"},
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "tie"},
        {"prompt": "q", "response_a": "a", "response_b": "b"},  # no label: nothing to evaluate against
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "maybe"},
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "none"},  # not a tie: unknown
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "response2"},
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "Draw"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n", encoding="utf-8")
    loaded = load_labelled_pairs(path)
    assert [(p.key, p.label) for p in loaded.pairs] == [("x", "B"), ("2", "tie"), ("6", "B"), ("7", "tie")]
    assert loaded.pairs[0].pair.response_a == "a"  # kept in its own order
    assert len(loaded.skipped) == 4
    assert loaded.skipped[0] == "row 3: no 'label' saying which response is better"
    assert "'maybe'" in loaded.skipped[1] and "'none'" in loaded.skipped[2] and "row 8" in loaded.skipped[3]


def test_llmbar_columns_and_integer_labels(tmp_path):
    rows = [{"input": "Sort 3 1 2", "output_1": "1 2 3", "output_2": "3 2 1", "label": 1},
            {"input": "Sort 2 1", "output_1": "2 1", "output_2": "1 2", "label": 2}]
    path = write_jsonl(tmp_path / "llmbar.jsonl", rows)
    columns = Columns(prompt="input", response_a="output_1", response_b="output_2")
    loaded = load_labelled_pairs(path, columns=columns)
    assert loaded.skipped == ()
    assert [(p.pair.prompt, p.pair.response_a, p.label) for p in loaded.pairs] == [("Sort 3 1 2", "1 2 3", "A"),
                                                                                  ("Sort 2 1", "2 1", "B")]
    unmapped = load_labelled_pairs(path)  # detected by its columns: the same pairs without any mapping
    assert [(p.pair, p.label) for p in unmapped.pairs] == [(p.pair, p.label) for p in loaded.pairs]
    assert unmapped.detected is not None and unmapped.detected.shape == "llmbar"


def test_load_reads_every_format_and_respects_limit(tmp_path):
    rows = [{"prompt": "q", "chosen": "c", "rejected": "r"} for _ in range(10)]
    assert len(load_labelled_pairs(write_jsonl(tmp_path / "p.jsonl", rows), limit=3).pairs) == 3
    (tmp_path / "p.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "p.csv").write_text("prompt,chosen,rejected\n" + "q,c,r\n" * 10, encoding="utf-8")
    assert len(load_labelled_pairs(tmp_path / "p.json", limit=4).pairs) == 4
    assert len(load_labelled_pairs(tmp_path / "p.csv").pairs) == 10
    assert len(load_labelled_pairs(open_source(tmp_path / "p.csv"), limit=2).pairs) == 2
    (tmp_path / "p.data").write_text(json.dumps(rows), encoding="utf-8")
    assert len(load_labelled_pairs(tmp_path / "p.data", format="json").pairs) == 10


def test_load_predictions_marks_garbage_as_failed_and_align_follows_flips(tmp_path):
    path = tmp_path / "gpt.json"
    path.write_text(json.dumps([{"idx": 0, "gpt_result": "1"}, {"idx": 1, "gpt_result": "garbage"},
                                {"idx": 2, "gpt_result": "Tie"}, {"idx": 3, "gpt_result": "response2"},
                                {"idx": 4, "gpt_result": "none"}, {"idx": 5, "gpt_result": True}]), encoding="utf-8")
    predictions = load_predictions("gpt", path)
    assert predictions.field == "gpt_result"
    assert dict(predictions.labels) == {"0": "A", "1": None, "2": "tie", "3": "B", "4": None, "5": None}
    records = [record("0", "A"), record("1", "A"), record("2", "A"), record("9", "A")]
    assert align(predictions, records) == ["A", None, "tie", None]  # a missing key is a failed prediction
    assert align(predictions, [record("0", "B", flipped=True)]) == ["B"]


def test_duplicate_prediction_keys_are_an_error_naming_the_key_and_the_file(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"idx": 1, "verdict": "A"}, {"idx": 2, "verdict": "B"},
                                                 {"idx": 1, "verdict": "B"}])
    with pytest.raises(InputError) as caught:
        load_predictions("mine", path)
    message = str(caught.value)
    assert "'1'" in message and str(path) in message and "rows 1 and 3" in message
    by_id = write_jsonl(tmp_path / "by-id.jsonl", [{"id": "a", "verdict": "A"}, {"id": "a", "verdict": "A"}])
    with pytest.raises(InputError, match="two predictions for the pair 'a'"):
        load_predictions("mine", by_id)
    named = write_jsonl(tmp_path / "named.jsonl", [{"id": "a", "name": "x", "verdict": "A"},
                                                   {"id": "a", "name": "y", "verdict": "B"}])
    assert dict(load_predictions("mine", named, key="name").labels) == {"x": "A", "y": "B"}  # the named key counts


def test_prediction_files_that_cannot_be_used_say_why(tmp_path):
    with pytest.raises(InputError, match="has none of the prediction fields") as caught:
        load_predictions("x", write_jsonl(tmp_path / "a.jsonl", [{"idx": 0, "answer": "A"}]))
    assert caught.value.kind == Reason.MISSING_FIELD
    (tmp_path / "b.jsonl").write_text('{"idx": 0, "verdict": "A"}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not valid JSON") as caught:
        load_predictions("x", tmp_path / "b.jsonl")
    assert caught.value.kind == Reason.UNREADABLE_ROW
    with pytest.raises(InputError, match="no key field 'name'"):
        load_predictions("x", write_jsonl(tmp_path / "c.jsonl", [{"idx": 0, "verdict": "A"}]), key="name")


def test_companion_files_follow_pandalm_layout(tmp_path):
    for name in ("testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json", "other.json"):
        (tmp_path / name).write_text("[]")
    found = companion_files(tmp_path / "testset-v1.json")
    assert sorted(found) == ["gpt-3.5-turbo", "pandalm-7b"]
    assert companion_files(tmp_path / "missing.json") == {}


def test_pandalm_reference_judges_reproduce_the_published_agreement():
    """GPT-3.5 and PandaLM-7B against the human majority, as ../shared/README.md states them."""
    path = shared_path("data", "pandalm", "testset-v1.json")
    loaded = load_labelled_pairs(path)
    assert len(loaded.pairs) == 999 and loaded.skipped == ()
    counts = {label: sum(1 for p in loaded.pairs if p.label == label) for label in ("A", "B", "tie")}
    assert counts == {"A": 422, "B": 472, "tie": 105}
    others = [load_predictions(name, file) for name, file in companion_files(path).items()]
    records = [PairRecord(p.key, None, p.label, None, None, None, (), (), 0, 0, error="not judged")
               for p in loaded.pairs]
    report = summarize(records, others=others)
    results = {o.name: o for o in report.other_judges}
    gpt, panda = results["gpt-3.5-turbo"], results["pandalm-7b"]
    assert round(100 * gpt.accuracy.accuracy, 1) == 69.8 and gpt.accuracy.n == 999
    assert gpt.accuracy.failed == 25  # the "garbage" answers: reported, never guessed
    assert round(100 * gpt.accuracy_decided.accuracy, 1) == 77.4 and gpt.accuracy_decided.n == 894
    assert round(100 * panda.accuracy.accuracy, 1) == 66.8
    assert round(100 * panda.accuracy_decided.accuracy, 1) == 71.0
    kappas = {(a.first, a.second): a.kappa for a in report.agreement}
    assert 0.3 < kappas[("gold", "gpt-3.5-turbo")] < 0.7
    assert 0.3 < kappas[("gold", "pandalm-7b")] < 0.7


def _filter_reading(row):
    """What `critic filter` makes of a row: (prompt, {answers}, winning answer or "tie") or (reason, kind)."""
    try:
        candidate = prepare_row(row)
    except CriticError as error:
        return None, (str(error), error.kind)
    pair = candidate.pair
    return (pair.prompt, frozenset((pair.response_a, pair.response_b)), pair.response_a), None


def _eval_reading(item):
    pair = item.pair
    winner = {"A": pair.response_a, "B": pair.response_b, "tie": "tie"}[item.label]
    return pair.prompt, frozenset((pair.response_a, pair.response_b)), winner


@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED / "data" / "pandalm").glob("*.json"))
                         or ["testset-v1.json"])
def test_filter_and_eval_read_every_row_of_the_shared_fixtures_the_same_way(name):
    path = shared_path("data", "pandalm", name)
    rows = dict(open_source(path).rows())
    loaded = load_labelled_pairs(path)
    by_row = {item.row: item for item in loaded.pairs}
    skipped = {int(text.split(":")[0].removeprefix("row ")): text.split(": ", 1)[1] for text in loaded.skipped}
    assert len(rows) == 999 and set(by_row) | set(skipped) == set(rows) and not set(by_row) & set(skipped)
    ties = 0
    for number, row in rows.items():
        filtered, refused = _filter_reading(row)
        if number in skipped:  # eval refused it: filter refuses it for the same reason
            assert refused is not None and refused[0] == skipped[number], number
            continue
        read = _eval_reading(by_row[number])
        if read[2] == "tie":  # a gold tie in eval is filter's "no preference" rejection
            ties += 1
            assert refused is not None and refused[1] == Reason.NO_PREFERENCE, number
        else:
            assert filtered == read, number
    if name == "testset-v1.json":
        assert (len(by_row), ties, len(skipped)) == (999, 105, 0)
    else:  # the other judges' prediction files hold no pairs: both readers say so, in the same words
        assert len(skipped) == 999 and all("no known row shape" in reason for reason in skipped.values())


def test_labelled_pair_reads_one_row_like_the_loader():
    item = labelled_pair(4, {"prompt": "q", "chosen": "c", "rejected": "r", "id": 9}, flip=True)
    assert (item.key, item.label, item.flipped, item.pair.response_b, item.row) == ("9", "B", True, "c", 4)


# --------------------------------------------------------------------------- the public formats (tests/data)


DATA = Path(__file__).resolve().parents[1] / "data"


def test_rewardbench_filtered_rows_are_keyed_by_id_with_their_subset():
    loaded = load_labelled_pairs(DATA / "rewardbench_filtered.jsonl")
    assert loaded.skipped == () and loaded.label_column is None
    assert [(p.key, p.subset, p.label, p.group) for p in loaded.pairs] == [
        ("31", "alpacaeval-easy", "A", None), ("4020", "hep-python", "B", None),
        ("3021", "donotanswer", "A", None), ("2550", "xstest-should-respond", "B", None)]


def test_rewardbench2_rows_expand_into_one_group_per_row():
    rows = [row for _, row in open_source(DATA / "rewardbench2.jsonl").rows()]
    loaded = load_labelled_pairs(DATA / "rewardbench2.jsonl")
    assert loaded.skipped == ()  # the Ties rows too (before: "are not read")
    expected = [(f"{row['id']}:{k}", row["id"], row["subset"], number, (i, j))
                for number, row in enumerate(rows, start=1)
                for k, (i, j) in enumerate((i, j) for i in range(len(row["chosen"]))
                                           for j in range(len(row["rejected"])))]
    assert [(p.key, p.group, p.subset, p.row, p.answers) for p in loaded.pairs] == expected
    assert len(loaded.pairs) == 6 * 3 + 2 + 6
    assert [p.label for p in loaded.pairs[:6]] == ["A", "B"] * 3  # the chosen side alternates pair by pair
    for item in loaded.pairs:
        row = rows[item.row - 1]
        assert item.answers is not None
        chosen = item.pair.response_a if item.label == "A" else item.pair.response_b
        other = item.pair.response_b if item.label == "A" else item.pair.response_a
        assert chosen == row["chosen"][item.answers[0]] and other == row["rejected"][item.answers[1]]
    with pytest.raises(InputError, match="holds 3 pairs"):
        labelled_pair(1, rows[0])


def test_mt_bench_turn_two_pairs_carry_each_models_first_turn():
    loaded = load_labelled_pairs(DATA / "mt_bench_human_judgments.jsonl")
    assert loaded.skipped == () and loaded.label_column == "winner"
    assert [p.label for p in loaded.pairs] == ["A", "A", "B", "tie", "tie"]
    second = loaded.pairs[1].pair
    assert second.prompt.startswith("Rewrite") and second.history == ()
    assert [m["content"][:9] for m in second.history_a] == ["Compose a", "Aloha! My"]
    assert [m["content"][:9] for m in second.history_b] == ["Compose a", "Hawaii is"]
    assert loaded.pairs[0].pair.history_a == ()


def test_arena_winner_rows_and_hh_rows_are_read_without_flags():
    arena = load_labelled_pairs(DATA / "arena_winner.jsonl")
    assert [(p.key, p.label) for p in arena.pairs] == [("1", "B"), ("2", "A"), ("3", "tie")]
    assert arena.detected is not None and "reading labels from column 'winner'" in arena.detected.describe()
    hh = load_labelled_pairs(DATA / "hh_rlhf.jsonl")
    assert [p.row for p in hh.pairs] == [1, 2] and len(hh.skipped) == 2
    assert hh.pairs[1].pair.prompt == "Science fiction." and len(hh.pairs[1].pair.history) == 2


@pytest.mark.parametrize("name", ["rewardbench_filtered.jsonl", "hh_rlhf.jsonl", "mt_bench_human_judgments.jsonl",
                                  "llmbar.json", "arena_winner.jsonl", "ultrafeedback_export.csv"])
def test_filter_and_eval_read_the_public_formats_the_same_way(name):
    rows = dict(open_source(DATA / name).rows())
    loaded = load_labelled_pairs(DATA / name)
    by_row = {item.row: item for item in loaded.pairs}
    skipped = {int(text.split(":")[0].removeprefix("row ")): text.split(": ", 1)[1] for text in loaded.skipped}
    assert set(by_row) | set(skipped) == set(rows) and not set(by_row) & set(skipped)
    for number, row in rows.items():
        filtered, refused = _filter_reading(row)
        if number in skipped:
            assert refused is not None and refused[0] == skipped[number], number
            continue
        read = _eval_reading(by_row[number])
        if read[2] == "tie":
            assert refused is not None and refused[1] == Reason.NO_PREFERENCE, number
        else:
            assert filtered == read, number
            mine, theirs = prepare_row(row).pair, by_row[number].pair  # the same histories, each with its answer
            assert mine.history == theirs.history
            assert {(mine.response_a, repr(mine.history_a)), (mine.response_b, repr(mine.history_b))} == {
                (theirs.response_a, repr(theirs.history_a)), (theirs.response_b, repr(theirs.history_b))}


# --------------------------------------------------------------------------- issue 17, item 8


def test_an_id_twice_in_an_eval_input_is_an_error_naming_the_rows(tmp_path):
    """Before: accepted silently, and other judges' predictions for that id went to one of the two rows."""
    rows = [{"id": "a", "prompt": "q", "chosen": "x", "rejected": "y"},
            {"id": "b", "prompt": "q", "chosen": "x", "rejected": "y"},
            {"prompt": "q", "chosen": "x", "rejected": "y"},  # no id: keyed by its row number
            {"id": "a", "prompt": "q2", "chosen": "x", "rejected": "y"}]
    path = tmp_path / "dup.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"has the id 'a' twice \(rows 1 and 4\)") as caught:
        load_labelled_pairs(path)
    assert caught.value.kind == Reason.BAD_ARGUMENT
    assert len(load_labelled_pairs(path, limit=3)) == 3


def test_loaded_pairs_are_iterable_so_evaluate_takes_them_as_they_are():
    """Before: critic.evaluate(judge, critic.load_labelled_pairs(p)) raised TypeError (not iterable)."""
    import critic
    from critic.testing import FakeBackend

    loaded = critic.load_labelled_pairs(DATA / "mt_bench_human_judgments.jsonl")
    assert list(loaded) == list(loaded.pairs) and len(loaded) == len(loaded.pairs) == 5 and loaded.skipped == ()
    report = critic.evaluate(critic.Judge(FakeBackend.first_position(0.7)), loaded)
    assert report.overall.n == 5 and report.overall.predicted["failed"] == 0

"""Every command passes every option it accepts, unchanged, to the loader and the input layer.

Each command runs with every model, loading and batching flag set to a non-default
value; recorders in place of Judge.from_pretrained and RewardJudge.from_pretrained
keep what they were given. The recorded call must equal what was typed, and
dropping any one flag must change it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import cli
from critic.cli.main import parser
from critic.backends import registry
from critic.cli.options import SERVER_FLAGS, build_options
from critic.io.shapes import Columns
from critic.options import BatchLimits, LoadOptions, ServerOptions
from critic.testing import FakeBackend

from .conftest import write_jsonl
from .fakes import Loaded, Recorder

GENERATIVE = ["--model", "gen-model", "--template", "mt-bench", "--mode", "generate", "--no-swap",
              "--max-new-tokens", "77"]
LOAD = ["--device", "cpu", "--dtype", "fp16", "--trust-remote-code", "--backend", "transformers"]
BATCH = ["--batch-size", "3", "--max-batch-tokens", "999", "--max-length", "123"]
TRUNCATE = ["--overflow", "truncate"]
SETTINGS = {"template": "mt-bench", "mode": "generate", "swap": False, "max_new_tokens": 77}
LOADED = LoadOptions(device="cpu", dtype="fp16", trust_remote_code=True, backend="transformers")
LIMITS = BatchLimits(max_batch_size=3, max_batch_tokens=999, max_length=123, overflow="truncate")
GENERATIVE_CALL = ("generative", "gen-model", {**SETTINGS, "load": LOADED, "limits": LIMITS})
REWARD_CALL = ("reward", "rm-model", {"load": LOADED, "limits": BatchLimits(3, 999, 123, "error")})  # never truncates
# A served model: the engine settings are the server's; where it is, is ServerOptions.
SERVED = ["--trust-remote-code", "--backend", "server", "--base-url", "http://127.0.0.1:9", "--api-key-env",
          "CRITIC_TEST_KEY", "--served-model", "judge", "--max-concurrency", "4", "--timeout", "30",
          "--tokenizer", "tok"]
SERVER = ServerOptions("http://127.0.0.1:9", api_key_env="CRITIC_TEST_KEY", served_model="judge", max_concurrency=4,
                       timeout=30.0, tokenizer="tok")
NOT_SERVED = {"--device", "--dtype"}  # refused with a served model: the server's


def inputs(folder: Path) -> dict[str, Path]:
    return {
        "pairs": write_jsonl(folder / "pairs.jsonl", [{"prompt": "q", "response_a": "a", "response_b": "b"}]),
        "preferences": write_jsonl(folder / "prefs.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}]),
        "labelled": write_jsonl(folder / "labelled.jsonl",
                                [{"prompt": "q", "response_a": "a", "response_b": "b", "label": "A"}]),
    }


CASES = {
    "judge": (lambda f: ["judge", f["pairs"], *GENERATIVE, *LOAD, *BATCH, *TRUNCATE], [GENERATIVE_CALL]),
    "score": (lambda f: ["score", f["pairs"], "--model", "rm-model", *LOAD, *BATCH], [REWARD_CALL]),
    "filter": (lambda f: ["filter", f["preferences"], "-o", f["out"], "--min-p", "0.6", *GENERATIVE, *LOAD, *BATCH,
                          *TRUNCATE], [GENERATIVE_CALL]),
    "filter --judge reward": (lambda f: ["filter", f["preferences"], "-o", f["out"], "--judge", "reward",
                                         "--model", "rm-model", *LOAD, *BATCH], [REWARD_CALL]),
    "eval": (lambda f: ["eval", f["labelled"], "-o", f["out"], "--no-figure", *GENERATIVE, *LOAD, *BATCH, *TRUNCATE],
             [GENERATIVE_CALL]),
    "eval --reward-model": (lambda f: ["eval", f["labelled"], "-o", f["out"], "--no-figure", *GENERATIVE,
                                       "--reward-model", "rm-model", *LOAD, *BATCH, *TRUNCATE],
                            [GENERATIVE_CALL, REWARD_CALL]),
    # serve binds a free port (--port 0) before it loads; the recorder stops it there.
    "serve": (lambda f: ["serve", "--port", "0", *GENERATIVE, *LOAD, *BATCH, *TRUNCATE], [GENERATIVE_CALL]),
    "serve --kind reward": (lambda f: ["serve", "--port", "0", "--kind", "reward", "--model", "rm-model", *LOAD,
                                       *BATCH], [REWARD_CALL]),
    # The expected calls are built when the test runs, once the server backend is registered (see below).
    "judge --backend server": (lambda f: ["judge", f["pairs"], *GENERATIVE, *SERVED, *BATCH, *TRUNCATE],
                               lambda load: [("generative", "gen-model",
                                              {**SETTINGS, "load": load, "limits": LIMITS})]),
    "score --backend server": (lambda f: ["score", f["pairs"], "--model", "rm-model", *SERVED, *BATCH],
                               lambda load: [("reward", "rm-model",
                                              {"load": load, "limits": REWARD_CALL[2]["limits"]})]),
}


def expected_calls(case: str) -> list:
    expected = CASES[case][1]
    if callable(expected):
        return expected(LoadOptions(trust_remote_code=True, backend="server", server=SERVER))
    return expected


@pytest.fixture(autouse=True)
def server_backend(monkeypatch):
    """A stand-in for the server backend where it is not registered (its loader is never reached here)."""
    monkeypatch.setenv("CRITIC_TEST_KEY", "not-a-real-key")
    if "server" in registry.backend_names():
        yield
        return
    registry.register_backend("server", judge="critic.backends.fake:FakeBackend.from_pretrained", served=True)
    yield
    registry.unregister_backend("server")


@pytest.fixture
def recorded(monkeypatch):
    """Run a command line; return the loader calls it made, in order, as (kind, model, options)."""
    from critic import Judge, RewardJudge

    def run(argv: list) -> list[tuple[str, str, dict]]:
        calls: list[tuple[str, str, dict]] = []

        def recorder(kind):
            def from_pretrained(model, **options):
                calls.append((kind, model, options))
                if kind == "generative" and "--reward-model" in argv:  # eval goes on to load the reward model
                    return Judge(FakeBackend.prefer(lambda text: True), model_name=model)
                raise Loaded(f"recorded {model}")
            return from_pretrained

        monkeypatch.setattr(Judge, "from_pretrained", staticmethod(recorder("generative")))
        monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(recorder("reward")))
        assert cli.main([str(arg) for arg in argv]) == 2  # Loaded stops the command as an error would
        return calls

    return run


def declared_flags(command: str, groups: tuple[str, ...] = ("judge", "loading", "batching")) -> set[str]:
    """The long flags of the command's model, loading and batching groups."""
    sub = parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
            for group in sub._action_groups if group.title in groups for action in group._group_actions}


@pytest.mark.parametrize("case", CASES)
def test_every_option_reaches_the_loader_unchanged(tmp_path, recorded, case):
    make_argv, expected = CASES[case][0], expected_calls(case)
    files = {**inputs(tmp_path), "out": tmp_path / "out"}
    argv = make_argv(files)
    assert recorded(argv) == expected
    command = argv[0]
    reward = case.endswith(" reward")  # filter --judge reward, serve --kind reward: no generative settings
    groups = ("loading", "batching") if reward else ("judge", "loading", "batching")
    typed = {arg for arg in argv if isinstance(arg, str) and arg.startswith("--")}
    # A served model's flags need --backend server, and the engine's need a local backend: each case has one set.
    other_set = NOT_SERVED if "--base-url" in typed else set(SERVER_FLAGS.values())
    missing = declared_flags(command, groups) - typed - other_set - ({"--overflow"} if command == "score" or "reward"
                                                                      in case else set())
    assert not missing, f"{case}: the test sets no value for {sorted(missing)}"


def flag_drops():
    for case, (make_argv, _) in CASES.items():
        argv = make_argv({"pairs": "P", "preferences": "P", "labelled": "P", "out": "O"})
        for arg in argv:
            if arg in {*GENERATIVE, *LOAD, *SERVED, *BATCH, *TRUNCATE} and str(arg).startswith("--"):
                yield pytest.param(case, arg, id=f"{case} without {arg}")


@pytest.mark.parametrize("case, dropped", list(flag_drops()))
def test_dropping_any_one_flag_changes_what_the_loader_gets(tmp_path, recorded, case, dropped):
    make_argv, expected = CASES[case][0], expected_calls(case)
    argv = make_argv({**inputs(tmp_path), "out": tmp_path / "out"})
    at = argv.index(dropped)
    takes_value = at + 1 < len(argv) and not str(argv[at + 1]).startswith("--")
    without = argv[:at] + argv[at + 1 + takes_value:]
    assert recorded(without) != expected


# ------------------------------------------------------------------------------------------ input flags

FIELDS = {"prompt": "P", "chosen": "C", "rejected": "R", "response_a": "A", "response_b": "B", "label": "L",
          "reference": "F", "history": "H"}


def field_flags(names) -> list[str]:
    return [part for name in names for part in (f"--{name.replace('_', '-')}-field", FIELDS.get(name, name.upper()))]


def test_input_flags_become_one_columns_object():
    args = parser().parse_args(["eval", "x.json", "-o", "out", *field_flags(FIELDS)])
    assert build_options(args).columns == Columns(**FIELDS)
    args = parser().parse_args(["judge", "x.json", *field_flags(("prompt", "response_a", "response_b", "reference",
                                                                  "history"))])
    assert build_options(args).columns == Columns(prompt="P", response_a="A", response_b="B", reference="F",
                                                  history="H")


def test_judge_reads_through_the_io_layer_with_format_split_limit(tmp_path, monkeypatch):
    import critic.io.source as source_module

    seen = []
    real = source_module.open_source

    def open_source(location, **options):
        seen.append((location, options))
        return real(location, **options)

    monkeypatch.setattr(source_module, "open_source", open_source)
    loaders = Recorder()
    monkeypatch.setattr("critic.Judge.from_pretrained", staticmethod(loaders))
    source = tmp_path / "pairs.data"
    source.write_text(json.dumps([{"prompt": "q", "response_a": "a", "response_b": "b"}]), encoding="utf-8")
    assert cli.main(["judge", str(source), "--format", "json", "--split", "test", "--limit", "4"]) == 2
    assert seen == [(str(source), {"format": "json", "split": "test", "limit": 4})]


def test_eval_passes_format_split_limit_and_columns_to_the_reader(tmp_path, monkeypatch):
    import critic.eval.pairs as pairs_module

    seen = {}

    def load_labelled_pairs(location, **options):
        seen.update(options, location=location)
        raise Loaded("recorded")

    monkeypatch.setattr(pairs_module, "load_labelled_pairs", load_labelled_pairs)
    argv = ["eval", "set.parquet", "-o", str(tmp_path / "out"), "--format", "parquet", "--split", "dev",
            "--limit", "9", *field_flags(("prompt", "response_a", "response_b"))]
    assert cli.main(argv) == 2
    assert seen == {"location": "set.parquet", "format": "parquet", "split": "dev", "limit": 9,
                    "columns": Columns(prompt="P", response_a="A", response_b="B")}


# ------------------------------------------------------------------------------------------ a served model


@pytest.mark.parametrize("flags, message", [
    (["--backend", "server"], "the server backend judges with a model served elsewhere and needs its address: "
                              "--base-url URL"),
    (["--base-url", "http://127.0.0.1:9"], "read only by a backend that judges with a served model; add --backend "
                                           "server"),
    (["--backend", "transformers", "--base-url", "http://127.0.0.1:9"], "the 'transformers' backend runs the model "
                                                                         "in this process"),
    (["--served-model", "judge", "--timeout", "3"], "--served-model, --timeout only apply to a served model: give "
                                                    "--base-url URL (with --backend server), or leave them out"),
    (["--served-model", "judge"], "--served-model only applies to a served model: give --base-url URL (with "
                                  "--backend server), or leave it out"),
    (["--backend", "server", "--base-url", "http://127.0.0.1:9", "--device", "cpu"], "leave device (--device) out"),
    (["--backend", "server", "--base-url", "http://127.0.0.1:9/v1"], "without /v1"),
    (["--backend", "server", "--base-url", "http://127.0.0.1:9", "--api-key-env", "CRITIC_TEST_UNSET"],
     "CRITIC_TEST_UNSET named by api_key_env (--api-key-env) is not set"),
])
def test_served_model_flags_are_checked_before_anything_loads(tmp_path, loaders, capsys, monkeypatch, flags, message):
    monkeypatch.delenv("CRITIC_TEST_UNSET", raising=False)
    pairs = inputs(tmp_path)["pairs"]
    for command in (["judge", str(pairs)], ["filter", str(pairs), "-o", str(tmp_path / "out")]):
        assert cli.main([*command, "--model", "demo", *flags]) == 2
        assert message in capsys.readouterr().err
    assert not loaders["generative"].calls and not loaders["reward"].calls


def test_a_prompt_over_the_limit_says_the_command_line_flags(tmp_path, tiny_model_loader, capsys):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "q", "response_a": "a " * 200, "response_b": "b"}])
    assert cli.main(["judge", str(pairs), "--model", "tiny", "--max-length", "100", "--backend", "transformers",
                     "--quiet"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert "--overflow truncate" in error and "--max-length" in error

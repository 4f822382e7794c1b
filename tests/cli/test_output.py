"""What the commands show: progress lines for a log file, the command-line wording of library advice."""

from __future__ import annotations

import pytest

from critic.cli.output import ProgressLines, cli_wording


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_come_every_interval_with_rate_and_time_left(capsys):
    clock = Clock()
    bar = ProgressLines(200, "judging", "pair", every=30, clock=clock)
    for seconds, count in ((10, 20), (25, 20), (30, 20), (50, 40), (61, 10)):
        clock.now = 100.0 + seconds
        bar.update(count)
    assert capsys.readouterr().err.splitlines() == [
        "critic: judging 60/200 pairs (30%), 2.00 pairs/s, 70 s left",   # at 30 s
        "critic: judging 110/200 pairs (55%), 1.80 pairs/s, 50 s left",  # at 61 s
    ]


def test_rows_done_before_this_run_are_not_in_the_rate(capsys):
    clock = Clock()
    bar = ProgressLines(None, "filtering", "row", every=0, clock=clock)
    bar.n = 5000  # a resumed job's earlier rows
    bar.update(0)
    clock.now += 10
    bar.set_postfix(kept="7", refresh=False)
    bar.update(50)
    assert capsys.readouterr().err == "critic: filtering 5050 rows, 5.00 rows/s, kept 7\n"


@pytest.mark.parametrize("library, command_line", [
    ("Shorten the pair, raise max_length if the model allows longer inputs, or use overflow='truncate' to shorten "
     "responses in the middle",
     "Shorten the pair, raise --max-length if the model allows longer inputs, or use --overflow truncate to shorten "
     "responses in the middle"),
    ("raise max_length (--max-length) or use overflow='truncate' (--overflow truncate)",
     "raise --max-length or use --overflow truncate"),
    ("the field max_length_of_x is fine", "the field max_length_of_x is fine"),
])
def test_library_advice_is_worded_as_the_flags(library, command_line):
    assert cli_wording(library) == command_line
    assert cli_wording(command_line) == command_line

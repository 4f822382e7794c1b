"""The docs examples' fixtures: models loaded once for every example, and the count printed at the end."""

from __future__ import annotations

import pytest

from .examples import all_examples, inventory
from .runner import shared_models


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 (pytest's hook signature)
    """After a run that collected the docs examples: how many ran, and how many are parsed only, by reason."""
    if any("tests/docs/test_examples.py" in getattr(report, "nodeid", "")
           for reports in terminalreporter.stats.values() for report in reports):
        terminalreporter.write_line(inventory(all_examples()))


@pytest.fixture(scope="module")
def models_loaded_once():
    """Every example that loads `demo` (in Python or through a command) reuses one model and tokenizer.

    The cache ends with the module, so no other test shares its models.
    """
    with shared_models() as cache:
        yield cache

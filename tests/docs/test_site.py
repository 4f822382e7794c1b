"""The documentation site: it builds strictly, and its CLI reference and field-flag table are the parsers'."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from critic.cli.main import parser

from .examples import DOCS, ROOT, TOP_LEVEL

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                reason="mkdocs is not installed (pip install 'critic[docs]')")


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_documents_every_command_and_flag():
    hook = _hook()
    top = parser()
    page = hook.cli_markdown(top)
    commands = hook.subcommands(top)
    assert set(commands) >= {"judge", "filter", "eval", "score", "serve", "prompt", "templates"}
    for name, command in commands.items():
        assert f"## critic {name}" in page
        for action in command._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                assert f"`{option}`" in page, f"critic {name} {option} is missing from the CLI reference"


def test_the_field_flag_table_is_each_parsers_own():
    """Which command takes which --X-field flag is read from the parsers, never written by hand."""
    hook = _hook()
    top = parser()
    table = hook.field_flags_markdown(top)
    header = table.splitlines()[0]
    by_command = hook.field_flags(top)
    for name, command in hook.subcommands(top).items():
        takes = {option for action in command._actions for option in action.option_strings
                 if option.endswith("-field")}
        assert set(by_command.get(name, {})) >= takes
        assert (f"`{name}`" in header) is bool(takes)
    assert {"judge", "filter", "eval", "score", "prompt"} <= set(by_command)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:] if line.startswith("| `--")}
    judge_column = header.split("|").index(" `judge` ")
    assert rows["`--label-field`"].split("|")[judge_column].strip() == ""  # judge reads no label
    assert rows["`--chosen-field`"].split("|")[judge_column].strip() == "✓"
    assert "<!-- field-flags -->" in (DOCS / "input-formats.md").read_text(encoding="utf-8")


def build_strictly(root, site) -> subprocess.CompletedProcess[str]:
    """What `make docs-strict` runs. Never with --quiet: mkdocs then drops its warnings before --strict counts them,
    and a broken link passes."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """A broken link, a page outside the nav or an unreadable docstring fails the build."""
    site = tmp_path / "site"
    done = build_strictly(ROOT, site)
    assert done.returncode == 0, done.stderr
    assert (site / "index.html").exists() and (site / "reference" / "cli" / "index.html").exists()
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--max-batch-tokens" in cli and "critic-judge" in cli  # generated, not the marker
    assert "cli-reference" not in cli
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="critic.Judge"' in api and 'id="critic.testing.FakeBackend"' in api
    assert not (site / "hooks").exists() and not (site / "screenshots").exists()


@pytest.mark.slow
def test_the_strict_build_fails_on_a_broken_anchor(tmp_path):
    """The check above can fail: the same site with one link to an anchor no page has."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "critic").symlink_to(ROOT / "critic")  # the API reference reads the package from the root
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](performance.md#no-such-section)\n",
                     encoding="utf-8")
    done = build_strictly(tmp_path, tmp_path / "site")
    assert done.returncode != 0
    assert "does not contain an anchor '#no-such-section'" in done.stderr


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_the_readmes_links_lead_to_files_that_exist(name):
    """The README is read on GitHub, outside the site's strict build: its relative links are checked here."""
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} is not there")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    relative = [target for target in targets if "://" not in target]
    assert relative
    missing = [target for target in relative if not (ROOT / target).exists()]
    assert missing == []

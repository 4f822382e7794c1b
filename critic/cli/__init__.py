"""The ``critic`` command line: one module per command; the only part of critic that prints."""

from critic.cli.main import main

__all__ = ["main"]

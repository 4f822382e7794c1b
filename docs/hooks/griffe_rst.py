"""Griffe extension: critic's docstrings use reStructuredText inline markup; the site renders Markdown.

Rewrites, in every docstring, ``:role:`~module.Name``` to ```Name``` (the
tilde's short form), ``:role:`module.Name``` to ```module.Name```, double
backquotes to single ones, and a paragraph's closing ``::`` (RST's "a literal
block follows") to ``:``, so the indented block below reads as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")


def markdown(text: str) -> str:
    text = _ROLE.sub(lambda found: f"`{found[2].rsplit('.', 1)[-1] if found[1] else found[2]}`", text)
    text = re.sub(r"``(.+?)``", r"`\1`", text, flags=re.DOTALL)
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)


class RstInlineMarkup(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:  # noqa: ARG002
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)

"""Judge prompt templates: Jinja files rendered into chat messages.

A template is a Jinja file with a ``user`` block and an optional ``system``
block (a file with no blocks is one user message). It declares its verdict
letters and whether the model explains before the verdict with top-level
``{% set %}`` statements::

    {%- set verdicts = ["A", "B"] -%}
    {%- set explanation_first = false -%}

Rendering uses one sandboxed environment with ``StrictUndefined`` and no
autoescaping. Pair texts are only ever passed as variables, never as template
source, so a response containing ``{{ 7*7 }}`` or ``[[B]]`` reaches the model
verbatim. Chat formatting is not done here: the model's own tokenizer template
does it (see :mod:`critic.backends.transformers`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from critic.errors import InputError, TemplateError
from critic.types import Message, Pair

DEFAULT_TEMPLATE = "skywork-critic"
PAIR_FIELDS = frozenset({"prompt", "response_a", "response_b", "reference", "history"})
OPTIONAL_FIELDS = frozenset({"history"})

__all__ = ["DEFAULT_TEMPLATE", "JudgeTemplate", "Message", "builtin_templates", "load_template", "parse_template"]

_ENVIRONMENT = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class JudgeTemplate:
    """A loaded judge prompt template."""

    name: str
    verdicts: tuple[Literal["A", "B", "C"], ...]
    explanation_first: bool
    required_fields: frozenset[str]
    _template: jinja2.Template = field(repr=False, compare=False)

    @property
    def allows_tie(self) -> bool:
        return "C" in self.verdicts

    def render(self, pair: Pair) -> list[Message]:
        """The chat messages the judge model receives for ``pair`` in the order given."""
        values: dict[str, Any] = {
            "prompt": pair.prompt,
            "response_a": pair.response_a,
            "response_b": pair.response_b,
            "history": [dict(message) for message in pair.history],
        }
        if pair.reference is not None:
            values["reference"] = pair.reference
        missing = sorted(self.required_fields - values.keys())
        if missing:
            raise InputError(
                f"template '{self.name}' needs the field(s) {', '.join(missing)}, which this pair lacks"
            )
        try:
            blocks = self._template.blocks
            if not blocks:
                return [{"role": "user", "content": self._template.render(values)}]
            context = self._template.new_context(values)
            messages: list[Message] = []
            for role in ("system", "user"):
                if role in blocks:
                    messages.append({"role": role, "content": "".join(blocks[role](context))})
            return messages
        except jinja2.TemplateError as error:
            raise TemplateError(f"template '{self.name}' failed to render: {error}") from error


def builtin_templates() -> list[str]:
    """Names of the templates shipped with critic."""
    folder = resources.files("critic.prompts")
    return sorted(entry.name.removesuffix(".jinja") for entry in folder.iterdir() if entry.name.endswith(".jinja"))


@functools.lru_cache(maxsize=32)
def load_template(name_or_path: str = DEFAULT_TEMPLATE) -> JudgeTemplate:
    """Load a built-in template by name (``"skywork-critic"``) or a Jinja file by path."""
    path = Path(name_or_path)
    if path.suffix == ".jinja" or path.exists():
        if not path.is_file():
            raise TemplateError(f"template file '{name_or_path}' does not exist")
        return parse_template(path.read_text(encoding="utf-8"), name=str(path))
    resource = resources.files("critic.prompts").joinpath(f"{name_or_path}.jinja")
    if not resource.is_file():
        raise TemplateError(
            f"unknown template '{name_or_path}'. Built-in templates: {', '.join(builtin_templates())}; "
            "or pass the path of a .jinja file"
        )
    return parse_template(resource.read_text(encoding="utf-8"), name=name_or_path)


def parse_template(source: str, *, name: str = "<string>") -> JudgeTemplate:
    """Compile template source and read its declarations."""
    try:
        tree = _ENVIRONMENT.parse(source)
        compiled = _ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template '{name}' has a syntax error on line {error.lineno}: {error.message}") from error
    declared = _declarations(tree)
    verdicts = tuple(str(letter).upper() for letter in declared.get("verdicts", ["A", "B"]))
    if not {"A", "B"} <= set(verdicts) or not set(verdicts) <= {"A", "B", "C"}:
        raise TemplateError(
            f"template '{name}' declares verdicts {list(verdicts)}; they must be A and B, optionally C for a tie"
        )
    unknown = compiled.blocks.keys() - {"system", "user"}
    if unknown:
        raise TemplateError(f"template '{name}' has block(s) {sorted(unknown)}; only 'system' and 'user' are read")
    if compiled.blocks and "user" not in compiled.blocks:
        raise TemplateError(f"template '{name}' has blocks but no 'user' block")
    used = meta.find_undeclared_variables(tree)
    strange = used - PAIR_FIELDS
    if strange:
        raise TemplateError(
            f"template '{name}' uses unknown variable(s) {sorted(strange)}; available: {sorted(PAIR_FIELDS)}"
        )
    return JudgeTemplate(
        name=name,
        verdicts=verdicts,  # type: ignore[arg-type]
        explanation_first=bool(declared.get("explanation_first", False)),
        required_fields=frozenset(used - OPTIONAL_FIELDS),
        _template=compiled,
    )


def _declarations(tree: nodes.Template) -> dict[str, Any]:
    """Top-level ``{% set name = constant %}`` statements of a template."""
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name) and isinstance(node.node, nodes.Expr):
            try:
                found[node.target.name] = node.node.as_const()
            except nodes.Impossible as error:
                raise TemplateError(f"'{node.target.name}' must be set to a constant in a judge template") from error
    return found

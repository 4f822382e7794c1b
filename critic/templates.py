"""Judge prompt templates: Jinja files rendered into chat messages.

A template is a Jinja file with a ``user`` block and an optional ``system``
block (a file with no blocks is one user message). It declares its verdict
letters and whether the model explains before the verdict with top-level
``{% set %}`` statements::

    {%- set verdicts = ["A", "B"] -%}
    {%- set explanation_first = false -%}

Variables are the :class:`~critic.types.Pair` fields; ``history``, ``history_a``
and ``history_b`` are message lists, empty when the pair has none, while a pair
must have ``reference`` and ``reference_history`` if the template uses them.

Rendering uses one immutable sandboxed environment with ``StrictUndefined``, no
autoescaping and no loader: a template is one self-contained file, so
``{% include %}``, ``{% import %}``, ``{% from %}`` and ``{% extends %}`` are
refused when it is loaded. Each render has a budget (see :data:`MAX_SIZE`):
``*``, ``**``, ``%``, ``~``, calls, filters and loops are checked against it,
so ``{{ "x" * 10**9 }}`` or ``{% for i in range(10**9) %}`` is a quick
:class:`TemplateError`, not a hang or an exhausted memory.

Pair texts are only ever passed as variables, never as template source, so a
response containing ``{{ 7*7 }}`` or ``[[B]]`` reaches the model verbatim. Chat
formatting is not done here: the model's own tokenizer template does it (see
:mod:`critic.backends.transformers`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta, nodes

from critic.errors import CriticError, InputError, Reason, TemplateError
from critic.sandbox import (
    current_budget,
    BUDGET,
    ENVIRONMENT,
    FORBIDDEN_TAGS,
    MAX_NUMBER_BITS,
    MAX_SIZE,
    RENDER_FAILURES,
    Budget,
    Guard,
    TooCostly,
)
from critic.types import Message, Pair

DEFAULT_TEMPLATE = "skywork-critic"
PAIR_FIELDS = frozenset(
    {"prompt", "response_a", "response_b", "reference", "history", "history_a", "history_b", "reference_history"}
)
TWO_CONVERSATIONS = frozenset({"history_a", "history_b"})  # a template that reads these can show a pair's two
#: Always passed (an empty list when the pair has none); a template may test them with ``{% if %}`` or ``or``.
OPTIONAL_FIELDS = frozenset({"history", "history_a", "history_b"})
DECLARATIONS = frozenset({"verdicts", "explanation_first"})

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_NUMBER_BITS",
    "MAX_SIZE",
    "JudgeTemplate",
    "Message",
    "builtin_templates",
    "load_template",
    "parse_template",
]


@dataclass(frozen=True)
class JudgeTemplate:
    """A loaded judge prompt template."""

    name: str
    verdicts: tuple[Literal["A", "B", "C"], ...]
    explanation_first: bool
    required_fields: frozenset[str]
    fields: frozenset[str]  # every pair field the template reads
    _template: jinja2.Template = field(repr=False, compare=False)

    @property
    def allows_tie(self) -> bool:
        return "C" in self.verdicts

    def render(self, pair: Pair) -> list[Message]:
        """The chat messages the judge model receives for ``pair`` in the order given."""
        values = _values(pair)
        missing = sorted(self.required_fields - values.keys())
        if missing:
            raise InputError(
                f"template '{self.name}' needs the field(s) {', '.join(missing)}, which this pair lacks"
            )
        if (pair.history_a or pair.history_b) and not self.fields & TWO_CONVERSATIONS:
            raise InputError(f"the pair holds two conversations (history_a, history_b), which template '{self.name}' "
                             "cannot show; use mt-bench-multi-turn or a template that reads both",
                             kind=Reason.BAD_ARGUMENT)
        token = BUDGET.set(Budget(limit=MAX_SIZE + 4 * _size(pair)))
        try:
            return self._messages(values)
        except CriticError:
            raise
        except TooCostly as error:
            raise TemplateError(
                f"template '{self.name}' was stopped while rendering: {error}. "
                "A judge template must stay small and cheap to render; simplify it"
            ) from error
        except MemoryError as error:
            raise TemplateError(f"template '{self.name}' ran out of memory while rendering; simplify it") from error
        except RENDER_FAILURES as error:
            raise TemplateError(f"template '{self.name}' failed to render: {error}") from error
        finally:
            BUDGET.reset(token)

    def _messages(self, values: dict[str, Any]) -> list[Message]:
        budget = current_budget()
        blocks = self._template.blocks
        if not blocks:
            return [{"role": "user", "content": "".join(map(budget.emit, self._template.generate(values)))}]
        context = self._template.new_context(values)
        messages: list[Message] = []
        for role in ("system", "user"):
            if role in blocks:
                messages.append({"role": role, "content": "".join(map(budget.emit, blocks[role](context)))})
        return messages


def _values(pair: Pair) -> dict[str, Any]:
    """The template variables of a pair: the message lists always, ``reference``/``reference_history`` when present."""
    values: dict[str, Any] = {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b}
    for name in ("history", "history_a", "history_b", "reference_history"):
        messages = getattr(pair, name)
        if messages or name in OPTIONAL_FIELDS:
            values[name] = [dict(message) for message in messages]
    if pair.reference is not None:
        values["reference"] = pair.reference
    return values


def _size(pair: Pair) -> int:
    """How many characters of text a pair holds (a render's budget grows with it)."""
    texts = (pair.prompt, pair.response_a, pair.response_b, pair.reference or "")
    turns = (*pair.history, *pair.history_a, *pair.history_b, *pair.reference_history)
    return sum(map(len, texts)) + sum(len(message["content"]) for message in turns)


# A pair of two conversations (history_a, history_b: MT-Bench's second turn, multi-turn Arena rows) is judged, as
# FastChat does (run_judge_pair(..., multi_turn=True)), with the multi-turn variant of the built-in template in use;
# the default template shows one conversation, so such pairs get MT-Bench's multi-turn prompt.
MULTI_TURN_TEMPLATES = {"mt-bench": "mt-bench-multi-turn", "mt-bench-math": "mt-bench-math-multi-turn",
                        DEFAULT_TEMPLATE: "mt-bench-multi-turn"}


def template_for_pair(template: JudgeTemplate, pair: Pair) -> JudgeTemplate:
    """``template``, or its multi-turn variant when ``pair`` holds two conversations it cannot show.

    A template that reads ``history_a``/``history_b`` itself, or one without a
    variant (a user's template), is returned as it is: it says so when it renders.
    """
    two = bool(pair.history_a or pair.history_b) and not {"history_a", "history_b"} & template.fields
    if not two or template.name not in MULTI_TURN_TEMPLATES:
        return template
    return _builtin(MULTI_TURN_TEMPLATES[template.name])


@functools.cache
def _builtin(name: str) -> JudgeTemplate:
    return load_template(name)


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
        tree = ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template '{name}' has a syntax error on line {error.lineno}: {error.message}") from error
    _refuse_loader_tags(tree, name)
    declared = _declarations(tree)
    verdicts = tuple(str(letter).upper() for letter in declared.get("verdicts", ["A", "B"]))
    if not {"A", "B"} <= set(verdicts) or not set(verdicts) <= {"A", "B", "C"}:
        raise TemplateError(
            f"template '{name}' declares verdicts {list(verdicts)}; they must be A and B, optionally C for a tie"
        )
    used = meta.find_undeclared_variables(tree)
    compiled = _compile(tree, name)
    unknown = compiled.blocks.keys() - {"system", "user"}
    if unknown:
        raise TemplateError(f"template '{name}' has block(s) {sorted(unknown)}; only 'system' and 'user' are read")
    if compiled.blocks and "user" not in compiled.blocks:
        raise TemplateError(f"template '{name}' has blocks but no 'user' block")
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
        fields=frozenset(used),
        _template=compiled,
    )


def _compile(tree: nodes.Template, name: str) -> jinja2.Template:
    guarded = Guard(ENVIRONMENT).visit(tree)
    try:
        return ENVIRONMENT.from_string(guarded)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template '{name}' has a syntax error on line {error.lineno}: {error.message}") from error


def _refuse_loader_tags(tree: nodes.Template, name: str) -> None:
    for node in tree.find_all(tuple(FORBIDDEN_TAGS)):
        tag = FORBIDDEN_TAGS[type(node)]
        raise TemplateError(
            f"template '{name}' uses {{% {tag} %}} on line {node.lineno}; include, import and extends are not "
            "allowed in judge templates: a judge template is one self-contained file (template loaders are disabled)"
        )


def _declarations(tree: nodes.Template) -> dict[str, Any]:
    """Top-level ``{% set verdicts / explanation_first = constant %}`` statements of a template."""
    found: dict[str, Any] = {}
    for node in tree.body:
        if (
            isinstance(node, nodes.Assign)
            and isinstance(node.target, nodes.Name)
            and node.target.name in DECLARATIONS
            and isinstance(node.node, nodes.Expr)
        ):
            try:
                found[node.target.name] = node.node.as_const()
            except nodes.Impossible as error:
                raise TemplateError(f"'{node.target.name}' must be set to a constant in a judge template") from error
    return found

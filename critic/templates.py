"""Judge prompt templates: Jinja files rendered into chat messages.

A template is a Jinja file with a ``user`` block and an optional ``system``
block (a file with no blocks is one user message). It declares its verdict
letters and whether the model explains before the verdict with top-level
``{% set %}`` statements::

    {%- set verdicts = ["A", "B"] -%}
    {%- set explanation_first = false -%}

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
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from critic.errors import CriticError, InputError, TemplateError
from critic.types import Message, Pair

DEFAULT_TEMPLATE = "skywork-critic"
PAIR_FIELDS = frozenset({"prompt", "response_a", "response_b", "reference", "history"})
OPTIONAL_FIELDS = frozenset({"history"})
DECLARATIONS = frozenset({"verdicts", "explanation_first"})

#: The most characters or items one render may build or loop over, beyond four times the pair's own text.
MAX_SIZE = 1_000_000
#: The largest integer (in bits) a template may compute with ``*`` or ``**``.
MAX_NUMBER_BITS = 65_536

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

_FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
}
_WIDE_PERCENT = re.compile(r"%[-#0 +]*(?:\*|\d{7,})|%[-#0 +]*\d*\.(?:\*|\d{7,})")
_WIDE_SPEC = re.compile(r"\d{7,}|\{")
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


class _TooCostly(Exception):
    """A render went over its budget; :meth:`JudgeTemplate.render` turns it into a TemplateError."""


@dataclass
class _Budget:
    """What one render may still spend (a mutable counter, one per render)."""

    limit: int = MAX_SIZE
    steps: int = 0
    chars: int = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limit:
            raise _TooCostly(f"its loops ran more than {self.limit:,} times")

    def emit(self, piece: str) -> str:
        self.chars += len(piece)
        if self.chars > self.limit:
            raise _TooCostly(f"its output grew past {self.limit:,} characters")
        return piece


_BUDGET: ContextVar[_Budget | None] = ContextVar("critic_template_budget", default=None)


def _budget() -> _Budget:
    return _BUDGET.get() or _Budget()


def _check_size(value: Any) -> Any:
    if isinstance(value, _SIZED) and len(value) > _budget().limit:
        raise _TooCostly(f"it built a value of {len(value):,} characters or items (at most {_budget().limit:,})")
    return value


def _check_counts(values: Iterable[Any]) -> None:
    limit = _budget().limit
    for value in values:
        if isinstance(value, int) and abs(value) > limit:
            digits = int(value.bit_length() * math.log10(2))
            shown = value if value.bit_length() < 64 else f"a number of about {digits:,} digits"
            raise _TooCostly(f"it passes {shown} to a function (counts and widths may be at most {limit:,})")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result alone would exhaust the budget, before computing it."""
    if operator == "**":
        _check_power(left, right)
    elif operator == "*":
        _check_product(left, right)
    elif operator == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
        raise _TooCostly("'%' formatting with a width or precision of seven digits or '*' is not allowed")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > MAX_NUMBER_BITS:
            raise _TooCostly(f"{base} ** {exponent} has about {bits:,.0f} bits (at most {MAX_NUMBER_BITS:,})")


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise _TooCostly(f"a product would have more than {MAX_NUMBER_BITS:,} bits")
        return
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    limit = _budget().limit
    if isinstance(sequence, _SIZED) and isinstance(count, int) and len(sequence) * count > limit:
        raise _TooCostly(f"'*' would build {len(sequence) * count:,} characters or items (at most {limit:,})")


def _check_format_call(function: Any) -> None:
    """Refuse ``str.format`` with a huge width (the sandbox wraps it; the wrapper keeps ``__wrapped__``)."""
    method = getattr(function, "__wrapped__", function)
    text = getattr(method, "__self__", None)
    if isinstance(text, str) and getattr(method, "__name__", "") in {"format", "format_map"}:
        for _, _, spec, _ in string.Formatter().parse(text):
            if spec and _WIDE_SPEC.search(spec):
                raise _TooCostly("str.format with a width of seven digits or a nested field is not allowed")


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1  # the context, then the value

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_counts((*args[skip:], *kwargs.values()))
        if name == "format" and len(args) >= skip and isinstance(args[skip - 1], str):
            _check_binop("%", args[skip - 1], ())
        return _check_size(function(*args, **kwargs))

    return guarded


def _counted_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _checked_concat(parts: Iterable[Any]) -> str:
    return _check_size("".join(map(str, parts)))  # type: ignore[no-any-return]


class _JudgeEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus a budget on what one render may build (see :data:`MAX_SIZE`)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded_filter(name, function) for name, function in self.filters.items()}
        self.filters["critic_loop"] = _counted_loop
        self.filters["critic_concat"] = _checked_concat
        self.filters["critic_size"] = _check_size

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_counts((*args, *kwargs.values()))
        _check_format_call(__obj)
        return _check_size(super().call(__context, __obj, *args, **kwargs))


class _Guard(NodeTransformer):
    """Route every ``for`` loop, ``~`` concatenation and ``{% set %}`` block through the render budget."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self.environment = environment

    def _filter(self, node: nodes.Node | None, name: str, lineno: int) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=lineno)
        wrapped.set_environment(self.environment)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._filter(node.iter, "critic_loop", node.lineno)
        return node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        """``{% set name %}...{% endset %}``: the captured text is checked before any filter of the tag."""
        self.generic_visit(node)
        checked = self._filter(None, "critic_size", node.lineno)
        if node.filter is None:
            node.filter = checked
        else:
            innermost = node.filter
            while isinstance(innermost.node, nodes.Filter):
                innermost = innermost.node
            innermost.node = checked
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        parts.set_environment(self.environment)
        return self._filter(parts, "critic_concat", node.lineno)


_ENVIRONMENT = _JudgeEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
_RENDER_FAILURES = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError, RecursionError)


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
        size = sum(len(text) for text in (pair.prompt, pair.response_a, pair.response_b, pair.reference or ""))
        size += sum(len(message["content"]) for message in pair.history)
        token = _BUDGET.set(_Budget(limit=MAX_SIZE + 4 * size))
        try:
            return self._messages(values)
        except CriticError:
            raise
        except _TooCostly as error:
            raise TemplateError(
                f"template '{self.name}' was stopped while rendering: {error}. "
                "A judge template must stay small and cheap to render; simplify it"
            ) from error
        except MemoryError as error:
            raise TemplateError(f"template '{self.name}' ran out of memory while rendering; simplify it") from error
        except _RENDER_FAILURES as error:
            raise TemplateError(f"template '{self.name}' failed to render: {error}") from error
        finally:
            _BUDGET.reset(token)

    def _messages(self, values: dict[str, Any]) -> list[Message]:
        budget = _budget()
        blocks = self._template.blocks
        if not blocks:
            return [{"role": "user", "content": "".join(map(budget.emit, self._template.generate(values)))}]
        context = self._template.new_context(values)
        messages: list[Message] = []
        for role in ("system", "user"):
            if role in blocks:
                messages.append({"role": role, "content": "".join(map(budget.emit, blocks[role](context)))})
        return messages


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
        _template=compiled,
    )


def _compile(tree: nodes.Template, name: str) -> jinja2.Template:
    guarded = _Guard(_ENVIRONMENT).visit(tree)
    try:
        return _ENVIRONMENT.from_string(guarded)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template '{name}' has a syntax error on line {error.lineno}: {error.message}") from error


def _refuse_loader_tags(tree: nodes.Template, name: str) -> None:
    for node in tree.find_all(tuple(_FORBIDDEN_TAGS)):
        tag = _FORBIDDEN_TAGS[type(node)]
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

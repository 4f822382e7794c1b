"""The one sandboxed Jinja environment judge templates render in, and its render budget.

Immutable sandbox, ``StrictUndefined``, no autoescaping, no loader. Each render
has a budget (:data:`MAX_SIZE` characters or items beyond four times the pair's
own text): ``*``, ``**``, ``%``, ``~``, calls, filters and loops are checked
against it, so ``{{ "x" * 10**9 }}`` or ``{% for i in range(10**9) %}`` fails at
once instead of hanging or exhausting memory.
"""

from __future__ import annotations
import functools
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer


#: The most characters or items one render may build or loop over, beyond four times the pair's own text.
MAX_SIZE = 1_000_000
#: The largest integer (in bits) a template may compute with ``*`` or ``**``.
MAX_NUMBER_BITS = 65_536


FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
}
_WIDE_PERCENT = re.compile(r"%[-#0 +]*(?:\*|\d{7,})|%[-#0 +]*\d*\.(?:\*|\d{7,})")
_WIDE_SPEC = re.compile(r"\d{7,}|\{")
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


class TooCostly(Exception):
    """A render went over its budget; :meth:`JudgeTemplate.render` turns it into a TemplateError."""


@dataclass
class Budget:
    """What one render may still spend (a mutable counter, one per render)."""

    limit: int = MAX_SIZE
    steps: int = 0
    chars: int = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limit:
            raise TooCostly(f"its loops ran more than {self.limit:,} times")

    def emit(self, piece: str) -> str:
        self.chars += len(piece)
        if self.chars > self.limit:
            raise TooCostly(f"its output grew past {self.limit:,} characters")
        return piece


BUDGET: ContextVar[Budget | None] = ContextVar("critic_template_budget", default=None)


def current_budget() -> Budget:
    return BUDGET.get() or Budget()


def _check_size(value: Any) -> Any:
    if isinstance(value, _SIZED) and len(value) > current_budget().limit:
        raise TooCostly(f"it built a value of {len(value):,} characters or items (at most {current_budget().limit:,})")
    return value


def _check_counts(values: Iterable[Any]) -> None:
    limit = current_budget().limit
    for value in values:
        if isinstance(value, int) and abs(value) > limit:
            digits = int(value.bit_length() * math.log10(2))
            shown = value if value.bit_length() < 64 else f"a number of about {digits:,} digits"
            raise TooCostly(f"it passes {shown} to a function (counts and widths may be at most {limit:,})")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result alone would exhaust the budget, before computing it."""
    if operator == "**":
        _check_power(left, right)
    elif operator == "*":
        _check_product(left, right)
    elif operator == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
        raise TooCostly("'%' formatting with a width or precision of seven digits or '*' is not allowed")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > MAX_NUMBER_BITS:
            raise TooCostly(f"{base} ** {exponent} has about {bits:,.0f} bits (at most {MAX_NUMBER_BITS:,})")


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise TooCostly(f"a product would have more than {MAX_NUMBER_BITS:,} bits")
        return
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    limit = current_budget().limit
    if isinstance(sequence, _SIZED) and isinstance(count, int) and len(sequence) * count > limit:
        raise TooCostly(f"'*' would build {len(sequence) * count:,} characters or items (at most {limit:,})")


def _check_format_call(function: Any) -> None:
    """Refuse ``str.format`` with a huge width (the sandbox wraps it; the wrapper keeps ``__wrapped__``)."""
    method = getattr(function, "__wrapped__", function)
    text = getattr(method, "__self__", None)
    if isinstance(text, str) and getattr(method, "__name__", "") in {"format", "format_map"}:
        for _, _, spec, _ in string.Formatter().parse(text):
            if spec and _WIDE_SPEC.search(spec):
                raise TooCostly("str.format with a width of seven digits or a nested field is not allowed")


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
    budget = current_budget()
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


class Guard(NodeTransformer):
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


ENVIRONMENT = _JudgeEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
RENDER_FAILURES = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError, RecursionError)

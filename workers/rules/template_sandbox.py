"""The Jinja2 sandbox templates render in, bounded in what it may build and for how long.

Jinja2's own sandbox stops attribute escapes (``''.__class__``) but not size: ``{{ 'y' * 10**8 }}``
builds 100 MB before anything could refuse to return it. Here every way a template can make a
value grows through a check that runs *before* the value is built:

- ``*``, ``**``, ``+`` and ``%`` are intercepted (``call_binop``): repeating or adding strings and
  lists past the part's limit, integers past ``MAX_INT_BITS``, and ``%`` formatting of text are
  refused; ``~`` goes through ``call_concat`` (our code generator) with the same check;
- the few filters a notification needs are kept, each measuring its input first (``join`` and
  ``replace`` estimate their output); the rest (``center``, ``indent``, ``format``, ``attr``...)
  are not there at all;
- ``range`` stops at ``MAX_RANGE`` numbers, every loop goes through a guard that counts its turns
  (``MAX_LOOP_ITERATIONS`` per render) and watches the clock;
- what is printed is measured (``finalize``), and the caller stops the output stream once the
  part's limit is passed;
- statements that would buffer output out of sight of that stream (``{% macro %}``, ``{% call %}``,
  ``{% filter %}``, block ``{% set %}``), include other templates, or switch escaping off
  (``{% autoescape %}``) are refused when the template is compiled.

The limits of one render travel in a ``Budget`` set for the duration of the render (a context
variable: template code runs in the caller's thread).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_join, do_replace
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import pass_eval_context

from infra.errors import PermanentError

#: Most numbers ``range()`` gives; a notification has no use for long loops.
MAX_RANGE = 1000
#: Turns of every loop of one render together.
MAX_LOOP_ITERATIONS = 10_000
#: Largest integer a template may make, in bits (about 300 digits).
MAX_INT_BITS = 1024
#: What one render may build in all (every intermediate value), as a multiple of the part's limit.
BUILD_FACTOR = 10
#: The least a render may build in all, whatever its part's limit.
MIN_BUILD_CHARS = 100_000

#: The filters a notification template may use; every other Jinja2 filter is absent.
SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
        "join", "last", "length", "list", "lower", "max", "min", "replace", "reverse", "round",
        "sort", "string", "striptags", "title", "trim", "truncate", "unique", "upper",
        "urlencode", "wordcount",
    }
)  # fmt: skip
#: The filter every loop's iterable is passed through (added when compiling; not for templates).
LOOP_GUARD = "herald_loop_guard"

#: Statements a template may not hold, with how they are written.
FORBIDDEN_STATEMENTS: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Macro, "{% macro %}"),
    (nodes.CallBlock, "{% call %}"),
    (nodes.FilterBlock, "{% filter %}"),
    (nodes.AssignBlock, "{% set %}…{% endset %}"),
    (nodes.Block, "{% block %}"),
    (nodes.Extends, "{% extends %}"),
    (nodes.Include, "{% include %}"),
    (nodes.Import, "{% import %}"),
    (nodes.FromImport, "{% from … import %}"),
    (nodes.EvalContextModifier, "{% autoescape %}"),
    (nodes.Scope, "{% autoescape %}"),  # what the parser wraps {% autoescape %} in
)


class TemplateRefused(PermanentError):
    """The sandbox refused a template, or a value it tried to make; ``line`` when known."""

    reason = "template_refused"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class RenderLimitExceeded(TemplateRefused):
    """Rendering went past a limit (size, time, loop turns); nothing past it was built."""

    reason = "template_limit"


def line_of(node: nodes.Node) -> int:
    """A node's line, or its first child's (the parser gives some wrapper nodes none)."""
    if node.lineno:
        return int(node.lineno)
    return next((int(child.lineno) for child in node.find_all(nodes.Node) if child.lineno), 1)


def forbidden_statement(node: nodes.Node) -> str | None:
    """How a forbidden statement is written (``{% macro %}``), or None when it is allowed."""
    if isinstance(node, nodes.For) and node.recursive:
        return "a recursive {% for %}"
    for kind, written in FORBIDDEN_STATEMENTS:
        if isinstance(node, kind):
            return written
    return None


@dataclass
class Budget:
    """The limits of one render, and what it has spent of them."""

    value_chars: int  # the longest one value (and the part) may be
    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    built: int = 0
    turns: int = 0

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def build_chars(self) -> int:
        """How much one render may build in all."""
        return max(self.value_chars * BUILD_FACTOR, MIN_BUILD_CHARS)

    def expired(self) -> bool:
        """Whether the render has taken longer than its limit."""
        return self.clock() - self.started > self.seconds

    def check_time(self, line: int | None = None) -> None:
        """Raise once the render has taken longer than its limit."""
        if self.expired():
            raise RenderLimitExceeded(f"rendering took longer than {self.seconds} s (the limit)", line=line)

    def check_size(self, size: int, what: str) -> None:
        """Raise when a value about to be made would be longer than one value may be."""
        if size > self.value_chars:
            raise RenderLimitExceeded(
                f"{what} makes {size} characters or items, over the limit of {self.value_chars}"
            )

    def charge(self, value: Any) -> None:
        """Count a value just built against what one render may build in all."""
        if isinstance(value, str | list | tuple):
            self.built += len(value)
            if self.built > self.build_chars:
                raise RenderLimitExceeded(
                    f"the template built more than {self.build_chars} characters while rendering, the limit"
                )

    def tick(self) -> None:
        """One turn of a loop."""
        self.turns += 1
        if self.turns > MAX_LOOP_ITERATIONS:
            raise RenderLimitExceeded(f"loops turned more than {MAX_LOOP_ITERATIONS} times, the limit")
        self.check_time()


_BUDGET: ContextVar[Budget | None] = ContextVar("herald_template_budget", default=None)


def current_budget() -> Budget:
    """The budget of the render in progress; outside one (Jinja2 folding constants while it
    compiles) a fresh default one, so the same checks apply."""
    return _BUDGET.get() or Budget(value_chars=100_000, seconds=60.0)


@contextmanager
def budget_scope(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the current one for the duration of a render."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def measure(value: Any, cap: int) -> int:
    """About how many characters ``value`` prints as, counting no further than just past ``cap``.

    Iterative and stopping early, so a list that holds itself many times over (built by nesting
    references, which costs nothing) is measured in at most ``cap`` steps, never printed.
    """
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + (0 if item is value else 2)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= cap:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        else:
            total += 64  # a range, the loop, a function: a short repr
    return total


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _check_repeat(sequence: Any, times: Any, budget: Budget) -> None:
    if _sized(sequence) and isinstance(times, int):
        budget.check_size(len(sequence) * max(times, 0), f"repeating a value {times} times")


def _check_integer(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimitExceeded(f"{what} makes a number over the limit of {MAX_INT_BITS} bits")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int | float) and isinstance(exponent, int | float) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > MAX_INT_BITS:
            raise RenderLimitExceeded(
                f"{base} ** {exponent} makes a number over the limit of {MAX_INT_BITS} bits"
            )


def bounded_range(*args: int) -> range:
    """``range`` of at most ``MAX_RANGE`` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimitExceeded(f"range() of {len(numbers)} numbers, over the limit of {MAX_RANGE}")
    return numbers


def _loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current_budget()
    for item in iterable:
        budget.tick()
        yield item


def _finalize(value: Any) -> Any:
    # Every {{ … }} passes here before it is turned into text: a list of references to one long
    # string is cheap to hold and huge to print.
    if not isinstance(value, str):
        budget = current_budget()
        budget.check_size(measure(value, budget.value_chars), "printing this value")
    return value


def _measured(name: str, filter_function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses an input longer than a value may be, and counts what it returns."""

    @functools.wraps(filter_function)  # keeps Jinja2's pass_eval_context marker
    def measured(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        for argument in (*args, *kwargs.values()):
            budget.check_size(measure(argument, budget.value_chars), f"the filter {name!r}")
        result = filter_function(*args, **kwargs)
        budget.check_size(len(result) if _sized(result) else 0, f"the filter {name!r}")
        budget.charge(result)
        return result

    return measured


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    budget = current_budget()
    size = sum(measure(item, budget.value_chars) for item in items) + len(str(d)) * len(items)
    budget.check_size(size, "joining these values")
    result: str = do_join(eval_ctx, items, d, attribute)
    budget.charge(result)
    return result


@pass_eval_context
def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(s), str(old), str(new)
    budget = current_budget()
    found = text.count(old) if old else len(text) + 1
    if count is not None:
        found = min(found, max(count, 0))
    budget.check_size(len(text) + found * (len(new) - len(old)), "this replace")
    result: str = do_replace(eval_ctx, text, old, new, count)
    budget.charge(result)
    return result


class BoundedCodeGenerator(CodeGenerator):
    """Jinja2's code generator with ``~`` routed through ``environment.call_concat``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.call_concat(context.eval_ctx.autoescape, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(SandboxedEnvironment):
    """A sandbox with strict variables and the bounds above; ``html`` turns autoescaping on."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = BoundedCodeGenerator

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True, finalize=_finalize
        )
        self.globals = {"range": bounded_range}  # no lipsum, cycler, joiner, namespace, dict
        filters = {name: _measured(name, self.filters[name]) for name in SAFE_FILTERS}
        filters.update(join=_join, replace=_replace)
        filters[LOOP_GUARD] = _loop_guard
        self.filters = filters

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Data only: a method (``'x'.ljust``, ``dict.items``) is how a template would build or
        # reach what it should not, and no notification needs one.
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.check_time()
        if operator == "%" and isinstance(left, str):
            raise RenderLimitExceeded(
                "formatting text with % is not allowed: it can build text past any limit; join with ~"
            )
        if operator == "*":
            _check_repeat(left, right, budget)
            _check_repeat(right, left, budget)
            both = isinstance(left, int) and isinstance(right, int)
            if both and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                raise RenderLimitExceeded(f"this product is over the limit of {MAX_INT_BITS} bits")
        elif operator == "+" and _sized(left) and _sized(right):
            budget.check_size(len(left) + len(right), "adding these values")
        elif operator == "**":
            _check_power(left, right)
        result = super().call_binop(context, operator, left, right)
        _check_integer(result, f"'{operator}'")
        budget.charge(result)
        return result

    def call_concat(self, autoescape: bool, values: tuple[Any, ...]) -> str:
        """``a ~ b``: measured before it is joined."""
        budget = current_budget()
        budget.check_time()
        budget.check_size(sum(measure(v, budget.value_chars) for v in values), "joining these values with ~")
        result: str = markup_join(values) if autoescape else str_join(values)
        budget.check_size(len(result), "joining these values with ~")  # escaping may lengthen it
        budget.charge(result)
        return result


def guard_loops(tree: nodes.Template) -> nodes.Template:
    """Pass every loop's iterable through the loop guard (before the template is compiled)."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
    return tree

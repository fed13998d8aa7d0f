"""Templates: checked when saved or loaded, rendered in a Jinja2 sandbox with strict variables.

A template may use only the variables its kind's context has; a typo is an
error naming the template, the line and the variable, never a surprise at
send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from workers.rules.template_defaults import DEFAULTS

_COMMON: dict[str, frozenset[str] | None] = {
    "org": frozenset({"name"}),
    "customer": frozenset({"name"}),
    "contact": frozenset({"name"}),
}
_INVOICE: dict[str, frozenset[str] | None] = {
    "invoice": frozenset({"id", "number", "url", "currency", "total", "balance", "due_date"}),
    "amount": None,  # the balance, formatted for the locale
    "due_date": None,  # formatted for the locale
}
#: The variables each kind's templates may use: a name, and its attributes (None: a plain value).
CONTEXT: dict[str, dict[str, frozenset[str] | None]] = {
    "invoice": {**_COMMON, **_INVOICE},
    "payment_reminder": {**_COMMON, **_INVOICE, "reminder": frozenset({"offset_days"})},
    "payment_thank_you": {
        **_COMMON,
        "payment": frozenset({"id", "invoice_id", "amount", "currency", "method"}),
        "amount": None,
    },
    "mandate_setup": {**_COMMON, "mandate_url": None},
}

_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)


@dataclass(frozen=True)
class TemplateProblem:
    """Something wrong in a template, with where."""

    template: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.template} line {self.line}: {self.message}"


def _walk(
    node: nodes.Node, allowed: dict[str, frozenset[str] | None], local: set[str]
) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    if isinstance(node, nodes.For | nodes.Assign):
        targets = [node.target, *node.target.find_all(nodes.Name)]  # find_all skips the node itself
        local |= {t.name for t in targets if isinstance(t, nodes.Name)}
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name in allowed:
        attributes = allowed[node.node.name]
        if attributes is None or node.attr not in attributes:
            found.append((node.lineno, f"{node.node.name}.{node.attr}"))
        return found
    if (
        isinstance(node, nodes.Name)
        and node.ctx == "load"
        and node.name not in allowed
        and node.name not in local
    ):
        found.append((node.lineno, node.name))
    for child in node.iter_child_nodes():
        found += _walk(child, allowed, local)
    return found


def check(source: str, kind: str, name: str) -> list[TemplateProblem]:
    """Every problem of a template source for ``kind``: syntax, or variables the kind does not have."""
    return list(_check(source, kind, name))


@lru_cache(maxsize=1024)
def _check(source: str, kind: str, name: str) -> tuple[TemplateProblem, ...]:
    # Pure in its arguments, and render checks every template it loads: parse each source once.
    return tuple(_find_problems(source, kind, name))


def _find_problems(source: str, kind: str, name: str) -> list[TemplateProblem]:
    if kind not in CONTEXT:
        return [TemplateProblem(name, 1, f"unknown notification kind {kind!r}")]
    try:
        tree = _TEXT.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(name, exc.lineno, f"syntax error: {exc.message}")]
    builtins = set(_TEXT.globals) | {"loop"}  # range, dict, namespace…; loop inside {% for %}
    return [
        TemplateProblem(name, line, f"unknown variable {variable!r}")
        for line, variable in _walk(tree, CONTEXT[kind], builtins)
    ]


def template_name(kind: str, channel: str, locale: str, part: str) -> str:
    """How a template is named in errors and listings: ``invoice.sms.fi`` or ``invoice.email.fi.subject``."""
    return f"{kind}.{channel}.{locale}" + ("" if channel == "sms" else f".{part}")


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    """Render a checked template; a variable missing at render time raises (StrictUndefined)."""
    return _compiled(source, html).render(context).strip()


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    # Compiling a template costs far more than rendering it; the same source compiles the same.
    return (_HTML if html else _TEXT).from_string(source)


def choose(
    kind: str, channel: str, locales: list[str], overrides: dict[tuple[str, str, str, str], str]
) -> tuple[str, dict[str, str]]:
    """The first locale of ``locales`` that has the template (an override, else a shipped default).

    Returns the locale chosen and its parts; English is always the last resort.
    """
    for locale in [*locales, "en"]:
        parts = dict(DEFAULTS.get((kind, channel, locale), {}))
        parts.update(
            {p: s for (k, c, loc, p), s in overrides.items() if (k, c, loc) == (kind, channel, locale)}
        )
        if parts:
            return locale, parts
    raise LookupError(f"no template for {kind}.{channel}")  # pragma: no cover - English ships for every kind

"""Templates: checked when saved or loaded, rendered in a bounded Jinja2 sandbox with strict
variables.

A template may use only the variables its kind's context has; a typo is an error naming the
template, the line and the variable, never a surprise at send time. Saving refuses what render
would refuse (``check_for_save``); rendering is bounded in size, time and memory
(``TemplateLimits``, ``workers.rules.template_sandbox``), and compiled templates are kept in a
cache bounded by bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes

from infra.errors import PermanentError
from workers.rules.links import unsafe_links
from workers.rules.template_cache import SizedLru
from workers.rules.template_check import find_problems
from workers.rules.template_defaults import DEFAULTS
from workers.rules.template_sandbox import (
    SAFE_FILTERS,
    BoundedSandbox,
    Budget,
    RenderLimitExceeded,
    TemplateRefused,
    budget_scope,
    forbidden_statement,
    guard_loops,
    line_of,
)

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
    "payment_failed": {
        **_COMMON,
        "payment": frozenset({"id", "invoice_id", "amount", "currency"}),
        "amount": None,
    },
}

#: A sample of each context value, for the trial render at save (``check_for_save``): realistic types,
#: so a template that works on real data works on these.
_SAMPLE: dict[str, Any] = {
    "org": {"name": "Acme Oy"},
    "customer": {"name": "Kuluttaja Oy"},
    "contact": {"name": "Aino"},
    "invoice": {
        "id": "INV-1",
        "number": "1001",
        "url": "https://billing.example/i/INV-1",
        "currency": "EUR",
        "total": "€1,234.50",
        "balance": "€1,234.50",
        "due_date": "Dec 1, 2026",
    },
    "amount": "€1,234.50",
    "due_date": "Dec 1, 2026",
    "reminder": {"offset_days": 3},
    "payment": {
        "id": "PAY-1",
        "invoice_id": "INV-1",
        "amount": "€1,234.50",
        "currency": "EUR",
        "method": "online",
    },
    "mandate_url": "https://pay.gocardless.com/billing/static/flow?id=BRF0001",
}

_TEXT = BoundedSandbox(html=False)
_HTML = BoundedSandbox(html=True)
_COMPILED: SizedLru[Template] = SizedLru()
_CHECKED: SizedLru[tuple[TemplateProblem, ...]] = SizedLru()


@dataclass(frozen=True)
class TemplateLimits:
    """The bounds on templates, from settings (``from_settings``); the defaults are the settings'.

    Passed down into the pure functions here, which never read settings themselves.
    """

    source_chars: int = 20_000
    email_chars: int = 100_000  # each part but the subject; SMS bodies are refused at 1,600 by sms
    subject_chars: int = 300
    seconds: float = 1.0
    cache_bytes: int = 8 * 1024 * 1024  # each of the two caches: compiled, and checked

    @classmethod
    def from_settings(cls, settings: Any) -> TemplateLimits:
        """The limits of ``infra.settings.Settings`` (``template_*``)."""
        return cls(
            source_chars=settings.template_max_source_chars,
            email_chars=settings.template_max_email_chars,
            subject_chars=settings.template_max_subject_chars,
            seconds=settings.template_render_timeout_seconds,
            cache_bytes=settings.template_cache_bytes,
        )

    def part_chars(self, part: str) -> int:
        """The longest a rendered part may be."""
        return self.subject_chars if part == "subject" else self.email_chars


DEFAULT_LIMITS = TemplateLimits()


@dataclass(frozen=True)
class TemplateProblem:
    """Something wrong in a template, with where."""

    template: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.template} line {self.line}: {self.message}"


class TemplateRenderError(PermanentError):
    """A template failed while rendering: a limit, a value it cannot handle, a sandbox refusal.

    Permanent: rendering is pure, so the same template and values fail the same way again.
    """

    reason = "template_render_failed"

    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def check(
    source: str, kind: str, name: str, *, limits: TemplateLimits = DEFAULT_LIMITS
) -> list[TemplateProblem]:
    """Every problem of a template source for ``kind``: its size, syntax, variables the kind does
    not have, and anything the sandbox would refuse (see ``workers.rules.template_check``)."""
    # Pure in its arguments, and render checks every template it loads: each source once.
    key = (source, kind, name, limits.source_chars)
    problems = _CHECKED.get(
        key, _weight(source), lambda: tuple(_find_problems(source, kind, name, limits)), limits.cache_bytes
    )
    return list(problems)


def check_for_save(
    source: str, kind: str, name: str, part: str, *, limits: TemplateLimits = DEFAULT_LIMITS
) -> list[TemplateProblem]:
    """``check``, then a trial render on sample values: what saving must refuse (a template that
    would go past a limit or fail on any invoice, such as ``{{ 'y' * 100000001 }}``)."""
    problems = check(source, kind, name, limits=limits)
    if problems or kind not in CONTEXT:
        return problems
    sample = {variable: _SAMPLE[variable] for variable in CONTEXT[kind]}
    try:
        render_part(source, sample, name=name, part=part, limits=limits)
    except TemplateRenderError as exc:
        return [exc.problem]
    return []


def _weight(source: str) -> int:
    return len(source.encode("utf-8", "surrogatepass")) + 64


def _find_problems(source: str, kind: str, name: str, limits: TemplateLimits) -> list[TemplateProblem]:
    if kind not in CONTEXT:
        return [TemplateProblem(name, 1, f"unknown notification kind {kind!r}")]
    if len(source) > limits.source_chars:
        line = source.count("\n", 0, limits.source_chars) + 1  # where it crosses the limit
        message = f"the template is {len(source)} characters, over the limit of {limits.source_chars}"
        return [TemplateProblem(name, line, message)]
    try:
        tree = _TEXT.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(name, exc.lineno, f"syntax error: {exc.message}")]
    except RecursionError:
        return [TemplateProblem(name, 1, "the template nests too deeply")]
    found = find_problems(tree, CONTEXT[kind], SAFE_FILTERS, _TEXT.tests)
    if not found:
        try:  # what only compiling finds (a filter used in a way Jinja2 refuses)
            _compiled(source, False, limits)
        except TemplateSyntaxError as exc:
            found = [(exc.lineno, f"syntax error: {exc.message}")]
        except TemplateRefused as exc:
            found = [(exc.line or 1, str(exc))]
    return [TemplateProblem(name, line, message) for line, message in found]


def template_name(kind: str, channel: str, locale: str, part: str) -> str:
    """How a template is named in errors and listings: ``invoice.sms.fi`` or ``invoice.email.fi.subject``."""
    return f"{kind}.{channel}.{locale}" + ("" if channel == "sms" else f".{part}")


def render(
    source: str,
    context: dict[str, Any],
    *,
    html: bool = False,
    part: str = "text",
    limits: TemplateLimits = DEFAULT_LIMITS,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Render a template in the bounded sandbox; raises what it meets (a variable missing at
    render time: ``UndefinedError``; a limit: ``RenderLimitExceeded``; an escape: ``SecurityError``).

    The part's text stops at its limit (``limits.part_chars(part)``) and the render at
    ``limits.seconds`` of ``clock``; nothing is built past either.
    """
    template = _compiled(source, html, limits)
    max_chars = limits.part_chars(part)
    chunks: list[str] = []
    total = 0
    with budget_scope(Budget(value_chars=max_chars, seconds=limits.seconds, clock=clock)) as budget:
        stream = template.generate(context)
        for chunk in stream:
            total += len(chunk)
            if total > max_chars:
                line = _suspended_line(template, stream)
                raise RenderLimitExceeded(
                    f"the rendered {part} is over the limit of {max_chars} characters", line=line
                )
            if budget.expired():
                budget.check_time(line=_suspended_line(template, stream))
            chunks.append(chunk)
    return "".join(chunks).strip()


def render_part(
    source: str,
    context: dict[str, Any],
    *,
    name: str,
    part: str,
    limits: TemplateLimits = DEFAULT_LIMITS,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """One part of a notification, rendered; ``TemplateRenderError`` names the template and the
    line of whatever stops it. A subject is made one line; an html part may link to http(s) only."""
    try:
        text = render(source, context, html=part == "html", part=part, limits=limits, clock=clock)
    except MemoryError:
        raise
    except Exception as exc:
        raise TemplateRenderError(TemplateProblem(name, error_line(exc) or 1, describe(exc))) from exc
    if part == "subject":
        # One line whatever the values hold: a header cannot carry a line break.
        text = _LINE_BREAKS.sub(" ", text).strip()
    if part == "html":
        for line, value in unsafe_links(text):
            message = f"a link to {value[:80]!r} is not an http(s) URL (line {line} of the rendered html)"
            raise TemplateRenderError(TemplateProblem(name, line, message))
    return text


_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def describe(exc: BaseException) -> str:
    """What went wrong rendering, in one line."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, TemplateError | TemplateRefused):
        message = f"{type(exc).__name__}: {message}"
    return " ".join(str(message).split())[:300]


def error_line(exc: BaseException) -> int | None:
    """The template line an error was raised on, when it can be told."""
    line = getattr(exc, "line", None) or getattr(exc, "lineno", None)
    if line:
        return int(line)
    tb = exc.__traceback__
    while tb is not None:
        # Jinja2 rewrites template frames of a traceback into frames of the template's own lines.
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _suspended_line(template: Template, stream: Any) -> int | None:
    # The template line the output stream stopped on: its innermost generator's frame.
    frame = None
    generator = stream
    while generator is not None:
        frame = getattr(generator, "gi_frame", None) or frame
        generator = getattr(generator, "gi_yieldfrom", None)
    return template.get_corresponding_lineno(frame.f_lineno) if frame is not None else None


def _compiled(source: str, html: bool, limits: TemplateLimits) -> Template:
    # Compiling a template costs far more than rendering it; the same source compiles the same.
    if len(source) > limits.source_chars:
        raise RenderLimitExceeded(
            f"the template is {len(source)} characters, over the limit of {limits.source_chars}"
        )
    return _COMPILED.get((source, html), _weight(source), lambda: _compile(source, html), limits.cache_bytes)


def _compile(source: str, html: bool) -> Template:
    environment = _HTML if html else _TEXT
    tree = environment.parse(source)
    for node in tree.find_all(nodes.Stmt):
        written = forbidden_statement(node)
        if written is not None:
            raise TemplateRefused(f"{written} is not allowed in a notification template", line=line_of(node))
    return environment.from_string(guard_loops(tree))


def cache_sizes() -> dict[str, int]:
    """The summed source bytes each cache keeps (for tests and metrics)."""
    return {"compiled": _COMPILED.size, "checked": _CHECKED.size}


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

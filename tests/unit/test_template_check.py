"""The check at save refuses what render would refuse: sandbox escapes and aliases of the context,
each named with its line (issue 13, defect 3)."""

from __future__ import annotations

import pytest

from schemas.rows import GreetingNames
from schemas.validation import parse_event
from tests.factories import invoice_created
from workers.rules.render import TemplateInvalid, context, render_notification
from workers.rules.template_defaults import DEFAULTS
from workers.rules.templates import check, check_for_save, render, template_name

NAME = "invoice.sms.en"
NAMES = GreetingNames(org="Acme Oy", customer="Kuluttaja Oy", contact="Aino", org_locale="en")

#: Each reaches past what the context offers: an escape from the sandbox, or a way to read a
#: context object's attributes under another name than ``name.attr``.
REFUSED = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ contact|attr('__class__') }}",
    "{{ invoice.number|attr('upper')() }}",
    "{{ range.__self__ }}",
    "{{ invoice.number.__class__ }}",
    "{{ invoice.number.upper() }}",
    "{{ invoice['__class__'] }}",
    "{{ invoice.items() }}",
    "{{ lipsum.__globals__ }}",
    "{% set c = contact %}{{ c.phone }}",
    "{% for c in [contact] %}{{ c.phone }}{% endfor %}",
    "{% with c = contact %}{{ c.phone }}{% endwith %}",
    "{% macro m(c) %}{{ c.phone }}{% endmacro %}{{ m(contact) }}",
    "{{ contact['phone'] }}",
    "{{ [contact][0].phone }}",
    "{{ (contact,)[0]['phone'] }}",
    "{{ contact|first }}",
    "{% set contact = {'phone': '1'} %}{{ contact.phone }}",
    "{% set ns = namespace(c=contact) %}{{ ns.c.phone }}",
    "{% include 'x' %}",
    "{% autoescape false %}{{ contact.name }}{% endautoescape %}",
]


@pytest.mark.parametrize("source", REFUSED)
def test_an_escape_or_an_alias_of_the_context_is_refused_at_save_naming_its_line(source: str) -> None:
    problems = check("Hello {{ contact.name }},\n" + source, "invoice", NAME)
    assert problems, source
    assert str(problems[0]).startswith(f"{NAME} line 2: "), [str(p) for p in problems]


@pytest.mark.parametrize("source", REFUSED)
def test_render_refuses_them_too_when_it_loads_the_template(source: str) -> None:
    overrides = {("invoice", "sms", "en", "body"): "Hello,\n" + source}
    with pytest.raises(TemplateInvalid, match=f"^{NAME} line 2: "):
        render_notification(
            "invoice", "sms", parse_event(invoice_created()), locales=["en"], names=NAMES, overrides=overrides
        )


@pytest.mark.parametrize("source", REFUSED[:11])
def test_the_sandbox_refuses_the_escapes_on_its_own_without_the_check(source: str) -> None:
    values = context(parse_event(invoice_created()), "en", NAMES)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal: render must not produce text
        render(source, values)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{{ ''.__class__ }}", "attribute '__class__'"),
        ("{{ contact|attr('x') }}", "filter 'attr' is not allowed"),
        ("{% set c = contact %}", "'contact' can only be used as contact.name"),
        ("{{ invoice.number.upper() }}", "attribute access 'invoice.number.upper'"),
        ("{% set contact = 1 %}", "cannot assign to 'contact'"),
        ("{% macro m() %}{% endmacro %}", "{% macro %} is not allowed"),
    ],
)
def test_each_refusal_says_what_was_wrong(source: str, says: str) -> None:
    (problem, *_) = check(source, "invoice", NAME)
    assert says in problem.message, problem.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.name|upper }} {{ invoice['number'] }} {{ invoice.number[:3] }}",
        "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}",
        "{% if invoice.url %}{{ invoice.url }}{% else %}-{% endif %}",
        "{% set n = invoice.number ~ '/' ~ amount %}{{ n|truncate(10) }}",
        "{% with total = invoice.total %}{{ total }}{% endwith %}",
        "{{ invoice.number is defined }} {{ (invoice.number ~ 'x')|length }} {{ [1, 2]|join(', ') }}",
    ],
)
def test_what_a_template_may_do_still_checks(source: str) -> None:
    assert check(source, "invoice", NAME) == []
    values = context(parse_event(invoice_created()), "en", NAMES)
    assert render(source, values)


def test_a_loop_variable_outside_its_loop_is_caught_at_save() -> None:
    problems = check("{% for c in [1] %}{{ c }}{% endfor %}\n{{ c }}{{ loop.index }}", "invoice", NAME)
    assert [str(p) for p in problems] == [
        f"{NAME} line 2: unknown variable 'c'",
        f"{NAME} line 2: unknown variable 'loop'",
    ]


def test_every_shipped_template_passes_the_save_check_and_its_trial_render() -> None:
    problems = [
        str(problem)
        for (kind, channel, locale), parts in DEFAULTS.items()
        for part, source in parts.items()
        for problem in check_for_save(source, kind, template_name(kind, channel, locale, part), part)
    ]
    assert problems == []

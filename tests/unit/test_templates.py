"""What is said: templates per kind, channel and locale, checked at load, rendered for the locale."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, UndefinedError

from infra.errors import PermanentError
from schemas.rows import GreetingNames
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received, reminder_due
from workers.rules.links import safe_url
from workers.rules.render import render_notification
from workers.rules.template_defaults import DEFAULTS, LOCALES, PARTS
from workers.rules.templates import TemplateRenderError, check, render, template_name

NAMES = GreetingNames(org="Acme Oy", customer="Kuluttaja Oy", contact="Aino", org_locale="en")


def test_herald_ships_every_kind_for_sms_and_email_in_english_finnish_and_japanese() -> None:
    kinds = {"invoice", "payment_reminder", "payment_thank_you", "mandate_setup", "payment_failed"}
    expected = {(k, c, loc) for k in kinds for c in PARTS for loc in LOCALES}
    assert set(DEFAULTS) == expected
    assert all(set(parts) == set(PARTS[c]) for (_, c, _), parts in DEFAULTS.items())


def test_every_shipped_template_passes_the_load_check() -> None:
    problems = [
        str(problem)
        for (kind, channel, locale), parts in DEFAULTS.items()
        for part, source in parts.items()
        for problem in check(source, kind, template_name(kind, channel, locale, part))
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        (
            "fi",
            "EUR",
            "Lasku 1001: 1 234,50 €, eräpäivä 1.12.2026. https://billing.example/i/INV-1",
        ),
        ("en", "EUR", "Invoice 1001: €1,234.50, due Dec 1, 2026. https://billing.example/i/INV-1"),
        ("ja", "JPY", "請求書 1001：¥1,235、お支払期限 2026/12/01。https://billing.example/i/INV-1"),  # noqa: RUF001
    ],
)
def test_an_invoice_sms_renders_money_and_dates_for_each_shipped_locale(
    locale: str, currency: str, expected: str
) -> None:
    event = parse_event(invoice_created(currency=currency, balance="1234.50"))
    rendered = render_notification("invoice", "sms", event, locales=[locale], names=NAMES)
    assert (rendered.locale, rendered.parts["body"]) == (locale, expected)


def test_an_email_has_subject_text_and_html_and_the_html_escapes_what_it_is_given() -> None:
    names = replace(NAMES, contact="<b>Aino</b>")
    rendered = render_notification(
        "invoice", "email", parse_event(invoice_created()), locales=["en"], names=names
    )
    assert rendered.parts["subject"] == "Invoice 1001 from Acme Oy"
    assert rendered.parts["text"].startswith("Hello <b>Aino</b>,")
    assert "Hello &lt;b&gt;Aino&lt;/b&gt;" in rendered.parts["html"]
    assert 'href="https://billing.example/i/INV-1"' in rendered.parts["html"]


def test_the_locale_falls_back_from_the_contacts_to_the_organisations_then_english() -> None:
    event = parse_event(payment_received())
    assert (
        render_notification("payment_thank_you", "sms", event, locales=["sv", "fi"], names=NAMES).locale
        == "fi"
    )
    assert (
        render_notification("payment_thank_you", "sms", event, locales=["sv", "de"], names=NAMES).locale
        == "en"
    )
    assert (
        render_notification("payment_thank_you", "sms", event, locales=["fi-FI"], names=NAMES).locale == "fi"
    )


def test_an_organisations_own_template_wins_over_the_shipped_one() -> None:
    overrides = {("payment_reminder", "sms", "fi", "body"): "Hei {{ contact.name }}, {{ amount }} odottaa."}
    event = parse_event(reminder_due())
    rendered = render_notification(
        "payment_reminder", "sms", event, locales=["fi"], names=NAMES, overrides=overrides
    )
    assert rendered.parts["body"] == "Hei Aino, 1 234,50 € odottaa."


def test_a_variable_the_kind_does_not_have_is_caught_at_load_naming_template_line_and_variable() -> None:
    source = "Lasku {{ invoice.number }}\n{{ invoice.totl }} {{ payment.amount }}"
    assert [str(p) for p in check(source, "invoice", "invoice.sms.fi")] == [
        "invoice.sms.fi line 2: unknown variable 'invoice.totl'",
        "invoice.sms.fi line 2: unknown variable 'payment'",
    ]


def test_loop_and_set_variables_are_the_templates_own() -> None:
    assert (
        check("{% set n = invoice.number %}{% for c in [1] %}{{ n }}{{ c }}{% endfor %}", "invoice", "t")
        == []
    )


def test_a_syntax_error_is_reported_with_its_line() -> None:
    (problem,) = check("ok\n{{ invoice.number ", "invoice", "invoice.sms.en")
    assert str(problem).startswith("invoice.sms.en line 2: syntax error:")


def test_rendering_is_strict_and_sandboxed() -> None:
    with pytest.raises(UndefinedError):
        render("{{ missing }}", {})
    with pytest.raises(SecurityError, match=r"access to attribute '__class__' .* is unsafe"):
        render("{{ x.__class__.__mro__ }}", {"x": 1})
    with pytest.raises(SecurityError, match=r"access to attribute '__class__' of 'str' object is unsafe"):
        render("{{ ''.__class__ }}", {})


def test_sms_text_uses_plain_spaces_so_finnish_amounts_stay_gsm7() -> None:
    from workers.rules.segments import count_segments

    rendered = render_notification(
        "invoice", "sms", parse_event(invoice_created()), locales=["fi"], names=NAMES
    )
    assert count_segments(rendered.parts["body"]).encoding == "GSM-7"
    email = render_notification(
        "invoice", "email", parse_event(invoice_created()), locales=["fi"], names=NAMES
    )
    assert "1\u00a0234,50\u00a0€" in email.parts["text"]  # email keeps the typographic spaces


def _with_invoice(event: Any, **fields: Any) -> Any:
    # Values the producer refuses (issue 13) can still be stored from before: build them directly.
    invoice = event.data.invoice.model_copy(update=fields)
    return event.model_copy(update={"data": event.data.model_copy(update={"invoice": invoice})})


@pytest.mark.parametrize("total", ["1E+400", "123456789012345678901234567.00"])
def test_an_amount_that_cannot_be_formatted_is_a_permanent_error_naming_the_field(total: str) -> None:
    event = _with_invoice(parse_event(invoice_created()), total=Decimal(total))
    with pytest.raises(PermanentError, match=r"^invoice\.total: .* cannot be formatted in EUR"):
        render_notification("invoice", "sms", event, locales=["en"], names=NAMES)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,x", "//x"]
)
def test_only_an_http_or_https_invoice_url_is_put_in_an_email(url: str) -> None:
    event = _with_invoice(parse_event(invoice_created()), url=url)
    email = render_notification("invoice", "email", event, locales=["en"], names=NAMES)
    assert 'href=""' in email.parts["html"]
    assert "script" not in email.parts["html"] + email.parts["text"]
    assert "data:" not in email.parts["html"] + email.parts["text"]


@pytest.mark.parametrize(
    "html", ['<a href="javascript:alert(1)">x</a>', "<a href='jav&#x61;script:x'>x</a>", '<img src="data:x">']
)
def test_an_organisations_html_linking_to_anything_but_http_is_refused(html: str) -> None:
    overrides = {("invoice", "email", "en", "html"): html}
    with pytest.raises(
        TemplateRenderError, match=r"^invoice\.email\.en\.html line 1: .*not an http\(s\) URL"
    ):
        render_notification(
            "invoice",
            "email",
            parse_event(invoice_created()),
            locales=["en"],
            names=NAMES,
            overrides=overrides,
        )


def test_a_subject_is_one_line_whatever_the_values_hold() -> None:
    event = _with_invoice(parse_event(invoice_created()), number="1001\r\nBcc: victim@example.com")
    email = render_notification("invoice", "email", event, locales=["en"], names=NAMES)
    assert email.parts["subject"] == "Invoice 1001 Bcc: victim@example.com from Acme Oy"


def test_a_render_error_names_the_template_and_the_line() -> None:
    overrides = {("invoice", "sms", "en", "body"): "Hello\n{{ amount ~ '' }}\n{{ amount + 1 }}"}
    with pytest.raises(TemplateRenderError, match=r"^invoice\.sms\.en line 3: ") as refused:
        render_notification(
            "invoice", "sms", parse_event(invoice_created()), locales=["en"], names=NAMES, overrides=overrides
        )
    assert isinstance(refused.value, PermanentError)


#: What a URL is made of, with what a browser ignores inside a scheme (and a no-break space, which
#: it does not).
URL_CHARACTERS = ["h", "t", "p", "s", "j", ":", "/", "x", ".", " ", "\t", "\x00", "\x7f", "\xa0"]


@given(st.text(st.sampled_from(URL_CHARACTERS)))
def test_a_url_is_judged_with_whitespace_and_control_characters_taken_out(url: str) -> None:
    parts = urlsplit(re.sub(r"[\x00-\x20\x7f]+", "", url))
    judged = parts.scheme.lower() in ("http", "https") and parts.netloc
    assert safe_url(url) == (url.strip() if judged else "")

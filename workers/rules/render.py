"""What is said: a notification's text from its template, in the contact's language.

The locale falls back from the contact's to the organisation's default and then
to English; money and dates are formatted for the locale the template is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from infra.errors import PermanentError
from schemas.events import Event, InvoiceCreated, PaymentFailed, PaymentReceived, ReminderDue
from schemas.rows import GreetingNames
from workers.rules.formatting import UnformattableAmount, day, money
from workers.rules.links import safe_url
from workers.rules.templates import (
    DEFAULT_LIMITS,
    TemplateLimits,
    TemplateProblem,
    check,
    choose,
    render_part,
    template_name,
)


class TemplateInvalid(PermanentError, ValueError):
    """A template failed its check when loaded; the message names template, line and variable."""

    reason = "template_invalid"

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Rendered:
    """A rendered notification: the locale used, and its parts (``body``, or the email's three)."""

    locale: str
    parts: dict[str, str]


def language(locale: str) -> str:
    """``fi-FI`` → ``fi``."""
    return locale.replace("_", "-").split("-")[0].lower()


def context(
    event: Event | None, locale: str, names: GreetingNames, mandate_url: str | None = None
) -> dict[str, Any]:
    """The variables a template may use (see ``workers.rules.templates.CONTEXT``).

    ``event`` is ``None`` for what herald says on its own account (the mandate-setup link). URLs
    are given only when they are http(s) (else ``""``), so no template can link to ``javascript:``;
    an amount that cannot be formatted raises ``UnformattableAmount`` naming its field.
    """
    values: dict[str, Any] = {
        "org": {"name": names.org},
        "customer": {"name": names.customer},
        "contact": {"name": names.contact},
    }
    if isinstance(event, InvoiceCreated | ReminderDue):
        invoice = event.data.invoice
        values["invoice"] = {
            "id": invoice.id,
            "number": invoice.number,
            "url": safe_url(invoice.url),
            "currency": invoice.currency,
            "total": _money("invoice.total", invoice.total, invoice.currency, locale),
            "balance": _money("invoice.balance", invoice.balance, invoice.currency, locale),
            "due_date": day(invoice.due_date, locale),
        }
        values["amount"] = values["invoice"]["balance"]
        values["due_date"] = values["invoice"]["due_date"]
    if isinstance(event, ReminderDue):
        values["reminder"] = {"offset_days": event.data.reminder.offset_days}
        owed = event.data.reminder.outstanding
        if owed is not None:  # partly paid: the reminder asks for what is left
            values["amount"] = _money("reminder.outstanding", owed, event.data.invoice.currency, locale)
    if isinstance(event, PaymentReceived):
        payment = event.data.payment
        values["payment"] = {
            "id": payment.id,
            "invoice_id": payment.invoice_id,
            "amount": _money("payment.amount", payment.amount, payment.currency, locale),
            "currency": payment.currency,
            "method": payment.method,
        }
        values["amount"] = values["payment"]["amount"]
    if isinstance(event, PaymentFailed):
        failed = event.data.payment
        values["payment"] = {
            "id": failed.id,
            "invoice_id": failed.invoice_id,
            "amount": _money("payment.amount", failed.amount, failed.currency, locale),
            "currency": failed.currency,
        }
        values["amount"] = values["payment"]["amount"]
    if mandate_url is not None:
        values["mandate_url"] = safe_url(mandate_url)
    return values


def render_failure(exc: BaseException) -> str:
    """Why a notification did not render, in one line (for a preview, or the history)."""
    if isinstance(exc, ValidationError):
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return f"the stored event no longer matches the contract: {said}"
    return " ".join(str(exc).split())[:500]


def _money(field: str, amount: Decimal, currency: str, locale: str) -> str:
    try:
        return money(amount, currency, locale)
    except UnformattableAmount as exc:
        raise UnformattableAmount(f"{field}: {exc}") from None


def _render_all(
    kind: str,
    channel: str,
    chosen: str,
    parts: dict[str, str],
    values_of: Callable[[], dict[str, Any]],
    limits: TemplateLimits,
) -> dict[str, str]:
    problems = [
        p
        for part, source in parts.items()
        for p in check(source, kind, template_name(kind, channel, chosen, part), limits=limits)
    ]
    if problems:
        # Saved templates were checked; this catches one saved before the context changed.
        raise TemplateInvalid(problems)
    values = values_of()  # after the check: a broken template is named before a bad amount
    rendered = {
        part: render_part(
            source, values, name=template_name(kind, channel, chosen, part), part=part, limits=limits
        )
        for part, source in parts.items()
    }
    if channel == "sms":
        # CLDR puts (narrow) no-break spaces in numbers; they are not GSM-7 and would double the cost.
        rendered = {part: text.translate(_SMS_SPACES) for part, text in rendered.items()}
    return rendered


def render_notification(
    kind: str,
    channel: str,
    event: Event,
    *,
    locales: list[str],
    names: GreetingNames,
    overrides: dict[tuple[str, str, str, str], str] | None = None,
    limits: TemplateLimits = DEFAULT_LIMITS,
) -> Rendered:
    """Render every part of the (kind, channel) template in the first of ``locales`` that has one.

    Every failure is a ``PermanentError`` (rendering is pure): ``TemplateInvalid`` (the load
    check), ``TemplateRenderError`` (a limit or a refusal while rendering, with its line) or
    ``UnformattableAmount``.
    """
    overrides = with_variant(kind, event, overrides or {})
    return _render(kind, channel, locales, overrides, limits, lambda chosen: context(event, chosen, names))


def base_kind(kind: str) -> str:
    """The kind a template variant belongs to: ``payment_reminder.final`` → ``payment_reminder``."""
    return kind.partition(".")[0]


def with_variant(
    kind: str, event: Event, overrides: dict[tuple[str, str, str, str], str]
) -> dict[tuple[str, str, str, str], str]:
    """A reminder whose offset names a template key (``data.reminder.template``, set by the
    scheduler from ``herald orgs reminders set``) uses the organisation's ``payment_reminder.KEY``
    templates: their parts stand in for the standard ones, locale by locale. A locale without the
    variant keeps the standard template, so the contact's language still comes first."""
    extra = event.data.reminder.model_extra if isinstance(event, ReminderDue) else None
    key = (extra or {}).get("template")
    if not key:
        return overrides
    variant = f"{kind}.{key}"
    merged = dict(overrides)
    merged.update({(kind, c, loc, p): s for (k, c, loc, p), s in overrides.items() if k == variant})
    return merged


def render_mandate_setup(
    channel: str,
    mandate_url: str,
    *,
    locales: list[str],
    names: GreetingNames,
    overrides: dict[tuple[str, str, str, str], str] | None = None,
    limits: TemplateLimits = DEFAULT_LIMITS,
) -> Rendered:
    """The mandate-setup link (the Billing Request Flow's authorisation URL) in the first of
    ``locales`` that has the template. No upstream event stands behind it, so its context is the
    names and the link (``workers.rules.templates.CONTEXT["mandate_setup"]``)."""

    def values_of(chosen: str) -> dict[str, Any]:
        return context(None, chosen, names, mandate_url)

    return _render("mandate_setup", channel, locales, overrides or {}, limits, values_of)


def _render(
    kind: str,
    channel: str,
    locales: list[str],
    overrides: dict[tuple[str, str, str, str], str],
    limits: TemplateLimits,
    values_of: Callable[[str], dict[str, Any]],
) -> Rendered:
    """The (kind, channel) template in the first of ``locales`` that has one, every part rendered
    with ``values_of(the locale chosen)``."""
    chosen, parts = choose(kind, channel, [language(x) for x in locales], overrides)
    return Rendered(chosen, _render_all(kind, channel, chosen, parts, lambda: values_of(chosen), limits))


_SMS_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})

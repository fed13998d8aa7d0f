"""``herald orgs``: organisation settings (region, SMS, sender, templates, credit)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

import typer

from infra.errors import Invalid
from infra.store.organisations import org_settings, update_org
from infra.store.preferences import update_preference_settings
from producers.cli import reminders_cmd
from producers.cli.console import out
from producers.cli.store import open_store
from producers.operations.local_time import local_time_changes, parse_send_windows
from schemas.notifications import Channel, Kind
from schemas.providers import changed_list, parse_stored

app = typer.Typer(help="Organisation settings.", no_args_is_help=True)
TEMPLATES = sorted(f"{k}:{c}" for k in Kind for c in Channel)
app.add_typer(reminders_cmd.app, name="reminders")
_SENDER_NAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _template(value: str) -> str:
    if value not in TEMPLATES:
        raise typer.BadParameter(f"{value!r}: expected one of {', '.join(TEMPLATES)}")
    return value


@app.command("set")
def set_(
    org: str = typer.Argument(..., help="Organisation id."),
    region: str | None = typer.Option(None, help="Default phone region, e.g. FI."),
    sms_connected: bool | None = typer.Option(None, "--sms-connected/--sms-disconnected"),
    sender_number: str | None = typer.Option(None, help="The organisation's SMS number (E.164)."),
    sender_name: str | None = typer.Option(None, help="Alphanumeric sender name, 1-11 characters."),
    sender_name_active: bool | None = typer.Option(None, "--sender-name-active/--sender-name-inactive"),
    enable: list[str] = typer.Option([], help="Switch a template on: KIND:CHANNEL (repeatable)."),
    disable: list[str] = typer.Option([], help="Switch a template off: KIND:CHANNEL (repeatable)."),
    buys_credit: bool | None = typer.Option(None, "--buys-credit/--no-credit"),
    low_balance_threshold: int | None = typer.Option(None, min=0, help="Warn in history under this balance."),
    name: str | None = typer.Option(None, help="The organisation's name, as templates greet with it."),
    locale: str | None = typer.Option(None, help="Default locale of its templates (en, fi, ja, ...)."),
    timezone: str | None = typer.Option(None, help="IANA time zone, e.g. Europe/Helsinki."),
    reminder_hour: int | None = typer.Option(None, help="Local hour reminders fire at (0-23)."),
    country: str | None = typer.Option(None, help="Country of its public holidays, e.g. FI ('' clears)."),
    subdivision: str | None = typer.Option(None, help="Subdivision of the country's holidays, e.g. CA."),
    business_days: bool | None = typer.Option(
        None, "--business-days/--calendar-days", help="Move reminders off weekends and public holidays."
    ),
    send_window: list[str] = typer.Option(
        [],
        help="When sending is allowed, recipient's local time: sms=08:00-21:00, email=any, "
        "payment_thank_you:sms=any (repeatable).",
    ),
    reset_send_windows: bool = typer.Option(False, help="Forget its send windows first (the defaults)."),
    collection_grace_days: int | None = typer.Option(
        None, help="Days after a Direct Debit retry's charge date before reminders resume (default 3)."
    ),
    sms_providers: str | None = typer.Option(
        None, help="Its SMS providers in order, comma-separated: twilio,vonage (docs/failover.md)."
    ),
    provider_sender: list[str] = typer.Option(
        [], help="A provider's own sender: PROVIDER=+358401234567 or PROVIDER=NAME ('' clears; repeatable)."
    ),
    provider_rate: list[str] = typer.Option(
        [], help="A provider's own rate limit, SMS segments per second: PROVIDER=10 (repeatable)."
    ),
) -> None:
    """Change an organisation's settings; unnamed settings keep their value."""
    changes: dict[str, Any] = {}
    if region is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", region):
            raise typer.BadParameter(f"--region {region!r}: a two-letter ISO 3166 code, e.g. FI")
        changes["default_region"] = region.upper()
    if sender_name is not None and not _SENDER_NAME.fullmatch(sender_name):
        raise typer.BadParameter(
            f"--sender-name {sender_name!r}: 1-11 letters, digits or spaces, with at least one letter"
        )
    for key, value in (
        ("sms_connected", sms_connected),
        ("sender_number", sender_number),
        ("sender_name", sender_name),
        ("sender_name_active", sender_name_active),
        ("buys_credit", buys_credit),
        ("low_balance_threshold", low_balance_threshold),
        ("name", name),
        ("default_locale", locale),
    ):
        if value is not None:
            changes[key] = value
    svc = open_store()
    with svc.transaction() as conn:
        current = org_settings(conn, org)
        try:
            changes.update(
                local_time_changes(
                    current,
                    timezone=timezone,
                    reminder_hour=reminder_hour,
                    country=country,
                    subdivision=subdivision,
                    business_days=business_days,
                    send_windows=parse_send_windows(send_window) if send_window else None,
                    clear_windows=reset_send_windows,
                    collection_grace_days=collection_grace_days,
                )
            )
        except Invalid as exc:
            raise typer.BadParameter(str(exc)) from None
        if sms_providers is not None or provider_sender or provider_rate:
            changes["sms_providers"] = _providers(current, sms_providers, provider_sender, provider_rate)
        disabled = set(current["disabled_templates"])
        disabled |= {_template(t) for t in disable}
        disabled -= {_template(t) for t in enable}
        changes["disabled_templates"] = sorted(disabled)
        settings = update_org(conn, org, changes)
    typer.echo(json.dumps(settings, indent=2))


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{option} {value[:60]!r}: expected PROVIDER=VALUE")
        pairs[name.strip()] = setting.strip()
    return pairs


def _providers(
    current: dict[str, Any], order: str | None, senders: list[str], rates: list[str]
) -> list[dict[str, Any]]:
    """The organisation's SMS provider list after the change, as stored; ``BadParameter`` names
    the option and what is wrong."""
    rate_values: dict[str, float] = {}
    for name, raw in _pairs("--provider-rate", rates).items():
        try:
            rate_values[name] = float(raw)
        except ValueError:
            raise typer.BadParameter(
                f"--provider-rate {name}={raw[:40]!r}: a number of segments per second"
            ) from None
    try:
        made = changed_list(
            parse_stored(current.get("sms_providers")),
            order=order.split(",") if order is not None else None,
            senders=_pairs("--provider-sender", senders),
            rates=rate_values,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return [p.as_json() for p in made]


@app.command("show")
def show(org: str = typer.Argument(..., help="Organisation id.")) -> None:
    """An organisation's settings (the defaults when it was never configured)."""
    with open_store().transaction() as conn:
        settings = org_settings(conn, org)
    out.print(json.dumps(settings, indent=2), markup=False)


@app.command("preferences")
def preferences(
    org: str = typer.Argument(..., help="Organisation id."),
    colour: str | None = typer.Option(None, help="The preference page's colour, #rrggbb."),
    require: list[str] = typer.Option([], help="A category contacts cannot switch off (repeatable)."),
    optional: bool = typer.Option(False, "--no-required", help="No category is required any more."),
    required_reason: str | None = typer.Option(None, help="Why the required categories are required."),
    unsubscribe_scope: str | None = typer.Option(None, help="category (the email's kind) or all."),
    sms_help: str | None = typer.Option(None, help="The answer to an SMS HELP."),
    sms_link: bool | None = typer.Option(None, "--sms-link/--no-sms-link", help="A short link in every SMS."),
) -> None:
    """The preference page, one-click unsubscribe and SMS HELP of an organisation
    (docs/preferences.md); unnamed settings keep their value."""
    changes: dict[str, Any] = {}
    if require or optional:
        changes["required_categories"] = sorted(set(require))
    for key, value in (
        ("brand_colour", colour),
        ("required_reason", required_reason),
        ("unsubscribe_scope", unsubscribe_scope),
        ("sms_help_text", sms_help),
        ("sms_link", sms_link),
    ):
        if value is not None:
            changes[key] = value
    with open_store().transaction() as conn:
        try:
            made = update_preference_settings(conn, org, changes)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    typer.echo(
        json.dumps(
            {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(made).items()}, indent=2
        )
    )

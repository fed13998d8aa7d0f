"""``herald orgs reminders``: when an organisation's payment reminders go out, and with which template."""

from __future__ import annotations

import re
from collections.abc import Collection

import typer

from infra.store.organisations import org_settings
from infra.store.reminders import load_business_offsets, load_offsets, set_offsets
from infra.store.templates import load_overrides
from producers.cli.console import err, out
from producers.cli.store import open_store
from workers.rules.scheduling import MAX_OFFSET_DAYS

# "-3" must reach us as an argument, not be taken for an unknown option.
app = typer.Typer(
    help="Payment reminders: offsets from the due date, each with an optional template.",
    no_args_is_help=True,
)
_OFFSET = re.compile(r"^([+-]?\d{1,3})(b?)(?:=([a-z0-9_-]{1,20}))?$")
_KEY = re.compile(r"^[a-z0-9_-]{1,20}$")


def parse_offsets(tokens: list[str], default_template: str | None) -> dict[int, str | None]:
    """``["-3", "+1=firm", "+7"]`` → ``{-3: default, 1: "firm", 7: default}``; a bad token raises
    ``typer.BadParameter`` naming it."""
    return parse_schedule(tokens, default_template)[0]


def parse_schedule(tokens: list[str], default_template: str | None) -> tuple[dict[int, str | None], set[int]]:
    """``parse_offsets``, and the offsets given in business days (``+3b``)."""
    if default_template is not None and not _KEY.fullmatch(default_template):
        raise typer.BadParameter(f"--template {default_template!r}: 1-20 of a-z, 0-9, _ and -")
    if not tokens:
        raise typer.BadParameter("give at least one offset, e.g. -3 +1 +7 (or use `clear`)")
    offsets: dict[int, str | None] = {}
    business: set[int] = set()
    for token in tokens:
        match = _OFFSET.fullmatch(token.strip())
        if match is None:
            raise typer.BadParameter(
                f"{token!r}: an offset is whole days from the due date (b: business days), "
                "optionally with a template key: -3, +7, +3b, +14=final"
            )
        days = int(match.group(1))
        if abs(days) > MAX_OFFSET_DAYS:
            raise typer.BadParameter(
                f"{token!r}: offsets go from -{MAX_OFFSET_DAYS} to +{MAX_OFFSET_DAYS} days"
            )
        if days in offsets:
            raise typer.BadParameter(f"{token!r}: offset {days:+d} given twice")
        offsets[days] = match.group(3) or default_template
        if match.group(2):
            business.add(days)
    return offsets, business


@app.command("set", context_settings={"ignore_unknown_options": True})
def set_(
    org: str = typer.Argument(..., help="Organisation id."),
    offsets: list[str] = typer.Argument(
        None, help="Days from the due date: -3 +1 +7, or +7=KEY.", metavar="OFFSET..."
    ),
    template: str | None = typer.Option(
        None, help="Template key for offsets without their own: render uses payment_reminder.KEY."
    ),
) -> None:
    """Replace the organisation's reminder offsets (reminders already sent stay sent)."""
    parsed, business = parse_schedule(offsets or [], template)
    with open_store().transaction() as conn:
        overrides = load_overrides(conn, org)
        if business and not org_settings(conn, org)["business_days"]:
            err.print(
                f"warning: {org} does not count business days yet; +Nb offsets count calendar days "
                f"until it does (herald orgs set {org} --country FI --business-days)",
                markup=False,
            )
        set_offsets(conn, org, parsed, business)
    saved = {k for k, *_ in overrides}
    for key in sorted({t for t in parsed.values() if t}):
        if f"payment_reminder.{key}" not in saved:
            err.print(
                f"warning: {org} has no payment_reminder.{key} templates yet; the standard reminder is "
                f"used until you save one "
                f"(herald templates set payment_reminder.{key} sms en FILE --org {org})",
                markup=False,
            )
    _print(org, parsed, business)


@app.command("show")
def show(org: str = typer.Argument(..., help="Organisation id.")) -> None:
    """The organisation's reminder offsets and their templates."""
    with open_store().reading() as conn:
        offsets = load_offsets(conn, org).get(org, {})
        business = load_business_offsets(conn, org).get(org, frozenset())
    _print(org, offsets, business)


@app.command("clear")
def clear(org: str = typer.Argument(..., help="Organisation id.")) -> None:
    """No more reminders for the organisation's invoices."""
    with open_store().transaction() as conn:
        set_offsets(conn, org, {})
    _print(org, {})


def _print(org: str, offsets: dict[int, str | None], business: Collection[int] = ()) -> None:
    if not offsets:
        out.print(f"{org}: no reminders", markup=False)
        return
    for days, key in sorted(offsets.items()):
        name = f"payment_reminder.{key}" if key else "payment_reminder"
        unit = "business days" if days in business else "days"
        out.print(f"{org}  {days:+d} {unit}  {name}", markup=False)

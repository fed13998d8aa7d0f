"""``herald templates``: list, show, set (checked first) and check templates; switch kinds on or off."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.table import Table

from infra.store.organisations import org_settings, update_org
from infra.store.templates import load_overrides, save_override
from producers.cli.console import err, out
from producers.cli.store import open_store
from workers.rules.render import base_kind
from workers.rules.template_defaults import DEFAULTS, LOCALES, PARTS
from workers.rules.templates import CONTEXT, check, template_name

app = typer.Typer(help="Message templates per kind, channel and locale.", no_args_is_help=True)


# A reminder offset's own templates: payment_reminder.KEY (see ``herald orgs reminders set``).
_VARIANT = re.compile(r"^payment_reminder\.[a-z0-9_-]{1,20}$")


def _validate(kind: str, channel: str) -> None:
    if kind not in CONTEXT and not _VARIANT.fullmatch(kind):
        raise typer.BadParameter(
            f"kind {kind!r}: expected one of {', '.join(CONTEXT)}, or payment_reminder.KEY "
            "(KEY: 1-20 of a-z 0-9 _ -)"
        )
    if channel not in PARTS:
        raise typer.BadParameter(f"channel {channel!r}: expected one of {', '.join(PARTS)}")


@app.command("list")
def list_(
    org: str | None = typer.Option(None, "--org", help="Show which ones this organisation overrides."),
) -> None:
    """Every template: kind, channel, locale, and whether it is shipped or the organisation's own."""
    overrides = {}
    disabled: set[str] = set()
    if org:
        with open_store().transaction() as conn:
            overrides = load_overrides(conn, org)
            disabled = set(org_settings(conn, org)["disabled_templates"])
    keys = sorted(set(DEFAULTS) | {(k, c, loc) for k, c, loc, _ in overrides})
    table = Table(title=f"templates{' of ' + org if org else ''}")
    for column in ("kind", "channel", "locale", "source", "enabled"):
        table.add_column(column)
    for kind, channel, locale in keys:
        own = any(key[:3] == (kind, channel, locale) for key in overrides)
        enabled = "no" if f"{kind}:{channel}" in disabled else "yes"
        table.add_row(kind, channel, locale, "organisation" if own else "shipped", enabled)
    out.print(table)


@app.command("show")
def show(
    kind: str = typer.Argument(...),
    channel: str = typer.Argument(...),
    locale: str = typer.Argument(...),
    org: str | None = typer.Option(None, "--org"),
) -> None:
    """The template's parts as they will be used (the organisation's own, else the shipped one)."""
    _validate(kind, channel)
    overrides = {}
    if org:
        with open_store().transaction() as conn:
            overrides = load_overrides(conn, org)
    parts = dict(DEFAULTS.get((kind, channel, locale), {}))
    parts.update({p: s for (k, c, loc, p), s in overrides.items() if (k, c, loc) == (kind, channel, locale)})
    if not parts:
        err.print(f"error: no {kind}.{channel} template in locale {locale!r}", markup=False)
        raise typer.Exit(1)
    for part in PARTS[channel]:
        if part in parts:
            out.print(f"--- {template_name(kind, channel, locale, part)}", markup=False)
            out.print(parts[part], markup=False)


@app.command("set")
def set_(
    kind: str = typer.Argument(...),
    channel: str = typer.Argument(...),
    locale: str = typer.Argument(...),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The template source (Jinja2)."),
    org: str = typer.Option(..., "--org"),
    part: str = typer.Option("body", help="body (SMS); subject, text or html (email)."),
) -> None:
    """Check a template and save it as the organisation's own; a problem is refused with its line."""
    _validate(kind, channel)
    if part not in PARTS[channel]:
        raise typer.BadParameter(f"--part {part!r}: {channel} templates have {', '.join(PARTS[channel])}")
    source = file.read_text(encoding="utf-8")
    problems = check(source, base_kind(kind), template_name(kind, channel, locale, part))
    if problems:
        for problem in problems:
            err.print(f"error: {problem}", markup=False)
        raise typer.Exit(1)
    with open_store().transaction() as conn:
        save_override(conn, org, (kind, channel, locale, part), source)
    out.print(f"saved {template_name(kind, channel, locale, part)} for {org}", markup=False)


@app.command("check")
def check_all(org: str | None = typer.Option(None, "--org")) -> None:
    """Check every shipped template and the organisation's own; exit 1 when any has a problem."""
    sources = {(k, c, loc, p): s for (k, c, loc), parts in DEFAULTS.items() for p, s in parts.items()}
    if org:
        with open_store().transaction() as conn:
            sources.update(load_overrides(conn, org))
    problems = [
        str(p)
        for (k, c, loc, part), s in sorted(sources.items())
        for p in check(s, base_kind(k), template_name(k, c, loc, part))
    ]
    for problem in problems:
        err.print(f"error: {problem}", markup=False)
    out.print(f"{len(sources)} templates checked, {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


def _switch(kind: str, channel: str, org: str, on: bool) -> None:
    _validate(kind, channel)
    if kind not in CONTEXT:
        raise typer.BadParameter(f"kind {kind!r}: switch the kind ({base_kind(kind)}), not a variant")
    with open_store().transaction() as conn:
        disabled = set(org_settings(conn, org)["disabled_templates"])
        (disabled.discard if on else disabled.add)(f"{kind}:{channel}")
        update_org(conn, org, {"disabled_templates": sorted(disabled)})
    out.print(f"{kind}:{channel} {'enabled' if on else 'disabled'} for {org}", markup=False)


@app.command("enable")
def enable(kind: str, channel: str, org: str = typer.Option(..., "--org")) -> None:
    """Switch a kind on for a channel, organisation-wide."""
    _switch(kind, channel, org, True)


@app.command("disable")
def disable(kind: str, channel: str, org: str = typer.Option(..., "--org")) -> None:
    """Switch a kind off for a channel, organisation-wide (skipped as template_disabled)."""
    _switch(kind, channel, org, False)


__all__ = ["LOCALES", "app"]

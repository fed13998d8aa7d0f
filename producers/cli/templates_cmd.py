"""``herald templates``: list, show, set (checked first) and check templates; switch kinds on or off."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infra.store.templates import load_overrides
from producers.cli.console import err, out, refusals
from producers.cli.store import open_store
from producers.operations.templates import list_templates, save_template, switch_template, template_parts
from workers.rules.render import base_kind
from workers.rules.template_defaults import DEFAULTS, LOCALES
from workers.rules.templates import TemplateLimits, check_for_save, template_name

app = typer.Typer(help="Message templates per kind, channel and locale.", no_args_is_help=True)


@app.command("list")
def list_(
    org: str | None = typer.Option(None, "--org", help="Show which ones this organisation overrides."),
) -> None:
    """Every template: kind, channel, locale, and whether it is shipped or the organisation's own."""
    table = Table(title=f"templates{' of ' + org if org else ''}")
    for column in ("kind", "channel", "locale", "source", "enabled"):
        table.add_column(column)
    for row in list_templates(open_store(), org):
        table.add_row(
            row["kind"], row["channel"], row["locale"], row["source"], "yes" if row["enabled"] else "no"
        )
    out.print(table)


@app.command("show")
def show(
    kind: str = typer.Argument(...),
    channel: str = typer.Argument(...),
    locale: str = typer.Argument(...),
    org: str | None = typer.Option(None, "--org"),
) -> None:
    """The template's parts as they will be used (the organisation's own, else the shipped one)."""
    with refusals(usage=True):
        parts = template_parts(open_store(), org, kind, channel, locale)
    for part, source in parts.items():
        out.print(f"--- {template_name(kind, channel, locale, part)}", markup=False)
        out.print(source, markup=False)


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
    services = open_store()
    source = _read_source(file, services.settings.template_max_source_chars)
    with refusals(usage=True):  # a wrong kind, channel or part: usage; the template's problems: 1
        name = save_template(services, org, kind, channel, locale, part, source)
    out.print(f"saved {name} for {org}", markup=False)


def _read_source(file: Path, max_chars: int) -> str:
    """The file's text; a file that is not UTF-8, or is certainly over the limit, exits 1 saying so."""
    max_bytes = max_chars * 4  # UTF-8 takes at most 4 bytes a character
    with file.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        err.print(
            f"error: {file}: over the limit of {max_chars} characters a template may have", markup=False
        )
        raise typer.Exit(1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        err.print(f"error: {file} line {line}: not UTF-8 text (byte 0x{byte} cannot be read)", markup=False)
        raise typer.Exit(1) from None


@app.command("check")
def check_all(org: str | None = typer.Option(None, "--org")) -> None:
    """Check every shipped template and the organisation's own as a save would (a trial render
    included); exit 1 when any has a problem."""
    sources = {(k, c, loc, p): s for (k, c, loc), parts in DEFAULTS.items() for p, s in parts.items()}
    limits = TemplateLimits()
    if org:
        services = open_store()
        limits = TemplateLimits.from_settings(services.settings)
        with services.transaction() as conn:
            sources.update(load_overrides(conn, org))
    problems = [
        str(p)
        for (k, c, loc, part), s in sorted(sources.items())
        for p in check_for_save(s, base_kind(k), template_name(k, c, loc, part), part, limits=limits)
    ]
    for problem in problems:
        err.print(f"error: {problem}", markup=False)
    out.print(f"{len(sources)} templates checked, {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


def _switch(kind: str, channel: str, org: str, on: bool) -> None:
    with refusals(usage=True):
        switch_template(open_store(), org, kind, channel, on)
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

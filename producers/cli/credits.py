"""``herald credits``: an organisation's SMS credit (in segments)."""

from __future__ import annotations

import json

import typer

from infra.store.organisations import add_credit, org_settings, recent_warnings
from producers.cli.console import out
from producers.cli.store import open_store

app = typer.Typer(help="SMS credit of organisations that buy it.", no_args_is_help=True)


@app.command("show")
def show(org: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Balance, threshold and the latest low-balance warnings."""
    with open_store().transaction() as conn:
        settings = org_settings(conn, org)
        warnings = recent_warnings(conn, org)
    data = {
        "org_id": org,
        "buys_credit": settings["buys_credit"],
        "balance": settings["credit_balance"],
        "low_balance_threshold": settings["low_balance_threshold"],
        "warnings": [{"at": w["at"].isoformat(), "detail": w["detail"]} for w in warnings],
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    out.print(
        f"{org}: balance {data['balance']} segment(s); buys credit: {'yes' if data['buys_credit'] else 'no'};"
        f" warn under: {data['low_balance_threshold'] if data['low_balance_threshold'] is not None else '-'}",
        markup=False,
    )
    for warning in data["warnings"]:
        out.print(f"  {warning['at']}: {warning['detail']}", markup=False)


@app.command("add")
def add(org: str = typer.Argument(...), segments: int = typer.Argument(..., min=1)) -> None:
    """Add credit; prints the new balance."""
    with open_store().transaction() as conn:
        balance = add_credit(conn, org, segments)
    out.print(f"{org}: balance {balance} segment(s)", markup=False)

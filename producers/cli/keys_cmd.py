"""``herald keys``: API keys for the HTTP API (created once, shown once, stored as hashes)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from infra.store.api_keys import create_key, list_keys, revoke_key
from producers.cli.console import err, out
from producers.cli.store import open_store
from schemas.access import Level

app = typer.Typer(help="API keys for the HTTP API, one organisation and level each.", no_args_is_help=True)


@app.command("create")
def create(
    org: str = typer.Option(..., "--org", help="The organisation the key may see."),
    level: Level = typer.Option(..., "--level", help="view | send | edit | admin"),
    name: str = typer.Option("", "--name", help="What the key is for (shown by list)."),
) -> None:
    """Make a key and print it once: herald keeps only its hash and cannot show it again."""
    with open_store().transaction() as conn:
        key, plaintext = create_key(conn, org, level, name)
    err.print(f"created {key.key_id} ({key.level}) for {org}; store this key now, it is not shown again:")
    typer.echo(plaintext)  # alone on stdout, so `KEY=$(herald keys create …)` works


@app.command("list")
def list_(
    org: str = typer.Option(..., "--org"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """An organisation's keys: id, level, name, created and revoked (never the keys themselves)."""
    with open_store().reading() as conn:
        keys = list_keys(conn, org)
    if as_json:
        typer.echo(json.dumps(keys, indent=2, default=str))
        return
    table = Table(title=f"API keys of {org}")
    for column in ("key", "level", "name", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        revoked = k["revoked_at"].isoformat(timespec="seconds") if k["revoked_at"] else ""
        table.add_row(
            k["key_id"], k["level"], k["name"], k["created_at"].isoformat(timespec="seconds"), revoked
        )
    out.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (key_…), as list shows it."),
    org: str | None = typer.Option(None, "--org", help="Only if the key is this organisation's."),
) -> None:
    """Revoke a key: from now on it answers 401."""
    with open_store().transaction() as conn:
        done = revoke_key(conn, key_id, org)
    if not done:
        err.print(f"error: no active key {key_id}{' of ' + org if org else ''}", markup=False)
        raise typer.Exit(1)
    out.print(f"revoked {key_id}", markup=False)

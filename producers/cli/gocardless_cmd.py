"""``herald gocardless sync``, ``herald sync history`` and ``herald payments cancel``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from infra.adapters.gocardless_account import GoCardlessUnavailable
from infra.errors import ConfigurationError, IntegrationInactive
from producers.cli import context
from producers.cli.console import err, out, refusals
from producers.gocardless.cancel import cancel_payment
from producers.gocardless.sync import full_sync, history_rows
from producers.gocardless.wiring import GoCardlessWiring

gocardless_app = typer.Typer(help="GoCardless: the full import of customers, mandates and payments.")
sync_app = typer.Typer(help="Sync history (kept 7 days).")
payments_app = typer.Typer(help="GoCardless payments.")


def _wiring() -> GoCardlessWiring:
    return GoCardlessWiring(context.settings(), context.services)  # the command's services


@gocardless_app.command("sync")
def sync() -> None:
    """Import every customer, mandate and payment from GoCardless (added / updated / failed per
    data type, written to the sync history). Exit 1 when some records failed, 2 when it stopped."""
    wiring = _wiring()
    try:
        results = full_sync(wiring.services, wiring.reader)
    except (IntegrationInactive, ConfigurationError) as exc:
        err.print(f"not synced: {exc}")
        raise typer.Exit(2) from exc
    except GoCardlessUnavailable as exc:
        err.print(f"sync stopped: {exc} (what was imported is kept; run it again)")
        raise typer.Exit(2) from exc
    for kind, counts in results.items():
        out.print(f"{kind}: {counts.added} added, {counts.updated} updated, {counts.failed} failed")
    if any(c.failed for c in results.values()):
        raise typer.Exit(1)


def _iso(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@sync_app.command("history")
def history(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    limit: int = typer.Option(200, "--limit", min=1, help="Newest rows to show."),
) -> None:
    """The sync history: time, provider, direction, data type, trigger, added / updated / failed."""
    rows: list[dict[str, Any]] = [r | {"at": _iso(r["at"])} for r in history_rows(_wiring().services, limit)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="sync history")
    for column in (
        "time",
        "provider",
        "direction",
        "data type",
        "trigger",
        "added",
        "updated",
        "failed",
        "detail",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["at"],
            r["provider"],
            r["direction"],
            r["data_type"],
            r["trigger"],
            str(r["added"]),
            str(r["updated"]),
            str(r["failed"]),
            r["detail"] or "",
        )
    out.print(table)


@payments_app.command("cancel")
def cancel(payment_id: str) -> None:
    """Cancel a payment at GoCardless; only while it is pending_submission (exit 1 otherwise)."""
    wiring = _wiring()
    try:
        with refusals():
            payment = cancel_payment(wiring.services, wiring.reader, payment_id)
    except (GoCardlessUnavailable, ConfigurationError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from exc
    out.print(f"{payment['id']} {payment['status']}")

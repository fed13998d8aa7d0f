"""``herald integrations connect|disconnect|delete gocardless|twilio|vonage``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import typer

from infra.adapters.account_checks import CheckFailed, check_gocardless, check_twilio, check_vonage
from infra.errors import ConfigurationError
from infra.store.gocardless import unlink_all
from infra.store.integrations import delete_integration, mark_connected, mark_disconnected
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings
from producers.cli.store import open_store

app = typer.Typer(help="Connect, disconnect or delete the GoCardless, Twilio and Vonage integrations.")


class Provider(StrEnum):
    gocardless = "gocardless"
    twilio = "twilio"
    vonage = "vonage"


@app.command("connect")
def connect(provider: Provider) -> None:
    """Check the credentials at the provider, then record the integration connected."""
    settings = cli_settings()
    try:
        checks = {
            Provider.gocardless: check_gocardless,
            Provider.twilio: check_twilio,
            Provider.vonage: check_vonage,
        }
        account = checks[provider](settings)
    except (CheckFailed, ConfigurationError) as exc:
        err.print(f"not connected: {exc}")
        raise typer.Exit(1) from exc
    with open_store().transaction() as conn:
        mark_connected(conn, provider.value, account, datetime.now(UTC))
    out.print(f"{provider.value} connected ({account})")


@app.command("disconnect")
def disconnect(provider: Provider) -> None:
    """Stop all herald activity for the provider; its links are kept for a later connect."""
    with open_store().transaction() as conn:
        was_active = mark_disconnected(conn, provider.value, datetime.now(UTC))
    out.print(f"{provider.value} disconnected" + ("" if was_active else " (it was already)"))


@app.command("delete")
def delete(provider: Provider) -> None:
    """Remove the integration and its links (GoCardless: every customer link is cleared; the
    GoCardless records stay, unlinked, until the next sync or connect links them again)."""
    with open_store().transaction() as conn:
        existed = delete_integration(conn, provider.value)
        cleared = unlink_all(conn) if provider is Provider.gocardless else 0
    links = f", {cleared} customer link(s) removed" if provider is Provider.gocardless else ""
    out.print(f"{provider.value} deleted{'' if existed else ' (it had no record)'}{links}")

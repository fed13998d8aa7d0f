"""``herald sandbox``: local provider-compatible servers for demos and tests."""

from __future__ import annotations

import typer

from infra.sandboxes.twilio import SandboxConfig, serve
from infra.settings import get_settings
from producers.cli.console import err

app = typer.Typer(help="Local provider-compatible sandboxes.", no_args_is_help=True)


@app.command("twilio")
def twilio(
    port: int = typer.Option(8025, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """A Twilio-compatible Messages API that captures what is sent and calls back statuses.

    Accepts the account SID and auth token of HERALD_TWILIO_ACCOUNT_SID and
    HERALD_TWILIO_AUTH_TOKEN.
    """
    settings = get_settings()
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        err.print("error: set HERALD_TWILIO_ACCOUNT_SID and HERALD_TWILIO_AUTH_TOKEN for the sandbox")
        raise typer.Exit(2)
    serve(
        SandboxConfig(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
        ),
        host,
        port,
    )

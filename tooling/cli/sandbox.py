"""``herald sandbox``: local provider-compatible servers for demos and tests."""

from __future__ import annotations

from pathlib import Path

import typer

from producers.cli.console import err
from producers.cli.context import settings as cli_settings
from tooling.sandboxes import gocardless as gocardless_sandbox
from tooling.sandboxes import smtp as smtp_sandbox
from tooling.sandboxes import vonage as vonage_sandbox
from tooling.sandboxes import webhook_receiver as webhook_receiver_sandbox
from tooling.sandboxes.twilio import SandboxConfig, serve

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
    settings = cli_settings()
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


@app.command("vonage")
def vonage(
    port: int = typer.Option(8028, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    ca_file: str = typer.Option(
        ".herald/vonage-sandbox-ca.pem", help="Where to write the sandbox's CA (HERALD_VONAGE_CA_BUNDLE)."
    ),
    receipt_format: str = typer.Option("json", help="Delivery receipts as json or form."),
) -> None:
    """A Vonage-compatible SMS API over TLS: captures what is sent, answers magic numbers with
    Vonage's error statuses, posts signed delivery receipts, fails on request (POST /sandbox/faults).

    Accepts HERALD_VONAGE_API_KEY and HERALD_VONAGE_API_SECRET; signs receipts with
    HERALD_VONAGE_SIGNATURE_SECRET (and _METHOD); they go to HERALD_PUBLIC_URL + /callbacks/vonage
    unless a message names its own callback. Point HERALD_VONAGE_REST_URL and HERALD_VONAGE_API_URL
    at host:port, and HERALD_VONAGE_CA_BUNDLE at the CA file.
    """
    settings = cli_settings()
    if not settings.vonage_api_key or not settings.vonage_api_secret:
        err.print("error: set HERALD_VONAGE_API_KEY and HERALD_VONAGE_API_SECRET for the sandbox")
        raise typer.Exit(2)
    if receipt_format not in ("json", "form"):
        err.print("error: --receipt-format is json or form")
        raise typer.Exit(2)
    signature = settings.vonage_signature_secret
    Path(ca_file).parent.mkdir(parents=True, exist_ok=True)
    vonage_sandbox.serve(
        vonage_sandbox.VonageConfig(
            api_key=settings.vonage_api_key,
            api_secret=settings.vonage_api_secret.get_secret_value(),
            signature_secret=signature.get_secret_value() if signature else None,
            signature_method=settings.vonage_signature_method,
            receipts_url=f"{settings.public_url}/callbacks/vonage" if settings.public_url else None,
            receipt_format=receipt_format,
        ),
        host,
        port,
        ca_file,
    )


@app.command("smtp")
def smtp(
    port: int = typer.Option(2525, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """A local SMTP server that captures what is sent; magic addresses answer errors.

    reject…@ answers 550, busy…@ 451 every time, flaky…@ 451 once then accepts.
    Requires AUTH when HERALD_SMTP_USERNAME is set (with HERALD_SMTP_PASSWORD).
    """
    settings = cli_settings()
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    smtp_sandbox.serve(host, port, username=settings.smtp_username, password=password)


@app.command("gocardless")
def gocardless(
    port: int = typer.Option(8026, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """A GoCardless-compatible API (customers, mandates, payments, billing requests) with signed webhooks.

    Accepts the access token of HERALD_GOCARDLESS_ACCESS_TOKEN and signs webhooks with
    HERALD_GOCARDLESS_WEBHOOK_SECRET; they go to HERALD_PUBLIC_URL + /webhooks/gocardless when set.
    """
    settings = cli_settings()
    if not settings.gocardless_access_token or not settings.gocardless_webhook_secret:
        err.print(
            "error: set HERALD_GOCARDLESS_ACCESS_TOKEN and HERALD_GOCARDLESS_WEBHOOK_SECRET for the sandbox"
        )
        raise typer.Exit(2)
    webhook_url = f"{settings.public_url}/webhooks/gocardless" if settings.public_url else None
    gocardless_sandbox.serve(
        gocardless_sandbox.GoCardlessConfig(
            access_token=settings.gocardless_access_token.get_secret_value(),
            webhook_secret=settings.gocardless_webhook_secret.get_secret_value(),
            webhook_url=webhook_url,
        ),
        host,
        port,
    )


@app.command("webhook-receiver")
def webhook_receiver(
    port: int = typer.Option(8027, help="Port to listen on (127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    secret: list[str] = typer.Option(
        [], "--secret", help="A whsec_ secret that verifies (repeat; or POST /sandbox/secrets later)."
    ),
) -> None:
    """A webhook receiver: verifies Standard Webhooks signatures, keeps what it received
    (GET /sandbox/received) and fails on request (POST /sandbox/faults)."""
    webhook_receiver_sandbox.serve(secret, host, port)

"""``herald api``: the HTTP app (status callbacks), served by uvicorn."""

from __future__ import annotations

import typer


def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Serve the HTTP app until SIGTERM (Twilio status callbacks at /callbacks/twilio/{notification_id})."""
    import uvicorn

    from infra.logs import configure_logging, uvicorn_log_config
    from producers.api.app import create_app
    from producers.cli.context import settings as cli_settings

    settings = cli_settings()
    # JSON lines like every other process; uvicorn's own lines (startup, access, a traceback that
    # escaped the app) go through the same handler, so they are masked and redacted too.
    configure_logging(settings)
    # SIGTERM: uvicorn stops accepting, lets requests in hand finish, and gives up after this long.
    timeout = int(settings.shutdown_timeout_seconds)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=uvicorn_log_config(settings.log_level),
        timeout_graceful_shutdown=max(timeout, 1),
    )

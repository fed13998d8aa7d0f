"""``herald api``: the HTTP app (status callbacks), served by uvicorn."""

from __future__ import annotations

import typer


def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Serve the HTTP app until SIGTERM (Twilio status callbacks at /callbacks/twilio/{notification_id})."""
    import uvicorn

    from infra.settings import get_settings
    from producers.api.app import create_app

    # SIGTERM: uvicorn stops accepting, lets requests in hand finish, and gives up after this long.
    timeout = int(get_settings().shutdown_timeout_seconds)
    uvicorn.run(
        create_app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=max(timeout, 1)
    )

"""``herald schema``: the event JSON Schema, for publishers in any language (and, with
``--status``, the schema of the status events herald sends back)."""

from __future__ import annotations

import json

import typer

from schemas.events import event_json_schema
from schemas.status_events import status_event_json_schema


def schema(
    status: bool = typer.Option(
        False, "--status", help="The status events herald sends back (webhooks, PREFIX.notifications)."
    ),
) -> None:
    """Print the JSON Schema of one event (the envelope and every type), or of one status event."""
    value = status_event_json_schema() if status else event_json_schema()
    typer.echo(json.dumps(value, indent=2, sort_keys=True))
